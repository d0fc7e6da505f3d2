"""Field work (CN-5, 外勤): visit check-ins with coordinates and photos, visit plans, the customer map."""
