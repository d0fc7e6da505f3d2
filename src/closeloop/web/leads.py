"""The lead inbox: unassigned leads, mine and (for managers) my team's; assigning; and converting a
lead into an account, a contact and an opportunity in one step, with a warning when an account
with a similar name exists (characters and pinyin, legal-form suffixes ignored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import ValidationFailed
from closeloop.core.messages import CHOICE_LABELS
from closeloop.crm import records
from closeloop.crm.leads import service as lead_service
from closeloop.crm.leads.schemas import LeadConvert
from closeloop.crm.leads.service import LEADS
from closeloop.db.scope import RowAccess, visibility_clause
from closeloop.org.models import User
from closeloop.pools import duplicates
from closeloop.quality.similar import similar_accounts
from closeloop.web.accounts import names_of
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

PAGE = 25
OPEN_STATUSES = "new,working,qualified"
TABS = {"unassigned": N_("Unassigned"), "mine": N_("Mine"), "team": N_("My team's")}
STATUSES = {
    "new": N_("New"),
    "working": N_("Working"),
    "qualified": N_("Qualified"),
    "converted": N_("Converted"),
    "disqualified": N_("Disqualified"),
}
#: the lead sources offered, in this order, in the words the picklists use everywhere
SOURCES = {
    code: CHOICE_LABELS[code]
    for code in ("website", "referral", "event", "trade_show", "cold_call", "inbound_call", "advertising",
                 "partner", "social", "tender", "import", "other")
}  # fmt: skip


def _sees_team(actor: Actor) -> bool:
    return actor.scope is not RowScope.OWN


def _assignees(request: Request, actor: Actor) -> list[tuple[int, str]]:
    """The people a manager may hand a lead to: their team (or, with the whole organization in
    scope, every active rep and manager)."""
    if not _sees_team(actor):
        return []
    with database_of(request).reading(actor) as session:
        statement = select(User.id, User.display_name).where(
            visibility_clause(actor, User, access=RowAccess.READ),
            User.is_active.is_(True),
            User.role.in_(("rep", "manager")),
        )
        if actor.scope is RowScope.TEAM:
            statement = statement.where(User.id.in_(sorted(actor.owner_ids)))
        return [(row[0], row[1]) for row in session.execute(statement.order_by(User.display_name))]


@router.get("/leads/inbox")
def inbox(request: Request, tab: str = "unassigned", cursor: str | None = None) -> Response:
    user, actor = require_user(request)
    if tab not in TABS or (tab == "team" and not _sees_team(actor)):
        tab = "unassigned"
    params: dict[str, str] = {"status__in": OPEN_STATUSES, "sort": "-received_at", "limit": str(PAGE)}
    if tab == "unassigned":
        params["owner_id__isnull"] = "true"
    elif tab == "mine":
        params["owner_id"] = str(user.id)
    else:
        params["owner_id__isnull"] = "false"
        params["owner_id__ne"] = str(user.id)
    if cursor:
        params["cursor"] = cursor
    with database_of(request).reading(actor) as session:
        page = records.read_page(session, actor, LEADS, params)
        owners = names_of(session, actor, User, (item.get("owner_id") for item in page.items), "display_name")
    context = {
        "user": user,
        "actor": actor,
        "tab": tab,
        "tabs": [(key, label) for key, label in TABS.items() if key != "team" or _sees_team(actor)],
        "leads": page.items,
        "next_cursor": page.next_cursor,
        "owners": owners,
        "assignees": _assignees(request, actor),
        "statuses": STATUSES,
        "sources": SOURCES,
        "can_write": actor.can("leads:write"),
        "notice": request.query_params.get("done"),
    }
    return render(request, "leads/inbox.html", context)


@router.post("/leads/{lead_id}/assign")
def assign(
    request: Request, lead_id: int, csrf: str = Form(""), owner: str = Form("me"), tab: str = Form("")
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    if owner == "me":
        owner_id: int | None = user.id
    elif owner == "inbox":
        owner_id = None
    elif owner.isdecimal():
        owner_id = int(owner)
    else:
        raise ValidationFailed.one("owner", "choose a person to assign the lead to")
    with database_of(request).unit_of_work(actor) as session:
        lead_service.assign_lead(session, actor, lead_id=lead_id, owner_id=owner_id)
    back = tab if tab in TABS else "unassigned"
    return RedirectResponse(f"/leads/inbox?tab={back}&done=assigned", status_code=303)


def _lead_context(request: Request, user: User, actor: Actor, lead_id: int) -> dict[str, Any]:
    with database_of(request).reading(actor) as session:
        lead = records.read_one(session, actor, LEADS, lead_id)
        similar = similar_accounts(session, actor, lead.get("company") or lead.get("name"))
        owners = names_of(
            session, actor, User, [lead.get("owner_id"), *(item["owner_id"] for item in similar)], "display_name"
        )
        # CN-2's check across the whole organization (pools.duplicates, the matcher the account
        # service's collision guard uses): accounts the actor cannot see, pooled accounts and
        # unconverted leads too, their owners masked (张** · 华东区)
        offered = {item["id"] for item in similar}
        elsewhere = [
            match
            for match in duplicates.find_matches(
                session,
                actor,
                name=lead.get("company") or lead.get("name"),
                mobile=lead.get("mobile") or lead.get("phone"),
                exclude_lead_id=lead_id,
            )
            if not (match.kind == "account" and match.id in offered)
        ]
    return {
        "user": user,
        "actor": actor,
        "lead": lead,
        "similar": similar,
        "elsewhere": elsewhere,
        "owners": owners,
        "statuses": STATUSES,
        "sources": SOURCES,
        "can_write": actor.can("leads:write"),
    }


@router.get("/leads/{lead_id}")
def lead_page(request: Request, lead_id: int) -> Response:
    user, actor = require_user(request)
    return render(request, "leads/lead.html", _lead_context(request, user, actor, lead_id))


@router.get("/leads/{lead_id}/convert")
def convert_page(request: Request, lead_id: int) -> Response:
    user, actor = require_user(request)
    return render(request, "leads/convert.html", {**_lead_context(request, user, actor, lead_id), "error": None})


@router.post("/leads/{lead_id}/convert")
def convert(
    request: Request,
    lead_id: int,
    csrf: str = Form(""),
    account: str = Form("new"),
    create_opportunity: str = Form(""),
) -> Response:
    """One transaction through the conversion service: the account (existing or new), the contact
    and the opportunity, the lead marked converted, all audited."""
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    if account != "new" and not account.isdecimal():
        raise ValidationFailed.one("account", "choose an existing account or a new one")
    data = LeadConvert(
        account_id=int(account) if account.isdecimal() else None, create_opportunity=bool(create_opportunity)
    )
    with database_of(request).unit_of_work(actor) as session:
        conversion = lead_service.convert_lead(session, actor, lead_id=lead_id, data=data)
        account_id = conversion.account.id
    return RedirectResponse(f"/accounts/{account_id}", status_code=303)
