"""For any configured field-security matrix, a role never receives a field it may not read — in a
record's body, a list or an export — and does receive every field it may read. Formula fields
follow their inputs: readable only by whoever reads the formula and each of its inputs."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closeloop.crm import customfields, fieldsecurity, records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.customfields import DefinitionCreate
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.factories import Tenant
from tests.samples import Api

ROLES = ("rep", "manager", "cfo", "admin", "it_director")
STORED = ("industry", "employees", "credit_line")
CUSTOM = ("custom.score", "custom.score_x2", "custom.credit_left")
#: formula field → the fields it reads
INPUTS = {"custom.score_x2": ("custom.score",), "custom.credit_left": ("credit_line", "employees")}

cells = st.fixed_dictionaries(
    {field: st.fixed_dictionaries({role: st.booleans() for role in ROLES}) for field in (*STORED, *CUSTOM)}
)


def _prepare(db: Database, tenant: Tenant) -> int:
    """The custom fields (once) and an account of the rep holding a value in every field."""
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        names = {d.name for d in customfields.definitions(session, tenant.organization_id, "account")}
        for body in (
            {"name": "score", "field_type": "number"},
            {"name": "score_x2", "field_type": "formula", "formula": "custom.score * 2"},
            {"name": "credit_left", "field_type": "formula", "formula": "credit_line - employees"},
        ):
            if body["name"] not in names:
                data = DefinitionCreate.model_validate(
                    {"record_type": "account", "label_zh": "字段", "label_en": "Field", **body}
                )
                customfields.create_definition(session, system, data)
    vp = tenant["sales_vp"].actor
    with db.unit_of_work(vp) as session:
        account = records.create(
            session,
            vp,
            account_service.ACCOUNTS,
            {
                "name": "性质医院",
                "industry": "医药",
                "employees": 40,
                "credit_line": Decimal("1000.00"),
                "owner_id": tenant["rep"].user_id,
                "custom": {"score": 7},
            },
        )
        return int(account.id)


def _configure(db: Database, tenant: Tenant, matrix: dict[str, dict[str, bool]]) -> None:
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        for field, by_role in matrix.items():
            roles: dict[str, dict[str, bool] | None] = {
                role: {"read": read, "edit": read and field not in INPUTS} for role, read in by_role.items()
            }
            fieldsecurity.apply_change(session, system, "account", field, roles)


def _readable(matrix: dict[str, dict[str, bool]], role: str, field: str) -> bool:
    return matrix[field][role] and all(_readable(matrix, role, source) for source in INPUTS.get(field, ()))


def _keys(body: dict[str, Any]) -> set[str]:
    return {key for key in body if key != "custom"} | {f"custom.{key}" for key in body.get("custom", {})}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(matrix=cells)
def test_a_role_receives_exactly_the_fields_it_may_read(
    client: TestClient, db: Database, tenant: Tenant, matrix: dict[str, dict[str, bool]]
) -> None:
    account_id = _prepare(db, tenant)
    _configure(db, tenant, matrix)

    for role in ROLES:
        api = Api(client, tenant[role])
        body = api.read("accounts", account_id)
        listed = api.request("GET", "/accounts", params={"q": "性质医院", "limit": 1}).json()["items"][0]
        exported = client.get("/api/v1/exports/accounts", headers=tenant[role].headers).content.decode("utf-8-sig")
        header = set(next(csv.reader(io.StringIO(exported))))
        for field in (*STORED, *CUSTOM):
            allowed = _readable(matrix, role, field)
            assert (field in _keys(body)) is allowed, (role, field, "body")
            assert (field in _keys(listed)) is allowed, (role, field, "list")
            assert (field in header) is allowed, (role, field, "export")
