"""Organizations (tenants and partners), regions, users and their reporting lines, API tokens."""
