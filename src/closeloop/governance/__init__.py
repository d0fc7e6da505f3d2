"""Governance: the permission vocabulary, field-level security and the audit trail."""
