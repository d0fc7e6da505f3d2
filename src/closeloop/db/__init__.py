"""Persistence: base model and mixins, engines, units of work, and the one door for scoped queries."""
