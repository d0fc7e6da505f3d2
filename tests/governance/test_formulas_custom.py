"""Formulas read custom fields (``custom.<name>``, typed by the definition) on the record and on the
related records they aggregate; lineage lists those inputs and shows the formulas downstream of a
custom field; changing or retiring a custom field shows the formulas reading it as its impact; a
formula reading a masked custom field is masked. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm import customfields, formulas
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.customfields import DefinitionCreate
from closeloop.crm.opportunities.models import Opportunity
from closeloop.db.session import Database
from closeloop.governance.formulas import FormulaError
from closeloop.org import service as org_service
from tests.factories import Tenant
from tests.samples import Api, assert_problem

NOW = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with frozen_at(NOW):
        yield


def define(db: Database, tenant: Tenant, noun: str, name: str, field_type: str, **extra: Any) -> None:
    system = org_service.system_actor(tenant.organization_id)
    body = {"record_type": noun, "name": name, "field_type": field_type, "label_zh": name, "label_en": name, **extra}
    with db.unit_of_work(system) as session:
        customfields.create_definition(session, system, DefinitionCreate.model_validate(body))


def add(db: Database, tenant: Tenant, model: type[Any], **values: Any) -> int:
    with db.unit_of_work(tenant["admin"].actor) as session:
        row = model(organization_id=tenant.organization_id, **values)
        session.add(row)
        session.flush()
        return int(row.id)


def evaluate(db: Database, tenant: Tenant, member: str, noun: str, text: str, ids: list[int]) -> dict[int, Any]:
    actor = tenant[member].actor
    with db.reading(actor) as session:
        return dict(formulas.evaluate(session, actor, noun, text, ids=ids))


@pytest.fixture
def accounts(db: Database, tenant: Tenant) -> list[int]:
    """Custom fields of every readable type on accounts, opportunities and activities, and records
    holding awkward values (money with cents, a missing value, a boolean false)."""
    define(db, tenant, "account", "potential", "money")
    define(db, tenant, "account", "score", "number")
    define(db, tenant, "account", "audited_on", "date")
    define(
        db, tenant, "account", "segment", "choice", choices=[{"value": "kA", "label_zh": "大客户", "label_en": "KA"}]
    )
    define(db, tenant, "account", "nickname", "text")
    define(db, tenant, "account", "strategic", "boolean")
    define(db, tenant, "opportunity", "weight", "money")
    define(db, tenant, "activity", "productive", "boolean")
    rep = tenant["rep"].user_id
    first = add(
        db,
        tenant,
        Account,
        name="甲医院",
        owner_id=rep,
        custom={
            "potential": 1000.1,
            "score": 2.5,
            "audited_on": "2026-05-10",
            "segment": "kA",
            "nickname": "甲",
            "strategic": True,
        },
    )
    second = add(db, tenant, Account, name="乙医院", owner_id=rep, custom={"potential": 0.2, "strategic": False})
    for weight in (0.1, 0.2, 1234567.89):
        add(db, tenant, Opportunity, name="商机", account_id=first, owner_id=rep, amount=1, custom={"weight": weight})
    add(db, tenant, Opportunity, name="无权重", account_id=first, owner_id=rep, amount=1, custom={})
    for productive in (True, True, False):
        add(
            db,
            tenant,
            Activity,
            kind="visit",
            account_id=first,
            occurred_at=NOW,
            user_id=rep,
            custom={"productive": productive},
        )
    return [first, second]


def test_formulas_read_custom_fields_typed_by_their_definition(
    db: Database, tenant: Tenant, accounts: list[int]
) -> None:
    first, second = accounts

    def on_both(text: str) -> tuple[Any, Any]:
        found = evaluate(db, tenant, "rep", "account", text, accounts)
        return found[first], found[second]

    assert on_both("custom.potential + custom.potential") == (2000.2, 0.4)
    assert on_both("custom.score * 2") == (5.0, None)
    assert on_both("DAYS_BETWEEN(custom.audited_on, TODAY())") == (10.0, None)
    assert on_both('IF(custom.segment = "kA", "大客户", "其他")') == ("大客户", "其他")
    assert on_both('custom.nickname & "!"') == ("甲!", None)
    assert on_both("IF(custom.strategic, 1, 0)") == (1.0, 0.0)
    assert on_both("COALESCE(custom.score, 0) + COUNT(opportunities)") == (6.5, 0.0)


def test_aggregates_read_related_records_custom_fields(db: Database, tenant: Tenant, accounts: list[int]) -> None:
    first, second = accounts

    found = evaluate(db, tenant, "rep", "account", "SUM(opportunities.custom.weight)", accounts)
    counted = evaluate(db, tenant, "rep", "account", "COUNT(activities WHERE custom.productive)", accounts)
    heaviest = evaluate(db, tenant, "rep", "account", "MAX(opportunities.custom.weight)", accounts)

    assert found == {first: 1234568.19, second: 0.0}  # exact cents, summed as integers
    assert counted == {first: 2.0, second: 0.0}
    assert heaviest == {first: 1234567.89, second: None}


def test_a_bad_custom_reference_is_an_error_with_its_position(
    db: Database, tenant: Tenant, accounts: list[int]
) -> None:
    actor = tenant["rep"].actor
    with db.reading(actor) as session, pytest.raises(FormulaError) as bad:
        formulas.check(actor, "account", "1 + custom.potental", session)
    assert "custom.potential" in str(bad.value)
    assert bad.value.extra["position"] == 4
    with db.reading(actor) as session, pytest.raises(FormulaError):
        formulas.check(actor, "account", "custom.nickname + 1", session)  # text is not a number


def test_lineage_and_change_impact_follow_custom_field_inputs(
    client: TestClient, db: Database, tenant: Tenant, accounts: list[int]
) -> None:
    admin = Api(client, tenant["admin"])
    asked = admin.request(
        "POST",
        "/custom-fields",
        json={
            "record_type": "account",
            "name": "value_index",
            "field_type": "formula",
            "label_zh": "价值指数",
            "label_en": "Value index",
            "formula": "custom.potential * custom.score + SUM(opportunities.custom.weight)",
        },
    )
    assert asked.status_code == 202, asked.text
    for role in ("sales_vp", "it_director"):
        assert Api(client, tenant[role]).request("POST", f"/change-requests/{asked.json()['id']}/approve").is_success

    upstream = admin.request("GET", "/lineage/account/custom.value_index").json()["upstream"]
    downstream = admin.request("GET", "/lineage/account/custom.potential").json()["downstream"]
    related = admin.request("GET", "/lineage/opportunity/custom.weight").json()["downstream"]
    fields = {item["name"]: item["id"] for item in admin.request("GET", "/custom-fields").json()["items"]}
    retire = admin.request("DELETE", f"/custom-fields/{fields['score']}")
    change = admin.request("PATCH", f"/custom-fields/{fields['potential']}", json={"label_en": "Potential"})

    assert {"record_type": "account", "field": "custom.potential"} in upstream
    assert {"record_type": "account", "field": "custom.score"} in upstream
    assert {"record_type": "opportunity", "field": "custom.weight"} in upstream
    assert [item["field"] for item in downstream] == ["custom.value_index"]
    assert [item["field"] for item in related] == ["custom.value_index"]
    assert [item["field"] for item in retire.json()["impact"]["dependents"]] == ["custom.value_index"]
    assert [item["field"] for item in change.json()["impact"]["dependents"]] == ["custom.value_index"]


def test_a_formula_reading_a_custom_field_hidden_from_a_role_is_masked(
    client: TestClient, db: Database, tenant: Tenant, accounts: list[int]
) -> None:
    define(db, tenant, "account", "secret_rate", "number", visible_to=["sales_vp", "cfo"])
    rep, cfo = tenant["rep"], tenant["cfo"]

    preview = Api(client, rep).request(
        "POST", "/formulas/preview", json={"record_type": "account", "expression": "custom.secret_rate * 2"}
    )
    allowed = Api(client, cfo).request(
        "POST", "/formulas/preview", json={"record_type": "account", "expression": "custom.secret_rate * 2"}
    )

    problem = assert_problem(preview, 403)
    assert problem["masked_inputs"] == ["account.custom.secret_rate"]
    assert allowed.status_code == 200, allowed.text
