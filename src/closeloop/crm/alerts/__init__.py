"""Alert thresholds set on dashboard charts."""
