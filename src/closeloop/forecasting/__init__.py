"""Forecasting: demand backtests (statsforecast, mlforecast + LightGBM), win probability, bookings.

The package sits between the worker and the integrations: it reads the CRM through scoped queries
and is driven by the API, the web workspace, the CLI and periodic worker tasks.
"""
