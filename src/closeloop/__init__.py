"""Closeloop: an open, self-hosted sales management platform that closes the sales loop."""

__version__ = "0.1.0"
