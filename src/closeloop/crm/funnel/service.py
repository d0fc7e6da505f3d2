"""The closed-loop funnel (CRM-2): lead → opportunity → won → repurchase → referral.

Each step is a subset of the one before, followed through the records' own links:

* **lead** — leads received in the period;
* **opportunity** — opportunities opened in the period (``from_previous`` of them came from those
  leads; the rest entered the pipeline directly, as imported deals do);
* **won** — those opportunities that were won;
* **repurchase** — accounts of those wins that ordered again after their first win (an order not
  belonging to a won opportunity);
* **referral** — those repurchasing accounts that referred a new lead after repurchasing.

Conversion is the share of the previous step that reached this one (for *opportunity*, the share of
leads converted into one). Days are medians between the two steps' dates. The cohort respects the
caller's row scope; later steps count the cohort's own accounts, whoever recorded their orders.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import OrderStatus, Stage
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine
from closeloop.crm.orders.models import Order
from closeloop.crm.products.models import Product
from closeloop.crm.referrals.models import Referral
from closeloop.db.functions import days_between
from closeloop.db.scope import AnySelect, RowAccess, tenant_clause, visibility_clause
from closeloop.governance.fields import masked_fields
from closeloop.governance.permissions import require

STEPS = ("lead", "opportunity", "won", "repurchase", "referral")


class MoneyBasis(StrEnum):
    """What counts as the won deals' money: their amounts when won (bookings), or what was collected
    on their contracts and approved (collections, CN-3)."""

    BOOKINGS = "bookings"
    COLLECTIONS = "collections"


#: the won money under a basis other than bookings: (session, actor, a SELECT of the won deals'
#: ids) → the money. ``closeloop.cash`` registers ``collections`` when imported (a layer above this
#: one, which may not import it).
WON_MONEY: dict[MoneyBasis, Callable[[Session, Actor, AnySelect], Decimal]] = {}


@dataclass(frozen=True, slots=True)
class FunnelFilters:
    """Which slice of the loop to measure. Dates are inclusive, in UTC."""

    start: date | None = None
    end: date | None = None
    owner_id: int | None = None
    region_id: int | None = None
    product_line_id: int | None = None
    industry: str | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise ValidationFailed.one("end", "is before start")

    @property
    def start_at(self) -> datetime | None:
        return datetime.combine(self.start, time.min, tzinfo=UTC) if self.start else None

    @property
    def end_before(self) -> datetime | None:
        if self.end is None or self.end == date.max:
            return None
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(slots=True)
class FunnelStep:
    step: str
    count: int
    from_previous: int | None = None
    conversion_rate: float | None = None
    median_days_from_previous: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Funnel:
    filters: FunnelFilters
    steps: list[FunnelStep]

    def as_dict(self) -> dict[str, Any]:
        filters = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self.filters).items()}
        return {"filters": filters, "steps": [asdict(step) for step in self.steps]}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _days(session: Session, query: AnySelect) -> list[float]:
    """The non-null values of a one-column query of day counts."""
    return [float(value) for value in session.scalars(query) if value is not None]


def _in_period(column: Any, filters: FunnelFilters) -> list[Any]:
    clauses = []
    if filters.start_at:
        clauses.append(column >= filters.start_at)
    if filters.end_before:
        clauses.append(column < filters.end_before)
    return clauses


def lead_cohort(actor: Actor, filters: FunnelFilters) -> AnySelect:
    """``(lead_id, received_at, converted_opportunity_id)`` of the leads in the slice."""
    clauses = [visibility_clause(actor, Lead, access=RowAccess.READ), *_in_period(Lead.received_at, filters)]
    if filters.owner_id is not None:
        clauses.append(Lead.owner_id == filters.owner_id)
    if filters.region_id is not None:
        clauses.append(Lead.region_id == filters.region_id)
    if filters.industry:
        clauses.append(Lead.industry == filters.industry)
    if filters.product_line_id is not None:
        clauses.append(Lead.product_line_id == filters.product_line_id)
    return select(Lead.id.label("lead_id"), Lead.received_at, Lead.converted_opportunity_id).where(*clauses)


def opportunity_cohort(actor: Actor, filters: FunnelFilters) -> AnySelect:
    """``(opportunity_id, account_id, opened_at, closed_at, stage, source_lead_id, amount)`` in the slice."""
    clauses = [
        visibility_clause(actor, Opportunity, access=RowAccess.READ),
        *_in_period(Opportunity.opened_at, filters),
    ]
    if filters.owner_id is not None:
        clauses.append(Opportunity.owner_id == filters.owner_id)
    if filters.region_id is not None or filters.industry:
        account_clauses = [tenant_clause(actor.organization_id, Account), Account.id == Opportunity.account_id]
        if filters.region_id is not None:
            account_clauses.append(Account.region_id == filters.region_id)
        if filters.industry:
            account_clauses.append(Account.industry == filters.industry)
        clauses.append(exists(select(Account.id).where(*account_clauses)))
    if filters.product_line_id is not None:
        clauses.append(
            or_(
                exists(
                    select(OpportunityProductLine.opportunity_id).where(
                        tenant_clause(actor.organization_id, OpportunityProductLine),
                        OpportunityProductLine.opportunity_id == Opportunity.id,
                        OpportunityProductLine.product_line_id == filters.product_line_id,
                    )
                ),
                exists(
                    select(Product.id).where(
                        tenant_clause(actor.organization_id, Product),
                        Product.id == Opportunity.product_id,
                        Product.product_line_id == filters.product_line_id,
                    )
                ),
            )
        )
    return select(
        Opportunity.id.label("opportunity_id"),
        Opportunity.account_id,
        Opportunity.opened_at,
        Opportunity.closed_at,
        Opportunity.stage,
        Opportunity.source_lead_id,
        Opportunity.amount,
    ).where(*clauses)


def _won_accounts(actor: Actor, filters: FunnelFilters) -> AnySelect:
    cohort = opportunity_cohort(actor, filters).subquery("cohort")
    return (
        select(cohort.c.account_id, func.min(cohort.c.closed_at).label("first_win_at"))
        .where(cohort.c.stage == Stage.WON.value, cohort.c.account_id.is_not(None), cohort.c.closed_at.is_not(None))
        .group_by(cohort.c.account_id)
    )


def _loop_accounts(actor: Actor, filters: FunnelFilters) -> AnySelect:
    """One row per won account of the cohort: ``(account_id, days to first repurchase, days from that
    repurchase to the first referral after it)``; the day counts are null where the step was not reached.

    A repurchase is an order after the account's first win that does not belong to a won opportunity.
    """
    won = _won_accounts(actor, filters).subquery("won_accounts")
    winning = select(Opportunity.id).where(
        tenant_clause(actor.organization_id, Opportunity),
        Opportunity.id == Order.opportunity_id,
        Opportunity.stage == Stage.WON.value,
    )
    repurchased = (
        select(won.c.account_id, func.min(Order.ordered_at).label("first_repurchase_at"))
        .select_from(won)
        .join(Order, and_(Order.account_id == won.c.account_id, Order.ordered_at > won.c.first_win_at))
        .where(
            tenant_clause(actor.organization_id, Order),
            Order.status != OrderStatus.CANCELLED.value,
            or_(Order.opportunity_id.is_(None), ~exists(winning)),
        )
        .group_by(won.c.account_id)
    ).subquery("repurchased")
    referred = (
        select(repurchased.c.account_id, func.min(Referral.referred_at).label("first_referral_at"))
        .select_from(repurchased)
        .join(
            Referral,
            and_(
                Referral.referrer_account_id == repurchased.c.account_id,
                Referral.referred_at > repurchased.c.first_repurchase_at,
            ),
        )
        .where(tenant_clause(actor.organization_id, Referral))
        .group_by(repurchased.c.account_id)
    ).subquery("referred")
    return (
        select(
            won.c.account_id,
            days_between(repurchased.c.first_repurchase_at, won.c.first_win_at),
            days_between(referred.c.first_referral_at, repurchased.c.first_repurchase_at),
        )
        .select_from(won)
        .outerjoin(repurchased, repurchased.c.account_id == won.c.account_id)
        .outerjoin(referred, referred.c.account_id == won.c.account_id)
    )


def _lead_days(actor: Actor, filters: FunnelFilters) -> AnySelect:
    """Days from each lead of the slice to the opportunity it was converted into."""
    leads = lead_cohort(actor, filters).subquery("leads")
    return (
        select(days_between(Opportunity.opened_at, leads.c.received_at))
        .select_from(leads)
        .join(Opportunity, Opportunity.id == leads.c.converted_opportunity_id)
        .where(tenant_clause(actor.organization_id, Opportunity))
    )


def _count(session: Session, query: AnySelect) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def measure_funnel(
    session: Session, actor: Actor, *, filters: FunnelFilters, basis: MoneyBasis = MoneyBasis.BOOKINGS
) -> Funnel:
    """Count each step of the loop with its conversion and median days from the step before; the
    won step also carries the won money on ``basis`` (``won_amount``)."""
    require(actor, "funnel:read")
    if basis is not MoneyBasis.BOOKINGS and basis not in WON_MONEY:
        raise ValidationFailed.one("basis", f"{basis} is not available here", "unavailable")
    leads = lead_cohort(actor, filters).subquery("leads")
    lead_count = _count(session, select(leads.c.lead_id))
    lead_days = _days(session, _lead_days(actor, filters))
    converted_count = len(lead_days)

    opportunities = opportunity_cohort(actor, filters).subquery("opportunities")
    is_won = opportunities.c.stage == Stage.WON.value
    totals = session.execute(
        select(
            func.count(),
            func.count(opportunities.c.source_lead_id),
            func.coalesce(func.sum(case((is_won, 1), else_=0)), 0),
            func.coalesce(func.sum(case((opportunities.c.stage == Stage.LOST.value, 1), else_=0)), 0),
        )
    ).one()
    opportunity_count, from_leads, won_count, lost_count = (int(value) for value in totals)
    if basis is MoneyBasis.BOOKINGS:
        won_amount = Decimal(
            session.scalar(select(func.coalesce(func.sum(opportunities.c.amount), 0)).where(is_won)) or 0
        )
    else:
        won_amount = WON_MONEY[basis](session, actor, select(opportunities.c.opportunity_id).where(is_won))
    won_days = _days(session, select(days_between(opportunities.c.closed_at, opportunities.c.opened_at)).where(is_won))

    loop = session.execute(_loop_accounts(actor, filters)).all()
    won_accounts = len(loop)
    repurchase_days = [float(row[1]) for row in loop if row[1] is not None]
    referral_days = [float(row[2]) for row in loop if row[2] is not None]
    repurchase_count, referral_count = len(repurchase_days), len(referral_days)
    lead_days_median, won_days_median = _median(lead_days), _median(won_days)
    repurchase_days_median, referral_days_median = _median(repurchase_days), _median(referral_days)

    steps = [
        FunnelStep("lead", lead_count),
        FunnelStep(
            "opportunity",
            opportunity_count,
            from_previous=converted_count,
            conversion_rate=_rate(converted_count, lead_count),
            median_days_from_previous=lead_days_median,
            extra={"from_leads": from_leads, "entered_directly": opportunity_count - from_leads},
        ),
        FunnelStep(
            "won",
            won_count,
            from_previous=won_count,
            conversion_rate=_rate(won_count, opportunity_count),
            median_days_from_previous=won_days_median,
            extra={
                "lost": lost_count,
                "open": opportunity_count - won_count - lost_count,
                "win_rate_of_closed": _rate(won_count, won_count + lost_count),
                "won_accounts": won_accounts,
                "won_amount": str(won_amount.quantize(Decimal("0.01"))),
                "basis": basis.value,
            },
        ),
        FunnelStep(
            "repurchase",
            repurchase_count,
            from_previous=repurchase_count,
            conversion_rate=_rate(repurchase_count, won_accounts),
            median_days_from_previous=repurchase_days_median,
            extra={"unit": "account"},
        ),
        FunnelStep(
            "referral",
            referral_count,
            from_previous=referral_count,
            conversion_rate=_rate(referral_count, repurchase_count),
            median_days_from_previous=referral_days_median,
            extra={"unit": "account"},
        ),
    ]
    return Funnel(filters=filters, steps=steps)


# --- the records behind a step ------------------------------------------------------------------

STEP_NOUNS = {
    "lead": "lead",
    "opportunity": "opportunity",
    "won": "opportunity",
    "repurchase": "account",
    "referral": "account",
}
_PAGE = 25


def _step_ids(actor: Actor, step: str, filters: FunnelFilters) -> AnySelect:
    """The ids of the records counted by ``step`` (the same cohorts :func:`measure_funnel` counts)."""
    if step == "lead":
        leads = lead_cohort(actor, filters).subquery("leads")
        return select(leads.c.lead_id.label("id"))
    if step in ("opportunity", "won"):
        cohort = opportunity_cohort(actor, filters).subquery("cohort")
        query = select(cohort.c.opportunity_id.label("id"))
        return query.where(cohort.c.stage == Stage.WON.value) if step == "won" else query
    loop = _loop_accounts(actor, filters).subquery("loop")
    reached = list(loop.c)[1 if step == "repurchase" else 2]
    return select(loop.c.account_id.label("id")).where(reached.is_not(None))


def _step_rows(actor: Actor, step: str, ids: Any) -> AnySelect:
    from closeloop.org.models import Region, User

    owner = select(User.display_name).where(tenant_clause(actor.organization_id, User))
    if step == "lead":
        return select(
            Lead.id,
            Lead.name,
            Lead.company,
            Lead.status,
            Lead.industry,
            Lead.received_at.label("date"),
            owner.where(User.id == Lead.owner_id).scalar_subquery().label("owner"),
        ).where(visibility_clause(actor, Lead, access=RowAccess.READ), Lead.id.in_(ids))
    if step in ("opportunity", "won"):
        account = select(Account.name).where(
            visibility_clause(actor, Account, access=RowAccess.READ), Account.id == Opportunity.account_id
        )
        return select(
            Opportunity.id,
            Opportunity.name,
            account.scalar_subquery().label("account"),
            Opportunity.stage,
            Opportunity.amount,
            Opportunity.currency,
            (Opportunity.closed_at if step == "won" else Opportunity.opened_at).label("date"),
            owner.where(User.id == Opportunity.owner_id).scalar_subquery().label("owner"),
        ).where(visibility_clause(actor, Opportunity, access=RowAccess.READ), Opportunity.id.in_(ids))
    region = select(Region.name).where(tenant_clause(actor.organization_id, Region), Region.id == Account.region_id)
    return select(
        Account.id,
        Account.name,
        Account.industry,
        region.scalar_subquery().label("region"),
        owner.where(User.id == Account.owner_id).scalar_subquery().label("owner"),
    ).where(visibility_clause(actor, Account, access=RowAccess.READ), Account.id.in_(ids))


def step_records(
    session: Session, actor: Actor, step: str, *, filters: FunnelFilters, cursor: int | None = None, limit: int = _PAGE
) -> dict[str, Any]:
    """The records behind one step of the funnel, newest first, ``limit`` at a time (keyset on id),
    read through the scope door: what the caller counts is what they may open."""
    require(actor, "funnel:read")
    if step not in STEPS:
        raise ValidationFailed.one("step", f"is not a step of the funnel (one of: {', '.join(STEPS)})", "unknown")
    if not 1 <= limit <= 200:
        raise ValidationFailed.one("limit", "must be between 1 and 200")
    noun = STEP_NOUNS[step]
    require(
        actor, "leads:read" if noun == "lead" else "opportunities:read" if noun == "opportunity" else "accounts:read"
    )
    ids = _step_ids(actor, step, filters)
    rows_query = _step_rows(actor, step, ids)
    total = _count(session, rows_query)
    model: Any = {"lead": Lead, "opportunity": Opportunity, "account": Account}[noun]
    if cursor is not None:
        rows_query = rows_query.where(model.id < cursor)
    rows = session.execute(rows_query.order_by(model.id.desc()).limit(limit + 1)).all()
    hidden = masked_fields(session, actor, noun)
    items = [{key: value for key, value in row._mapping.items() if key not in hidden} for row in rows[:limit]]
    next_cursor = items[-1]["id"] if len(rows) > limit else None
    return {"step": step, "record_type": noun, "count": total, "items": items, "next_cursor": next_cursor}


# --- publication of the funnel's metrics (lineage derived from these very statements) -----------

_STEP_TEXT = {
    "lead": ("线索数", "Leads", "COUNT(线索 WHERE 接收时间 在期间内)", "COUNT(lead WHERE received_at in period)"),
    "opportunity": (
        "商机数与线索转化率",
        "Opportunities and lead conversion",
        "COUNT(商机 WHERE 创建时间 在期间内)；转化率 = 转为商机的线索 ÷ 线索；"
        "天数 = 中位数(商机.创建时间 − 线索.接收时间)",
        "COUNT(opportunity WHERE opened_at in period); conversion = leads converted ÷ leads; "
        "days = MEDIAN(opportunity.opened_at − lead.received_at)",
    ),
    "won": (
        "赢单数与赢单率",
        "Won and win rate",
        "COUNT(商机 WHERE 阶段 = 赢单) ÷ COUNT(商机)；天数 = 中位数(关闭时间 − 创建时间)",
        "COUNT(opportunity WHERE stage = won) ÷ COUNT(opportunity); days = MEDIAN(closed_at − opened_at)",
    ),
    "repurchase": (
        "复购客户数",
        "Repurchasing accounts",
        "COUNT(赢单客户 WHERE 首次赢单后有不属于赢单商机的订单)；天数 = 中位数(首次复购 − 首次赢单)",
        "COUNT(won account WHERE an order not of a won deal follows the first win); "
        "days = MEDIAN(first repurchase − first win)",
    ),
    "referral": (
        "转介绍客户数",
        "Referring accounts",
        "COUNT(复购客户 WHERE 复购后转介绍了新线索)；天数 = 中位数(首次转介绍 − 首次复购)",
        "COUNT(repurchasing account WHERE it referred a lead after repurchasing); "
        "days = MEDIAN(first referral − first repurchase)",
    ),
}


def _step_statements(step: str) -> Any:
    def build(actor: Actor) -> list[AnySelect]:
        everything = FunnelFilters()
        if step == "lead":
            return [lead_cohort(actor, everything)]
        if step == "opportunity":
            return [opportunity_cohort(actor, everything), _lead_days(actor, everything)]
        if step == "won":
            return [opportunity_cohort(actor, everything)]
        return [_loop_accounts(actor, everything)]

    return build


def _funnel_filter_statements(actor: Actor) -> list[AnySelect]:
    """What the funnel's filters read (owner, region, product line, industry, period)."""
    every = FunnelFilters(
        start=date(2000, 1, 1), end=date(2000, 1, 2), owner_id=1, region_id=1, product_line_id=1, industry="x"
    )
    return [lead_cohort(actor, every), opportunity_cohort(actor, every)]


def publish_metrics(published: Any) -> None:
    """Publish each step as a metric and the funnel page as a dashboard (:mod:`closeloop.crm.metrics`)."""
    from closeloop.crm.metrics import Dashboard, Metric

    for step, (name_zh, name_en, zh, en) in _STEP_TEXT.items():
        published.publish(
            Metric(
                f"funnel.{step}",
                name_zh,
                name_en,
                "count",
                zh,
                en,
                "on_read",
                "sales_vp",
                _step_statements(step),
                ("funnel",),
            )
        )
    published.publish_dashboard(
        Dashboard(
            "funnel",
            "销售漏斗",
            "Funnel",
            "/funnel",
            tuple(f"funnel.{step}" for step in STEPS),
            "sales_vp",
            statements=_funnel_filter_statements,
        )
    )
