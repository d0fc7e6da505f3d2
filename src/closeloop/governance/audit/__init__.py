"""The tamper-evident audit trail (GOV-8): append-only entries, hash-chained per organization."""
