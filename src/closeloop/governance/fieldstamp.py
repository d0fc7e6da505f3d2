"""The field configuration of each organization, shared across requests behind a stamp.

Every read of a record needs its organization's field-security matrix and custom-field
definitions. Both change rarely, so they are kept in memory across requests, and each
organization carries a *stamp* (``organizations.fields_stamp``): a random token that every write
to ``field_security_rules`` or ``custom_field_definitions`` replaces, in the writing transaction.
A session reads the stamp once (one indexed one-row statement) and uses the kept configuration
only if it was read under the same stamp; otherwise it reads the configuration again and keeps
it. A change committed by any process — another worker, the CLI, a migration that writes through
the ORM — is therefore seen by the next session of every process.

The stamp is random, not a counter, so that a database rebuilt or restored under the same URL (or
a test's rolled-back transaction) cannot meet a kept configuration with the same stamp. Kept
configurations are per engine (a process may open several databases) and per organization (only
the latest stamp is kept).

The bump is a ``before_flush`` hook that sees every new, changed or deleted ORM row of the two
tables, so no service has to remember it; a session that has written either table in its open
transaction neither uses nor fills the shared cache (what it reads may never commit).
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, bindparam, column, select, table, update
from sqlalchemy.orm import Session, SessionTransaction

from closeloop.db.session import execute_core
from closeloop.governance.customfields.models import CustomFieldDefinition
from closeloop.governance.fieldsecurity.models import FieldSecurityRule

T = TypeVar("T")

#: the tables whose rows make up an organization's field configuration
_WATCHED = (FieldSecurityRule, CustomFieldDefinition)

_organizations = table("organizations", column("id"), column("fields_stamp"))

#: one indexed one-row statement per session that reads the configuration
_READ_STAMP = select(_organizations.c.fields_stamp).where(_organizations.c.id == bindparam("organization_id"))

_BUMP = (
    update(_organizations)
    .where(_organizations.c.id.in_(bindparam("ids", expanding=True)))
    .values(fields_stamp=bindparam("stamp"))
)

#: session.info keys: the stamps this session has read; whether it has written the configuration
_STAMPS = "closeloop.fields_stamps"
_WROTE = "closeloop.fields_written"

#: session.info keys of the per-session copies (dropped when the session writes the configuration)
_SESSION_COPIES: set[str] = set()

#: engine → organization id → (stamp, key → value)
_KEPT: weakref.WeakKeyDictionary[Engine, dict[int, tuple[str, dict[Any, Any]]]] = weakref.WeakKeyDictionary()


def new_stamp() -> str:
    """A fresh stamp (also the column's default for a new organization)."""
    return secrets.token_hex(8)


def _engine(session: Session) -> Engine | None:
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    return engine if isinstance(engine, Engine) else None


def session_copy(key: str) -> str:
    """Register a ``session.info`` key under which a module keeps its per-session copy of the
    configuration: a write through the session drops it."""
    _SESSION_COPIES.add(key)
    return key


def stamp(session: Session, organization_id: int) -> str | None:
    """The organization's stamp as this session sees it (read once per session)."""
    stamps: dict[int, str | None] = session.info.setdefault(_STAMPS, {})
    if organization_id not in stamps:
        stamps[organization_id] = execute_core(session, _READ_STAMP, {"organization_id": organization_id}).scalar()
    return stamps[organization_id]


def shared(session: Session, organization_id: int, key: Any, load: Callable[[], T]) -> T:
    """``load()``'s value for ``key`` of the organization's configuration, from the shared cache
    when it was read under the stamp this session sees; else loaded (and kept, unless this session
    has written the configuration in its open transaction)."""
    if session.info.get(_WROTE):
        return load()
    engine = _engine(session)
    current = stamp(session, organization_id) if engine is not None else None
    if engine is None or current is None:
        return load()
    organizations = _KEPT.setdefault(engine, {})
    kept = organizations.get(organization_id)
    if kept is None or kept[0] != current:
        kept = (current, {})
        organizations[organization_id] = kept
    values = kept[1]
    if key in values:
        return values[key]  # type: ignore[no-any-return]
    value = load()
    values[key] = value
    return value


#: the name of the organization's id in :data:`STAMP_COLUMN`'s statement
STAMP_PARAMETER = "fields_stamp_organization_id"

#: the organization's stamp as a column of another statement (``guess`` / ``settle``)
STAMP_COLUMN = (
    select(_organizations.c.fields_stamp)
    .where(_organizations.c.id == bindparam(STAMP_PARAMETER))
    .scalar_subquery()
    .label("fields_stamp")
)


def guess(session: Session, organization_id: int) -> str | None:
    """Take the stamp of the configuration kept for the organization as this session's stamp, *on
    trust*, and return it — when the session has not read the stamp yet, has not written the
    configuration, and a configuration is kept; else ``None`` (and nothing changes).

    The caller reads :data:`STAMP_COLUMN` in the statement it runs anyway (one statement instead of
    two) and then calls :func:`settle` with what it read, or :func:`withdraw` if it read nothing.
    """
    if session.info.get(_WROTE):
        return None
    stamps: dict[int, str | None] = session.info.setdefault(_STAMPS, {})
    if organization_id in stamps:
        return None
    engine = _engine(session)
    kept = _KEPT.get(engine, {}).get(organization_id) if engine is not None else None
    if kept is None:
        return None
    stamps[organization_id] = kept[0]
    return kept[0]


def withdraw(session: Session, organization_id: int) -> None:
    """Undo a :func:`guess` that could not be checked: the stamp is read again when next needed, and
    what was derived from the guessed configuration in this session is dropped."""
    session.info.get(_STAMPS, {}).pop(organization_id, None)
    for key in _SESSION_COPIES:
        session.info.pop(key, None)


def settle(session: Session, organization_id: int, guessed: str, actual: str | None) -> bool:
    """Whether a :func:`guess` held, given the stamp the statement read. If it did not, the session
    now holds the actual stamp (so the caller's second attempt neither guesses nor reads it again)
    and has dropped what it derived from the guessed configuration: the caller must do its work
    again."""
    if actual == guessed:
        return True
    withdraw(session, organization_id)
    session.info.setdefault(_STAMPS, {})[organization_id] = actual
    return False


def forget(session: Session) -> None:
    """Drop the stamps this session has read (it wrote the configuration, or its transaction ended)."""
    session.info.pop(_STAMPS, None)


def bump(session: Session, organization_ids: set[int]) -> None:
    """Give the organizations a new stamp in the session's transaction (every process reads their
    configuration again once it commits)."""
    if not organization_ids:
        return
    session.info[_WROTE] = True
    forget(session)
    for key in _SESSION_COPIES:
        session.info.pop(key, None)
    session.connection().execute(_BUMP, {"ids": sorted(organization_ids), "stamp": new_stamp()})


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    changed = {
        instance.organization_id
        for group in (session.new, session.dirty, session.deleted)
        for instance in group
        if isinstance(instance, _WATCHED) and instance.organization_id is not None
    }
    bump(session, changed)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and transaction.nested is False:
        session.info.pop(_WROTE, None)
        # the next transaction reads the stamp again, so a long-lived session (the worker's) sees
        # a change committed elsewhere
        forget(session)
        for key in _SESSION_COPIES:
            session.info.pop(key, None)


def install(session_class: type[Session] = Session) -> None:
    """Hook the bump into every session (idempotent)."""
    from sqlalchemy import event

    if not event.contains(session_class, "before_flush", _before_flush):
        event.listen(session_class, "before_flush", _before_flush)
        event.listen(session_class, "after_transaction_end", _after_transaction_end)


install()

__all__ = [
    "STAMP_COLUMN",
    "STAMP_PARAMETER",
    "bump",
    "forget",
    "guess",
    "install",
    "new_stamp",
    "session_copy",
    "settle",
    "shared",
    "stamp",
    "withdraw",
]
