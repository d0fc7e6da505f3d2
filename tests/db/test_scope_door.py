"""Tenant filtering has one door, ``db/scope.py``: no other module compares ``organization_id``."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.orm import aliased

import closeloop
from closeloop.core.actor import Actor, ActorKind, RowScope
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause, visibility_template

SOURCE = Path(closeloop.__file__).parent
DOOR = SOURCE / "db" / "scope.py"
COMPARISON = re.compile(r"\.?organization_id\s*==")


def offending_lines(root: Path) -> list[str]:
    """``path:line: text`` of every ``organization_id ==`` outside the door."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == DOOR:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if COMPARISON.search(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_no_query_filters_on_organization_id_outside_the_scope_door() -> None:
    assert offending_lines(SOURCE) == [], "filter tenants with closeloop.db.scope (tenant_clause, visible)"


def test_the_check_finds_a_comparison(tmp_path: Path) -> None:
    package = tmp_path / "closeloop"
    package.mkdir()
    (package / "leak.py").write_text("rows = select(Account).where(Account.organization_id == 7)\n")
    (package / "fine.py").write_text("rows = select(Account).where(tenant_clause(7, Account))\n")

    assert offending_lines(package) == [
        "closeloop/leak.py:1: rows = select(Account).where(Account.organization_id == 7)"
    ]


def test_an_alias_of_a_soft_deleted_model_hides_deleted_rows_too() -> None:
    alias = aliased(Account, name="other_account")
    actor = Actor(7, "rep", ActorKind.USER, "rep", frozenset(), RowScope.OWN, user_id=3, owner_ids=frozenset({3}))

    for clause in (
        tenant_clause(7, alias),
        *(visibility_clause(actor, alias, access=access) for access in RowAccess),
        *(visibility_template(alias, scoped=True, access=access) for access in RowAccess),
    ):
        sql = str(clause)
        assert "other_account.deleted_at IS NULL" in sql, sql
    for access in RowAccess:
        assert "other_account.owner_id IN" in str(visibility_clause(actor, alias, access=access))
    # the implicit parent read names the alias too: its id among the accounts of the actor's deals
    assert "other_account.id IN" in str(visibility_clause(actor, alias, access=RowAccess.READ))
    assert "other_account.id IN" not in str(visibility_clause(actor, alias, access=RowAccess.WRITE))
