"""Lead-to-cash services (CN-3): collection plans, collections with their approval, invoices, and
a contract's signed / collected / outstanding amounts.

Everything here hangs off a contract and is reached through it: a record of another organization,
or a contract outside the caller's row scope, is *not found*. Reading takes ``contracts:read``,
writing ``contracts:write``. A collection counts only once approved, through
:func:`approve_collection` — the one entry point for that decision (the approval engine calls it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.approvals import flows as approval_flows
from closeloop.approvals import service as approvals
from closeloop.approvals.models import Approval, ApprovalStatus
from closeloop.cash import taxid
from closeloop.cash.models import (
    Collection,
    CollectionMethod,
    CollectionStatus,
    Instalment,
    InstalmentStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
)
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from closeloop.core.money import MAX_AMOUNT, quantize
from closeloop.crm.contracts.models import Contract
from closeloop.crm.contracts.service import get_contract
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org.models import User

ZERO = Decimal("0.00")
#: the permission of the finance role that approves any collection (the owner's manager may too)
APPROVE = "collections:approve"


def today() -> date:
    return utcnow().date()


# --- statuses and roll-ups ----------------------------------------------------------------------


def instalment_status(instalment: Instalment, collected: Decimal, on: date) -> InstalmentStatus:
    """void when voided; paid once approved collections cover it; overdue when its due date has
    passed short of that; partial when some is collected; otherwise pending."""
    if instalment.is_void:
        return InstalmentStatus.VOID
    if collected >= instalment.amount:
        return InstalmentStatus.PAID
    if instalment.due_on < on:
        return InstalmentStatus.OVERDUE
    return InstalmentStatus.PARTIAL if collected > 0 else InstalmentStatus.PENDING


def collected_by_instalment(
    session: Session, organization_id: int, instalment_ids: Iterable[int]
) -> dict[int, Decimal]:
    """Approved collections per instalment (one grouped query)."""
    ids = list(instalment_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Collection.instalment_id, func.sum(Collection.amount))
        .where(
            tenant_clause(organization_id, Collection),
            Collection.status == CollectionStatus.APPROVED,
            Collection.instalment_id.in_(ids),
        )
        .group_by(Collection.instalment_id)
    )
    return {int(row[0]): quantize(Decimal(row[1])) for row in rows}


@dataclass(frozen=True)
class Amounts:
    """A contract's money: signed, planned (non-void instalments), collected (approved),
    awaiting approval, outstanding (signed less collected) and overdue (unpaid past due)."""

    signed: Decimal
    planned: Decimal
    collected: Decimal
    submitted: Decimal
    outstanding: Decimal
    overdue: Decimal

    def as_dict(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class PlanLine:
    instalment: Instalment
    collected: Decimal
    status: InstalmentStatus

    def as_dict(self) -> dict[str, Any]:
        item = self.instalment
        return {
            "id": item.id,
            "contract_id": item.contract_id,
            "number": item.number,
            "amount": str(item.amount),
            "due_on": item.due_on.isoformat(),
            "remind_days": item.remind_days,
            "note": item.note,
            "collected": str(self.collected),
            "outstanding": str(max(item.amount - self.collected, ZERO)) if not item.is_void else "0.00",
            "status": str(self.status),
            # the first day it was overdue (the day after its due date), whether or not the daily
            # run has marked it yet: a reader should not depend on when the job last ran
            "overdue_since": (
                (item.due_on + timedelta(days=1)).isoformat() if self.status is InstalmentStatus.OVERDUE else None
            ),
            "version": item.version,
        }


def plan(session: Session, actor: Actor, *, contract_id: int) -> list[PlanLine]:
    """The contract's collection plan: its instalments in order with what is collected and their status."""
    contract = get_contract(session, actor, contract_id=contract_id)
    instalments = list(
        session.scalars(
            select(Instalment)
            .where(tenant_clause(actor.organization_id, Instalment), Instalment.contract_id == contract.id)
            .order_by(Instalment.number)
        )
    )
    collected = collected_by_instalment(session, actor.organization_id, (i.id for i in instalments))
    on = today()
    return [
        PlanLine(i, collected.get(i.id, ZERO), instalment_status(i, collected.get(i.id, ZERO), on)) for i in instalments
    ]


def amounts(session: Session, actor: Actor, *, contract_id: int) -> Amounts:
    """Signed, planned, collected, awaiting approval, outstanding and overdue money of the contract."""
    contract = get_contract(session, actor, contract_id=contract_id)
    lines = plan(session, actor, contract_id=contract_id)
    by_status = dict(
        session.execute(
            select(Collection.status, func.sum(Collection.amount))
            .where(tenant_clause(actor.organization_id, Collection), Collection.contract_id == contract.id)
            .group_by(Collection.status)
        ).all()
    )
    collected = quantize(Decimal(by_status.get(CollectionStatus.APPROVED) or 0))
    signed = quantize(contract.amount or ZERO)
    return Amounts(
        signed=signed,
        planned=quantize(sum((line.instalment.amount for line in lines if not line.instalment.is_void), ZERO)),
        collected=collected,
        submitted=quantize(Decimal(by_status.get(CollectionStatus.SUBMITTED) or 0)),
        outstanding=max(signed - collected, ZERO),
        overdue=quantize(
            sum(
                (line.instalment.amount - line.collected for line in lines if line.status is InstalmentStatus.OVERDUE),
                ZERO,
            )
        ),
    )


# --- the plan -----------------------------------------------------------------------------------


def _instalment(session: Session, actor: Actor, instalment_id: int, *, lock: bool = False) -> Instalment:
    require(actor, "contracts:read")
    statement = select(Instalment).where(
        tenant_clause(actor.organization_id, Instalment), Instalment.id == instalment_id
    )
    instalment = session.scalar(statement.with_for_update() if lock else statement)
    if instalment is None:
        raise NotFound("instalment", instalment_id)
    get_contract(session, actor, contract_id=instalment.contract_id)  # the row scope: not found outside it
    return instalment


def _check_amount(value: Decimal, field: str = "amount") -> Decimal:
    if value <= 0 or value > MAX_AMOUNT:
        raise ValidationFailed.one(field, "must be more than 0", "out_of_range")
    return quantize(value)


def _check_plan_total(
    session: Session, actor: Actor, contract: Contract, extra: Decimal, other_than: int | None
) -> None:
    statement = select(func.coalesce(func.sum(Instalment.amount), 0)).where(
        tenant_clause(actor.organization_id, Instalment),
        Instalment.contract_id == contract.id,
        Instalment.is_void.is_(False),
    )
    if other_than is not None:
        statement = statement.where(Instalment.id != other_than)
    planned = quantize(Decimal(session.scalar(statement) or 0))
    if contract.amount is None:
        raise ValidationFailed.one("contract_id", "the contract has no amount to plan collections for", "no_amount")
    if planned + extra > contract.amount:
        left = max(contract.amount - planned, ZERO)
        raise ValidationFailed.one(
            "amount",
            f"the plan would total {planned + extra}, more than the contract's {contract.amount}; "
            f"at most {left} is left to plan",
            "exceeds_contract",
        )


def add_instalment(
    session: Session,
    actor: Actor,
    *,
    contract_id: int,
    amount: Decimal,
    due_on: date,
    remind_days: int = 3,
    note: str | None = None,
) -> Instalment:
    """Add an instalment to the contract's plan; the plan (void instalments aside) may not total
    more than the contract amount."""
    require(actor, "contracts:write")
    contract = get_contract(session, actor, contract_id=contract_id)
    amount = _check_amount(amount)
    if not 0 <= remind_days <= 365:
        raise ValidationFailed.one("remind_days", "must be 0 to 365 days", "out_of_range")
    _check_plan_total(session, actor, contract, amount, None)
    number = (
        session.scalar(
            select(func.max(Instalment.number)).where(
                tenant_clause(actor.organization_id, Instalment), Instalment.contract_id == contract.id
            )
        )
        or 0
    ) + 1
    instalment = Instalment(
        organization_id=actor.organization_id,
        contract_id=contract.id,
        number=number,
        amount=amount,
        due_on=due_on,
        remind_days=remind_days,
        note=note,
    )
    session.add(instalment)
    session.flush()
    audit.record(
        session,
        actor,
        "instalment.created",
        subject_type="instalment",
        subject_id=instalment.id,
        changes=audit.diff({}, {"contract_id": contract.id, "number": number, "amount": amount, "due_on": due_on}),
    )
    return instalment


INSTALMENT_FIELDS = ("amount", "due_on", "remind_days", "note", "is_void")


def update_instalment(session: Session, actor: Actor, *, instalment_id: int, changes: Mapping[str, Any]) -> Instalment:
    """Change an instalment's amount, due date, reminder or note, or void it (``is_void``); the plan
    total is checked again, and an instalment is not cut below what was collected against it."""
    require(actor, "contracts:write")
    instalment = _instalment(session, actor, instalment_id, lock=True)
    contract = get_contract(session, actor, contract_id=instalment.contract_id)
    values = {name: changes[name] for name in INSTALMENT_FIELDS if name in changes}
    if "amount" in values:
        values["amount"] = _check_amount(Decimal(values["amount"]))
    if "remind_days" in values and not 0 <= int(values["remind_days"]) <= 365:
        raise ValidationFailed.one("remind_days", "must be 0 to 365 days", "out_of_range")
    is_void = values.get("is_void", instalment.is_void)
    if not is_void:
        _check_plan_total(session, actor, contract, values.get("amount", instalment.amount), instalment.id)
    collected = collected_by_instalment(session, actor.organization_id, [instalment.id]).get(instalment.id, ZERO)
    if "amount" in values and values["amount"] < collected:
        raise ValidationFailed.one("amount", f"{collected} is collected against it already", "below_collected")
    if is_void and not instalment.is_void and collected > 0:
        raise Conflict("An instalment with approved collections cannot be voided", field_name="is_void")
    before = {name: getattr(instalment, name) for name in values}
    for name, value in values.items():
        setattr(instalment, name, value)
    if "due_on" in values and values["due_on"] != before["due_on"]:
        # a new due date: remind and alert again from it
        instalment.reminded_on = instalment.alerted_on = instalment.overdue_since = None
    session.flush()
    audit.record(
        session,
        actor,
        "instalment.voided" if is_void and not before.get("is_void", True) else "instalment.updated",
        subject_type="instalment",
        subject_id=instalment.id,
        changes=audit.diff(before, values),
    )
    return instalment


# --- collections --------------------------------------------------------------------------------


def serialize_collection(collection: Collection) -> dict[str, Any]:
    return {
        "id": collection.id,
        "contract_id": collection.contract_id,
        "instalment_id": collection.instalment_id,
        "amount": str(collection.amount),
        "received_on": collection.received_on.isoformat(),
        "method": str(collection.method),
        "reference": collection.reference,
        "status": str(collection.status),
        "recorded_by_id": collection.recorded_by_id,
        "decided_by_id": collection.decided_by_id,
        "decided_at": collection.decided_at.isoformat() if collection.decided_at else None,
        "decision_note": collection.decision_note,
        "version": collection.version,
    }


def record_collection(
    session: Session,
    actor: Actor,
    *,
    instalment_id: int,
    amount: Decimal,
    received_on: date,
    method: CollectionMethod = CollectionMethod.BANK_TRANSFER,
    reference: str | None = None,
) -> Collection:
    """Record money received against an instalment. It is *submitted*: it counts once approved.
    What is approved and awaiting approval may not exceed the instalment."""
    require(actor, "contracts:write")
    instalment = _instalment(session, actor, instalment_id, lock=True)
    amount = _check_amount(amount)
    if instalment.is_void:
        raise ValidationFailed.one("instalment_id", "the instalment is void", "void")
    if received_on > today():
        raise ValidationFailed.one("received_on", "cannot be in the future", "future")
    taken = quantize(
        Decimal(
            session.scalar(
                select(func.coalesce(func.sum(Collection.amount), 0)).where(
                    tenant_clause(actor.organization_id, Collection),
                    Collection.instalment_id == instalment.id,
                    Collection.status.in_((CollectionStatus.APPROVED, CollectionStatus.SUBMITTED)),
                )
            )
            or 0
        )
    )
    if taken + amount > instalment.amount:
        raise ValidationFailed.one(
            "amount",
            f"at most {max(instalment.amount - taken, ZERO)} is left on instalment {instalment.number} "
            "(collected and awaiting approval counted)",
            "exceeds_instalment",
        )
    collection = Collection(
        organization_id=actor.organization_id,
        contract_id=instalment.contract_id,
        instalment_id=instalment.id,
        amount=amount,
        received_on=received_on,
        method=method,
        reference=reference,
        status=CollectionStatus.SUBMITTED,
        recorded_by_id=actor.user_id,
    )
    session.add(collection)
    session.flush()
    audit.record(
        session,
        actor,
        "collection.submitted",
        subject_type="collection",
        subject_id=collection.id,
        changes=audit.diff({}, {"instalment_id": instalment.id, "amount": amount, "received_on": received_on}),
    )
    _submit_for_approval(session, actor, collection)
    return collection


def _submit_for_approval(session: Session, actor: Actor, collection: Collection) -> None:
    """When the organization has an enabled approval flow for collections (CN-4), the collection is
    decided through it: submitted under the recorder's name at once, approved or rejected when the
    flow ends (:func:`decide_by_approval`)."""
    submitter = session.get(User, actor.user_id) if actor.user_id is not None else None
    if approval_flows.flow_for(session, actor.organization_id, "collection", submitter) is None:
        return
    approvals.submit(session, actor, record_type="collection", record_id=collection.id)


def pending_approval(session: Session, organization_id: int, collection_id: int) -> int | None:
    """The id of the approval now deciding this collection, if any."""
    found: int | None = session.scalar(
        select(Approval.id).where(
            tenant_clause(organization_id, Approval),
            Approval.record_type == "collection",
            Approval.record_id == collection_id,
            Approval.status == ApprovalStatus.PENDING,
        )
    )
    return found


def pending_approvals(session: Session, organization_id: int, collection_ids: Sequence[int]) -> dict[int, int]:
    """Collection id → the approval now deciding it, for those of ``collection_ids`` in an approval
    flow (the pages link there instead of offering a decision the flow has taken over)."""
    if not collection_ids:
        return {}
    rows = session.execute(
        select(Approval.record_id, Approval.id).where(
            tenant_clause(organization_id, Approval),
            Approval.record_type == "collection",
            Approval.record_id.in_(sorted(set(collection_ids))),
            Approval.status == ApprovalStatus.PENDING,
        )
    )
    return {int(record_id): int(approval_id) for record_id, approval_id in rows if record_id is not None}


def decide_by_approval(session: Session, approval: Approval, approved: bool) -> None:
    """The end of a collection's approval flow: the collection is approved or rejected as the flow
    decided, by the system on the flow's behalf (the approvers are in the approval's history)."""
    from closeloop.org.service import system_actor

    if approval.record_id is None:
        return
    actor = system_actor(approval.organization_id, label=f"approval {approval.id}")
    status = CollectionStatus.APPROVED if approved else CollectionStatus.REJECTED
    _decide(session, actor, approval.record_id, status, f"approval {approval.id}", by_flow=True)


def get_collection(session: Session, actor: Actor, *, collection_id: int, lock: bool = False) -> Collection:
    """The collection if its contract is within the caller's reach; otherwise *not found*."""
    require(actor, "contracts:read")
    statement = select(Collection).where(
        tenant_clause(actor.organization_id, Collection), Collection.id == collection_id
    )
    collection = session.scalar(statement.with_for_update() if lock else statement)
    if collection is None:
        raise NotFound("collection", collection_id)
    get_contract(session, actor, contract_id=collection.contract_id)
    return collection


def may_decide(session: Session, actor: Actor, contract: Contract) -> bool:
    """A finance role (``collections:approve``) decides any collection; the contract owner's
    manager decides theirs. Nobody decides a collection on their own contract as its owner."""
    if actor.can(APPROVE):
        return True
    if actor.user_id is None or contract.owner_id is None:
        return False
    manager_id = session.scalar(
        select(User.manager_id).where(tenant_clause(actor.organization_id, User), User.id == contract.owner_id)
    )
    return manager_id == actor.user_id


def _decide(
    session: Session,
    actor: Actor,
    collection_id: int,
    status: CollectionStatus,
    note: str | None,
    *,
    by_flow: bool = False,
) -> Collection:
    collection = get_collection(session, actor, collection_id=collection_id, lock=True)
    contract = get_contract(session, actor, contract_id=collection.contract_id)
    if not by_flow:
        if not may_decide(session, actor, contract):
            raise Forbidden("Only finance (CFO) or the contract owner's manager decides a collection")
        deciding = pending_approval(session, actor.organization_id, collection.id)
        if deciding is not None:
            raise Conflict(
                f"The collection is decided by approval {deciding}; approve or reject it there",
                code="in_approval",
                field_name="status",
            )
    if collection.status != CollectionStatus.SUBMITTED:
        raise Conflict(f"The collection is {collection.status} already", code="already_decided", field_name="status")
    if status is CollectionStatus.APPROVED:
        instalment = _instalment(session, actor, collection.instalment_id, lock=True)
        collected = collected_by_instalment(session, actor.organization_id, [instalment.id]).get(instalment.id, ZERO)
        if instalment.is_void:
            raise Conflict("The instalment is void", code="void", field_name="instalment_id")
        if collected + collection.amount > instalment.amount:
            raise Conflict(
                "Approving it would collect more than the instalment", code="exceeds_instalment", field_name="amount"
            )
    collection.status = status
    collection.decided_by_id = actor.user_id
    collection.decided_at = utcnow()
    collection.decision_note = note
    session.flush()
    audit.record(
        session,
        actor,
        f"collection.{status}",
        subject_type="collection",
        subject_id=collection.id,
        changes={"status": [CollectionStatus.SUBMITTED.value, status.value], "note": [None, note]},
    )
    return collection


def approve_collection(session: Session, actor: Actor, collection_id: int, *, note: str | None = None) -> Collection:
    """Approve a submitted collection, so it counts as collected — the single entry point for the
    decision (pages, API and the approval engine call it). Who: see :func:`may_decide`. Refused
    with 409 when the collection was decided already or would collect more than its instalment.
    Audited as ``collection.approved`` (the outbox event the automation engine sees)."""
    return _decide(session, actor, collection_id, CollectionStatus.APPROVED, note)


def reject_collection(session: Session, actor: Actor, collection_id: int, *, note: str | None = None) -> Collection:
    """Reject a submitted collection (it never counts); same rules as :func:`approve_collection`.
    Audited as ``collection.rejected``."""
    return _decide(session, actor, collection_id, CollectionStatus.REJECTED, note)


def list_collections(
    session: Session,
    actor: Actor,
    *,
    contract_id: int | None = None,
    status: CollectionStatus | None = None,
    limit: int = 200,
) -> list[Collection]:
    """Collections on contracts within the caller's reach, newest first."""
    require(actor, "contracts:read")
    statement = (
        select(Collection)
        .join(Contract, Contract.id == Collection.contract_id)
        .where(
            tenant_clause(actor.organization_id, Collection), visibility_clause(actor, Contract, access=RowAccess.READ)
        )
        .order_by(Collection.id.desc())
        .limit(limit)
    )
    if contract_id is not None:
        statement = statement.where(Collection.contract_id == contract_id)
    if status is not None:
        statement = statement.where(Collection.status == status)
    return list(session.scalars(statement))


def to_approve(session: Session, actor: Actor, *, limit: int = 200) -> list[Collection]:
    """Submitted collections the caller may decide: every one for finance, their reports' for a manager."""
    require(actor, "contracts:read")
    statement = (
        select(Collection)
        .join(Contract, Contract.id == Collection.contract_id)
        .where(
            tenant_clause(actor.organization_id, Collection),
            visibility_clause(actor, Contract, access=RowAccess.READ),
            Collection.status == CollectionStatus.SUBMITTED,
        )
        .order_by(Collection.id)
        .limit(limit)
    )
    if not actor.can(APPROVE):
        if actor.user_id is None:
            return []
        reports = select(User.id).where(tenant_clause(actor.organization_id, User), User.manager_id == actor.user_id)
        statement = statement.where(Contract.owner_id.in_(reports))
    return list(session.scalars(statement))


@dataclass(frozen=True)
class OverdueLine:
    instalment: Instalment
    contract: Contract
    collected: Decimal


def overdue(session: Session, actor: Actor, *, limit: int = 200, on: date | None = None) -> list[OverdueLine]:
    """Unpaid instalments past their due date (as on ``on``, default today) on contracts within the
    caller's reach, oldest first."""
    require(actor, "contracts:read")
    collected = collected_subquery(actor.organization_id)
    rows = session.execute(
        select(Instalment, Contract, func.coalesce(collected.c.collected, 0))
        .join(Contract, Contract.id == Instalment.contract_id)
        .outerjoin(collected, collected.c.instalment_id == Instalment.id)
        .where(
            tenant_clause(actor.organization_id, Instalment),
            visibility_clause(actor, Contract, access=RowAccess.READ),
            Instalment.is_void.is_(False),
            Instalment.due_on < (on or today()),
            func.coalesce(collected.c.collected, 0) < Instalment.amount,
        )
        .order_by(Instalment.due_on, Instalment.id)
        .limit(limit)
    ).all()
    return [OverdueLine(row[0], row[1], quantize(Decimal(row[2]))) for row in rows]


def collected_subquery(organization_id: int) -> Any:
    """(instalment_id, collected): approved collections per instalment, as a subquery."""
    return (
        select(Collection.instalment_id, func.sum(Collection.amount).label("collected"))
        .where(tenant_clause(organization_id, Collection), Collection.status == CollectionStatus.APPROVED)
        .group_by(Collection.instalment_id)
        .subquery()
    )


# --- invoices -----------------------------------------------------------------------------------

INVOICE_FIELDS = (
    "kind",
    "number",
    "amount",
    "issued_on",
    "title_name",
    "tax_id",
    "bank_name",
    "bank_account",
    "address_phone",
    "note",
)


def serialize_invoice(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "contract_id": invoice.contract_id,
        "kind": str(invoice.kind),
        "number": invoice.number,
        "amount": str(invoice.amount),
        "status": str(invoice.status),
        "issued_on": invoice.issued_on.isoformat() if invoice.issued_on else None,
        "title_name": invoice.title_name,
        "tax_id": invoice.tax_id,
        "bank_name": invoice.bank_name,
        "bank_account": invoice.bank_account,
        "address_phone": invoice.address_phone,
        "note": invoice.note,
        "version": invoice.version,
    }


def _check_title(values: dict[str, Any], kind: InvoiceKind) -> None:
    if "tax_id" in values:
        values["tax_id"] = taxid.normalize(str(values["tax_id"]))
        reason = taxid.problem(values["tax_id"])
        if reason:
            raise ValidationFailed.one("tax_id", reason, "invalid_tax_id")
    if values.get("bank_account"):
        account = str(values["bank_account"]).replace(" ", "")
        if not account.isdigit() or not 6 <= len(account) <= 32:
            raise ValidationFailed.one("bank_account", "a bank account number is 6 to 32 digits", "invalid")
        values["bank_account"] = account
    if kind is InvoiceKind.SPECIAL:
        for name in ("bank_name", "bank_account", "address_phone"):
            if not values.get(name):
                raise ValidationFailed.one(
                    name, "a special VAT invoice (专票) needs the full invoice title", "required"
                )


def _invoice(session: Session, actor: Actor, invoice_id: int) -> Invoice:
    require(actor, "contracts:read")
    invoice = session.scalar(
        select(Invoice).where(tenant_clause(actor.organization_id, Invoice), Invoice.id == invoice_id)
    )
    if invoice is None:
        raise NotFound("invoice", invoice_id)
    get_contract(session, actor, contract_id=invoice.contract_id)
    return invoice


def create_invoice(session: Session, actor: Actor, *, contract_id: int, values: Mapping[str, Any]) -> Invoice:
    """A draft invoice on the contract with the buyer's invoice title; the tax number is checked."""
    require(actor, "contracts:write")
    contract = get_contract(session, actor, contract_id=contract_id)
    data = {name: values[name] for name in INVOICE_FIELDS if name in values}
    kind = InvoiceKind(data.get("kind", InvoiceKind.GENERAL))
    data["amount"] = _check_amount(Decimal(data["amount"]))
    _check_title(data, kind)
    if contract.amount is not None:
        invoiced = quantize(
            Decimal(
                session.scalar(
                    select(func.coalesce(func.sum(Invoice.amount), 0)).where(
                        tenant_clause(actor.organization_id, Invoice),
                        Invoice.contract_id == contract.id,
                        Invoice.status != InvoiceStatus.VOID,
                    )
                )
                or 0
            )
        )
        if invoiced + data["amount"] > contract.amount:
            raise ValidationFailed.one(
                "amount",
                f"at most {max(contract.amount - invoiced, ZERO)} is left to invoice on this contract "
                "(its amount less the invoices not void)",
                "exceeds_contract",
            )
    invoice = Invoice(
        organization_id=actor.organization_id, contract_id=contract.id, status=InvoiceStatus.DRAFT, **data
    )
    session.add(invoice)
    session.flush()
    audit.record(
        session,
        actor,
        "invoice.created",
        subject_type="invoice",
        subject_id=invoice.id,
        changes=audit.diff({}, {"contract_id": contract.id, "amount": invoice.amount, "tax_id": invoice.tax_id}),
    )
    return invoice


_NEXT = {
    InvoiceStatus.DRAFT: {InvoiceStatus.ISSUED, InvoiceStatus.VOID},
    InvoiceStatus.ISSUED: {InvoiceStatus.VOID},
    InvoiceStatus.VOID: set(),
}


def set_invoice_status(
    session: Session,
    actor: Actor,
    *,
    invoice_id: int,
    status: InvoiceStatus,
    number: str | None = None,
    issued_on: date | None = None,
) -> Invoice:
    """draft → issued (with its number and date) → void; a draft may be voided too."""
    require(actor, "contracts:write")
    invoice = _invoice(session, actor, invoice_id)
    if status not in _NEXT[InvoiceStatus(invoice.status)]:
        raise Conflict(f"An invoice that is {invoice.status} cannot become {status}", field_name="status")
    before = {"status": invoice.status, "number": invoice.number, "issued_on": invoice.issued_on}
    if status is InvoiceStatus.ISSUED:
        invoice.number = number or invoice.number
        if not invoice.number:
            raise ValidationFailed.one("number", "an issued invoice needs its number", "required")
        invoice.issued_on = issued_on or today()
    invoice.status = status
    session.flush()
    audit.record(
        session,
        actor,
        f"invoice.{status}",
        subject_type="invoice",
        subject_id=invoice.id,
        changes=audit.diff(before, {"status": status, "number": invoice.number, "issued_on": invoice.issued_on}),
    )
    return invoice


def list_invoices(session: Session, actor: Actor, *, contract_id: int) -> list[Invoice]:
    contract = get_contract(session, actor, contract_id=contract_id)
    return list(
        session.scalars(
            select(Invoice)
            .where(tenant_clause(actor.organization_id, Invoice), Invoice.contract_id == contract.id)
            .order_by(Invoice.id)
        )
    )


def contract_labels(session: Session, actor: Actor, contract_ids: Iterable[int]) -> dict[int, str]:
    """ "number · title" of the contracts among ``contract_ids`` the caller may see."""
    wanted = sorted(set(contract_ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(Contract.id, Contract.number, Contract.title).where(
            visibility_clause(actor, Contract, access=RowAccess.READ), Contract.id.in_(wanted)
        )
    )
    return {int(row[0]): f"{row[1]} · {row[2]}" for row in rows}


def collected_on_deals(session: Session, actor: Actor, opportunity_ids: Any) -> Decimal:
    """Approved collections on the contracts of the given deals (a SELECT of opportunity ids the
    caller may see): the funnel's won money on the collections basis."""
    total = session.scalar(
        select(func.coalesce(func.sum(Collection.amount), 0))
        .join(Contract, Contract.id == Collection.contract_id)
        .where(
            tenant_clause(actor.organization_id, Collection),
            tenant_clause(actor.organization_id, Contract),
            Collection.status == CollectionStatus.APPROVED,
            Contract.opportunity_id.in_(opportunity_ids),
        )
    )
    return quantize(Decimal(total or 0))


def collected_per_deal(organization_id: int) -> Any:
    """(opportunity_id, money): approved collections on each deal's contracts, as a subquery (the
    performance dashboard's revenue on the collections basis)."""
    return (
        select(Contract.opportunity_id.label("opportunity_id"), func.sum(Collection.amount).label("money"))
        .join(Contract, Contract.id == Collection.contract_id)
        .where(
            tenant_clause(organization_id, Collection),
            tenant_clause(organization_id, Contract),
            Collection.status == CollectionStatus.APPROVED,
            Contract.opportunity_id.is_not(None),
        )
        .group_by(Contract.opportunity_id)
        .subquery()
    )
