"""Accounts whose names look like a given name: the duplicate warning shown before a lead is
converted into a new account.

Two names are alike when their :func:`names.name_key` (legal-form suffixes such as 有限公司 or
Co., Ltd. removed, punctuation and case ignored) or their :func:`names.sound_key` (the same in
pinyin, so 北京协和医院 meets 北京协合医院 and 华为 meets "Huawei") are equal — the rule the
quality scanner's duplicate check uses. Candidates come from two indexed or database-side
lookups, never from reading every account into Python:

- the scanner's ``quality_name_keys`` table (equality on indexed keys), and
- the accounts' search keys (``crm/searchkey.py``), which hold the full pinyin of each name and
  so contain the sound key of any name alike — this finds accounts created since the last scan.

Only accounts the actor may see are returned (the scope door): a warning never reveals an account
outside the caller's row scope.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.quality import names
from closeloop.quality.models import NameKey

CANDIDATES = 50


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def similar_accounts(session: Session, actor: Actor, name: str | None, *, limit: int = 5) -> list[dict[str, Any]]:
    """Up to ``limit`` visible accounts named like ``name`` (id, name, city, owner_id), newest first."""
    key = names.name_key(name or "")
    if not key:
        return []
    sound = names.sound_key(key)
    scanned = select(NameKey.subject_id).where(
        tenant_clause(actor.organization_id, NameKey),
        NameKey.subject_type == "account",
        or_(NameKey.name_key == key[:200], NameKey.sound_key == sound[:400]),
    )
    keyed = Account.search_key.like(_like(sound), escape="\\")
    statement = (
        select(Account.id, Account.name, Account.city, Account.owner_id)
        .where(visibility_clause(actor, Account, access=RowAccess.READ), or_(Account.id.in_(scanned), keyed))
        .order_by(Account.id.desc())
        .limit(CANDIDATES)
    )
    found: list[dict[str, Any]] = []
    for row in session.execute(statement):
        other = names.name_key(row.name or "")
        if other == key or names.sound_key(other) == sound:
            found.append({"id": row.id, "name": row.name, "city": row.city, "owner_id": row.owner_id})
        if len(found) >= limit:
            break
    return found
