"""Contract comparison against the organization's standard templates (AST-4)."""
