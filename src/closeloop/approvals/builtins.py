"""The record types approvals know from the start: a quote's discount, a contract, an account
transfer (the account changes owner once approved) and an expense claim (the claim lives in the
approval itself: Closeloop has no expense records). Any other CRM record (an automation rule may
ask for an approval on an opportunity or a lead) is snapshotted generically."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.approvals import flows, subjects
from closeloop.approvals.models import Approval, ApprovalStatus
from closeloop.approvals.subjects import Loaded
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor, ActorKind
from closeloop.core.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from closeloop.core.money import written
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.contracts import service as contract_service
from closeloop.crm.contracts.models import Contract
from closeloop.crm.contracts.service import CONTRACTS
from closeloop.crm.enums import ContractStatus
from closeloop.crm.quotes.service import QUOTES
from closeloop.db.scope import RowAccess, tenant_clause
from closeloop.governance.audit.service import json_safe
from closeloop.governance.fields import FIELD_RULES
from closeloop.org import service as org_service
from closeloop.org.models import User

# the snapshot fields a flow's conditions may test, with the kind a condition's value must have
QUOTE_FIELDS = {
    "number": "text", "account_id": "id", "opportunity_id": "id", "status": "text", "currency": "text",
    "subtotal": "number", "discount_amount": "number", "discount_percent": "number", "total": "number",
    "valid_until": "date", "owner_id": "id",
}  # fmt: skip
CONTRACT_FIELDS = {
    "number": "text", "title": "text", "account_id": "id", "opportunity_id": "id", "quote_id": "id",
    "status": "text", "amount": "number", "currency": "text", "signed_on": "date", "starts_on": "date",
    "ends_on": "date", "owner_id": "id",
}  # fmt: skip
TRANSFER_FIELDS = {
    "account_name": "text", "tier": "text", "region_id": "id", "from_owner_id": "id", "to_owner_id": "id",
    "reason": "text",
}  # fmt: skip
EXPENSE_FIELDS = {"amount": "number", "currency": "text", "category": "text", "spent_on": "date", "description": "text"}


def record_fields(session: Session, actor: Actor, noun: str, record_id: int) -> dict[str, Any]:
    """The record as ``actor`` sees it, without any field a mask could hide from an approver."""
    record_type = records.record_type_for(noun)
    read = records.read_one(session, actor, record_type, record_id)
    hidden = set(FIELD_RULES.get(noun, {})) | {"version", "created_at", "updated_at", "custom"}
    return {key: json_safe(value) for key, value in read.items() if key not in hidden}


def _need(record_id: int | None) -> int:
    if record_id is None:
        raise ValidationFailed.one("record_id", "this record type needs a record", "required")
    return record_id


def load_quote(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
    fields = record_fields(session, actor, "quote", _need(record_id))
    subtotal, discount = Decimal(str(fields.get("subtotal") or 0)), Decimal(str(fields.get("discount_amount") or 0))
    percent = (discount * 100 / subtotal).quantize(Decimal("0.01")) if subtotal else Decimal(0)
    fields["discount_percent"] = str(percent)
    return Loaded(f"{fields['number']}", fields, fields.get("owner_id"))


def load_contract(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
    fields = record_fields(session, actor, "contract", _need(record_id))
    return Loaded(f"{fields['number']} {fields['title']}", fields, fields.get("owner_id"))


def contract_admits(session: Session, actor: Actor, record_id: int | None, loaded: Loaded) -> None:
    """Only a draft goes for approval: a contract in force (or completed, terminated) has nothing
    left to approve, and a draft already approved waits only for its signing date."""
    status = loaded.fields.get("status")
    if status == ContractStatus.ACTIVE:
        raise Conflict("the contract is already in force; there is nothing to approve", code="already_active",
                       field_name="record_id")  # fmt: skip
    if status != ContractStatus.DRAFT:
        raise Conflict(f"the contract is {status}; only a draft contract is submitted for approval",
                       code="not_draft", field_name="record_id")  # fmt: skip
    approved = session.scalar(
        select(Approval.id)
        .where(
            tenant_clause(actor.organization_id, Approval),
            Approval.record_type == "contract",
            Approval.record_id == record_id,
            Approval.status == ApprovalStatus.APPROVED,
        )
        .limit(1)
    )
    if approved is not None:
        raise Conflict(f"the contract was already approved (approval {approved}); it takes effect once signed",
                       code="already_approved", field_name="record_id")  # fmt: skip


def _user(session: Session, organization_id: int, user_id: Any) -> User | None:
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 1 <= user_id < 2**63:
        return None
    return session.scalar(
        select(User).where(tenant_clause(organization_id, User), User.id == user_id, User.is_active.is_(True))
    )


def load_transfer(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
    # asking to hand an account on is a change of it: the write scope, as for an edit of its owner
    account = records.get(session, actor, account_service.ACCOUNTS, _need(record_id), access=RowAccess.WRITE)
    target = _user(session, actor.organization_id, details.get("to_owner_id"))
    if target is None:
        raise ValidationFailed.one("details.to_owner_id", "give the active user who should own the account")
    if target.id == account.owner_id:
        raise ValidationFailed.one("details.to_owner_id", "the account already belongs to this user")
    fields = {
        "account_name": account.name,
        "tier": json_safe(account.tier),
        "region_id": account.region_id,
        "from_owner_id": account.owner_id,
        "to_owner_id": target.id,
        "to_owner": target.display_name,
        "reason": str(details.get("reason") or "")[:500],
    }
    return Loaded(f"{account.name} → {target.display_name}", fields, account.owner_id)


def transfer_decided(session: Session, approval: Approval, approved: bool) -> None:
    """An approved transfer hands the account to its new owner through the account service (audited)."""
    if not approved or approval.record_id is None:
        return
    system = org_service.system_actor(approval.organization_id, label=f"approval {approval.id}")
    try:
        account_service.update_account(
            session, system, account_id=approval.record_id, data={"owner_id": approval.snapshot["to_owner_id"]}
        )
    except NotFound:
        return  # the account was deleted meanwhile: nothing to hand over


def contract_decided(session: Session, approval: Approval, approved: bool) -> None:
    """An approved draft contract that carries its signing date becomes active through the contract
    service (audited as "approval N"); without a signing date it stays a draft until it is signed;
    a rejected one stays a draft for the rep to rework and resubmit."""
    if not approved or approval.record_id is None:
        return
    system = org_service.system_actor(approval.organization_id, label=f"approval {approval.id}")
    try:
        contract = contract_service.get_contract(session, system, contract_id=approval.record_id)
        if contract.status == ContractStatus.DRAFT and contract.signed_on is not None:
            contract_service.update_contract(
                session, system, contract_id=contract.id, data={"status": ContractStatus.ACTIVE}
            )
    except NotFound:
        return  # the contract was deleted meanwhile


def contract_needs_approval(session: Session, actor: Actor, contract: Contract | None, status: str) -> None:
    """Under a contract flow, a contract takes effect only once approved — whichever way it is
    changed (API, web, import). The product's own work (the approval's decision, seeding, operators'
    imports) acts as the system and is not held."""
    if actor.kind is ActorKind.SYSTEM:
        return
    submitter = session.get(User, actor.user_id) if actor.user_id is not None else None
    if flows.flow_for(session, actor.organization_id, "contract", submitter) is None:
        return
    if contract is not None and session.scalar(
        select(Approval.id)
        .where(
            tenant_clause(actor.organization_id, Approval),
            Approval.record_type == "contract",
            Approval.record_id == contract.id,
            Approval.status == ApprovalStatus.APPROVED,
        )
        .limit(1)
    ):
        return
    raise Conflict(
        f"A contract becomes {status} once the contract approval flow has approved it; submit it for approval",
        code="needs_approval",
        field_name="status",
    )


#: the largest expense amount a claim may carry (the column's 12 digits before the point)
EXPENSE_LIMIT = Decimal("999999999999.99")


def expense_amount(value: object) -> Decimal:
    """The amount claimed: a positive number with at most two decimals, up to :data:`EXPENSE_LIMIT`
    (never rounded silently; each refusal says what is wrong with it)."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationFailed.one("details.amount", "give the amount claimed, e.g. 100.00", "required") from None
    if not amount.is_finite():
        raise ValidationFailed.one("details.amount", "give the amount claimed, e.g. 100.00", "invalid")
    if amount <= 0:
        raise ValidationFailed.one("details.amount", "give a positive amount", "not_positive")
    if amount > EXPENSE_LIMIT:
        raise ValidationFailed.one(
            "details.amount", f"the amount is too large: at most {written(EXPENSE_LIMIT)}", "too_large"
        )
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and amount != amount.quantize(Decimal("0.01")):
        raise ValidationFailed.one("details.amount", "give the amount with at most 2 decimals", "too_precise")
    return amount.quantize(Decimal("0.01"))


def expense_day(value: object, today: date) -> str:
    """The day the money was spent (ISO), required, and not after ``today`` (business time zone)."""
    text = str(value or "").strip()
    if not text:
        raise ValidationFailed.one("details.spent_on", "give the day the money was spent", "required")
    try:
        day = date.fromisoformat(text[:10]) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise ValidationFailed.one("details.spent_on", "give the day as YYYY-MM-DD", "invalid")
    if day > today:
        raise ValidationFailed.one(
            "details.spent_on", f"{day.isoformat()} is in the future (today is {today.isoformat()})", "future"
        )
    return day.isoformat()


def load_expense(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
    """The claim as submitted; every field's problem is reported at once, not the first alone."""
    problems: list[FieldProblem] = []

    def checked(check: Callable[[], str]) -> str:
        try:
            return check()
        except ValidationFailed as failure:
            problems.extend(failure.problems)
            return ""

    amount = checked(lambda: str(expense_amount(details.get("amount"))))
    category = str(details.get("category") or "").strip()
    if not category:
        problems.append(FieldProblem("details.category", "give the kind of expense (travel, meals, …)", "required"))
    spent_on = checked(lambda: expense_day(details.get("spent_on"), calendar.today(settings.business_timezone)))
    if problems:
        raise ValidationFailed(problems, message="; ".join(f"{p.field}: {p.message}" for p in problems))
    fields = {
        "amount": amount,
        "currency": str(details.get("currency") or "CNY")[:3].upper(),
        "category": category[:60],
        "spent_on": spent_on,
        "description": str(details.get("description") or "")[:1000],
    }
    return Loaded(expense_title(fields, "zh_CN"), fields, actor.user_id)


def expense_title(snapshot: Mapping[str, Any], locale: str) -> str:
    """费用报销 · 差旅 ¥100.00 / Expense · 差旅 ¥100.00: the kind in the reader's language."""
    kind = subjects.label("expense", locale)
    category = str(snapshot.get("category") or "").strip()
    return f"{kind}{' · ' + category if category else ''} {written(snapshot.get('amount'), snapshot.get('currency'))}"


def load_record(noun: str) -> subjects.Loader:
    """A loader for any CRM record type (used when a rule asks for an approval)."""

    def load(session: Session, actor: Actor, record_id: int | None, details: Mapping[str, Any]) -> Loaded:
        fields = record_fields(session, actor, noun, _need(record_id))
        title = fields.get("name") or fields.get("number") or fields.get("title") or f"{noun} {record_id}"
        return Loaded(str(title), fields, fields.get("owner_id"))

    return load


def subject_for(record_type: str) -> subjects.Subject | None:
    """The registered subject, or a generic one for a CRM record type."""
    found = subjects.get(record_type)
    if found is not None:
        return found
    try:
        record_type_spec = records.record_type_for(record_type)
    except KeyError:
        return None
    return subjects.Subject(
        record_type=record_type,
        label_zh=record_type,
        label_en=record_type,
        load=load_record(record_type),
        link=lambda record_id: f"/{record_type_spec.plural}/{record_id}" if record_id else None,
    )


subjects.register("quote", load=load_quote, fields=QUOTE_FIELDS, link=lambda record_id: f"/{QUOTES.plural}/{record_id}")
subjects.register(
    "contract",
    load=load_contract,
    on_decided=contract_decided,
    admits=contract_admits,
    fields=CONTRACT_FIELDS,
    link=lambda record_id: f"/{CONTRACTS.plural}/{record_id}",
)
subjects.register(
    "account_transfer",
    load=load_transfer,
    on_decided=transfer_decided,
    fields=TRANSFER_FIELDS,
    link=lambda record_id: f"/accounts/{record_id}",
)
subjects.register("expense", load=load_expense, fields=EXPENSE_FIELDS, needs_record=False, titled=expense_title)
