"""Writing, reading and verifying the audit trail.

Every create, update and delete calls :func:`record` in the same transaction as the change.
Each entry's hash covers its content and the previous entry's hash, so editing, removing or
reordering any entry breaks the chain from that point; ``audit_heads`` holds the newest link so
that cutting off the tail is noticed too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

import orjson
from sqlalchemy import Table, event, insert, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit.models import AuditEntry, AuditHead
from closeloop.governance.events import service as events

GENESIS = "0" * 64
_TAIL = "closeloop.audit_tail"

Changes = dict[str, list[Any]]


def json_safe(value: Any) -> Any:
    """A JSON-representable form of a field value, identical after a round trip through either database."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> Changes:
    """``{field: [before, after]}`` for the fields whose value differs."""
    changes: Changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = json_safe(before.get(name)), json_safe(after.get(name))
        if old != new:
            changes[name] = [old, new]
    return changes


class _Chained(Protocol):
    """What the hash covers: an :class:`AuditEntry`, or an entry about to be inserted in bulk."""

    @property
    def hash_version(self) -> int: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor_kind(self) -> str: ...
    @property
    def actor_user_id(self) -> int | None: ...
    @property
    def actor_token_id(self) -> int | None: ...
    @property
    def actor_label(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def subject_type(self) -> str: ...
    @property
    def subject_id(self) -> int | None: ...
    @property
    def changes(self) -> dict[str, Any]: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def prev_hash(self) -> str: ...


def _canonical(entry: _Chained) -> bytes:
    return json.dumps(_payload(entry), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _canonical_fast(entry: _Chained) -> bytes:
    """The same bytes as :func:`_canonical`, several times faster (for bulk appends). orjson writes
    JSON-safe values exactly as ``json.dumps(sort_keys=True, ensure_ascii=False)`` with compact
    separators does; what it refuses (integers beyond 64 bits) falls back to :func:`_canonical`."""
    return _encode(_payload(entry))


def _encode(payload: list[Any]) -> bytes:
    """:func:`_canonical`'s bytes for a payload built as :func:`_payload` builds it."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _payload(entry: _Chained) -> list[Any]:
    return [
        entry.hash_version,
        entry.organization_id,
        entry.seq,
        as_utc(entry.occurred_at).isoformat(timespec="microseconds"),
        entry.actor_kind,
        entry.actor_user_id,
        entry.actor_token_id,
        entry.actor_label,
        entry.action,
        entry.subject_type,
        entry.subject_id,
        entry.changes,
        entry.request_id,
        entry.prev_hash,
    ]


def compute_hash(entry: _Chained) -> str:
    return hashlib.sha256(_canonical(entry)).hexdigest()


@dataclass
class _Tail:
    seq: int
    hash: str
    exists: bool


def _tail(session: Session, organization_id: int) -> _Tail:
    tails: dict[int, _Tail] = session.info.setdefault(_TAIL, {})
    if organization_id in tails:
        return tails[organization_id]
    statement = select(AuditHead.seq, AuditHead.hash).where(tenant_clause(organization_id, AuditHead))
    if session.get_bind().dialect.name == "postgresql":
        # Writers of one organization's trail queue here; other organizations are not blocked.
        statement = statement.with_for_update()
    row = session.execute(statement).first()
    tail = _Tail(row.seq, row.hash, True) if row else _Tail(0, GENESIS, False)
    tails[organization_id] = tail
    return tail


def read_tail(session: Session, organization_id: int) -> None:
    """Read (and on PostgreSQL lock) the organization's chain head now, as the next entry would.

    A bulk writer that lets the server insert rows while it prepares the next ones
    (``importing.writer.overlapped``) calls this first, so that building the entries
    (:func:`record_many`) needs no statement while an earlier write is still running."""
    _tail(session, organization_id)


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    subject_type: str,
    subject_id: int | None,
    changes: Changes | None = None,
    organization_id: int | None = None,
) -> AuditEntry:
    """Append an entry for ``action`` (``"noun.verb"``) on a subject, in the session's transaction."""
    org = organization_id if organization_id is not None else actor.organization_id
    tail = _tail(session, org)
    entry = AuditEntry(
        organization_id=org,
        seq=tail.seq + 1,
        occurred_at=utcnow(),
        actor_kind=actor.kind.value,
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        actor_label=actor.label[:200],
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        changes=changes or {},
        request_id=actor.request_id,
        prev_hash=tail.hash,
        hash_version=1,
    )
    entry.hash = compute_hash(entry)
    session.add(entry)
    tail.seq, tail.hash = entry.seq, entry.hash
    # the same change, as an event for automation (the outbox), in the same transaction
    events.emit(
        session,
        actor,
        action,
        subject_type=subject_type,
        subject_id=subject_id,
        payload={"changes": entry.changes},
        organization_id=org,
        occurred_at=entry.occurred_at,
    )
    return entry


@dataclass(slots=True)
class _PendingEntry:
    hash_version: int
    organization_id: int
    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_user_id: int | None
    actor_token_id: int | None
    actor_label: str
    action: str
    subject_type: str
    subject_id: int | None
    changes: dict[str, Any]
    request_id: str | None
    prev_hash: str
    hash: str = ""


#: (action, subject_type, subject_id, changes) of one entry written by :func:`record_many`
EntrySpec = tuple[str, str, int | None, Changes]
BulkInsert = Callable[[Session, Table, list[dict[str, Any]]], None]


def _insert_with_core(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(table), rows)


def record_many(
    session: Session,
    actor: Actor,
    entries: Sequence[EntrySpec],
    *,
    organization_id: int | None = None,
    bulk_insert: BulkInsert | None = None,
) -> int:
    """Append many entries in order, chained exactly as :func:`record` chains one (bulk imports).

    The entries share one ``occurred_at``. ``bulk_insert`` may replace the default executemany
    with a faster writer; it receives the audit table and one dict of column values per entry.
    Returns the number of entries written.
    """
    if not entries:
        return 0
    org = organization_id if organization_id is not None else actor.organization_id
    tail = _tail(session, org)
    occurred_at = utcnow()
    label = actor.label[:200]
    kind = actor.kind.value
    seq, previous = tail.seq, tail.hash
    rows: list[dict[str, Any]] = []
    # What every entry of the batch shares goes into the hashed payload once: the same list
    # :func:`_payload` builds, so the bytes (and hashes) are those of :func:`_canonical`.
    moment = as_utc(occurred_at).isoformat(timespec="microseconds")
    user_id, token_id, request_id = actor.user_id, actor.token_id, actor.request_id
    sha256, encode = hashlib.sha256, _encode
    for action, subject_type, subject_id, changes in entries:
        seq += 1
        changes = changes or {}
        payload = [
            1, org, seq, moment, kind, user_id, token_id, label, action, subject_type, subject_id, changes,
            request_id, previous,
        ]  # fmt: skip
        digest = sha256(encode(payload)).hexdigest()
        rows.append(
            {
                "organization_id": org,
                "seq": seq,
                "occurred_at": occurred_at,
                "actor_kind": kind,
                "actor_user_id": user_id,
                "actor_token_id": token_id,
                "actor_label": label,
                "action": action,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "changes": changes,
                "request_id": request_id,
                "prev_hash": previous,
                "hash": digest,
                "hash_version": 1,
            }
        )
        previous = digest
    table: Table = AuditEntry.__table__  # type: ignore[assignment]
    (bulk_insert or _insert_with_core)(session, table, rows)
    tail.seq, tail.hash = seq, previous
    events.emit_many(
        session,
        actor,
        ((row["action"], row["subject_type"], row["subject_id"], {"changes": row["changes"]}) for row in rows),
        organization_id=org,
        bulk_insert=bulk_insert,
    )
    return len(rows)


def write_heads(session: Session) -> None:
    """Store each organization's newest link; called just before the transaction commits."""
    tails: dict[int, _Tail] = session.info.pop(_TAIL, {})
    for organization_id, tail in tails.items():
        if tail.exists:
            head = session.get(AuditHead, organization_id)
            if head is not None and (head.seq, head.hash) != (tail.seq, tail.hash):
                head.seq, head.hash = tail.seq, tail.hash
        elif tail.seq > 0:
            session.add(AuditHead(organization_id=organization_id, seq=tail.seq, hash=tail.hash))
    if tails:
        session.flush()


def forget_tails(session: Session) -> None:
    """Drop cached tails after a rollback, so the next entry reads the chain again."""
    session.info.pop(_TAIL, None)


def history(
    session: Session,
    actor: Actor,
    *,
    subject_type: str,
    subject_id: int,
    limit: int = 200,
    before_seq: int | None = None,
) -> list[AuditEntry]:
    """Entries about one subject, newest first. The caller has already checked it may see the subject."""
    statement = (
        select(AuditEntry)
        .where(tenant_clause(actor.organization_id, AuditEntry))
        .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id)
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    )
    if before_seq is not None:
        statement = statement.where(AuditEntry.seq < before_seq)
    return list(session.scalars(statement))


def entry_body(entry: AuditEntry, hidden: frozenset[str]) -> dict[str, Any] | None:
    """An audit entry as the caller may see it (``hidden``: the fields masked for the caller);
    ``None`` when every change it holds is masked."""
    changes = {name: value for name, value in entry.changes.items() if name not in hidden}
    if entry.changes and not changes:
        return None
    return {
        "seq": entry.seq,
        "occurred_at": entry.occurred_at,
        "actor_kind": entry.actor_kind,
        "actor_user_id": entry.actor_user_id,
        "actor_token_id": entry.actor_token_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "changes": changes,
        "request_id": entry.request_id,
    }


@dataclass(frozen=True, slots=True)
class ChainProblem:
    organization_id: int
    seq: int
    kind: str  # "edited" | "missing" | "reordered" | "truncated" | "head_mismatch" | "head_missing" | "anchor"
    detail: str


def head(session: Session, organization_id: int) -> tuple[int, str]:
    """The chain's head as recorded: the last entry's sequence number and hash (0 and the genesis
    hash for an empty trail) — what an operator keeps outside the database as an anchor."""
    row = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(tenant_clause(organization_id, AuditHead))
    ).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS)


def check_anchor(session: Session, organization_id: int, seq: int, digest: str) -> Iterator[ChainProblem]:
    """A break when entry ``seq`` no longer has the hash kept outside the database. With the chain
    intact, that means the trail up to the anchor was rewritten wholesale (every hash recomputed) or
    cut back below it."""
    if seq == 0 and digest == GENESIS:
        return
    found = session.scalar(
        select(AuditEntry.hash).where(tenant_clause(organization_id, AuditEntry), AuditEntry.seq == seq)
    )
    if found is None:
        yield ChainProblem(organization_id, seq, "anchor", f"entry {seq}, the anchor, is gone: the trail was cut back")
    elif found != digest:
        yield ChainProblem(
            organization_id, seq, "anchor", f"entry {seq} no longer has the anchored hash: the trail was rewritten"
        )


def verify(session: Session, organization_id: int, *, batch: int = 5000) -> Iterator[ChainProblem]:
    """Walk one organization's chain in order and yield every break found."""
    expected_seq = 1
    previous_hash = GENESIS
    last_seq, last_hash = 0, GENESIS
    statement = (
        select(AuditEntry)
        .where(tenant_clause(organization_id, AuditEntry))
        .order_by(AuditEntry.seq)
        .execution_options(yield_per=batch)
    )
    for entry in session.scalars(statement):
        if entry.seq != expected_seq:
            yield ChainProblem(
                organization_id, expected_seq, "missing", f"entries {expected_seq}..{entry.seq - 1} are missing"
            )
        if compute_hash(entry) != entry.hash:
            yield ChainProblem(
                organization_id, entry.seq, "edited", f"entry {entry.seq} ({entry.action}) does not match its hash"
            )
        elif entry.prev_hash != previous_hash:
            yield ChainProblem(
                organization_id, entry.seq, "reordered", f"entry {entry.seq} does not follow the entry before it"
            )
        previous_hash = entry.hash
        expected_seq = entry.seq + 1
        last_seq, last_hash = entry.seq, entry.hash
        session.expunge(entry)
    head = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(tenant_clause(organization_id, AuditHead))
    ).first()
    if head is None:
        if last_seq:
            yield ChainProblem(
                organization_id,
                last_seq,
                "head_missing",
                "the chain head is missing, so removals from the end go unseen",
            )
    else:
        if head.seq > last_seq:
            yield ChainProblem(
                organization_id,
                last_seq + 1,
                "truncated",
                f"entries {last_seq + 1}..{head.seq} were removed from the end",
            )
        elif head.seq < last_seq or head.hash != last_hash:
            yield ChainProblem(
                organization_id,
                last_seq,
                "head_mismatch",
                f"entry {last_seq} is not the entry the chain head recorded (head at {head.seq})",
            )


@event.listens_for(Session, "before_commit")
def _write_heads_before_commit(session: Session) -> None:
    if session.info.get(_TAIL):
        write_heads(session)


_SAVED_TAILS = "closeloop.audit_tail_saved"
_ENDED_TAILS = "closeloop.audit_tail_ended"


@event.listens_for(Session, "after_transaction_create")
def _remember_tails_at_savepoint(session: Session, transaction: Any) -> None:
    """A savepoint keeps the tails as they were when it began: the entries written before it stay
    in the transaction whatever becomes of the savepoint."""
    if transaction.nested:
        saved = {org: _Tail(t.seq, t.hash, t.exists) for org, t in session.info.get(_TAIL, {}).items()}
        session.info.setdefault(_SAVED_TAILS, {})[id(transaction)] = saved


@event.listens_for(Session, "after_transaction_end")
def _savepoint_ended(session: Session, transaction: Any) -> None:
    """A savepoint's tails outlive it only until the rollback event that follows its end."""
    if transaction.nested:
        saved = session.info.get(_SAVED_TAILS, {}).pop(id(transaction), None)
        session.info[_ENDED_TAILS] = (id(transaction), saved)


@event.listens_for(Session, "after_soft_rollback")
def _forget_tails_on_rollback(session: Session, previous_transaction: Any) -> None:
    """After a rollback the next entry reads the chain again — except after a savepoint's rollback,
    which goes back to the tails as they were when it began (reading the stored head then would
    reuse the sequence numbers of entries this transaction wrote before the savepoint)."""
    ended, saved = session.info.pop(_ENDED_TAILS, (None, None))
    if previous_transaction.nested and ended == id(previous_transaction) and saved is not None:
        session.info[_TAIL] = saved
    else:
        forget_tails(session)
