"""The REST API (INT-1): FastAPI routers under ``/api/v1``; errors as ``application/problem+json``."""
