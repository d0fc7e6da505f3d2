"""The API's description page works offline: Swagger UI comes from the product's own static files,
never from a CDN, and reads the OpenAPI document under /api."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_the_docs_page_loads_swagger_ui_from_the_product(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui-bundle.js" in page.text
    assert "/static/vendor/swagger-ui.css" in page.text
    assert "/api/openapi.json" in page.text
    assert "cdn." not in page.text
    assert "https://" not in page.text
    assert client.get("/api/openapi.json").json()["info"]["title"] == "Closeloop API"
