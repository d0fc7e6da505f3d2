"""Account services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.accounts.schemas import AccountCreate, AccountUpdate
from closeloop.crm.enums import CompanySize, Tier
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess

ACCOUNTS: RecordType[Account] = records.register(
    RecordType(
        noun="account",
        plural="accounts",
        model=Account,
        read_fields=(
            "id",
            "name",
            "industry",
            "size",
            "employees",
            "annual_revenue",
            "tier",
            "region_id",
            "country",
            "province",
            "city",
            "address",
            "latitude",
            "longitude",
            "phone",
            "website",
            "credit_line",
            "currency",
            "parent_account_id",
            "year_established",
            "owner_id",
            "external_ref",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "name": FieldSpec(Kind.STR, sortable=True),
            "industry": FieldSpec(Kind.STR, sortable=True),
            "size": FieldSpec(Kind.STR, tuple(CompanySize)),
            "tier": FieldSpec(Kind.STR, tuple(Tier), sortable=True),
            "region_id": FieldSpec(Kind.INT),
            "owner_id": FieldSpec(Kind.INT),
            "parent_account_id": FieldSpec(Kind.INT),
            "country": FieldSpec(Kind.STR),
            "province": FieldSpec(Kind.STR),
            "city": FieldSpec(Kind.STR),
            "employees": FieldSpec(Kind.INT, sortable=True),
            "annual_revenue": FieldSpec(Kind.DECIMAL, sortable=True),
            "credit_line": FieldSpec(Kind.DECIMAL, sortable=True),
            "external_ref": FieldSpec(Kind.STR),
        },
        references={"region_id": "region", "parent_account_id": "account", "owner_id": "user"},
        search_fields=("name", "external_ref"),
    )
)


#: checks run before an account is created (the duplicate protection of ``closeloop.pools``
#: registers itself here); each may refuse with a DomainError
CREATE_GUARDS: list[Callable[[Session, Actor, dict[str, Any]], None]] = []


#: called after an account's owner changed through an edit (the pools of ``closeloop.pools`` log it
#: as a transfer and restart the protection period): (session, actor, account, previous owner)
OWNER_CHANGE_HOOKS: list[Callable[[Session, Actor, Account, int | None], None]] = []


def _derive(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("size") is None and values.get("employees") is not None:
        values["size"] = CompanySize.from_employees(values["employees"])
    return values


def get_account(session: Session, actor: Actor, *, account_id: int) -> Account:
    """The account, if the actor may see it."""
    return records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.READ)


def create_account(session: Session, actor: Actor, *, data: AccountCreate) -> Account:
    """Create an account; its size follows from the head count when not given."""
    values = _derive(data.model_dump(exclude_unset=True))
    records.require_write(actor, ACCOUNTS)
    for guard in CREATE_GUARDS:
        guard(session, actor, values)
    return records.create(session, actor, ACCOUNTS, values)


def update_account(
    session: Session,
    actor: Actor,
    *,
    account_id: int,
    data: AccountUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Account:
    """Change an account's fields; an account cannot become its own parent. An account the actor
    reads only through its own deals answers 403 (read-only)."""
    account = records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.WRITE)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, AccountUpdate) else dict(data)
    if changes.get("parent_account_id") == account.id:
        raise ValidationFailed.one("parent_account_id", "an account cannot be its own parent")
    previous_owner = account.owner_id
    updated = records.update(session, actor, ACCOUNTS, account, _derive(changes), expected_version=expected_version)
    if updated.owner_id != previous_owner:
        for hook in OWNER_CHANGE_HOOKS:
            hook(session, actor, updated, previous_owner)
    return updated


def delete_account(session: Session, actor: Actor, *, account_id: int, expected_version: int | None = None) -> None:
    """Soft-delete an account."""
    records.delete(
        session,
        actor,
        ACCOUNTS,
        records.get(session, actor, ACCOUNTS, account_id, access=RowAccess.WRITE),
        expected_version=expected_version,
    )
