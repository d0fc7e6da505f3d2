"""One search box across accounts, contacts, leads and opportunities, in characters and in pinyin.

Each searched record keeps a ``search_key`` column: its name (a lead: also its company) reduced to
lower-case characters without spaces or punctuation, the same in toneless pinyin, and the initials —
``北京协和医院`` → ``北京协和医院 beijingxieheyiyuan bjxhyy``. A query is reduced the same way and
matched as a substring of the key (so ``bjxh``, ``beijingxiehe`` and ``协和`` all find it), or of the
visible search fields (``Acme Corp``, an e-mail). The key is written:

- by every ORM write (mapper events below: the services, conversions, the web pages), and
- by :func:`refresh_keys` after bulk writes that bypass the ORM (the demo seed, imports) and in the
  migration that added the column.

The match runs in the database through the scope door, newest first with a small limit, so a
common query stops after a few rows and no record is ever read into Python to be compared there.
Masks: a key is used only when the caller may read every field it was made from; the fields shown
are those :func:`records.visible_fields` allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, or_, select, update
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import Forbidden, NotFound, ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.contacts.service import CONTACTS
from closeloop.crm.leads.service import LEADS
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.searchkey import query_key, search_key
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause


@dataclass(frozen=True)
class Searched:
    """One kind of record in the search box and the fields a hit shows."""

    record_type: records.RecordType[Any]
    shown: tuple[str, ...]

    @property
    def noun(self) -> str:
        return self.record_type.noun

    @property
    def model(self) -> Any:
        return self.record_type.model

    @property
    def key_fields(self) -> tuple[str, ...]:
        fields: tuple[str, ...] = self.record_type.model.__search_fields__
        return fields


SEARCHED: tuple[Searched, ...] = (
    Searched(ACCOUNTS, ("name", "industry", "city", "tier", "owner_id")),
    Searched(CONTACTS, ("name", "title", "account_id", "decision_role", "owner_id")),
    Searched(LEADS, ("name", "company", "status", "owner_id")),
    Searched(OPPORTUNITIES, ("name", "stage", "amount", "currency", "account_id", "owner_id")),
)


def refresh_keys(
    session: Session,
    organization_id: int,
    *,
    nouns: Iterable[str] | None = None,
    ids: Sequence[int] | None = None,
    only_missing: bool = False,
    batch: int = 2000,
) -> int:
    """Recompute the keys of an organization's records (of ``nouns``; those ``ids``; or only the
    ones without a key) after writes that bypassed the ORM, in batches of ``batch`` rows.
    Returns how many keys were written."""
    wanted = set(nouns) if nouns is not None else None
    written = 0
    for searched in SEARCHED:
        if wanted is not None and searched.noun not in wanted:
            continue
        table = searched.model.__table__
        columns = [table.c[name] for name in searched.key_fields]
        statement = select(table.c.id, *columns).where(
            tenant_clause(organization_id, searched.model, include_deleted=True)
        )
        if only_missing:
            statement = statement.where(table.c.search_key.is_(None))
        # ``updated_at`` set to itself: a key is not a change of the record (no onupdate stamp)
        change = (
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values(search_key=bindparam("key"), updated_at=table.c.updated_at)
        )
        wanted_ids = sorted(set(ids)) if ids is not None else None
        last = 0
        while True:
            page = statement.where(table.c.id > last).order_by(table.c.id).limit(batch)
            if wanted_ids is not None:
                chunk = wanted_ids[:batch]
                wanted_ids = wanted_ids[batch:]
                if not chunk:
                    break
                page = statement.where(table.c.id.in_(chunk))
            rows = session.execute(page).all()
            if rows:
                session.execute(change, [{"row_id": row[0], "key": search_key(*row[1:])} for row in rows])
                written += len(rows)
                last = rows[-1][0]
            if wanted_ids is None and len(rows) < batch:
                break
    return written


# --- searching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The hits of one kind of record: at most ``limit``, and whether there were more."""

    noun: str
    plural: str
    items: list[dict[str, Any]]
    more: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.noun,
            "items": [{key: records.jsonable(value) for key, value in item.items()} for item in self.items],
            "more": self.more,
        }


MAX_QUERY = 100


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _rank(item: dict[str, Any], needle: str) -> tuple[int, int]:
    """Names that start with the query first, then by recency (the order they came in)."""
    name = query_key(str(item.get("name") or ""))
    key = str(item.pop("_key", "") or "")
    starts = name.startswith(needle) or any(part.startswith(needle) for part in key.split(" "))
    return (0 if starts else 1, 0)


def search(session: Session, actor: Actor, query: str, *, limit: int = 8) -> list[Group]:
    """Records matching ``query`` that ``actor`` may see, grouped by kind (kinds the actor may not
    read, and kinds without a hit, are left out)."""
    text = query.strip()
    if not text:
        raise ValidationFailed.one("q", "type what to look for", "required")
    if len(text) > MAX_QUERY:
        raise ValidationFailed.one("q", f"may be at most {MAX_QUERY} characters", "too_long")
    needle = query_key(text)
    groups: list[Group] = []
    for searched in SEARCHED:
        record_type = searched.record_type
        if not actor.can(f"{record_type.plural}:read"):
            continue
        readable = set(records.visible_fields(session, actor, record_type))
        table = searched.model.__table__
        matches: list[ColumnElement[bool]] = []
        if needle and all(name in readable for name in searched.key_fields):
            matches.append(table.c.search_key.like(_like(needle), escape="\\"))
        for name in record_type.search_fields:
            if name in readable and name in table.c:
                matches.append(table.c[name].ilike(_like(text.casefold()), escape="\\"))
        if not matches:
            continue
        shown = [name for name in searched.shown if name in readable]
        statement = (
            select(table.c.id, *(table.c[name] for name in shown), table.c.search_key.label("_key"))
            .where(visibility_clause(actor, searched.model, access=RowAccess.READ), or_(*matches))
            .order_by(table.c.id.desc())
            .limit(limit + 1)
        )
        rows = [dict(row._mapping) for row in session.execute(statement)]
        if not rows:
            continue
        more = len(rows) > limit
        rows = rows[:limit]
        if not all(name in readable for name in searched.key_fields):
            for row in rows:
                row["_key"] = ""
        rows.sort(key=lambda item: _rank(item, needle))
        groups.append(Group(searched.noun, record_type.plural, rows, more))
    _name_references(session, actor, groups)
    return groups


def _name_references(session: Session, actor: Actor, groups: list[Group]) -> None:
    """Add ``account_name`` to contacts and opportunities whose account the actor may see."""
    wanted = {item["account_id"] for group in groups for item in group.items if item.get("account_id")}
    if not wanted or not actor.can("accounts:read"):
        return
    names = dict(
        session.execute(
            select(Account.id, Account.name).where(
                visibility_clause(actor, Account, access=RowAccess.READ), Account.id.in_(sorted(wanted))
            )
        ).all()
    )
    for group in groups:
        for item in group.items:
            if item.get("account_id") in names:
                item["account_name"] = names[item["account_id"]]


# --- lookups: a pick list beyond its first page ------------------------------------------------

LOOKUP_LIMIT = 20


def lookup(
    session: Session, actor: Actor, noun: str, query: str, *, limit: int = LOOKUP_LIMIT
) -> list[tuple[int, str]]:
    """(id, name) of the ``noun`` records ``actor`` may read whose name matches ``query`` — in
    characters, pinyin or initials where the record keeps a search key (``bjxh`` finds 北京协和医院),
    else as a substring of its search fields — names that start with the query first, then newest.

    The forms' and filters' pick lists load only the most recently changed records; typing in them
    asks this for the rest. A kind the actor may not read, or whose name is masked for it, is
    refused as the lists are (403)."""
    try:
        record_type = records.record_type_for(noun)
    except KeyError:
        raise NotFound("kind of record", noun) from None
    text = query.strip()
    if not text:
        raise ValidationFailed.one("q", "type what to look for", "required")
    if len(text) > MAX_QUERY:
        raise ValidationFailed.one("q", f"may be at most {MAX_QUERY} characters", "too_long")
    if not actor.can(f"{record_type.plural}:read"):
        raise Forbidden(f"your role may not read {record_type.plural}")
    readable = set(records.visible_fields(session, actor, record_type))
    model = record_type.model
    table = model.__table__
    if "name" not in readable or "name" not in table.c:
        raise Forbidden(f"your role may not read the names of {record_type.plural}")
    needle = query_key(text)
    matches: list[ColumnElement[bool]] = []
    key_fields: tuple[str, ...] = getattr(model, "__search_fields__", ())
    if needle and "search_key" in table.c and key_fields and all(name in readable for name in key_fields):
        matches.append(table.c.search_key.like(_like(needle), escape="\\"))
    for name in record_type.search_fields:
        if name in readable and name in table.c:
            matches.append(table.c[name].ilike(_like(text.casefold()), escape="\\"))
    if not matches:
        return []
    statement = (
        select(table.c.id, table.c.name)
        .where(visibility_clause(actor, model, access=RowAccess.READ), or_(*matches))
        .order_by(table.c.id.desc())
        .limit(limit * 3)
    )
    rows = [(int(row[0]), str(row[1])) for row in session.execute(statement)]
    folded = text.casefold()
    rows.sort(key=lambda row: 0 if row[1].casefold().startswith(folded) or query_key(row[1]).startswith(needle) else 1)
    return rows[:limit]
