"""Approval pages (CN-4, 审批流): the inbox (to approve / submitted / CC'd), one approval with its
snapshot, steps and timeline and the approve / reject / 加签 / withdraw / resubmit buttons, the flow
list and the flow editor (settings in a form, the branches and steps as a checked JSON document).
The same services as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.approvals import flows, names, subjects
from closeloop.approvals import service as approvals
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.core.messages import CHOICE_LABELS, FIELD_LABELS
from closeloop.db.scope import tenant_clause
from closeloop.org.models import User
from closeloop.web import flow_form, i18n
from closeloop.web.i18n import N_, ROLE_LABELS, translations
from closeloop.web.records import names_of
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

BOX_LABELS = {"to_approve": N_("To approve"), "submitted": N_("Submitted by me"), "cc": N_("Copied to me")}
STATUS_LABELS = {
    "pending": N_("Pending"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "withdrawn": N_("Withdrawn"),
    "waiting": N_("Waiting"),
    "cancelled": N_("Not needed"),
    "cc": N_("Copied"),
}
ACTION_LABELS = {
    "submitted": N_("Submitted"),
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
    "approver_added": N_("Added an approver"),
    "withdrawn": N_("Withdrawn"),
    "step_skipped": N_("Step skipped"),
    "decided": N_("Decided"),
}
MODE_LABELS = {"all": N_("Everyone approves"), "any": N_("Anyone approves"), "sequence": N_("One after another")}
NOTE_LABELS = {
    "submitter_skipped": N_("Skipped: the submitter would approve their own request"),
    "no_approver_skipped": N_("Skipped: nobody to approve"),
    "fallback_role": N_("Nobody to approve: sent to the fallback role"),
}
MISSING_LABELS = {
    "skip": N_("Skip the step"),
    "admin": N_("Send it to the fallback role"),
    "refuse": N_("Refuse the submission"),
}
PAGE_SIZE = 20
#: the snapshot's own fields; the rest are labelled as on the record pages
SNAPSHOT_LABELS = {
    "number": N_("Document number"),
    "title": N_("Document title"),
    "subtotal": N_("Subtotal"),
    "discount_amount": N_("Discount amount"),
    "discount_percent": N_("Discount (%)"),
    "total": N_("Total"),
    "valid_until": N_("Valid until"),
    "signed_on": N_("Signed on"),
    "starts_on": N_("Starts on"),
    "ends_on": N_("Ends on"),
    "quote_id": N_("Quote"),
    "clauses": N_("Clauses"),
    "account_name": N_("Account name"),
    "from_owner_id": N_("Current owner"),
    "to_owner_id": N_("New owner"),
    "to_owner": N_("New owner"),
    "reason": N_("Reason"),
    "category": N_("Category"),
    "spent_on": N_("Spent on"),
    "received_on": N_("Received on"),
    "method": N_("Payment method"),
    "reference": N_("Reference"),
    "contract_id": N_("Contract"),
    "contract_number": N_("Contract number"),
    "contract_amount": N_("Contract amount"),
    "instalment_id": N_("Instalment"),
}
#: snapshot fields holding a user id, shown by name
PERSON_FIELDS = ("owner_id", "from_owner_id", "to_owner_id", "user_id")
#: snapshot fields holding another record's id, shown by its name (as far as the reader may see it)
RECORD_FIELDS = {
    "account_id": "account",
    "opportunity_id": "opportunity",
    "quote_id": "quote",
    "contract_id": "contract",
    "contact_id": "contact",
    "region_id": "region",
    "product_id": "product",
    "lead_id": "lead",
    "parent_account_id": "account",
}
#: snapshot fields holding an amount of money (in the snapshot's ``currency``)
MONEY_FIELDS = frozenset(
    {"amount", "subtotal", "discount_amount", "total", "contract_amount", "annual_revenue", "credit_line"}
)
DATE_FIELDS = frozenset({"signed_on", "starts_on", "ends_on", "valid_until", "spent_on", "received_on"})
#: snapshot fields left out: the record's own id, a name shown already, the instalment's id
SKIPPED_FIELDS = frozenset({"id", "to_owner", "instalment_id", "contract_number"})
CODED_FIELDS = frozenset({"status", "stage", "tier", "size", "source", "method", "kind", "decision_role"})
#: coded values of the snapshots the record pages do not label (collection methods, statuses)
CODE_LABELS = {
    "bank_transfer": N_("Bank transfer"),
    "acceptance_bill": N_("Bank acceptance bill"),
    "cheque": N_("Cheque"),
    "cash": N_("Cash"),
    "online": N_("Online payment"),
    "sent": N_("Sent"),
    "accepted": N_("Accepted"),
    "expired": N_("Expired"),
}

#: a new flow's definition: one default branch, the direct supervisor approves
STARTING_DEFINITION = {
    "branches": [
        {
            "key": "default",
            "name": "默认",
            "priority": 9,
            "conditions": [],
            "steps": [{"key": "supervisor", "name": "直属主管", "mode": "any", "approvers": [{"kind": "supervisor"}]}],
            "cc": [],
        }
    ]
}


def _message(error: DomainError) -> str:
    details = "; ".join(f"{p.field}: {p.message}" for p in error.problems)
    return f"{error.message} ({details})" if details and details not in error.message else error.message


@router.get("/approvals")
def inbox(request: Request, box: str = "to_approve", cursor: str | None = None) -> Response:
    user, actor = require_user(request)
    return _inbox(request, user, actor, box, cursor)


def _inbox(
    request: Request,
    user: User,
    actor: Actor,
    box: str,
    cursor: str | None,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    if box not in BOX_LABELS:
        box = "to_approve"
    with database_of(request).reading(actor) as session:
        rows, next_cursor = approvals.inbox(session, actor, box=box, limit=PAGE_SIZE, cursor=cursor)
        names = _names(session, actor, {r.submitter_id for r in rows if r.submitter_id})
    items = [{**approvals.summary(row, actor.locale), "submitter": names.get(row.submitter_id or 0)} for row in rows]
    context = {
        "user": user,
        "actor": actor,
        "box": box,
        "boxes": BOX_LABELS,
        "items": items,
        "next_cursor": next_cursor,
        "status_labels": STATUS_LABELS,
        "type_label": lambda record_type: subjects.label(record_type, actor.locale),
        "message": message,
        "today": calendar.today(settings.business_timezone).isoformat(),
    }
    return render(request, "approvals/inbox.html", context, status_code=status_code)


@router.post("/approvals/expense")
async def claim_expense(request: Request) -> Response:
    """An expense claim (费用报销): it lives in the approval itself."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    details = {
        name: str(form.get(name) or "").strip()[:1000] for name in ("amount", "category", "spent_on", "description")
    }
    try:
        with database_of(request).unit_of_work(actor) as session:
            approval = approvals.submit(session, actor, record_type="expense", record_id=None, details=details)
    except DomainError as error:
        message = _expense_message(error, locale_of(request))
        return _inbox(request, user, actor, "submitted", None, message=message, status_code=error.status)
    return RedirectResponse(f"/approvals/{approval.id}", status_code=303)


#: the expense form's fields by the path the claim's checks name them (``details.amount``)
EXPENSE_LABELS = {
    "details.amount": N_("Amount"),
    "details.category": N_("Category"),
    "details.spent_on": N_("Spent on"),
    "details.description": N_("Description"),
}


def _expense_message(error: DomainError, locale: str) -> str:
    """A refused expense claim as the form's reader reads it: each problem after the label of the
    field it names ("Amount: give a positive amount"), never the internal ``details.amount``."""
    if not error.problems:
        return _message(error)
    gettext = translations(locale).gettext
    return "; ".join(
        f"{gettext(EXPENSE_LABELS[p.field]) if p.field in EXPENSE_LABELS else p.field}: {gettext(p.message)}"
        for p in error.problems
    )


def _names(session: Any, actor: Actor, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User), User.id.in_(sorted(ids)))
    )
    return {row.id: row.display_name for row in rows}


@router.get("/approvals/flows")
def flow_list(request: Request) -> Response:
    user, actor = require_user(request)
    return _flow_list(request, user, actor)


def _flow_list(
    request: Request, user: User, actor: Actor, *, message: str | None = None, status_code: int = 200, form: Any = None
) -> Response:
    with database_of(request).reading(actor) as session:
        found = flows.list_flows(session, actor)
    context = {
        "user": user,
        "actor": actor,
        "flows": found,
        "flow_label": lambda flow: names.flow_label(flow.name, flow.definition, actor.locale),
        "types": subjects.KNOWN_TYPES,
        "may_manage": actor.can("approvals:manage"),
        "message": message,
        "form": form or {},
    }
    return render(request, "approvals/flows.html", context, status_code=status_code)


@router.post("/approvals/flows")
async def create_flow(request: Request) -> Response:
    """A new flow starts with one default branch (the direct supervisor) and opens in the editor."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    try:
        record_type = str(form.get("record_type") or "")
        with database_of(request).unit_of_work(actor) as session:
            # the first flow of its kind starts switched on; beside an enabled one it starts off
            # (two enabled flows for the same departments would leave one unused)
            enabled = flows.overlapping(session, actor, record_type, [], None) is None
            flow = flows.create_flow(
                session,
                actor,
                {
                    "name": str(form.get("name") or "").strip()[:200] or "?",
                    "record_type": record_type,
                    "definition": STARTING_DEFINITION,
                    "is_enabled": enabled,
                },
            )
    except DomainError as error:
        return _flow_list(request, user, actor, message=_message(error), status_code=error.status, form=form)
    return RedirectResponse(f"/approvals/flows/{flow.id}{'' if enabled else '?off=1'}", status_code=303)


@router.get("/approvals/flows/{flow_id}")
def flow_page(request: Request, flow_id: int) -> Response:
    user, actor = require_user(request)
    return _flow_page(request, user, actor, flow_id)


def _flow_page(
    request: Request,
    user: User,
    actor: Actor,
    flow_id: int,
    *,
    message: str | None = None,
    status_code: int = 200,
    rows: list[flow_form.Branch] | None = None,
    problems: list[flow_form.Placed] | None = None,
    settings: dict[str, Any] | None = None,
) -> Response:
    with database_of(request).reading(actor) as session:
        flow = flows.get_flow(session, actor, flow_id)
        body = flows.serialize_flow(flow)
        people = list(
            session.execute(
                select(User.id, User.display_name)
                .where(tenant_clause(actor.organization_id, User), User.is_active.is_(True))
                .order_by(User.display_name)
                .limit(500)
            )
        )
    subject = subjects.get(body["record_type"])
    fields = subject.fields if subject else ()
    placed = problems or []
    context = {
        "user": user,
        "actor": actor,
        "flow": body | (settings or {}),
        "flow_label": names.flow_label((settings or {}).get("name") or body["name"], body["definition"], actor.locale),
        "type_label": subjects.label(body["record_type"], actor.locale),
        "fields": fields,
        "field_label": lambda name: SNAPSHOT_LABELS.get(name) or FIELD_LABELS.get(name) or name,
        "rows": rows if rows is not None else flow_form.rows_of(body["definition"], actor.locale),
        "blank_branch": flow_form.Branch(
            key=0, name="", priority="1", steps=[flow_form.Step(key=0, approvers=[flow_form.Spec(key=0)])]
        ),
        "people": people,
        "definition": json.dumps(body["definition"], ensure_ascii=False, indent=2),
        "may_manage": actor.can("approvals:manage"),
        "missing_labels": MISSING_LABELS,
        "roles": flows.ASSIGNABLE_ROLES,
        "role_labels": ROLE_LABELS,
        "mode_labels": MODE_LABELS,
        "kind_labels": flow_form.KIND_LABELS,
        "operator_labels": flow_form.OPERATOR_LABELS,
        "within_labels": flow_form.WITHIN_LABELS,
        "errors": {p.name: p.text for p in placed if p.name},
        "step_label": [*translations(actor.locale).gettext("Step %(n)s").split("%(n)s"), ""][:2],
        "problems": placed,
        "message": message,
    }
    return render(request, "approvals/flow.html", context, status_code=status_code)


@router.post("/approvals/flows/{flow_id}")
async def save_flow(request: Request, flow_id: int) -> Response:
    """Save the editor: the settings and the branches read back from their rows; a problem is shown
    next to the field it is about, with the rows as they were sent."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    rows = flow_form.rows_from_form(form.multi_items())
    settings = {
        "name": str(form.get("name") or "").strip()[:200] or None,
        "is_enabled": bool(form.get("is_enabled")),
        "missing_approver": str(form.get("missing_approver") or "admin"),
        "fallback_role": str(form.get("fallback_role") or "admin"),
        "skip_submitter": bool(form.get("skip_submitter")),
    }
    gettext = translations(actor.locale).gettext
    with database_of(request).reading(actor) as session:
        record_type = flows.get_flow(session, actor, flow_id).record_type
    definition, found = flow_form.definition_of(rows)
    try:
        if found and actor.can("approvals:manage"):
            raise ValidationFailed(found)
        with database_of(request).unit_of_work(actor) as session:
            flows.update_flow(session, actor, flow_id, settings | {"definition": definition})
    except ValidationFailed as error:
        problems = list(found)
        try:
            flows.check_definition(definition, field_kinds=flows.field_kinds(record_type))
        except ValidationFailed as more:
            problems += [p for p in more.problems if p not in problems]
        if not problems:
            problems = list(error.problems)
        placed = flow_form.place(problems, rows, gettext)
        return _flow_page(
            request, user, actor, flow_id, message=gettext("Nothing was saved: see the marked fields."),
            status_code=422, rows=rows, problems=placed, settings={k: v for k, v in settings.items() if v is not None},
        )  # fmt: skip
    except DomainError as error:
        if error.status in (403, 404):
            raise
        message = _message(error)
        if error.code == "overlapping_flow":
            with database_of(request).reading(actor) as session:
                departments = flows.get_flow(session, actor, flow_id).department_ids or []
                other = flows.overlapping(session, actor, record_type, departments, flow_id) or (0, "?", [])
            message = gettext(
                "Nothing was saved: another flow of this kind is switched on (%(name)s). Switch it off first, or "
                "save this one switched off."
            ) % {"name": other[1]}
        return _flow_page(request, user, actor, flow_id, message=message, status_code=error.status, rows=rows)
    return RedirectResponse(f"/approvals/flows/{flow_id}?saved=1", status_code=303)


@router.post("/approvals/submit")
async def submit(request: Request) -> Response:
    """The record pages' "submit for approval" button."""
    _, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    record_id = str(form.get("record_id") or "")
    with database_of(request).unit_of_work(actor) as session:
        approval = approvals.submit(
            session,
            actor,
            record_type=str(form.get("record_type") or ""),
            record_id=int(record_id) if record_id.isdecimal() else None,
            comment=str(form.get("comment") or "").strip()[:2000] or None,
        )
    return RedirectResponse(f"/approvals/{approval.id}", status_code=303)


def snapshot_rows(session: Any, actor: Actor, snapshot: dict[str, Any], locale: str) -> list[tuple[str, str]]:
    """The snapshot as a reader reads it: each field by its label, people and records by name,
    coded values in words, money with its currency and dates in the locale (never a raw id or
    code; an id the reader may not see stays "#id")."""
    gettext = translations(locale).gettext
    person_ids = {v for k, v in snapshot.items() if k in PERSON_FIELDS and isinstance(v, int)}
    people = _names(session, actor, person_ids)
    if isinstance(snapshot.get("to_owner_id"), int) and snapshot.get("to_owner"):
        people.setdefault(snapshot["to_owner_id"], str(snapshot["to_owner"]))
    named: dict[str, dict[int, str]] = {}
    for key, noun in RECORD_FIELDS.items():
        if isinstance(snapshot.get(key), int):
            named.setdefault(noun, {}).update(names_of(session, actor, noun, [snapshot[key]]))
    currency = str(snapshot.get("currency") or "CNY")
    rows: list[tuple[str, str]] = []
    for key, value in snapshot.items():
        if key in SKIPPED_FIELDS:
            continue
        label = gettext(SNAPSHOT_LABELS.get(key) or FIELD_LABELS.get(key, key))
        rows.append((label, _shown(key, value, people, named, currency, locale, gettext)))
    return rows


def _shown(
    key: str,
    value: Any,
    people: dict[int, str],
    named: dict[str, dict[int, str]],
    currency: str,
    locale: str,
    gettext: Callable[[str], str],
) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if key in PERSON_FIELDS and isinstance(value, int):
        return people.get(value, f"#{value}")
    if key in RECORD_FIELDS and isinstance(value, int):
        return named.get(RECORD_FIELDS[key], {}).get(value, f"#{value}")
    if key in MONEY_FIELDS:
        try:
            return i18n.format_money(Decimal(str(value)), currency, locale)
        except InvalidOperation:
            return str(value)
    if key == "discount_percent":
        try:
            return i18n.format_percent(float(Decimal(str(value)) / 100), locale)
        except InvalidOperation:
            return str(value)
    if key in DATE_FIELDS:
        try:
            return i18n.format_date(date.fromisoformat(str(value)[:10]), locale)
        except ValueError:
            return str(value)
    if key == "clauses" and isinstance(value, list):
        return gettext("%(count)s clauses") % {"count": len(value)}
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, str) and key in CODED_FIELDS:
        label = CODE_LABELS.get(value) or CHOICE_LABELS.get(value)
        if label:
            return gettext(label)
    return str(value)


@router.get("/approvals/{approval_id}")
def detail_page(request: Request, approval_id: int) -> Response:
    user, actor = require_user(request)
    return _detail(request, user, actor, approval_id)


def _detail(
    request: Request, user: User, actor: Actor, approval_id: int, *, message: str | None = None, status_code: int = 200
) -> Response:
    with database_of(request).reading(actor) as session:
        approval = approvals.get_approval(session, actor, approval_id)
        body = approvals.detail(session, actor, approval)
        people = (
            list(
                session.execute(
                    select(User.id, User.display_name, User.username, User.role)
                    .where(
                        tenant_clause(actor.organization_id, User),
                        User.is_active.is_(True),
                        User.id != user.id,
                        User.id != (body["submitter_id"] or 0),
                    )
                    .order_by(User.display_name)
                    .limit(500)
                )
            )
            if body["can"]["add_approver"]
            else []
        )
        rows = snapshot_rows(session, actor, body["snapshot"], locale_of(request))
    context = {
        "user": user,
        "actor": actor,
        "approval": body,
        "type_label": subjects.label(body["record_type"], actor.locale),
        "status_labels": STATUS_LABELS,
        "action_labels": ACTION_LABELS,
        "mode_labels": MODE_LABELS,
        "note_labels": NOTE_LABELS,
        "people": people,
        "snapshot_rows": rows,
        "message": message,
    }
    return render(request, "approvals/detail.html", context, status_code=status_code)


@router.post("/approvals/{approval_id}/{action}")
def act(
    request: Request,
    approval_id: int,
    action: str,
    csrf: str = Form(""),
    comment: str = Form(""),
    reason: str = Form(""),
    user_id: str = Form(""),
    position: str = Form("before"),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    text = comment.strip()[:2000] or None
    target = approval_id
    try:
        with database_of(request).unit_of_work(actor) as session:
            if action == "approve":
                approvals.approve(session, actor, approval_id, comment=text)
            elif action == "reject":
                approvals.reject(session, actor, approval_id, reason=reason.strip()[:2000])
            elif action == "add-approver":
                if not user_id.isdecimal():
                    raise ValidationFailed.one("user_id", "choose a person", "required")
                approvals.add_approver(
                    session, actor, approval_id, user_id=int(user_id), position=position, comment=text
                )
            elif action == "withdraw":
                approvals.withdraw(session, actor, approval_id, comment=text)
            elif action == "resubmit":
                target = approvals.resubmit(session, actor, approval_id, comment=text).id
            else:
                raise ValidationFailed.one("action", "is approve, reject, add-approver, withdraw or resubmit")
    except DomainError as error:
        if error.status == 404:
            raise
        return _detail(request, user, actor, approval_id, message=_message(error), status_code=error.status)
    return RedirectResponse(f"/approvals/{target}", status_code=303)
