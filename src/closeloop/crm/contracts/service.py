"""Contract services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict, ValidationFailed
from closeloop.crm import records
from closeloop.crm.contracts.models import Contract
from closeloop.crm.contracts.schemas import ContractCreate, ContractUpdate
from closeloop.crm.enums import ContractStatus
from closeloop.crm.quotes.service import next_number
from closeloop.crm.records import FieldSpec, Kind, RecordType
from closeloop.db.scope import RowAccess, tenant_clause

CONTRACTS: RecordType[Contract] = records.register(
    RecordType(
        noun="contract",
        plural="contracts",
        model=Contract,
        read_fields=(
            "id",
            "number",
            "title",
            "account_id",
            "opportunity_id",
            "quote_id",
            "status",
            "signed_on",
            "starts_on",
            "ends_on",
            "amount",
            "currency",
            "clauses",
            "owner_id",
            "version",
            "created_at",
            "updated_at",
        ),
        filters={
            "number": FieldSpec(Kind.STR, sortable=True),
            "title": FieldSpec(Kind.STR, sortable=True),
            "account_id": FieldSpec(Kind.INT),
            "opportunity_id": FieldSpec(Kind.INT),
            "status": FieldSpec(Kind.STR, tuple(ContractStatus)),
            "signed_on": FieldSpec(Kind.DATE, sortable=True),
            "ends_on": FieldSpec(Kind.DATE, sortable=True),
            "amount": FieldSpec(Kind.DECIMAL, sortable=True),
            "owner_id": FieldSpec(Kind.INT),
        },
        references={"account_id": "account", "opportunity_id": "opportunity", "quote_id": "quote", "owner_id": "user"},
        search_fields=("number", "title"),
    )
)


def _check_number(session: Session, actor: Actor, number: str, own_id: int | None = None) -> None:
    statement = select(Contract.id).where(tenant_clause(actor.organization_id, Contract), Contract.number == number)
    if own_id is not None:
        statement = statement.where(Contract.id != own_id)
    if session.scalar(statement) is not None:
        raise Conflict(f"Contract number {number} is taken", code="duplicate", field_name="number")


#: checks of a contract taking effect (from a draft, or created, as active or completed):
#: ``(session, actor, the contract or None when created, the new status)``. The approvals package
#: refuses one its organization's contract flow has not approved, on every path (API, web, import).
ACTIVATION_GUARDS: list[Callable[[Session, Actor, Contract | None, str], None]] = []

TAKING_EFFECT = (ContractStatus.ACTIVE, ContractStatus.COMPLETED)


def _guard_activation(session: Session, actor: Actor, contract: Contract | None, status: Any) -> None:
    if status not in TAKING_EFFECT or (contract is not None and contract.status != ContractStatus.DRAFT):
        return
    for guard in ACTIVATION_GUARDS:
        guard(session, actor, contract, str(status))


def _check_active(values: Mapping[str, Any], contract: Contract | None = None) -> None:
    status = values.get("status", contract.status if contract else None)
    signed_on = values.get("signed_on", contract.signed_on if contract else None)
    if status in (ContractStatus.ACTIVE, ContractStatus.COMPLETED) and signed_on is None:
        raise ValidationFailed.one("signed_on", "an active or completed contract needs its signing date", "required")


def get_contract(session: Session, actor: Actor, *, contract_id: int) -> Contract:
    return records.get(session, actor, CONTRACTS, contract_id, access=RowAccess.READ)


def create_contract(session: Session, actor: Actor, *, data: ContractCreate) -> Contract:
    """Create a contract; clauses are kept in order as written."""
    records.require_write(actor, CONTRACTS)
    values = data.model_dump(exclude_unset=True)
    _check_active(values)
    _guard_activation(session, actor, None, values.get("status"))
    if data.number:
        _check_number(session, actor, data.number)
    else:
        values["number"] = next_number(session, actor, Contract, "C")
    return records.create(session, actor, CONTRACTS, values)


def update_contract(
    session: Session,
    actor: Actor,
    *,
    contract_id: int,
    data: ContractUpdate | Mapping[str, Any],
    expected_version: int | None = None,
) -> Contract:
    contract = get_contract(session, actor, contract_id=contract_id)
    records.require_write(actor, CONTRACTS)
    changes = data.model_dump(exclude_unset=True) if isinstance(data, ContractUpdate) else dict(data)
    _check_active(changes, contract)
    if "status" in changes:
        _guard_activation(session, actor, contract, changes["status"])
    if changes.get("number"):
        _check_number(session, actor, changes["number"], contract.id)
    return records.update(session, actor, CONTRACTS, contract, changes, expected_version=expected_version)


def delete_contract(session: Session, actor: Actor, *, contract_id: int, expected_version: int | None = None) -> None:
    records.delete(
        session,
        actor,
        CONTRACTS,
        get_contract(session, actor, contract_id=contract_id),
        expected_version=expected_version,
    )
