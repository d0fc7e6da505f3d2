"""Pool pages (CN-1, 私海/公海): the public pool with claim buttons and the caller's caps, my private
pool with release / lock and the days left before recycling, pool settings for admins; and the
duplicate check (CN-2) shown live on the account form. The same services as the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.org.models import Department, Region, User
from closeloop.pools import duplicates
from closeloop.pools import service as pools
from closeloop.pools.models import RULE_FIELDS, DuplicateMode, Pool
from closeloop.pools.preview import creation_preview, next_run, recycle_preview
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

REASON_LABELS = {
    "protection_expired": N_("Protection period over"),
    "no_follow_up": N_("No follow-up"),
    "no_opportunity": N_("No new opportunity"),
    "no_deal": N_("No deal won"),
}
RULE_LABELS = {
    "follow_up_days": N_("No follow-up for (days)"),
    "opportunity_days": N_("No new opportunity for (days)"),
    "deal_days": N_("No deal won for (days)"),
    "protection_days": N_("Protection period (days)"),
}
CAP_LABELS = {
    "remind_days": N_("Remind the owner (days before)"),
    "daily_claim_cap": N_("Claims per person per day"),
    "holding_cap": N_("Accounts held per person"),
    "lock_cap": N_("Locked accounts per person"),
    "cooldown_days": N_("Cooldown before the previous owner may claim again (days)"),
}
MODE_LABELS = {
    "block": N_("Block duplicates"),
    "warn": N_("Warn, and let them through"),
    "off": N_("No duplicate check"),
}
TIERS = ("A", "B", "C")


def refusal_text(error: DomainError, locale: str) -> str:
    """A refusal in the reader's language (pool rules carry both)."""
    if locale.startswith("zh") and error.extra.get("message_zh"):
        return str(error.extra["message_zh"])
    return error.message


def _member_pools(session: Any, actor: Actor) -> list[Pool]:
    return [pool for pool in pools.list_pools(session, actor) if pools.is_member(session, actor, pool)]


@router.get("/pools")
def public_pool(request: Request, pool: int | None = None, q: str | None = None, cursor: int | None = None) -> Response:
    user, actor = require_user(request)
    return _public_page(request, user, actor, pool, q, cursor)


def _public_page(
    request: Request,
    user: User,
    actor: Actor,
    pool_id: int | None,
    q: str | None,
    cursor: int | None,
    *,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    with database_of(request).reading(actor) as session:
        available = _member_pools(session, actor)
        chosen = next((p for p in available if p.id == pool_id), available[0] if available else None)
        items: list[dict[str, Any]] = []
        next_cursor = None
        caps = None
        regions: dict[int, str] = {}
        if chosen is not None:
            items, next_cursor = pools.public_accounts(session, actor, chosen.id, limit=50, after_id=cursor, q=q)
            caps = pools.caps(session, actor, chosen)
            regions = dict(
                session.execute(
                    select(Region.id, Region.name).where(tenant_clause(actor.organization_id, Region))
                ).all()
            )
    context = {
        "user": user,
        "actor": actor,
        "pools": available,
        "pool": chosen,
        "items": items,
        "next_cursor": next_cursor,
        "caps": caps,
        "q": q or "",
        "regions": regions,
        "message": message,
        "manageable": chosen is not None and pools.can_manage(actor, chosen),
    }
    return render(request, "pools/public.html", context, status_code=status_code)


@router.post("/pools/{pool_id}/claim/{account_id}")
def claim(request: Request, pool_id: int, account_id: int, csrf: str = Form("")) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            pools.claim(session, actor, account_id=account_id, pool_id=pool_id)
    except DomainError as error:
        text = refusal_text(error, locale_of(request))
        return _public_page(request, user, actor, pool_id, None, None, message=text, status_code=error.status)
    return RedirectResponse(f"/pools?pool={pool_id}", status_code=303)


@router.get("/pools/mine")
def private_pool(request: Request) -> Response:
    user, actor = require_user(request)
    return _private_page(request, user, actor)


def _private_page(
    request: Request, user: User, actor: Actor, *, message: str | None = None, status_code: int = 200
) -> Response:
    now = utcnow()
    with database_of(request).reading(actor) as session:
        held = pools.private_accounts(session, actor)
        by_id = {p.id: p for p in pools.list_pools(session, actor)}
    rows = [
        {"held": h, "days_left": h.days_left(now), "pool": by_id.get(h.pool_id) if h.pool_id else None} for h in held
    ]
    context = {
        "user": user,
        "actor": actor,
        "rows": rows,
        "reason_labels": REASON_LABELS,
        "message": message,
        "locked_count": sum(1 for h in held if h.locked),
    }
    return render(request, "pools/mine.html", context, status_code=status_code)


@router.post("/pools/mine/{account_id}/{action}")
def change_mine(
    request: Request, account_id: int, action: str, csrf: str = Form(""), reason: str = Form("")
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    try:
        with database_of(request).unit_of_work(actor) as session:
            if action == "release":
                pools.release(session, actor, account_id=account_id, reason=reason.strip()[:300] or None)
            elif action in ("lock", "unlock"):
                pools.set_lock(session, actor, account_id=account_id, locked=action == "lock")
            else:
                raise ValidationFailed.one("action", "is release, lock or unlock")
    except DomainError as error:
        text = refusal_text(error, locale_of(request))
        return _private_page(request, user, actor, message=text, status_code=error.status)
    return RedirectResponse("/pools/mine", status_code=303)


@router.get("/pools/settings")
def settings_page(request: Request) -> Response:
    user, actor = require_user(request)
    return _settings_page(request, user, actor)


def _settings_page(
    request: Request,
    user: User,
    actor: Actor,
    *,
    message: str | None = None,
    status_code: int = 200,
    draft: tuple[int | str, dict[str, Any]] | None = None,
    confirm: bool = False,
) -> Response:
    """The settings of the pools the actor manages, each with what its next run would recycle; with
    ``draft`` (a pool's unsaved values, or ``"new"`` and a new pool's) that form keeps them and shows
    their impact beside the current rules' (``confirm``: saving them waits for a second "save anyway")."""
    compared: dict[str, Any] | None = None
    with database_of(request).reading(actor) as session:
        manageable = [p for p in pools.list_pools(session, actor) if pools.can_manage(actor, p)]
        impact = {p.id: recycle_preview(session, actor, pool_id=p.id, changes={}) for p in manageable}
        if draft is not None and draft[0] == "new":
            compared = {**creation_preview(session, actor, values=draft[1]), "key": "new"}
        elif draft is not None:
            compared = {**recycle_preview(session, actor, pool_id=int(draft[0]), changes=draft[1]), "key": draft[0]}
        shown: list[Any] = [
            {**pools.serialize_pool(p), **draft[1]} if draft is not None and p.id == draft[0] else p for p in manageable
        ]
        regions = list(
            session.execute(
                select(Region.id, Region.name).where(tenant_clause(actor.organization_id, Region)).order_by(Region.name)
            )
        )
        departments = list(
            session.execute(
                select(Department.id, Department.name)
                .where(tenant_clause(actor.organization_id, Department))
                .order_by(Department.name)
            )
        )
        mode = pools.duplicate_mode(session, actor.organization_id)
    context = {
        "user": user,
        "actor": actor,
        "pools": shown,
        "impact": impact,
        "next_run": next_run(utcnow()),
        "compared": compared,
        "new_draft": draft[1] if draft is not None and draft[0] == "new" else None,
        "confirm": confirm,
        "reason_labels": REASON_LABELS,
        "regions": regions,
        "departments": departments,
        "rule_labels": RULE_LABELS,
        "cap_labels": CAP_LABELS,
        "mode_labels": MODE_LABELS,
        "mode": mode.value,
        "tiers": TIERS,
        "may_create": actor.can("pools:manage"),
        "message": message,
    }
    return render(request, "pools/settings.html", context, status_code=status_code)


def _days(form: Any, name: str) -> int | None:
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed.one(name, "must be a whole number of days") from None


def _pool_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": str(form.get("name") or "").strip()}
    values["region_ids"] = [int(r) for r in form.getlist("region_ids") if str(r).isdecimal()]
    values["department_ids"] = [int(d) for d in form.getlist("department_ids") if str(d).isdecimal()]
    for name in (*RULE_FIELDS, *CAP_LABELS):
        values[name] = _days(form, name)
    values["exempt_won"] = bool(form.get("exempt_won"))
    values["exempt_open_opportunities"] = bool(form.get("exempt_open_opportunities"))
    tier_rules: dict[str, dict[str, int | None]] = {}
    for tier in TIERS:
        overrides = {name: _days(form, f"tier_{tier}_{name}") for name in RULE_FIELDS}
        if any(value is not None for value in overrides.values()):
            tier_rules[tier] = {k: v for k, v in overrides.items() if v is not None}
    values["tier_rules"] = tier_rules
    if not values["name"]:
        raise ValidationFailed.one("name", "may not be empty", "required")
    return values


@router.post("/pools/settings")
async def save_settings(request: Request) -> Response:
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    target = str(form.get("pool_id") or "")
    try:
        if (target.isdecimal() or target == "new") and not form.get("duplicate_mode"):
            values = _pool_values(form)
            key: int | str = int(target) if target.isdecimal() else target
            if form.get("preview"):  # only look: the same form, kept, with the impact of its rules
                return _settings_page(request, user, actor, draft=(key, values))
            if not form.get("confirm"):
                with database_of(request).reading(actor) as session:
                    if key == "new":
                        more = creation_preview(session, actor, values=values)["more"]
                    else:
                        more = recycle_preview(session, actor, pool_id=int(key), changes=values)["more"]
                if more > 0:  # the change would take back more accounts at the next run: say so first
                    return _settings_page(request, user, actor, draft=(key, values), confirm=True)
        with database_of(request).unit_of_work(actor) as session:
            if form.get("duplicate_mode"):
                pools.set_duplicate_mode(session, actor, DuplicateMode(str(form.get("duplicate_mode"))))
            elif target == "new":
                pools.create_pool(session, actor, _pool_values(form))
            else:
                pools.update_pool(session, actor, int(target), _pool_values(form))
    except (DomainError, ValueError) as error:
        text = refusal_text(error, locale_of(request)) if isinstance(error, DomainError) else str(error)
        status = error.status if isinstance(error, DomainError) else 422
        return _settings_page(request, user, actor, message=text, status_code=status)
    return RedirectResponse("/pools/settings", status_code=303)


@router.post("/pools/duplicates")
async def duplicate_check(request: Request) -> Response:
    """The account and lead forms' live warning: companies or numbers of the organization that match."""
    user, actor = require_user(request)
    require_csrf(request)
    form = await request.form()
    lead = "company" in form  # the lead form names the company and the mobile differently
    name = str(form.get("company" if lead else "name") or "").strip()[:200] or None
    number = (form.get("mobile") or form.get("phone")) if lead else form.get("phone")
    phone = str(number or "").strip()[:40] or None
    with database_of(request).reading(actor) as session:
        matches = duplicates.find_matches(session, actor, name=name, mobile=phone) if (name or phone) else []
        mode = pools.duplicate_mode(session, actor.organization_id)
    return render(
        request, "pools/duplicates.html", {"user": user, "actor": actor, "matches": matches, "mode": mode.value}
    )
