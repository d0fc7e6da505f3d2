"""Tests of the sales assistants."""
