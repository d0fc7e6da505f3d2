"""The audit trail: every write is recorded with who, when, what and which request; the chain shows
any entry edited, deleted, reordered or cut off; the database refuses plain edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from closeloop.core.actor import Actor
from closeloop.core.clock import frozen_at
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.org import service as org_service
from tests.factories import Tenant
from tests.samples import Api
from tests.tampering import entries, problems, rehashed, tamper

ORG_AND_SEQ = "organization_id = :org AND seq = :seq"


def run_as_owner(db: Database, actor: Actor, statement: Executable) -> None:
    """Run ``statement`` as the table's owner (on PostgreSQL grants no longer hold it back; triggers do)."""
    with db.unit_of_work(actor) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection().exec_driver_sql("RESET ROLE")
        session.execute(statement)


@pytest.fixture
def chain(client: TestClient, tenant: Tenant) -> list[int]:
    """Six more entries on the tenant's chain (account created, updated, deleted, …); their seqs."""
    api = Api(client, tenant["rep"])
    account = api.create("accounts", {"name": "链上医院"})
    api.patch("accounts", account["id"], {"city": "杭州"})
    api.patch("accounts", account["id"], {"city": "宁波"})
    api.request("DELETE", f"/accounts/{account['id']}")
    api.request("POST", f"/accounts/{account['id']}/restore")
    api.create("leads", {"name": "链上线索"})
    return [entry["seq"] for entry in entries_of(api, tenant)]


def entries_of(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    admin = Api(api.client, tenant["admin"])
    items: list[dict[str, Any]] = admin.request("GET", "/audit", params={"limit": 500}).json()["items"]
    return items


def test_every_write_is_recorded_with_actor_time_action_changes_and_request(client: TestClient, tenant: Tenant) -> None:
    manager = tenant["manager"]
    api = Api(client, manager)
    token_id = api.request("GET", "/users/me").json()["token_id"]
    moment = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

    with frozen_at(moment) as advance:
        account = api.create("accounts", {"name": "审计医院", "tier": "B"}, headers={"X-Request-ID": "req-create"})
        advance(timedelta(minutes=5))
        patched = api.request(
            "PATCH", f"/accounts/{account['id']}", json={"tier": "A"}, headers={"X-Request-ID": "req-patch"}
        )
        advance(timedelta(minutes=5))
        deleted = api.request("DELETE", f"/accounts/{account['id']}", headers={"X-Request-ID": "req-delete"})

    assert (patched.status_code, deleted.status_code) == (200, 204), patched.text + deleted.text

    trail = Api(client, tenant["admin"]).request(
        "GET", "/audit", params={"subject_type": "account", "subject_id": account["id"]}
    )
    items = trail.json()["items"]
    common = {
        "actor_kind": "token",
        "actor_user_id": manager.user_id,
        "actor_token_id": token_id,
        "subject_type": "account",
        "subject_id": account["id"],
    }
    assert [{key: item[key] for key in common} for item in items] == [common] * 3
    assert [(item["action"], item["request_id"], item["occurred_at"]) for item in items] == [
        ("account.deleted", "req-delete", "2026-03-02T09:40:00+00:00"),
        ("account.updated", "req-patch", "2026-03-02T09:35:00+00:00"),
        ("account.created", "req-create", "2026-03-02T09:30:00+00:00"),
    ]
    assert items[0]["changes"] == {"deleted_at": [None, "2026-03-02T09:40:00+00:00"]}
    assert items[1]["changes"] == {
        "tier": ["B", "A"],
    }
    assert items[2]["changes"] == {
        "currency": [None, "CNY"],
        "name": [None, "审计医院"],
        "owner_id": [None, manager.user_id],
        "tier": [None, "B"],
    }
    assert items[0]["actor_label"].startswith(f"{manager.username} (token ")


def test_an_untouched_chain_verifies(db: Database, tenant: Tenant, chain: list[int]) -> None:
    assert problems(db, tenant.organization_id) == []
    seqs = [entry["seq"] for entry in entries(db, tenant.organization_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    first = entries(db, tenant.organization_id)[0]
    assert first["prev_hash"] == audit.GENESIS


def test_editing_an_entry_breaks_the_chain_there(db: Database, tenant: Tenant, chain: list[int]) -> None:
    seq = chain[len(chain) // 2]

    assert (
        tamper(
            db,
            f"UPDATE audit_entries SET actor_label = 'someone else' WHERE {ORG_AND_SEQ}",
            org=tenant.organization_id,
            seq=seq,
        )
        == 1
    )

    assert problems(db, tenant.organization_id) == [("edited", seq)]


def test_an_edit_with_a_recomputed_hash_breaks_the_link_to_the_next_entry(
    db: Database, tenant: Tenant, chain: list[int]
) -> None:
    seq = chain[len(chain) // 2]
    victim = next(entry for entry in entries(db, tenant.organization_id) if entry["seq"] == seq)
    forged = rehashed({**victim, "actor_label": "someone else"})

    tamper(
        db,
        f"UPDATE audit_entries SET actor_label = 'someone else', hash = :hash WHERE {ORG_AND_SEQ}",
        org=tenant.organization_id,
        seq=seq,
        hash=forged,
    )

    assert problems(db, tenant.organization_id) == [("reordered", seq + 1)]


def test_deleting_an_entry_leaves_a_gap(db: Database, tenant: Tenant, chain: list[int]) -> None:
    seq = chain[len(chain) // 2]

    assert tamper(db, f"DELETE FROM audit_entries WHERE {ORG_AND_SEQ}", org=tenant.organization_id, seq=seq) == 1

    assert problems(db, tenant.organization_id) == [("missing", seq), ("reordered", seq + 1)]


def test_swapping_two_entries_is_seen_even_with_their_hashes_recomputed(
    db: Database, tenant: Tenant, chain: list[int]
) -> None:
    seq = chain[len(chain) // 2]
    by_seq = {entry["seq"]: entry for entry in entries(db, tenant.organization_id)}
    first, second = by_seq[seq], by_seq[seq + 1]
    moved_up = {**second, "seq": seq}
    moved_down = {**first, "seq": seq + 1}

    for entry, temporary in ((first, -1), (second, -2)):
        tamper(db, "UPDATE audit_entries SET seq = :tmp WHERE id = :id", tmp=temporary, id=entry["id"])
    for entry in (moved_up, moved_down):
        tamper(
            db,
            "UPDATE audit_entries SET seq = :seq, hash = :hash WHERE id = :id",
            seq=entry["seq"],
            hash=rehashed(entry),
            id=entry["id"],
        )

    assert problems(db, tenant.organization_id) == [("reordered", seq), ("reordered", seq + 1), ("reordered", seq + 2)]


def test_cutting_off_the_newest_entries_is_seen_through_the_head(
    db: Database, tenant: Tenant, chain: list[int]
) -> None:
    last = chain[0]

    tamper(
        db,
        "DELETE FROM audit_entries WHERE organization_id = :org AND seq >= :seq",
        org=tenant.organization_id,
        seq=last - 1,
    )

    assert problems(db, tenant.organization_id) == [("truncated", last - 1)]


def test_replacing_the_newest_entry_is_seen_through_the_head(db: Database, tenant: Tenant, chain: list[int]) -> None:
    last = chain[0]
    newest = entries(db, tenant.organization_id)[-1]

    tamper(
        db,
        f"UPDATE audit_entries SET action = 'lead.deleted', hash = :hash WHERE {ORG_AND_SEQ}",
        org=tenant.organization_id,
        seq=last,
        hash=rehashed({**newest, "action": "lead.deleted"}),
    )

    assert problems(db, tenant.organization_id) == [("head_mismatch", last)]


def test_one_organization_s_tampering_does_not_taint_another(
    db: Database, tenant: Tenant, other_tenant: Tenant, chain: list[int]
) -> None:
    tamper(db, f"DELETE FROM audit_entries WHERE {ORG_AND_SEQ}", org=tenant.organization_id, seq=2)

    assert problems(db, other_tenant.organization_id) == []
    assert problems(db, tenant.organization_id)[0] == ("missing", 2)


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_database_refuses_to_change_or_remove_an_entry(db: Database, tenant: Tenant, statement: str) -> None:
    condition = AuditEntry.seq == 1
    change = (
        update(AuditEntry).where(condition).values(actor_label="someone else")
        if statement == "update"
        else delete(AuditEntry).where(condition)
    )
    actor = org_service.system_actor(tenant.organization_id)

    with pytest.raises(DBAPIError) as refused, db.unit_of_work(actor) as session:
        session.execute(change)

    if db.dialect == "sqlite":
        assert "the audit trail is append-only" in str(refused.value)
    else:
        # the application's role holds no UPDATE or DELETE on the table at all
        assert "permission denied for table audit_entries" in str(refused.value)
    with pytest.raises(DBAPIError) as refused_to_owner:
        run_as_owner(db, actor, change)
    assert "the audit trail is append-only" in str(refused_to_owner.value)
    assert problems(db, tenant.organization_id) == []


def test_a_removed_chain_head_is_reported(db: Database, tenant: Tenant, chain: list[int]) -> None:
    tamper(db, "DELETE FROM audit_heads WHERE organization_id = :org", org=tenant.organization_id)

    assert problems(db, tenant.organization_id) == [("head_missing", chain[0])]


@pytest.mark.parametrize("nested", [1, 2])
def test_a_rolled_back_savepoint_keeps_the_entries_written_before_it(db: Database, tenant: Tenant, nested: int) -> None:
    """What a change request's failed apply does: entries, a savepoint (with entries of its own)
    rolled back, then more entries — one unbroken chain, no sequence number used twice."""
    system = org_service.system_actor(tenant.organization_id)
    with db.unit_of_work(system) as session:
        audit.record(session, system, "test.before", subject_type="test", subject_id=1)
        savepoints = [session.begin_nested() for _ in range(nested)]
        audit.record(session, system, "test.inside", subject_type="test", subject_id=2)
        session.flush()
        for savepoint in reversed(savepoints):
            savepoint.rollback()
        audit.record(session, system, "test.after", subject_type="test", subject_id=3)
    actions = [entry["action"] for entry in entries(db, tenant.organization_id)]
    assert actions[-2:] == ["test.before", "test.after"]
    assert "test.inside" not in actions
    assert problems(db, tenant.organization_id) == []
