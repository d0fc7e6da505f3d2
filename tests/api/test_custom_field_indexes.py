"""Custom fields "indexed where filtered often" (GOV-1): marking a field indexed is a schema change
signed off like any other; applying it builds an expression index that list filters and sorts use
(the plan says so, on SQLite and PostgreSQL — under row-level security there); unmarking or
retiring the field drops it; and the indexes, built outside the migrations, leave ``alembic check``
clean. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Select

from closeloop.crm import customfields, records
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

TIER = {
    "record_type": "account",
    "name": "tier",
    "field_type": "choice",
    "label_zh": "客户分级",
    "label_en": "Tier",
    "choices": [
        {"value": "gold", "label_zh": "金", "label_en": "Gold"},
        {"value": "iron", "label_zh": "铁", "label_en": "Iron"},
    ],
    "indexed": True,
}
SCORE = {
    "record_type": "account",
    "name": "score",
    "field_type": "number",
    "label_zh": "评分",
    "label_en": "Score",
    "indexed": True,
}


def signed_off(client: TestClient, tenant: Tenant, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """File a change as the admin, approve it as the sales VP and the IT director."""
    asked = Api(client, tenant["admin"]).request(method, path, **kw)
    assert asked.status_code == 202, asked.text
    request_id = asked.json()["id"]
    for member in ("sales_vp", "it_director"):
        answer = Api(client, tenant[member]).request("POST", f"/change-requests/{request_id}/approve")
        assert answer.status_code == 200, answer.text
    applied: dict[str, Any] = answer.json()
    assert applied["status"] == "applied", applied
    return applied


def indexes(db: Database, tenant: Tenant) -> set[str]:
    with db.reading(tenant["admin"].actor) as session:
        return customfields.index_names(session.connection())


def plan(db: Database, tenant: Tenant, params: dict[str, str]) -> str:
    """The database's plan for the account list an admin asks for with ``params``."""
    actor = tenant["admin"].actor
    with db.reading(actor) as session:
        statement: Select[Any]
        statement, _ = records.build_query(session, actor, records.record_type_for("account"), params)
        connection = session.connection()
        sql = str(statement.limit(50).compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        if connection.dialect.name == "sqlite":
            return "\n".join(str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
        # a handful of test rows: a sequential scan would be cheaper; ask whether the index can serve
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return "\n".join(str(row[0]) for row in connection.exec_driver_sql("EXPLAIN " + sql.replace("%", "%%")))


def test_an_indexed_field_is_built_on_sign_off_serves_lists_and_is_dropped(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    tier = signed_off(client, tenant, "POST", "/custom-fields", json=TIER)["target_id"]
    score = signed_off(client, tenant, "POST", "/custom-fields", json=SCORE)["target_id"]
    tier_index, score_index = f"cfx_accounts_{tier}", f"cfx_accounts_{score}"
    assert {tier_index, score_index} <= indexes(db, tenant)

    rep = Api(client, tenant["rep"])
    gold = rep.create("accounts", {"name": f"金牌医院 {tag()}", "custom": {"tier": "gold", "score": 9}})
    iron = rep.create("accounts", {"name": f"铁牌医院 {tag()}", "custom": {"tier": "iron", "score": 3.5}})
    admin = Api(client, tenant["admin"])
    mine = {gold["id"], iron["id"]}
    assert [i for i in admin.list_ids("accounts", **{"custom.tier": "gold"}) if i in mine] == [gold["id"]]
    assert [i for i in admin.list_ids("accounts", **{"custom.score__gte": "4"}) if i in mine] == [gold["id"]]
    assert [i for i in admin.list_ids("accounts", sort="-custom.score") if i in mine] == [gold["id"], iron["id"]]

    assert tier_index in plan(db, tenant, {"custom.tier": "gold"})
    assert score_index in plan(db, tenant, {"custom.score__gte": "4"})
    assert score_index in plan(db, tenant, {"sort": "custom.score"})

    version = admin.read("custom-fields", tier)["version"]
    signed_off(
        client, tenant, "PATCH", f"/custom-fields/{tier}", json={"indexed": False}, headers={"If-Match": f'"{version}"'}
    )
    assert tier_index not in indexes(db, tenant)
    assert tier_index not in plan(db, tenant, {"custom.tier": "gold"})
    assert [i for i in admin.list_ids("accounts", **{"custom.tier": "gold"}) if i in mine] == [gold["id"]]

    version = admin.read("custom-fields", score)["version"]
    signed_off(client, tenant, "DELETE", f"/custom-fields/{score}", headers={"If-Match": f'"{version}"'})
    assert score_index not in indexes(db, tenant)


def test_only_a_single_value_is_indexed(client: TestClient, tenant: Tenant) -> None:
    body = {**TIER, "name": "tags", "field_type": "multi_choice"}
    assert_problem(Api(client, tenant["admin"]).request("POST", "/custom-fields", json=body), 422, field="indexed")


@pytest.mark.parametrize("cast", ["FLOAT", "VARCHAR", "INTEGER", "BOOLEAN"])
def test_the_index_spells_the_expression_filters_use(cast: str) -> None:
    from sqlalchemy.dialects import sqlite

    from closeloop.crm.accounts.models import Account
    from closeloop.db.functions import json_scalar

    filtered = str(json_scalar(Account.__table__.c.custom, "tier", cast).compile(dialect=sqlite.dialect()))
    ddl = customfields.index_ddl(sqlite.dialect(), "accounts", 7, "tier", cast)
    assert filtered.replace("accounts.custom", "custom") in ddl
    with pytest.raises(ValueError, match="not a JSON field key"):
        json_scalar(Account.__table__.c.custom, "tier'); DROP TABLE accounts; --", cast)
