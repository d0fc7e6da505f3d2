"""``Database.read``: the hot reads' session, kept per thread and emptied between reads."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.orm import Session

from closeloop.core.errors import NotFound
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.db.session import Database
from tests.factories import Tenant


def _account(db: Database, tenant: Tenant, name: str) -> int:
    actor = tenant["admin"].actor
    with db.unit_of_work(actor) as session:
        return account_service.create_account(session, actor, data=AccountCreate(name=name)).id


def test_one_session_per_thread_emptied_between_reads(db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    mine = _account(db, tenant, "甲医院")
    theirs = _account(db, other_tenant, "丙医院")
    sessions: list[Session] = []
    infos: list[dict[str, Any]] = []

    def read(session: Session, record_id: int, actor: Any) -> dict[str, Any]:
        sessions.append(session)
        infos.append(dict(session.info))
        return records.read_one(session, actor, account_service.ACCOUNTS, record_id)

    me, them = tenant["admin"].actor, other_tenant["admin"].actor
    assert db.read(me, lambda session: read(session, mine, me))["name"] == "甲医院"
    assert db.read(them, lambda session: read(session, theirs, them))["name"] == "丙医院"
    with pytest.raises(NotFound):  # the second organization's read does not linger in the session
        db.read(me, lambda session: read(session, theirs, me))
    assert sessions[0] is sessions[1] is sessions[2]
    assert [info["organization_id"] for info in infos] == [
        tenant.organization_id,
        other_tenant.organization_id,
        tenant.organization_id,
    ]
    assert all(info["actor"] is actor for info, actor in zip(infos, [me, them, me], strict=True))
    assert sessions[0].info == {}  # nothing of the last read is left behind
    assert not sessions[0].in_transaction()

    elsewhere: list[Session] = []
    thread = threading.Thread(target=lambda: db.read(me, elsewhere.append))
    thread.start()
    thread.join()
    assert len(elsewhere) == 1
    assert elsewhere[0] is not sessions[0]


def test_a_session_whose_clean_up_fails_is_not_reused(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = tenant["admin"].actor
    first = db.read(actor, lambda session: session)

    def broken() -> None:
        raise RuntimeError("the connection was lost")

    monkeypatch.setattr(first, "rollback", broken)
    with pytest.raises(RuntimeError, match="connection was lost"):
        db.read(actor, lambda session: None)
    assert db.read(actor, lambda session: session) is not first


def test_a_read_inside_a_read_does_not_empty_the_outer_ones_session(db: Database, tenant: Tenant) -> None:
    mine = _account(db, tenant, "乙医院")
    me = tenant["admin"].actor

    def outer(session: Session) -> tuple[str, Any]:
        inner = db.read(me, lambda own: (own is session, own.info.get("actor")))
        assert inner == (False, me)  # its own session, set up for the caller
        # the outer read's session still holds its caller and reads on
        return records.read_one(session, me, account_service.ACCOUNTS, mine)["name"], session.info.get("actor")

    assert db.read(me, outer) == ("乙医院", me)
