"""Sales assistants grounded in the organization's own knowledge and CRM data (AST-1 …)."""
