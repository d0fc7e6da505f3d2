"""Sales assistants grounded in the organization's own data, run on premises (AST-1 … AST-6)."""
