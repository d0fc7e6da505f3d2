"""Account 360°: everything about one account on one page, and small contact pages.

Every section is read through the services the API uses (``records.read_one/read_page``, the scope
door, ``visible_fields``), so a rep sees only what the API would give them: no masked field reaches
the template, records outside the row scope are absent, and a foreign account is 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from closeloop.approvals import service as approvals
from closeloop.automation import service as automation
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import DomainError, NotFound, ValidationFailed
from closeloop.core.messages import ORDER_STATUSES, PRIORITIES, TICKET_STATUSES
from closeloop.crm import customfields, history, records
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.crm.contacts.service import CONTACTS
from closeloop.crm.contracts.service import CONTRACTS
from closeloop.crm.enums import DecisionRole, Stage
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.orders.service import ORDERS
from closeloop.crm.referrals.models import Referral
from closeloop.crm.tickets.service import TICKETS
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.org.models import Region, User
from closeloop.pools import service as pools
from closeloop.web.i18n import N_
from closeloop.web.records import SELLING_ROLES, assignable_users
from closeloop.web.routes import database_of, is_htmx, locale_of, problem_text, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

TIMELINE_PAGE = 15
#: a title confirmed longer ago than this is flagged as possibly out of date
STALE_AFTER_DAYS = 365

DECISION_ROLES: dict[str, str] = {
    DecisionRole.DECISION_MAKER: N_("Decision maker"),
    DecisionRole.INFLUENCER: N_("Influencer"),
    DecisionRole.USER: N_("User"),
    DecisionRole.GATEKEEPER: N_("Gatekeeper"),
    DecisionRole.CHAMPION: N_("Champion"),
    "": N_("No decision role yet"),
}
KINDS = {
    "call": N_("Call"),
    "email": N_("E-mail"),
    "chat": N_("Chat message"),
    "visit": N_("Visit"),
    "meeting": N_("Meeting"),
}
STAGES = {
    Stage.PROSPECTING: N_("Prospecting"),
    Stage.QUALIFICATION: N_("Qualification"),
    Stage.PROPOSAL: N_("Proposal"),
    Stage.NEGOTIATION: N_("Negotiation"),
    Stage.WON: N_("Won"),
    Stage.LOST: N_("Lost"),
}
CONTRACT_STATUSES = {
    "draft": N_("Draft"),
    "active": N_("In force"),
    "completed": N_("Completed"),
    "terminated": N_("Terminated"),
}
SIZES = {
    "micro": N_("Micro (under 10)"),
    "small": N_("Small (10–99)"),
    "medium": N_("Medium (100–999)"),
    "large": N_("Large (1,000–9,999)"),
    "enterprise": N_("Enterprise (10,000+)"),
}
#: field names of the audit trail in the interface (others are shown as they are stored)
FIELD_LABELS = {
    "name": N_("Name"),
    "industry": N_("Industry"),
    "size": N_("Size"),
    "employees": N_("Employees"),
    "annual_revenue": N_("Annual revenue"),
    "tier": N_("Tier"),
    "region_id": N_("Region"),
    "city": N_("City"),
    "province": N_("Province"),
    "country": N_("Country"),
    "address": N_("Address"),
    "phone": N_("Phone"),
    "website": N_("Website"),
    "credit_line": N_("Credit line"),
    "owner_id": N_("Owner"),
    "currency": N_("Currency"),
    "parent_account_id": N_("Parent account"),
    "year_established": N_("Year established"),
    "external_ref": N_("External reference"),
}
ACTIONS = {
    "account.created": N_("created the account"),
    "account.updated": N_("changed"),
    "account.deleted": N_("deleted the account"),
    "account.restored": N_("restored the account"),
}


def names_of(
    session: Session, actor: Actor, model: Any, ids: Iterable[int | None], column: str = "name"
) -> dict[int, str]:
    """``id → name`` of the records among ``ids`` that the actor may see (through the scope door)."""
    wanted = sorted({record_id for record_id in ids if record_id})
    if not wanted:
        return {}
    label = getattr(model, column)
    rows = session.execute(
        select(model.id, label).where(visibility_clause(actor, model, access=RowAccess.READ), model.id.in_(wanted))
    )
    return {row[0]: row[1] for row in rows}


def freshness(confirmed_on: date | None, today: date) -> dict[str, Any]:
    """How fresh a contact's title is: months since it was confirmed, and whether that is stale."""
    if confirmed_on is None:
        return {"months": None, "stale": True}
    days = (today - confirmed_on).days
    return {"months": max(days // 30, 0), "stale": days > STALE_AFTER_DAYS}


def _timeline(
    session: Session, actor: Actor, account_id: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None, dict[int, str], dict[int, str]]:
    params = {"account_id": str(account_id), "sort": "-occurred_at", "limit": str(TIMELINE_PAGE)}
    if cursor:
        params["cursor"] = cursor
    page = records.read_page(session, actor, ACTIVITIES, params)
    people = names_of(session, actor, User, (item.get("user_id") for item in page.items), "display_name")
    contacts = names_of(session, actor, CONTACTS.model, (item.get("contact_id") for item in page.items))
    return page.items, page.next_cursor, people, contacts


def _custom_rows(session: Session, actor: Actor, record: dict[str, Any], locale: str) -> list[tuple[str, Any]]:
    """(label in the locale, value shown) of each custom field the actor may read."""
    values = record.get("custom") or {}
    rows: list[tuple[str, Any]] = []
    for definition in customfields.readable(session, actor, "account"):
        if definition.name not in values:
            continue
        value = values[definition.name]
        labels = {
            choice["value"]: choice.get("label_en" if locale == "en" else "label_zh") for choice in definition.choices
        }
        if isinstance(value, list):
            value = ", ".join(str(labels.get(item, item)) for item in value)
        elif value in labels:
            value = labels[value]
        rows.append((definition.label(locale), value))
    return rows


def _repurchases(opportunities: list[dict[str, Any]], orders: list[dict[str, Any]]) -> set[int]:
    """Orders placed after the account's first win that do not belong to a won deal (GLOSSARY: a
    repurchase is a later order from a won account)."""
    won = [item for item in opportunities if item.get("stage") == Stage.WON and item.get("closed_at")]
    if not won:
        return set()
    first_win = min(_as_datetime(item["closed_at"]) for item in won)
    won_ids = {item["id"] for item in won}
    return {
        order["id"]
        for order in orders
        if order.get("opportunity_id") not in won_ids and _as_datetime(order["ordered_at"]) > first_win
    }


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _referrals(session: Session, actor: Actor, account_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Referrals this account gave (leads it sent us), and the referral that brought it (a lead
    converted into this account that someone referred)."""
    if not actor.can("referrals:read"):
        return [], []
    columns = (Referral.id, Referral.referrer_account_id, Referral.lead_id, Referral.referred_at, Referral.notes)
    given = session.execute(
        select(*columns)
        .where(visibility_clause(actor, Referral, access=RowAccess.READ), Referral.referrer_account_id == account_id)
        .order_by(Referral.referred_at.desc())
        .limit(50)
    ).all()
    converted = select(Lead.id).where(
        visibility_clause(actor, Lead, access=RowAccess.READ), Lead.converted_account_id == account_id
    )
    received = session.execute(
        select(*columns)
        .where(visibility_clause(actor, Referral, access=RowAccess.READ), Referral.lead_id.in_(converted))
        .order_by(Referral.referred_at.desc())
        .limit(50)
    ).all()
    leads = names_of(session, actor, Lead, [row.lead_id for row in (*given, *received)])
    companies = names_of(session, actor, Lead, [row.lead_id for row in given], "company")
    referrers = names_of(session, actor, ACCOUNTS.model, [row.referrer_account_id for row in received])

    def body(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "lead_id": row.lead_id,
            "lead_name": leads.get(row.lead_id),
            "lead_company": companies.get(row.lead_id),
            "referrer_account_id": row.referrer_account_id,
            "referrer_name": referrers.get(row.referrer_account_id),
            "referred_at": row.referred_at,
            "notes": row.notes,
        }

    return [body(row) for row in given], [body(row) for row in received]


def _section(
    session: Session, actor: Actor, record_type: records.RecordType[Any], params: dict[str, str]
) -> list[dict[str, Any]]:
    if not actor.can(f"{record_type.plural}:read"):
        return []
    return records.read_page(session, actor, record_type, {"limit": "100", **params}).items


@router.get("/accounts/{account_id}")
def account_page(request: Request, account_id: int) -> Response:
    user, actor = require_user(request)
    return _account_page(request, user, actor, account_id)


def _account_page(
    request: Request,
    user: User,
    actor: Actor,
    account_id: int,
    *,
    transfer_error: str | None = None,
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    with database_of(request).reading(actor) as session:
        account = records.read_one(session, actor, ACCOUNTS, account_id)
        contracts = (
            _section(session, actor, CONTRACTS, {"account_id": str(account_id), "sort": "-id"})
            if actor.can("contracts:read")
            else None
        )
        # an account read through the rep's own deal (implicit parent read) is neither edited nor handed on
        writable = actor.can("accounts:write") and records.may_write_item(actor, ACCOUNTS, account)
        transfer_flow = writable and approvals.has_flow(session, actor, "account_transfer")
        transfer_to = (
            [
                (i, name)
                for i, name in _transfer_candidates(session, actor, transfer_flow)
                if i != account.get("owner_id")
            ]
            if writable
            else []
        )
        owner_names = names_of(session, actor, User, [account.get("owner_id")], "display_name")
        region = names_of(session, actor, Region, [account.get("region_id")])
        activities, next_cursor, people, contact_names = (
            _timeline(session, actor, account_id, None) if actor.can("activities:read") else ([], None, {}, {})
        )
        contacts = _section(session, actor, CONTACTS, {"account_id": str(account_id), "sort": "name"})
        opportunities = _section(session, actor, OPPORTUNITIES, {"account_id": str(account_id), "sort": "-opened_at"})
        orders = _section(session, actor, ORDERS, {"account_id": str(account_id), "sort": "-ordered_at"})
        tickets = _section(session, actor, TICKETS, {"account_id": str(account_id), "sort": "-opened_at"})
        given, received = _referrals(session, actor, account_id)
        decisions = automation.account_decisions(
            session, actor, account_id,
            {"opportunity": [o["id"] for o in opportunities], "contact": [c["id"] for c in contacts],
             "ticket": [t["id"] for t in tickets], "order": [o["id"] for o in orders]},
        )  # fmt: skip
        custom_rows = _custom_rows(session, actor, account, locale)
        changes = (
            history.record_history(session, actor, ACCOUNTS, account_id, limit=30).items
            if actor.can("history:read")
            else []
        )
        people.update(names_of(session, actor, User, [entry.get("actor_user_id") for entry in changes], "display_name"))
        people.update(owner_names)
    today = utcnow().date()
    chain: dict[str, list[dict[str, Any]]] = {role: [] for role in DECISION_ROLES}
    for contact in contacts:
        confirmed = contact.get("title_confirmed_on")
        if isinstance(confirmed, str):
            confirmed = date.fromisoformat(confirmed)
        contact["freshness"] = freshness(confirmed, today)
        chain[contact.get("decision_role") or ""].append(contact)
    repurchases = _repurchases(opportunities, orders)
    open_amount = sum(
        (
            item["amount"]
            for item in opportunities
            if item.get("amount") is not None and item["stage"] not in ("won", "lost")
        ),
        start=0,
    )
    won_amount = sum(
        (item["amount"] for item in opportunities if item.get("amount") and item["stage"] == "won"), start=0
    )
    context = {
        "user": user,
        "actor": actor,
        "account": account,
        "owner_name": owner_names.get(account.get("owner_id") or 0),
        "region_name": region.get(account.get("region_id") or 0),
        "activities": activities,
        "next_cursor": next_cursor,
        "people": people,
        "contact_names": contact_names,
        "chain": [(role, label, chain[role]) for role, label in DECISION_ROLES.items() if chain[role]],
        "contacts_count": len(contacts),
        "opportunities": opportunities,
        "orders": orders,
        "repurchases": repurchases,
        "tickets": tickets,
        "given": given,
        "received": received,
        "custom_rows": custom_rows,
        "changes": changes,
        "kinds": KINDS,
        "stages": STAGES,
        "order_statuses": ORDER_STATUSES,
        "ticket_statuses": TICKET_STATUSES,
        "priorities": PRIORITIES,
        "sizes": SIZES,
        "field_labels": FIELD_LABELS,
        "actions": ACTIONS,
        "open_amount": open_amount,
        "won_amount": won_amount,
        "can_edit": writable,
        "read_only": actor.can("accounts:write") and not writable,
        "contracts": contracts,
        "contract_statuses": CONTRACT_STATUSES,
        "transfer_to": transfer_to,
        "transfer_flow": transfer_flow,
        "transfer_error": transfer_error,
        "decisions": decisions,
        "decisions_back": f"/accounts/{account_id}",
        "decisions_log": f"/automation/decisions?record_type=account&record_id={account_id}",
    }
    return render(request, "accounts/account.html", context, status_code=status_code)


def _transfer_candidates(session: Session, actor: Actor, with_flow: bool) -> list[tuple[int, str]]:
    """Who an account may be handed to from its page: under an ``account_transfer`` flow, any active
    seller of the organization (the approvers decide); without one, the people the actor may assign
    records to themselves (the account service's owner check)."""
    if not actor.can("accounts:write"):
        return []
    if not with_flow:
        return assignable_users(session, actor)
    rows = session.execute(
        select(User.id, User.display_name)
        .where(tenant_clause(actor.organization_id, User), User.is_active.is_(True), User.role.in_(SELLING_ROLES))
        .order_by(User.display_name)
    )
    return [(row[0], str(row[1])) for row in rows]


@router.post("/accounts/{account_id}/transfer")
def transfer_account(
    request: Request, account_id: int, csrf: str = Form(""), to_owner_id: str = Form(""), reason: str = Form("")
) -> Response:
    """Hand the account to another person: through the approval engine's ``account_transfer``
    flow when the organization keeps one, else at once when the account service allows it
    (logged as "transferred" in the owner history)."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    why = reason.strip()[:500]
    try:
        if not to_owner_id.strip().isdecimal():
            raise ValidationFailed.one("to_owner_id", "choose the new owner", "required")
        if not why:
            raise ValidationFailed.one("reason", "give the reason for the transfer", "required")
        target = int(to_owner_id)
        with database_of(request).unit_of_work(actor) as session:
            records.read_one(session, actor, ACCOUNTS, account_id)  # 404 outside the reader's reach
            with_flow = approvals.has_flow(session, actor, "account_transfer")
            if target not in {i for i, _ in _transfer_candidates(session, actor, with_flow)}:
                raise ValidationFailed.one("to_owner_id", "you cannot hand records to this person", "out_of_scope")
            if with_flow:
                approval = approvals.submit(
                    session,
                    actor,
                    record_type="account_transfer",
                    record_id=account_id,
                    details={"to_owner_id": target, "reason": why},
                )
                return RedirectResponse(f"/approvals/{approval.id}", status_code=303)
            pools.transfer(session, actor, account_id=account_id, user_id=target, reason=why)
            try:
                records.read_one(session, actor, ACCOUNTS, account_id)
                after = f"/accounts/{account_id}"
            except NotFound:
                after = "/accounts"  # handed out of the reader's own reach
    except DomainError as error:
        if error.status == 404:
            raise
        message, details = problem_text(error, locale_of(request))
        text = "; ".join(f"{label}: {said}" for label, said in details) if details else message
        return _account_page(request, user, actor, account_id, transfer_error=text, status_code=error.status)
    return RedirectResponse(after, status_code=303)


@router.get("/accounts/{account_id}/timeline")
def account_timeline(request: Request, account_id: int, cursor: str | None = None) -> Response:
    """The next page of the timeline (HTMX "load more"); the whole page without HTMX."""
    user, actor = require_user(request)
    if not is_htmx(request):
        return account_page(request, account_id)
    with database_of(request).reading(actor) as session:
        records.read_one(session, actor, ACCOUNTS, account_id)  # 404 outside the scope
        activities, next_cursor, people, contact_names = _timeline(session, actor, account_id, cursor)
    context = {
        "user": user,
        "actor": actor,
        "account": {"id": account_id},
        "activities": activities,
        "next_cursor": next_cursor,
        "people": people,
        "contact_names": contact_names,
        "kinds": KINDS,
    }
    return render(request, "accounts/timeline.html", context)


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, contact_id: int) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        contact = records.read_one(session, actor, CONTACTS, contact_id)
        accounts = names_of(session, actor, ACCOUNTS.model, [contact.get("account_id")])
        owners = names_of(session, actor, User, [contact.get("owner_id")], "display_name")
    confirmed = contact.get("title_confirmed_on")
    if isinstance(confirmed, str):
        confirmed = date.fromisoformat(confirmed)
    context = {
        "user": user,
        "actor": actor,
        "contact": contact,
        "account_name": accounts.get(contact.get("account_id") or 0),
        "owner_name": owners.get(contact.get("owner_id") or 0),
        "freshness": freshness(confirmed, utcnow().date()),
        "roles": DECISION_ROLES,
        "can_edit": actor.can("contacts:write"),
    }
    return render(request, "accounts/contact.html", context)
