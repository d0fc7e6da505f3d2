"""Resolving the names people write in a file (an owner's name, an account's name, a product code)
to the ids of records the importing actor may see — in a few set-based queries, not one per row.

Each target is looked up by its keys in order (an account by external reference, then by name,
then by id): the first key with exactly one match wins; several matches are *ambiguous*, none is
*not found*. Records outside the actor's row scope are not found, as everywhere else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.crm.accounts.models import Account
from closeloop.crm.contacts.models import Contact
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.org.models import Region, User

#: values per ``IN (...)`` list: well under SQLite's (32,766) and PostgreSQL's (65,535) parameter limits
CHUNK = 5000


@dataclass(frozen=True)
class Target:
    """How to find one kind of record by what a file says about it."""

    noun: str
    model: type[Any]
    keys: tuple[str, ...]
    #: ``False`` for organization-wide lookups (users, regions) that have no row scope
    scoped: bool = True
    label: str = ""

    def where(self, actor: Actor) -> list[ColumnElement[bool]]:
        if self.noun == "user":
            return [tenant_clause(actor.organization_id, User), User.is_active.is_(True)]
        if not self.scoped:
            return [tenant_clause(actor.organization_id, self.model)]
        return [visibility_clause(actor, self.model, access=RowAccess.READ)]


TARGETS: dict[str, Target] = {
    "user": Target("user", User, ("username", "email", "display_name", "id"), scoped=False),
    "region": Target("region", Region, ("name", "code", "id"), scoped=False),
    "account": Target("account", Account, ("external_ref", "name", "id")),
    "contact": Target("contact", Contact, ("external_ref", "email", "mobile", "name", "id")),
    "lead": Target("lead", Lead, ("external_ref", "email", "mobile", "name", "id")),
    "opportunity": Target("opportunity", Opportunity, ("external_ref", "name", "id")),
    "product": Target("product", Product, ("code", "name", "id")),
    "product_line": Target("product_line", ProductLine, ("name", "code", "id")),
}


@dataclass(frozen=True, slots=True)
class Resolution:
    record_id: int | None
    problem: str | None = None
    code: str = "not_found"


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def resolve(session: Session, actor: Actor, noun: str, keys: Iterable[str]) -> dict[str, Resolution]:
    """Each key's record id, or why there is none."""
    target = TARGETS[noun]
    wanted = sorted({key for key in keys if key})
    if not wanted:
        return {}
    matches: dict[str, dict[str, set[int]]] = {column: defaultdict(set) for column in target.keys}
    scope = target.where(actor)
    for column_name in target.keys:
        column = getattr(target.model, column_name)
        if column_name == "id":
            candidates: list[Any] = sorted({int(key) for key in wanted if key.isdigit() and len(key) < 19})
        else:
            candidates = wanted
        for chunk in chunks(candidates):
            for record_id, value in session.execute(select(target.model.id, column).where(*scope, column.in_(chunk))):
                matches[column_name][str(value)].add(record_id)
    resolved: dict[str, Resolution] = {}
    for key in wanted:
        resolved[key] = _pick(target, key, matches)
    return resolved


def _pick(target: Target, key: str, matches: dict[str, dict[str, set[int]]]) -> Resolution:
    for column_name in target.keys:
        ids = matches[column_name].get(key)
        if not ids:
            continue
        if len(ids) == 1:
            return Resolution(next(iter(ids)))
        return Resolution(
            None,
            f"matches {len(ids)} {target.noun.replace('_', ' ')}s by {column_name.replace('_', ' ')}; "
            "use a value that names one (such as its external reference or id)",
            "ambiguous",
        )
    return Resolution(None, f"no {target.noun.replace('_', ' ')} '{key}' that you can see", "not_found")
