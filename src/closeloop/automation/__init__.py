"""Automation: rules written in plain language (``language``), evaluated on outbox events and schedules,
with decision records, an undo window and backtests (AUTO-1, AUTO-2, AUTO-4, AUTO-5)."""
