"""The field configuration (masks and custom-field definitions) is kept across requests behind the
organization's stamp: a warm read runs neither the matrix's nor the definitions' statement, and a
change — made through the API, or committed by another process — is seen by the very next read."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from closeloop.db.session import Database
from tests.api.test_custom_fields import Schema, signed_off
from tests.api.test_field_security import configure
from tests.conftest import Backend
from tests.factories import Tenant
from tests.samples import Api, assert_problem, tag

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on the database while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = db.write_engine
    event.listen(engine, "before_cursor_execute", record)
    if db.read_engine is not engine:
        event.listen(db.read_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
        if db.read_engine is not engine:
            event.remove(db.read_engine, "before_cursor_execute", record)


def configuration_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM field_security_rules" in s or "FROM custom_field_definitions" in s]


def test_a_warm_read_reads_only_the_stamp_and_a_change_is_read_at_once(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    rep, schema = Api(client, tenant["rep"]), Schema(client, tenant)
    account = rep.create("accounts", {"name": f"缓存医院 {tag()}", "industry": "医药"})
    rep.read("accounts", account["id"])  # warms the kept configuration

    with statements(db) as warm:
        body = rep.read("accounts", account["id"])
    schema.define(name="tier", field_type="text")
    with statements(db) as after_change:
        changed = rep.read("accounts", account["id"])
    with statements(db) as warm_again:
        rep.read("accounts", account["id"])

    assert "tier" not in body["custom"]
    assert configuration_reads(warm) == []
    assert any("fields_stamp" in s for s in warm)
    assert changed["custom"]["tier"] is None  # the new field, on the very next read
    assert configuration_reads(after_change)  # read again: the stamp changed
    assert configuration_reads(warm_again) == []


def test_a_warm_read_of_a_record_reads_the_stamp_in_the_records_own_statement(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    rep = Api(client, tenant["rep"])
    account = rep.create("accounts", {"name": f"一句医院 {tag()}", "industry": "医药"})
    rep.read("accounts", account["id"])  # warms the kept configuration

    with statements(db) as warm:
        rep.read("accounts", account["id"])
    configure(client, tenant, "account", "industry", {"rep": {"read": False}})
    with statements(db) as after_change:
        masked = rep.read("accounts", account["id"])

    stamp_reads = [s for s in warm if "fields_stamp" in s]
    assert len(stamp_reads) == 1
    assert "FROM accounts" in stamp_reads[0]  # one statement: the record and the stamp
    assert configuration_reads(warm) == []
    # the kept configuration's stamp was stale: the record is read again under the new matrix
    assert "industry" not in masked
    assert configuration_reads(after_change)
    assert len([s for s in after_change if "FROM accounts" in s]) == 2


def test_a_warm_list_reads_the_stamp_in_its_own_statement_and_a_stale_guess_never_decides(
    client: TestClient, tenant: Tenant, db: Database
) -> None:
    rep = Api(client, tenant["rep"])
    name = f"列表医院 {tag()}"
    rep.create("accounts", {"name": name, "industry": "医药"})
    by_name = {"q": name}
    rep.request("GET", "/accounts", params=by_name)  # warms the kept configuration

    with statements(db) as warm:
        listed = rep.request("GET", "/accounts", params=by_name).json()["items"]
    configure(client, tenant, "account", "industry", {"rep": {"read": False}})
    # the kept configuration (industry readable) is stale from here: each read below must not use it
    with statements(db) as after_change:
        masked = rep.request("GET", "/accounts", params=by_name).json()["items"]
    refused = rep.request("GET", "/accounts", params={**by_name, "industry": "医药"})
    configure(client, tenant, "account", "industry", {"rep": None})
    empty_then_allowed = rep.request("GET", "/accounts", params={"q": "没有这家医院", "industry": "医药"})
    configure(client, tenant, "account", "industry", {"rep": {"read": False}})
    # the kept configuration (industry readable) is stale again, and the page would be empty: the stamp
    # is read to check it, and the filter is refused
    refused_again = rep.request("GET", "/accounts", params={"q": "没有这家医院", "industry": "医药"})

    stamp_reads = [s for s in warm if "fields_stamp" in s]
    assert len(stamp_reads) == 1
    assert "FROM accounts" in stamp_reads[0]
    assert configuration_reads(warm) == []
    assert listed[0]["industry"] == "医药"
    assert masked
    assert "industry" not in masked[0]
    assert configuration_reads(after_change)
    assert_problem(refused, 403, field="industry")
    assert empty_then_allowed.status_code == 200, empty_then_allowed.text  # the stale mask did not refuse it
    assert empty_then_allowed.json()["items"] == []
    assert_problem(refused_again, 403, field="industry")


def test_masking_and_unmasking_a_field_are_seen_by_the_next_read(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    account = rep.create("accounts", {"name": f"遮蔽医院 {tag()}", "industry": "医药"})
    assert rep.read("accounts", account["id"])["industry"] == "医药"

    configure(client, tenant, "account", "industry", {"rep": {"read": False}})
    masked = rep.read("accounts", account["id"])
    listed = rep.request("GET", "/accounts", params={"q": account["name"]}).json()["items"]
    configure(client, tenant, "account", "industry", {"rep": None})  # the cell removed: the default again
    unmasked = rep.read("accounts", account["id"])

    assert "industry" not in masked  # absent, not null
    assert listed
    assert all("industry" not in item for item in listed)
    assert unmasked["industry"] == "医药"


def test_changing_and_retiring_a_definition_are_seen_by_the_next_read(client: TestClient, tenant: Tenant) -> None:
    rep, schema = Api(client, tenant["rep"]), Schema(client, tenant)
    field = schema.define(name="grade", field_type="text")
    account = rep.create("accounts", {"name": f"定义医院 {tag()}", "custom": {"grade": "A"}})
    assert rep.read("accounts", account["id"])["custom"]["grade"] == "A"

    restricted = schema.admin.request(
        "PATCH",
        f"/custom-fields/{field['id']}",
        json={"visible_to": ["sales_vp", "cfo"]},
    )
    signed_off(client, tenant, restricted)
    hidden = rep.read("accounts", account["id"])
    seen_by_vp = Api(client, tenant["sales_vp"]).read("accounts", account["id"])

    assert "grade" not in hidden["custom"]
    assert seen_by_vp["custom"]["grade"] == "A"

    schema.retire(field["id"])
    assert "grade" not in Api(client, tenant["sales_vp"]).read("accounts", account["id"])["custom"]


def test_two_tenants_keep_their_own_configuration(client: TestClient, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = Api(client, tenant["rep"]).create("accounts", {"name": f"甲医院 {tag()}", "industry": "医药"})
    theirs = Api(client, other_tenant["rep"]).create("accounts", {"name": f"乙医院 {tag()}", "industry": "医药"})
    configure(client, tenant, "account", "industry", {"rep": {"read": False}})

    assert "industry" not in Api(client, tenant["rep"]).read("accounts", mine["id"])
    assert Api(client, other_tenant["rep"]).read("accounts", theirs["id"])["industry"] == "医药"


_OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from closeloop.crm import customfields, fieldsecurity
    from closeloop.crm.accounts import service as accounts  # registers the record type (noqa: F401)
    from closeloop.db.session import connect
    from closeloop.org import service

    url, organization_id, step = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    database = connect(url)
    system = service.system_actor(organization_id)
    with database.unit_of_work(None, system=True) as session:
        if step == "mask":
            fieldsecurity.apply_change(session, system, "account", "industry", {"rep": {"read": False, "edit": False}})
        else:
            data = customfields.DefinitionCreate(
                record_type="account", name="region_code", field_type="text", label_zh="区号", label_en="Region code"
            )
            customfields.create_definition(session, system, data)
    database.dispose()
    """
)


@pytest.mark.committing
def test_a_change_committed_by_another_process_is_seen_by_the_next_request(
    client: TestClient, tenant: Tenant, backend: Backend
) -> None:
    rep = Api(client, tenant["rep"])
    account = rep.create("accounts", {"name": f"多进程医院 {tag()}", "industry": "医药"})
    before = rep.read("accounts", account["id"])

    for step in ("mask", "define"):
        done = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS, backend.url, str(tenant.organization_id), step],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    after = rep.read("accounts", account["id"])

    assert before["industry"] == "医药"
    assert "region_code" not in before["custom"]
    assert "industry" not in after
    assert after["custom"]["region_code"] is None


@pytest.mark.committing
def test_a_long_lived_session_sees_a_change_committed_elsewhere_in_its_next_transaction(
    client: TestClient, tenant: Tenant, backend: Backend, db: Database
) -> None:
    """The worker keeps a session across transactions: the stamp and the per-session copy of the
    matrix last one transaction, so a mask committed meanwhile holds from the next one on."""
    from closeloop.governance import fields

    rep = tenant["rep"].actor
    with db.reading(None, system=True) as session:
        before = fields.can_read_field(session, rep, "account", "industry")
        done = subprocess.run(
            [sys.executable, "-c", _OTHER_PROCESS, backend.url, str(tenant.organization_id), "mask"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        same_transaction = fields.can_read_field(session, rep, "account", "industry")
        session.rollback()  # the transaction ends; the session goes on
        next_transaction = fields.can_read_field(session, rep, "account", "industry")

    assert (before, same_transaction, next_transaction) == (True, True, False)
