"""The baseline for the API benchmark: a bare Starlette app running the same SQL as Closeloop's
get-by-id and list-50 endpoints, with no authentication, scoping, masks or ORM.

Run by bench_api.py as ``uvicorn bench.bare_app:app`` with BARE_DATABASE_URL and BARE_ORGANIZATION_ID set.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.engine import normalize_url

_URL = normalize_url(os.environ["BARE_DATABASE_URL"])
_ORG = int(os.environ["BARE_ORGANIZATION_ID"])
_engine = create_engine(
    _URL, pool_size=8, connect_args={"check_same_thread": False} if _URL.startswith("sqlite") else {}
)
_COLUMNS = ", ".join(column.name for column in Opportunity.__table__.columns)
_GET = text(f"SELECT {_COLUMNS} FROM opportunities WHERE organization_id = :org AND deleted_at IS NULL AND id = :id")
_LIST = text(
    f"SELECT {_COLUMNS} FROM opportunities WHERE organization_id = :org AND deleted_at IS NULL "
    "ORDER BY id DESC LIMIT 51"
)


def _row(mapping: Any) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key != "margin"}


def get_one(request: Request) -> Response:
    with _engine.connect() as connection:
        row = connection.execute(_GET, {"org": _ORG, "id": int(request.path_params["id"])}).mappings().first()
    if row is None:
        return Response(b'{"detail":"not found"}', status_code=404, media_type="application/json")
    return Response(orjson.dumps(_row(row), default=str), media_type="application/json")


def list_page(request: Request) -> Response:
    with _engine.connect() as connection:
        rows = connection.execute(_LIST, {"org": _ORG}).mappings().all()
    body = {"items": [_row(row) for row in rows[:50]], "next_cursor": str(rows[49]["id"]) if len(rows) > 50 else None}
    return Response(orjson.dumps(body, default=str), media_type="application/json")


app = Starlette(routes=[Route("/opportunities/{id:int}", get_one), Route("/opportunities", list_page)])
