"""Dashboard pages: the closed-loop funnel (CRM-2) with the records behind each step, the
performance dashboard (UI-2) with drill-down and alert thresholds set on its chart, and the
lineage views of fields, metrics and dashboards (GOV-4).

Every number comes from the same services as the API (``crm/funnel``, ``crm/performance``,
``crm/lineage``), computed as the signed-in actor: their row scope, their field masks.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.core.messages import CHOICE_LABELS
from closeloop.crm import lineage, metrics, performance
from closeloop.crm.accounts.models import Account
from closeloop.crm.alerts import service as alerts
from closeloop.crm.funnel.service import STEPS, FunnelFilters, MoneyBasis, measure_funnel, step_records
from closeloop.crm.products.models import ProductLine
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.org.models import Region, User
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

STEP_LABELS = {
    "lead": N_("Lead"),
    "opportunity": N_("Opportunity"),
    "won": N_("Won"),
    "repurchase": N_("Repurchase"),
    "referral": N_("Referral"),
}
DIMENSION_LABELS = {
    "quarter": N_("Quarter"),
    "region": N_("Region"),
    "owner": N_("Rep"),
    "account": N_("Customer"),
    "product_line": N_("Product line"),
}
NONE_LABELS = {
    "quarter": N_("No quarter"),
    "region": N_("No region"),
    "owner": N_("No owner"),
    "account": N_("No customer"),
    "product_line": N_("No product line"),
}
PERIOD_LABELS = {
    "all": N_("All time"),
    "quarter": N_("This quarter to date"),
    "year": N_("This year to date"),
    "last_90_days": N_("Last 90 days"),
}
STAGE_LABELS = {
    code: CHOICE_LABELS[code] for code in ("prospecting", "qualification", "proposal", "negotiation", "won", "lost")
}
LEAD_STATUS_LABELS = {
    "new": N_("New"),
    "working": N_("Working"),
    "contacted": N_("Contacted"),
    "qualified": N_("Qualified"),
    "converted": N_("Converted"),
    "disqualified": N_("Disqualified"),
}
REFRESH_LABELS = {
    "on_read": N_("Computed from the records each time the page is read"),
    "hourly": N_("Checked hourly by the background worker"),
    "nightly": N_("Computed nightly by the background worker"),
}


# --- shared -------------------------------------------------------------------------------------


def _options(session: Session, actor: Actor) -> dict[str, list[tuple[str, str]]]:
    """Choices for the filters: people within the actor's reach, the organization's regions and
    product lines, and the industries of the accounts they can see."""
    users = select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User), User.is_active)
    if actor.scope is not RowScope.ALL:
        users = users.where(User.id.in_(sorted(actor.owner_ids)))
    regions = select(Region.id, Region.name).where(tenant_clause(actor.organization_id, Region))
    lines = select(ProductLine.id, ProductLine.name).where(tenant_clause(actor.organization_id, ProductLine))
    industries = (
        select(Account.industry)
        .where(visibility_clause(actor, Account, access=RowAccess.READ), Account.industry.is_not(None))
        .distinct()
    )
    return {
        "owners": [(str(i), n) for i, n in session.execute(users.order_by(User.display_name))],
        "regions": [(str(i), n) for i, n in session.execute(regions.order_by(Region.name))],
        "product_lines": [(str(i), n) for i, n in session.execute(lines.order_by(ProductLine.name))],
        "industries": [(str(v), str(v)) for v in session.scalars(industries.order_by(Account.industry).limit(200))],
    }


def _int(request: Request, name: str) -> int | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    if not (raw.isdecimal()) or not 0 < int(raw) < 2**63:
        raise ValidationFailed.one(name, "must be a record id")
    return int(raw)


def _day(request: Request, name: str) -> date | None:
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed.one(name, "must be a date such as 2025-07-01") from None


def _funnel_filters(request: Request) -> FunnelFilters:
    industry = (request.query_params.get("industry") or "").strip()[:80] or None
    return FunnelFilters(
        start=_day(request, "start"),
        end=_day(request, "end"),
        owner_id=_int(request, "owner_id"),
        region_id=_int(request, "region_id"),
        product_line_id=_int(request, "product_line_id"),
        industry=industry,
    )


def _filter_query(filters: FunnelFilters) -> str:
    values = {
        "start": filters.start.isoformat() if filters.start else None,
        "end": filters.end.isoformat() if filters.end else None,
        "owner_id": filters.owner_id,
        "region_id": filters.region_id,
        "product_line_id": filters.product_line_id,
        "industry": filters.industry,
    }
    return urlencode({k: v for k, v in values.items() if v is not None})


# --- the funnel ---------------------------------------------------------------------------------


@router.get("/funnel")
def funnel_page(request: Request) -> Response:
    user, actor = require_user(request)
    filters = _funnel_filters(request)
    basis = MoneyBasis.COLLECTIONS if request.query_params.get("basis") == "collections" else MoneyBasis.BOOKINGS
    with database_of(request).reading(actor) as session:
        funnel = measure_funnel(session, actor, filters=filters, basis=basis)
        options = _options(session, actor)
    query = _filter_query(filters)
    translate = _translator(request)
    steps = []
    first = funnel.steps[0].count if funnel.steps else 0
    for step in funnel.steps:
        steps.append(
            {
                "step": step.step,
                "label": translate(STEP_LABELS[step.step]),
                "count": step.count,
                "from_previous": step.from_previous,
                "conversion": step.conversion_rate,
                "days": step.median_days_from_previous,
                "share": step.count / first if first else None,
                "extra": step.extra,
                "url": f"/funnel/{step.step}" + (f"?{query}" if query else ""),
                "lineage": f"/lineage/metric/funnel.{step.step}",
            }
        )
    context = {
        "user": user,
        "actor": actor,
        "steps": steps,
        "filters": filters,
        "options": options,
        "query": query,
        "basis": basis.value,
        "other_basis": (MoneyBasis.BOOKINGS if basis is MoneyBasis.COLLECTIONS else MoneyBasis.COLLECTIONS).value,
    }
    template = "dashboards/_funnel_body.html" if is_htmx(request) else "dashboards/funnel.html"
    return render(request, template, context)


@router.get("/funnel/{step}")
def funnel_step_page(request: Request, step: str) -> Response:
    user, actor = require_user(request)
    if step not in STEPS:
        raise ValidationFailed.one("step", "is not a step of the funnel", "unknown")
    filters = _funnel_filters(request)
    cursor = _int(request, "cursor")
    with database_of(request).reading(actor) as session:
        found = step_records(session, actor, step, filters=filters, cursor=cursor)
        options = _options(session, actor)
    query = _filter_query(filters)
    context = {
        "user": user,
        "actor": actor,
        "step": step,
        "step_label": STEP_LABELS[step],
        "found": found,
        "filters": filters,
        "options": options,
        "query": query,
        "stage_labels": STAGE_LABELS,
        "lead_status_labels": LEAD_STATUS_LABELS,
        "next_url": (f"/funnel/{step}?" + urlencode({**dict(request.query_params), "cursor": found["next_cursor"]}))
        if found["next_cursor"]
        else None,
    }
    return render(request, "dashboards/funnel_step.html", context)


# --- the performance dashboard ------------------------------------------------------------------


def _drill(request: Request) -> tuple[performance.Slice, str, str | None]:
    params = {name: value for name, value in request.query_params.items() if name in performance.DIMENSIONS}
    deals = performance.Slice.from_params(
        {**params, "start": request.query_params.get("start", ""), "end": request.query_params.get("end", "")}
    )
    first = request.query_params.get("first") or "region"
    if first not in performance.DIMENSIONS:
        raise ValidationFailed.one("first", "is not a dimension")
    by = request.query_params.get("by") or performance.next_dimension(first, deals.fixed_dimensions)
    # a formula field is a dimension too (checked by the breakdown against the reader's formulas)
    if by is not None and by not in performance.DIMENSIONS and not by.startswith(performance.FORMULA_PREFIX):
        raise ValidationFailed.one("by", "is not a dimension")
    return deals, first, by


def _url(deals: performance.Slice, first: str, by: str | None, basis: MoneyBasis = MoneyBasis.BOOKINGS) -> str:
    params: dict[str, str] = {"first": first, **deals.as_params()}
    if by:
        params["by"] = by
    if basis is not MoneyBasis.BOOKINGS:
        params["basis"] = basis.value
    return "/dashboard?" + urlencode(params)


def _performance_context(request: Request, user: User, actor: Actor, **extra: Any) -> dict[str, Any]:
    deals, first, by = _drill(request)
    basis = MoneyBasis.COLLECTIONS if request.query_params.get("basis") == "collections" else MoneyBasis.BOOKINGS
    translate = _translator(request)
    with database_of(request).reading(actor) as session:
        answer = performance.breakdown(session, actor, deals, by=by, basis=basis)
        mine = [alerts.serialize(session, actor, row) for row in alerts.mine(session, actor)]
        formulas = performance.formula_fields(session, actor)
    english = locale_of(request).startswith("en")
    formula_measures = [
        {"key": key, "name": f.label_en if english else f.label_zh} for key, f in formulas.items() if f.is_measure
    ]
    formula_dimensions = {key: f.label_en if english else f.label_zh for key, f in formulas.items() if not f.is_measure}
    published = metrics.registry()
    bars: list[dict[str, Any]] = []
    for bar in answer.bars:
        deeper = deals.with_value(by, bar.key or performance.NONE) if by and by not in formulas else None
        following = performance.next_dimension(first, deeper.fixed_dimensions) if deeper else None
        label = bar.label if bar.key != performance.NONE else translate(NONE_LABELS.get(by or "region", N_("No value")))
        bars.append(
            {
                "label": label,
                "revenue": bar.revenue,
                "won": bar.won_deals,
                "closed": bar.closed_deals,
                "win_rate": bar.win_rate,
                "avg_margin": bar.avg_margin,
                "formulas": bar.formulas,
                "url": _url(deeper, first, following, basis) if deeper is not None and following else None,
            }
        )
    crumbs = [
        {"label": translate(N_("All")), "url": _url(performance.Slice((), deals.start, deals.end), first, None, basis)}
    ]
    for index, crumb in enumerate(answer.crumbs):
        kept = performance.Slice(deals.fixed[: index + 1], deals.start, deals.end)
        dimension = crumb["dimension"]
        label = crumb["label"] if crumb["value"] != performance.NONE else translate(NONE_LABELS[dimension])
        crumbs.append(
            {
                "label": label,
                "dimension": translate(DIMENSION_LABELS[dimension]),
                "url": _url(kept, first, performance.next_dimension(first, kept.fixed_dimensions), basis),
            }
        )
    chart = {
        "bars": [
            {
                "label": bar["label"],
                "revenue": float(bar["revenue"] or 0),
                "win_rate": bar["win_rate"],
                "url": bar["url"],
            }
            for bar in bars
        ],
        "revenue_label": translate(N_("Revenue")),
        "win_rate_label": translate(N_("Win rate")),
        "locale": locale_of(request),
    }
    return {
        "user": user,
        "actor": actor,
        "answer": answer,
        "bars": bars,
        "crumbs": crumbs,
        "chart": chart,
        "by": by,
        "first": first,
        "deals": deals,
        "dimension_labels": DIMENSION_LABELS,
        "period_labels": PERIOD_LABELS,
        "metrics": [published.metric(key) for key in answer.metrics if key in published.metrics],
        "alertable": [
            published.metric(key) for key in answer.metrics if key in published.metrics and key != "closed_deals"
        ],
        "formula_measures": formula_measures,
        "formula_dimensions": formula_dimensions,
        "formula_urls": {key: _url(deals, first, key, basis) for key in formula_dimensions},
        "by_label": formula_dimensions.get(by or "") or (translate(DIMENSION_LABELS[by]) if by else ""),
        "alerts": mine,
        "scope_text": " · ".join(crumb["label"] for crumb in crumbs[1:]) or translate(N_("Everything you can see")),
        "here": _url(deals, first, by, basis),
        "basis": basis.value,
        "other_basis_url": _url(
            deals, first, by, MoneyBasis.BOOKINGS if basis is MoneyBasis.COLLECTIONS else MoneyBasis.COLLECTIONS
        ),
        "form": {"metric": "win_rate", "direction": "below", "value": "", "period": "quarter"},
        "alert_error": None,
        "alert_saved": False,
        **extra,
    }


def _translator(request: Request) -> Any:
    from closeloop.web.i18n import translations

    return translations(locale_of(request)).gettext


@router.get("/dashboard")
def performance_page(request: Request) -> Response:
    user, actor = require_user(request)
    return render(request, "dashboards/performance.html", _performance_context(request, user, actor))


def _threshold_from_form(form: Any, deals: performance.Slice) -> alerts.ThresholdCreate:
    metric = str(form.get("metric") or "")
    raw = str(form.get("value") or "").strip().replace(",", "").removesuffix("%")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationFailed.one("value", "must be a number") from None
    if metric and metric in metrics.registry().metrics and metrics.registry().metric(metric).unit == "ratio":
        value = value / 100  # the form asks for a percentage
    try:
        return alerts.ThresholdCreate.model_validate(
            {
                "metric": metric,
                "direction": form.get("direction"),
                "period": form.get("period") or "all",
                "value": value,
                "scope": dict(deals.fixed),
            }
        )
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "value"
        raise ValidationFailed.one(name, first["msg"]) from None


@router.post("/dashboard/alerts")
async def create_alert(request: Request) -> Response:
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    deals, _first, _by = _drill(request)
    values = {k: str(form.get(k) or "") for k in ("metric", "direction", "value", "period")}
    try:
        data = _threshold_from_form(form, deals)
        with database_of(request).unit_of_work(actor) as session:
            alerts.create(session, actor, data)
    except DomainError as error:
        translate = _translator(request)
        problem = error.problems[0] if error.problems else None
        message = translate(problem.message if problem else error.message)
        context = _performance_context(
            request, user, actor, form=values, alert_error={"field": problem.field if problem else "", "text": message}
        )
        # HTMX swaps only successful answers: the fragment carrying the error comes back as 200
        return render(request, "dashboards/_alerts.html", context, status_code=200 if is_htmx(request) else 422)
    return render(request, "dashboards/_alerts.html", _performance_context(request, user, actor, alert_saved=True))


@router.post("/dashboard/alerts/{threshold_id}/delete")
async def delete_alert(request: Request, threshold_id: int) -> Response:
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    with database_of(request).unit_of_work(actor) as session:
        alerts.delete(session, actor, threshold_id)
    return render(request, "dashboards/_alerts.html", _performance_context(request, user, actor))


# --- lineage ------------------------------------------------------------------------------------


def _lineage_context(user: User, actor: Actor, node: dict[str, Any]) -> dict[str, Any]:
    return {"user": user, "actor": actor, "node": node, "refresh_labels": REFRESH_LABELS}


@router.get("/lineage/metric/{key}")
def metric_lineage_page(request: Request, key: str) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        node = lineage.metric_lineage(session, actor, key)
    return render(request, "dashboards/lineage.html", _lineage_context(user, actor, node))


@router.get("/lineage/dashboard/{key}")
def dashboard_lineage_page(request: Request, key: str) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        node = lineage.dashboard_lineage(session, actor, key)
    return render(request, "dashboards/lineage.html", _lineage_context(user, actor, node))


@router.get("/lineage/{noun}/{field}")
def field_lineage_page(request: Request, noun: str, field: str) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        node = lineage.lineage(session, actor, noun, field)
    return render(request, "dashboards/lineage.html", _lineage_context(user, actor, {**node, "kind_of_node": "field"}))
