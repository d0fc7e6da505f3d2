"""Change requests (GOV-5, firewall 3): schema changes take effect only after dual sign-off."""
