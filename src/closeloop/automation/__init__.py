"""Automation (AUTO-1, AUTO-4, AUTO-5): rules over the outbox events, decision records, the undo window, backtests."""
