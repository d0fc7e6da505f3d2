"""Field-level security (GOV-3, firewall 1): which roles may read and write which fields.

A masked field is *absent* from whatever the actor receives — API bodies, exports, search results,
audit history — never ``null``; and a write that touches a field the actor cannot write is refused
without changing anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from closeloop.core.actor import Actor
from closeloop.core.errors import Forbidden
from closeloop.governance.permissions import Role

_FINANCE = frozenset({Role.SALES_VP, Role.CFO})

#: noun → field → roles that may read (and, having write permission on the noun, write) it.
FIELD_RULES: dict[str, dict[str, frozenset[Role]]] = {
    "opportunity": {"margin": _FINANCE},
    "account": {"credit_line": _FINANCE},
    "quote": {"margin": _FINANCE},
}


@lru_cache(maxsize=256)
def masked_fields(role: str, noun: str) -> frozenset[str]:
    """Fields of ``noun`` hidden from ``role``."""
    rules = FIELD_RULES.get(noun, {})
    return frozenset(name for name, roles in rules.items() if role not in roles)


def can_read_field(actor: Actor, noun: str, field: str) -> bool:
    return field not in masked_fields(actor.role, noun)


@lru_cache(maxsize=256)
def readable_fields(role: str, noun: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The subset of ``fields`` that ``role`` may read, in the given order."""
    hidden = masked_fields(role, noun)
    return tuple(name for name in fields if name not in hidden)


def check_writable(actor: Actor, noun: str, fields: Iterable[str]) -> None:
    """Refuse a write that names a field the actor may not write (the first such field is named)."""
    hidden = masked_fields(actor.role, noun)
    for name in fields:
        if name in hidden:
            raise Forbidden(f"Your role ({actor.role}) may not set {noun}.{name}", field_name=name)
