"""Funnel."""
