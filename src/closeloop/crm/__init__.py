"""CRM records and the closed-loop funnel (CRM-1 … CRM-4)."""
