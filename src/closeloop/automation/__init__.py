"""Automation: rules written in plain language (``language``), evaluated on outbox events and schedules,
with decision records, an undo window and backtests (AUTO-1, AUTO-2, AUTO-4, AUTO-5)."""

# registers the rules as part of a schema change's impact, wherever automation is loaded
from closeloop.automation import impact as impact

__all__ = ["impact"]
