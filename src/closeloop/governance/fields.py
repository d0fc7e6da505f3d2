"""Field-level security (GOV-3, firewall 1): which roles may read and edit which fields.

A masked field is *absent* from whatever the actor receives — API bodies, exports, search results,
audit history — never ``null``; and a write that touches a field the actor cannot edit is refused
without changing anything.

The rules are data: each organization may set, per field and per role, whether the role reads it
and whether it edits it (``field_security_rules``, managed by :mod:`closeloop.crm.fieldsecurity`
through signed-off change requests). Where nothing is configured the defaults hold: the built-in
finance masks below for stored fields, a custom field's ``visible_to`` for custom fields, and
"whoever reads the record" for everything else. The configuration is read once per database
session (cached in ``session.info``, dropped when it changes), so every check of one request sees
one matrix; across sessions it is kept behind the organization's stamp (:mod:`.fieldstamp`), so a
request reads one short stamp instead of the matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import Forbidden
from closeloop.db.scope import RowAccess, visibility_template
from closeloop.db.session import execute_core
from closeloop.governance import fieldstamp
from closeloop.governance.fieldsecurity.models import FieldSecurityRule
from closeloop.governance.permissions import Role

_FINANCE = frozenset({Role.SALES_VP, Role.CFO})

#: the defaults: noun → field → roles that may read (and, having write permission on the noun, write) it
FIELD_RULES: dict[str, dict[str, frozenset[Role]]] = {
    "opportunity": {"margin": _FINANCE},
    "account": {"credit_line": _FINANCE},
    "quote": {"margin": _FINANCE},
}

#: key prefix of custom fields in the matrix (``custom.<name>``)
CUSTOM = "custom."


@dataclass(frozen=True, slots=True)
class Access:
    read: bool
    edit: bool


def default_access(role: str, noun: str, name: str) -> Access:
    """What ``role`` may do with a stored field when nothing is configured (the built-in masks)."""
    roles = FIELD_RULES.get(noun, {}).get(name)
    read = roles is None or role in roles
    return Access(read, read)


@dataclass(frozen=True)
class FieldPolicy:
    """An organization's configured cells: ``(noun, field)`` → role → access."""

    configured: Mapping[tuple[str, str], Mapping[str, Access]] = field(default_factory=dict)

    def cell(self, role: str, noun: str, name: str) -> Access | None:
        """The configured access, or ``None`` where the default holds."""
        return self.configured.get((noun, name), {}).get(role)

    def access(self, role: str, noun: str, name: str, default: Access | None = None) -> Access:
        """What ``role`` may do with ``noun.name``: the configured cell, else ``default`` (else the
        built-in default)."""
        cell = self.cell(role, noun, name)
        if cell is not None:
            return cell
        return default if default is not None else default_access(role, noun, name)

    def masked(self, role: str, noun: str) -> frozenset[str]:
        """Stored fields of ``noun`` (and configured ``custom.<name>`` keys) ``role`` may not read."""
        names = set(FIELD_RULES.get(noun, {})) | {name for kind, name in self.configured if kind == noun}
        return frozenset(name for name in names if not self.access(role, noun, name).read)

    def read_only(self, role: str, noun: str) -> frozenset[str]:
        """Fields ``role`` may read but not edit (configured ``edit: false``)."""
        return frozenset(
            name
            for (kind, name), cells in self.configured.items()
            if kind == noun and (cell := cells.get(role)) is not None and cell.read and not cell.edit
        )


DEFAULTS = FieldPolicy()

_CACHE = fieldstamp.session_copy("closeloop.field_policy")


def forget_policy(session: Session) -> None:
    """Drop the matrix this session has read (after it changed)."""
    session.info.pop(_CACHE, None)


#: the configured cells of one organization: one statement, built once with bound parameters and
#: run as plain Core (every read of every record reads the matrix, so it skips the ORM's
#: per-statement compile state and cache-key work)
_CONFIGURED = select(
    FieldSecurityRule.__table__.c.record_type,
    FieldSecurityRule.__table__.c.field,
    FieldSecurityRule.__table__.c.role,
    FieldSecurityRule.__table__.c.can_read,
    FieldSecurityRule.__table__.c.can_edit,
).where(visibility_template(FieldSecurityRule, scoped=False, access=RowAccess.READ))


def policy(session: Session | None, organization_id: int) -> FieldPolicy:
    """The organization's configured matrix (read once per session). Without a session: the defaults."""
    if session is None:
        return DEFAULTS
    cache: dict[int, FieldPolicy] = session.info.setdefault(_CACHE, {})
    if organization_id not in cache:
        # reading the matrix must not flush a half-made change (a second version bump)
        with session.no_autoflush:
            cache[organization_id] = fieldstamp.shared(
                session, organization_id, "field_policy", lambda: _load(session, organization_id)
            )
    return cache[organization_id]


def _load(session: Session, organization_id: int) -> FieldPolicy:
    configured: dict[tuple[str, str], dict[str, Access]] = {}
    rows = execute_core(session, _CONFIGURED, {"scope_organization_id": organization_id})
    for row in rows:
        configured.setdefault((row.record_type, row.field), {})[row.role] = Access(row.can_read, row.can_edit)
    return FieldPolicy(configured)


def policy_of(session: Session | None, actor: Actor) -> FieldPolicy:
    return policy(session, actor.organization_id)


def masked_fields(session: Session | None, actor: Actor, noun: str) -> frozenset[str]:
    """Fields of ``noun`` hidden from ``actor``'s role (stored fields, and configured custom keys)."""
    return policy_of(session, actor).masked(actor.role, noun)


def can_read_field(session: Session | None, actor: Actor, noun: str, name: str) -> bool:
    return name not in masked_fields(session, actor, noun)


def readable_fields(session: Session | None, actor: Actor, noun: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The subset of ``fields`` that ``actor`` may read, in the given order."""
    hidden = masked_fields(session, actor, noun)
    return tuple(name for name in fields if name not in hidden) if hidden else fields


def check_writable(session: Session | None, actor: Actor, noun: str, fields: Iterable[str]) -> None:
    """Refuse a write that names a field the actor may not edit (the first such field is named)."""
    check_writable_with(policy_of(session, actor), actor, noun, fields)


def check_writable_with(matrix: FieldPolicy, actor: Actor, noun: str, fields: Iterable[str]) -> None:
    """:func:`check_writable` against a matrix read earlier."""
    hidden = matrix.masked(actor.role, noun)
    read_only = matrix.read_only(actor.role, noun)
    for name in fields:
        if name in hidden or name in read_only:
            raise Forbidden(f"Your role ({actor.role}) may not set {noun}.{name}", field_name=name)
