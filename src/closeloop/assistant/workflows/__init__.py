"""Assistant workflows configured as data per organization (AST-6)."""
