"""Lead-to-cash pages (CN-3, 线索到回款): /cash with the collections waiting for the reader's decision
and the overdue instalments in their reach, and the contract page with its signed / collected /
outstanding amounts, collection plan, collections and invoices. The same services as the API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from closeloop.approvals import service as approvals
from closeloop.cash import service as cash
from closeloop.cash.models import CollectionMethod, InvoiceKind, InvoiceStatus
from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.crm.contracts.service import get_contract
from closeloop.crm.enums import ContractStatus
from closeloop.org.models import User
from closeloop.web.i18n import N_
from closeloop.web.records import names_of, safe_next
from closeloop.web.routes import database_of, locale_of, problem_text, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {
    "pending": N_("Not collected yet"),
    "partial": N_("Partly collected"),
    "paid": N_("Paid"),
    "overdue": N_("Overdue"),
    "void": N_("Void"),
    "submitted": N_("Awaiting approval"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "draft": N_("Draft"),
    "issued": N_("Issued"),
}
METHOD_LABELS = {
    "bank_transfer": N_("Bank transfer"),
    "acceptance_bill": N_("Bank acceptance bill"),
    "cheque": N_("Cheque"),
    "cash": N_("Cash"),
    "online": N_("Online payment"),
    "other": N_("Other"),
}
KIND_LABELS = {"general": N_("General VAT invoice"), "special": N_("Special VAT invoice")}
CONTRACT_STATUS_LABELS = {
    "draft": N_("Draft"),
    "active": N_("In force"),
    "completed": N_("Completed"),
    "terminated": N_("Terminated"),
}
APPROVAL_LABELS = {
    "pending": N_("Awaiting approval"),
    "approved": N_("Approval granted"),
    "rejected": N_("Approval rejected"),
    "withdrawn": N_("Approval withdrawn"),
}


def _decimal(text: str, field: str) -> Decimal:
    try:
        return Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        raise ValidationFailed.one(field, "is not a number", "invalid") from None


def _date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed.one(field, "is not a date (YYYY-MM-DD)", "invalid") from None


def _problem_text(request: Request, error: DomainError) -> str:
    """The refusal in the reader's language, each field by its label (never a raw English sentence
    on a Chinese page)."""
    message, details = problem_text(error, locale_of(request))
    return "; ".join(f"{label}: {text}" for label, text in details) if details else message


def _refused(request: Request, user: User, actor: Actor, contract_id: int, error: DomainError) -> Response:
    """The contract page again, with the refusal above it."""
    return _contract_page(
        request, user, actor, contract_id, message=_problem_text(request, error), status_code=error.status
    )


# --- /cash ----------------------------------------------------------------------------------------


@router.get("/cash")
def cash_page(request: Request) -> Response:
    user, actor = require_user(request)
    return _cash_page(request, user, actor)


def _cash_page(
    request: Request, user: User, actor: Actor, *, message: str | None = None, status_code: int = 200
) -> Response:
    with database_of(request).reading(actor) as session:
        waiting = cash.to_approve(session, actor)
        late = cash.overdue(session, actor)
        recent = cash.list_collections(session, actor, limit=20)
        contract_ids = {c.contract_id for c in [*waiting, *recent]} | {line.contract.id for line in late}
        contracts = cash.contract_labels(session, actor, contract_ids)
        owners = names_of(session, actor, "user", [line.contract.owner_id for line in late])
        in_approval = cash.pending_approvals(session, actor.organization_id, [c.id for c in [*waiting, *recent]])
    context = {
        "in_approval": in_approval,
        "user": user,
        "actor": actor,
        "waiting": waiting,
        "late": late,
        "recent": recent,
        "contracts": contracts,
        "owners": owners,
        "status_labels": STATUS_LABELS,
        "method_labels": METHOD_LABELS,
        "message": message,
        "today": cash.today(),
    }
    return render(request, "cash/index.html", context, status_code=status_code)


@router.post("/cash/collections/{collection_id}/{verb}")
def decide(request: Request, collection_id: int, verb: str, csrf: str = Form(""), next: str = Form("")) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            if verb == "approve":
                cash.approve_collection(session, actor, collection_id)
            elif verb == "reject":
                cash.reject_collection(session, actor, collection_id)
            else:
                raise ValidationFailed.one("verb", "is approve or reject")
    except DomainError as error:
        return _cash_page(request, user, actor, message=_problem_text(request, error), status_code=error.status)
    return RedirectResponse(safe_next(next) or "/cash", status_code=303)


# --- the contract page ------------------------------------------------------------------------


@router.get("/contracts/{contract_id:int}")
def contract_page(request: Request, contract_id: int) -> Response:
    user, actor = require_user(request)
    return _contract_page(request, user, actor, contract_id)


def _contract_page(
    request: Request,
    user: User,
    actor: Actor,
    contract_id: int,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    with database_of(request).reading(actor) as session:
        contract = get_contract(session, actor, contract_id=contract_id)
        amounts = cash.amounts(session, actor, contract_id=contract_id)
        lines = cash.plan(session, actor, contract_id=contract_id)
        collections = cash.list_collections(session, actor, contract_id=contract_id)
        invoices = cash.list_invoices(session, actor, contract_id=contract_id)
        deciding = cash.may_decide(session, actor, contract)
        people = names_of(session, actor, "user", [contract.owner_id])
        account = names_of(session, actor, "account", [contract.account_id])
        deal = names_of(session, actor, "opportunity", [contract.opportunity_id])
        approval = approvals.latest_for(session, actor, "contract", contract.id)
        with_flow = approvals.has_flow(session, actor, "contract")
        in_approval = cash.pending_approvals(session, actor.organization_id, [c.id for c in collections])
    numbers = {line.instalment.id: line.instalment.number for line in lines}
    context = {
        "user": user,
        "actor": actor,
        "contract": contract,
        "owner": people.get(contract.owner_id or 0, ""),
        "account": account.get(contract.account_id or 0, ""),
        "amounts": amounts,
        "lines": lines,
        "collections": collections,
        "in_approval": in_approval,
        "invoices": invoices,
        "numbers": numbers,
        "deciding": deciding,
        "can_write": actor.can("contracts:write"),
        "is_draft": contract.status == ContractStatus.DRAFT,
        "opportunity": deal.get(contract.opportunity_id or 0, ""),
        "contract_status": CONTRACT_STATUS_LABELS.get(str(contract.status), str(contract.status)),
        "approval": approval,
        "approval_labels": APPROVAL_LABELS,
        "can_submit": with_flow
        and contract.status == ContractStatus.DRAFT
        and actor.can("contracts:write")
        and (approval is None or approval.status != "pending"),
        "status_labels": STATUS_LABELS,
        "method_labels": METHOD_LABELS,
        "kind_labels": KIND_LABELS,
        "methods": list(CollectionMethod),
        "kinds": list(InvoiceKind),
        "message": message,
        "today": cash.today(),
    }
    return render(request, "cash/contract.html", context, status_code=status_code)


def _back(contract_id: int) -> Response:
    return RedirectResponse(f"/contracts/{contract_id}", status_code=303)


@router.post("/contracts/{contract_id:int}/instalments")
def add_instalment(
    request: Request,
    contract_id: int,
    csrf: str = Form(""),
    amount: str = Form(""),
    due_on: str = Form(""),
    remind_days: str = Form("3"),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            cash.add_instalment(
                session,
                actor,
                contract_id=contract_id,
                amount=_decimal(amount, "amount"),
                due_on=_date(due_on, "due_on"),
                remind_days=int(_decimal(remind_days or "3", "remind_days")),
            )
    except DomainError as error:
        return _contract_page(
            request, user, actor, contract_id, message=_problem_text(request, error), status_code=error.status
        )
    return _back(contract_id)


@router.post("/contracts/{contract_id:int}/instalments/{instalment_id:int}/void")
def void_instalment(request: Request, contract_id: int, instalment_id: int, csrf: str = Form("")) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            cash.update_instalment(session, actor, instalment_id=instalment_id, changes={"is_void": True})
    except DomainError as error:
        return _contract_page(
            request, user, actor, contract_id, message=_problem_text(request, error), status_code=error.status
        )
    return _back(contract_id)


@router.post("/contracts/{contract_id:int}/collections")
def record_collection(
    request: Request,
    contract_id: int,
    csrf: str = Form(""),
    instalment_id: str = Form(""),
    amount: str = Form(""),
    received_on: str = Form(""),
    method: str = Form("bank_transfer"),
    reference: str = Form(""),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        if method not in set(CollectionMethod):
            raise ValidationFailed.one("method", "is not a collection method")
        with database_of(request).unit_of_work(actor) as session:
            cash.record_collection(
                session,
                actor,
                instalment_id=int(_decimal(instalment_id, "instalment_id")),
                amount=_decimal(amount, "amount"),
                received_on=_date(received_on, "received_on"),
                method=CollectionMethod(method),
                reference=reference.strip()[:100] or None,
            )
    except DomainError as error:
        return _contract_page(
            request, user, actor, contract_id, message=_problem_text(request, error), status_code=error.status
        )
    return _back(contract_id)


@router.post("/contracts/{contract_id:int}/invoices")
async def add_invoice(request: Request, contract_id: int) -> Response:
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    values: dict[str, Any] = {
        name: str(form.get(name) or "").strip() or None
        for name in ("kind", "title_name", "tax_id", "bank_name", "bank_account", "address_phone")
    }
    try:
        values["amount"] = _decimal(str(form.get("amount") or ""), "amount")
        if not values["title_name"]:
            raise ValidationFailed.one("title_name", "the buyer's name is required", "required")
        if not values["tax_id"]:
            raise ValidationFailed.one("tax_id", "the buyer's tax number is required", "required")
        values["kind"] = InvoiceKind(values["kind"] or "general")
        with database_of(request).unit_of_work(actor) as session:
            cash.create_invoice(session, actor, contract_id=contract_id, values=values)
    except (DomainError, ValueError) as error:
        text = _problem_text(request, error) if isinstance(error, DomainError) else str(error)
        status = error.status if isinstance(error, DomainError) else 422
        return _contract_page(request, user, actor, contract_id, message=text, status_code=status)
    return _back(contract_id)


@router.post("/contracts/{contract_id:int}/invoices/{invoice_id:int}/{verb}")
def invoice_status(
    request: Request, contract_id: int, invoice_id: int, verb: str, csrf: str = Form(""), number: str = Form("")
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        status = {"issue": InvoiceStatus.ISSUED, "void": InvoiceStatus.VOID}.get(verb)
        if status is None:
            raise ValidationFailed.one("verb", "is issue or void")
        with database_of(request).unit_of_work(actor) as session:
            cash.set_invoice_status(session, actor, invoice_id=invoice_id, status=status, number=number.strip() or None)
    except DomainError as error:
        return _contract_page(
            request, user, actor, contract_id, message=_problem_text(request, error), status_code=error.status
        )
    return _back(contract_id)


@router.post("/contracts/{contract_id:int}/submit")
def submit_contract(request: Request, contract_id: int, csrf: str = Form(""), comment: str = Form("")) -> Response:
    """Submit a draft contract under the organization's contract approval flow (the approvals
    engine decides the route; an approved draft with its signing date comes into force)."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            contract = get_contract(session, actor, contract_id=contract_id)
            if contract.status != ContractStatus.DRAFT:
                raise ValidationFailed.one("status", "only a draft contract is submitted for approval", "not_draft")
            approval = approvals.submit(
                session, actor, record_type="contract", record_id=contract_id, comment=comment.strip()[:2000] or None
            )
            approval_id = approval.id
    except DomainError as error:
        if error.status == 404:
            raise
        return _refused(request, user, actor, contract_id, error)
    return RedirectResponse(f"/approvals/{approval_id}", status_code=303)
