"""The data-quality loop (GOV-6): rules that find defects in CRM records, a scanner that keeps them
current (fully or incrementally) and turns each into a task for the record's owner, and KPIs."""
