"""``audit.record_many``, the bulk append imports use: chained exactly as ``audit.record`` chains."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.integrations.importing import writer
from tests.factories import Tenant

JSON_SAFE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(st.text(max_size=12), st.lists(JSON_SAFE, min_size=2, max_size=2), max_size=6), st.text())
def test_the_fast_canonical_form_is_byte_for_byte_the_verified_one(changes: dict[str, Any], label: str) -> None:
    entry = audit._PendingEntry(
        1,
        7,
        42,
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "user",
        3,
        None,
        label,
        "account.created",
        "account",
        99,
        changes,
        "req-1",
        "0" * 64,
    )
    try:
        expected = audit._canonical(entry)
    except UnicodeEncodeError:  # lone surrogates: neither form can be hashed
        return
    assert audit._canonical_fast(entry) == expected


def test_bulk_entries_continue_the_chain_and_verify(db: Database, tenant: Tenant) -> None:
    actor = tenant["manager"].actor
    with db.unit_of_work(actor) as session:
        audit.record(session, actor, "account.created", subject_type="account", subject_id=1, changes={"a": [None, 1]})
        written = audit.record_many(
            session,
            actor,
            [
                ("account.created", "account", 2, {"name": [None, "华为"]}),
                ("account.updated", "account", 2, {"employees": [10, 2**70]}),  # beyond orjson: falls back
            ],
            bulk_insert=writer.insert_rows,
        )
        audit.record(session, actor, "account.deleted", subject_type="account", subject_id=2)

    assert written == 2
    with db.reading(None, system=True) as session:
        entries = session.execute(
            select(AuditEntry.seq, AuditEntry.action, AuditEntry.prev_hash, AuditEntry.hash)
            .where(tenant_clause(tenant.organization_id, AuditEntry))
            .order_by(AuditEntry.seq)
        ).all()
        assert [e.action for e in entries[-4:]] == [
            "account.created",
            "account.created",
            "account.updated",
            "account.deleted",
        ]
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
        assert list(audit.verify(session, tenant.organization_id)) == []
