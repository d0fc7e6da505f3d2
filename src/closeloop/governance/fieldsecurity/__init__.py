"""Field masks configured per organization (GOV-3 complete): the stored read/edit matrix."""
