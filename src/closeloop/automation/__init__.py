"""Automation: rules written in plain language, evaluated on events and schedules."""
