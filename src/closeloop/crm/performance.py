"""Sales performance (UI-2): revenue and win rate by quarter, region, rep, customer and product line,
computed in SQL through the scope door, with drill-down.

A deal counts in the quarter it *closed*. **Revenue** is the sum of the amounts of won deals;
**win rate** is won ÷ (won + lost) among deals closed; **average margin** of won deals reads the
finance-only ``opportunity.margin`` and is therefore shown only to roles that may read it (derived
from the metric's lineage, :mod:`closeloop.crm.metrics`). A deal's product line is its product's
line. Rows follow the caller's row scope: a rep sees their own deals only.

Drill-down fixes one dimension at a time: a :class:`Slice` holds the values fixed so far and the
dimension to break down next; each bar of the answer is one value of that dimension.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, and_, case, func, select, type_coerce
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.crm import customfields
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import Stage
from closeloop.crm.funnel.service import MoneyBasis
from closeloop.crm.metrics import Dashboard, Metric, Registry, registry
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.functions import quarter_of
from closeloop.db.scope import AnySelect, RowAccess, tenant_clause, visibility_clause
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.fields import policy_of
from closeloop.governance.formulas import Compiled
from closeloop.governance.formulas.schema import FormulaType
from closeloop.governance.permissions import require
from closeloop.org.models import Region, User

DIMENSIONS = ("quarter", "region", "owner", "account", "product_line")
#: after the first dimension, the drill goes on in this order
DRILL_ORDER = ("region", "owner", "account", "product_line", "quarter")
METRICS = ("revenue", "win_rate", "won_deals", "closed_deals", "avg_margin")
NONE = "none"  # the value that stands for "no region / no product line …" in a filter
MAX_BARS = 30
_QUARTER = re.compile(r"^\d{4}-Q[1-4]$")


@dataclass(frozen=True, slots=True)
class Slice:
    """Which deals to measure: fixed dimension values (in drill order) and a closing period."""

    fixed: tuple[tuple[str, str], ...] = ()
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise ValidationFailed.one("end", "is before start")
        seen = set()
        for dimension, value in self.fixed:
            if dimension not in DIMENSIONS:
                raise ValidationFailed.one(dimension, f"is not a dimension (one of: {', '.join(DIMENSIONS)})")
            if dimension in seen:
                raise ValidationFailed.one(dimension, "is given twice")
            seen.add(dimension)
            if value == NONE:
                continue
            if dimension == "quarter":
                if not _QUARTER.match(value):
                    raise ValidationFailed.one("quarter", "must look like 2025-Q3")
            elif not (value.isascii() and value.isdigit() and 0 < int(value) < 2**63):
                raise ValidationFailed.one(dimension, "must be a record id or 'none'")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Slice:
        """``?region=3&owner=12&quarter=2025-Q3&start=…&end=…`` (dimensions in the order given)."""
        fixed = tuple((name, str(value).strip()) for name, value in params.items() if name in DIMENSIONS and value)
        return cls(fixed=fixed, start=_date(params, "start"), end=_date(params, "end"))

    def with_value(self, dimension: str, value: str) -> Slice:
        return Slice((*self.fixed, (dimension, value)), self.start, self.end)

    @property
    def fixed_dimensions(self) -> tuple[str, ...]:
        return tuple(dimension for dimension, _ in self.fixed)

    def as_params(self) -> dict[str, str]:
        params = dict(self.fixed)
        if self.start:
            params["start"] = self.start.isoformat()
        if self.end:
            params["end"] = self.end.isoformat()
        return params


def _date(params: Mapping[str, str], name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed.one(name, "must be a date such as 2025-07-01") from None


def next_dimension(first: str, fixed: Iterable[str]) -> str | None:
    """The dimension to break down after ``fixed`` when the drill started at ``first``."""
    taken = set(fixed)
    for dimension in (first, *DRILL_ORDER):
        if dimension not in taken:
            return dimension
    return None


# --- the SQL ------------------------------------------------------------------------------------

_WON = Opportunity.stage == Stage.WON.value

#: revenue under a basis other than bookings: organization id → a subquery of
#: (``opportunity_id``, ``money``), one row per deal. ``closeloop.cash`` registers ``collections``
#: (approved collections on the deal's contracts) when imported, as it does for the funnel.
REVENUE_PER_DEAL: dict[MoneyBasis, Callable[[int], Any]] = {}


def _expressions() -> dict[str, ColumnElement[Any]]:
    return {
        "revenue": func.coalesce(func.sum(case((_WON, Opportunity.amount))), 0).label("revenue"),
        "won_deals": func.coalesce(func.sum(case((_WON, 1), else_=0)), 0).label("won_deals"),
        "closed_deals": func.count(Opportunity.id).label("closed_deals"),
        "margin_hundredths": func.avg(case((_WON, type_coerce(Opportunity.margin, BigInteger)))).label(
            "margin_hundredths"
        ),
    }


#: the columns each metric needs (win rate is computed from won and closed deals)
_NEEDS = {
    "revenue": ("revenue",),
    "win_rate": ("won_deals", "closed_deals"),
    "won_deals": ("won_deals",),
    "closed_deals": ("closed_deals",),
    "avg_margin": ("margin_hundredths",),
}


def _dimension_column(dimension: str) -> Any:
    columns: dict[str, Any] = {
        "quarter": quarter_of(Opportunity.closed_at),
        "region": Account.region_id,
        "owner": Opportunity.owner_id,
        "account": Opportunity.account_id,
        "product_line": Product.product_line_id,
    }
    return columns[dimension]


def statement(
    actor: Actor,
    metrics: Iterable[str],
    deals: Slice,
    by: str | None = None,
    *,
    formulas: Mapping[str, FormulaField] | None = None,
    basis: MoneyBasis = MoneyBasis.BOOKINGS,
) -> AnySelect:
    """The one statement behind the dashboard: the metrics' columns over the closed deals of
    ``deals`` within ``actor``'s scope, grouped by ``by`` (the first column) when given.
    ``formulas``: formula fields of opportunities (:func:`formula_fields`) — each number formula
    adds its sum over the deals as a measure, and ``by`` may name a formula to group by its value."""
    names = sorted({column for metric in metrics for column in _NEEDS[metric]})
    expressions = _expressions()
    per_deal = None
    if basis is not MoneyBasis.BOOKINGS and "revenue" in names:
        per_deal = REVENUE_PER_DEAL[basis](actor.organization_id)
        expressions["revenue"] = func.coalesce(func.sum(case((_WON, per_deal.c.money))), 0).label("revenue")
    columns: list[ColumnElement[Any]] = [expressions[name] for name in names]
    formulas = formulas or {}
    for formula in formulas.values():
        if formula.is_measure:
            columns.append(func.sum(formula.compiled.expression).label(formula.label))
    grouping: Any = None
    if by is not None:
        grouping = formulas[by].compiled.expression if by.startswith(FORMULA_PREFIX) else _dimension_column(by)
        columns.insert(0, grouping.label("key"))
    used = {by, *deals.fixed_dimensions} - {None}
    query = select(*columns).select_from(Opportunity)
    if per_deal is not None:
        query = query.outerjoin(per_deal, per_deal.c.opportunity_id == Opportunity.id)
    if "region" in used:
        query = query.outerjoin(
            Account, and_(Account.id == Opportunity.account_id, tenant_clause(actor.organization_id, Account))
        )
    if "product_line" in used:
        query = query.outerjoin(
            Product, and_(Product.id == Opportunity.product_id, tenant_clause(actor.organization_id, Product))
        )
    clauses: list[ColumnElement[bool]] = [
        visibility_clause(actor, Opportunity, access=RowAccess.READ),
        Opportunity.stage.in_([Stage.WON.value, Stage.LOST.value]),
        Opportunity.closed_at.is_not(None),
    ]
    if deals.start:
        clauses.append(Opportunity.closed_at >= datetime.combine(deals.start, time.min, tzinfo=UTC))
    if deals.end:
        clauses.append(Opportunity.closed_at < datetime.combine(deals.end + timedelta(days=1), time.min, tzinfo=UTC))
    for dimension, value in deals.fixed:
        column = _dimension_column(dimension)
        if value == NONE:
            clauses.append(column.is_(None))
        else:
            clauses.append(column == (value if dimension == "quarter" else int(value)))
    query = query.where(*clauses)
    if grouping is not None:
        query = query.group_by(grouping)
    return query


# --- formula fields as measures and dimensions (GOV-2) -------------------------------------------

FORMULA_PREFIX = "custom."


@dataclass(frozen=True, slots=True)
class FormulaField:
    """A formula field of opportunities on the dashboard: a number formula is a measure (its sum
    over the deals of a bar), any other a dimension (one bar per value)."""

    key: str
    label_zh: str
    label_en: str
    compiled: Compiled

    @property
    def is_measure(self) -> bool:
        return self.compiled.type is FormulaType.NUMBER

    @property
    def label(self) -> str:
        """The statement's column of the measure."""
        return "formula_" + self.key.removeprefix(FORMULA_PREFIX)


def formula_fields(session: Session, actor: Actor) -> dict[str, FormulaField]:
    """The formula fields of opportunities ``actor`` may read, compiled for them (a formula reading a
    field masked for them is left out, as it is from lists)."""
    found: dict[str, FormulaField] = {}
    for definition in customfields.readable(session, actor, "opportunity"):
        if definition.field_type is not FieldType.FORMULA:
            continue
        compiled = customfields.compiled_formula(session, actor, "opportunity", definition)
        if compiled is not None:
            key = FORMULA_PREFIX + definition.name
            found[key] = FormulaField(key, definition.label_zh, definition.label_en, compiled)
    return found


# --- the answer ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """The metrics of one bar (or of the whole slice)."""

    key: str | None
    label: str
    revenue: Decimal | None = None
    won_deals: int | None = None
    closed_deals: int | None = None
    win_rate: float | None = None
    avg_margin: Decimal | None = None
    #: ``custom.<name>`` → the sum of a number formula over the bar's deals
    formulas: dict[str, float | None] = field(default_factory=dict)

    def value(self, metric: str) -> Any:
        if metric.startswith(FORMULA_PREFIX):
            return self.formulas.get(metric)
        return getattr(self, metric)

    def as_dict(self, metrics: Iterable[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"key": self.key, "label": self.label}
        for metric in metrics:
            value = self.value(metric)
            body[metric] = str(value) if isinstance(value, Decimal) else value
        return body


@dataclass(slots=True)
class Breakdown:
    by: str | None
    deals: Slice
    metrics: list[str]
    crumbs: list[dict[str, str]]
    totals: Figures
    bars: list[Figures] = field(default_factory=list)
    more: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "filters": self.deals.as_params(),
            "metrics": self.metrics,
            "breadcrumbs": self.crumbs,
            "totals": self.totals.as_dict(self.metrics),
            "items": [bar.as_dict(self.metrics) for bar in self.bars],
            "more": self.more,
        }


def readable_metrics(session: Session, actor: Actor) -> list[str]:
    """The performance metrics ``actor``'s role may see under the organization's field masks (a
    metric reading a field masked for the role is not)."""
    published = registry()
    matrix = policy_of(session, actor)
    return [key for key in METRICS if published.metric(key).readable_by(actor.role, matrix)]


def _figures(
    row: Any, metrics: list[str], key: str | None, label: str, formulas: Mapping[str, FormulaField] | None = None
) -> Figures:
    mapping = row._mapping
    figures = Figures(key=key, label=label)
    for field_key, formula in (formulas or {}).items():
        if formula.is_measure:
            total = mapping.get(formula.label)
            figures.formulas[field_key] = None if total is None else round(float(total), 4)
    if "revenue" in metrics:
        figures.revenue = Decimal(mapping["revenue"] or 0).quantize(Decimal("0.01"))
    if "won_deals" in mapping:
        figures.won_deals = int(mapping["won_deals"] or 0)
    if "closed_deals" in mapping:
        figures.closed_deals = int(mapping["closed_deals"] or 0)
    if "win_rate" in metrics and figures.closed_deals:
        figures.win_rate = round((figures.won_deals or 0) / figures.closed_deals, 4)
    if "avg_margin" in metrics and mapping.get("margin_hundredths") is not None:
        figures.avg_margin = (Decimal(str(mapping["margin_hundredths"])) / 100).quantize(Decimal("0.01"))
    return figures


def labels(session: Session, actor: Actor, dimension: str, keys: list[str]) -> dict[str, str]:
    """Names for the keys of a dimension, read through the scope door (a customer outside the
    caller's scope keeps its number, not its name)."""
    ids = [int(key) for key in keys if key not in (NONE, "") and key.isdigit()]
    if dimension == "quarter" or not ids:
        return {key: key for key in keys}
    models: dict[str, tuple[Any, Any, Any]] = {
        "region": (Region, Region.name, tenant_clause(actor.organization_id, Region)),
        "owner": (User, User.display_name, tenant_clause(actor.organization_id, User)),
        "account": (Account, Account.name, visibility_clause(actor, Account, access=RowAccess.READ)),
        "product_line": (ProductLine, ProductLine.name, tenant_clause(actor.organization_id, ProductLine)),
    }
    model, name, clause = models[dimension]
    rows = session.execute(select(model.id, name).where(clause, model.id.in_(ids)))
    return {str(row[0]): str(row[1]) for row in rows}


def _key(value: Any) -> str:
    return NONE if value is None else str(value)


def breakdown(
    session: Session, actor: Actor, deals: Slice, *, by: str | None = None, basis: MoneyBasis = MoneyBasis.BOOKINGS
) -> Breakdown:
    """The slice's totals and, when ``by`` is given, one bar per value of ``by`` (quarters in
    order, others by revenue, the largest :data:`MAX_BARS`). On the ``collections`` basis a won
    deal's revenue is what was collected (and approved) on its contracts instead of its amount."""
    require(actor, "funnel:read")
    require(actor, "opportunities:read")
    if basis is not MoneyBasis.BOOKINGS and basis not in REVENUE_PER_DEAL:
        raise ValidationFailed.one("basis", f"{basis} is not available here", "unavailable")
    formulas = formula_fields(session, actor)
    dimensions = [*DIMENSIONS, *(key for key, formula in formulas.items() if not formula.is_measure)]
    if by is not None and by not in dimensions:
        raise ValidationFailed.one("by", f"is not a dimension (one of: {', '.join(dimensions)})")
    if by is not None and by in deals.fixed_dimensions:
        raise ValidationFailed.one("by", f"'{by}' is already fixed by a filter")
    metrics = readable_metrics(session, actor)
    total_row = session.execute(statement(actor, metrics, deals, formulas=formulas, basis=basis)).one()
    measures = [*metrics, *(key for key, formula in formulas.items() if formula.is_measure)]
    totals = _figures(total_row, measures, None, "", formulas)
    crumb_labels: dict[tuple[str, str], str] = {}
    for dimension, value in deals.fixed:
        crumb_labels[(dimension, value)] = labels(session, actor, dimension, [value]).get(value, value)
    crumbs = [
        {"dimension": dimension, "value": value, "label": crumb_labels[(dimension, value)]}
        for dimension, value in deals.fixed
    ]
    answer = Breakdown(by=by, deals=deals, metrics=measures, crumbs=crumbs, totals=totals)
    if by is None:
        return answer
    rows = session.execute(statement(actor, metrics, deals, by=by, formulas=formulas, basis=basis)).all()
    keys = [_key(row._mapping["key"]) for row in rows]
    names = {key: key for key in keys} if by in formulas else labels(session, actor, by, keys)
    bars = [_figures(row, measures, key, names.get(key, key), formulas) for row, key in zip(rows, keys, strict=True)]
    if by == "quarter":
        bars.sort(key=lambda bar: bar.key or "")
    else:
        bars.sort(key=lambda bar: (-(bar.revenue or 0), -(bar.closed_deals or 0), bar.label))
    answer.more = max(0, len(bars) - MAX_BARS)
    answer.bars = bars[:MAX_BARS]
    return answer


def formula_sources(session: Session, actor: Actor) -> dict[str, frozenset[tuple[str, str]]]:
    """``custom.<name>`` → the stored fields each formula the dashboard offers reads (its lineage)."""
    return {key: formula.compiled.inputs for key, formula in formula_fields(session, actor).items()}


def value_of(session: Session, actor: Actor, metric: str, deals: Slice) -> Any:
    """One metric over a slice, as ``actor`` sees it (what an alert threshold watches)."""
    if metric not in readable_metrics(session, actor):
        raise ValidationFailed.one("metric", f"'{metric}' is not a metric you may read", "unknown")
    return breakdown(session, actor, deals).totals.value(metric)


# --- publication --------------------------------------------------------------------------------


def _metric_statement(metric: str) -> Any:
    return lambda actor: [statement(actor, [metric], Slice())]


def _dashboard_statements(actor: Actor) -> list[AnySelect]:
    """What the dashboard's drill-down reads besides its metrics: every dimension, grouped and fixed."""
    every = Slice(tuple((dimension, NONE) for dimension in DIMENSIONS))
    return [statement(actor, [], every, by=None), *(statement(actor, [], Slice(), by=d) for d in DIMENSIONS)]


_DEFINITIONS = {
    "revenue": (
        "收入",
        "Revenue",
        "money",
        "SUM(商机.金额 WHERE 阶段 = 赢单)，按赢单（关闭）日期所在季度计入",
        "SUM(opportunity.amount WHERE stage = won), counted in the quarter the deal closed",
    ),
    "win_rate": (
        "赢率",
        "Win rate",
        "ratio",
        "COUNT(商机 WHERE 阶段 = 赢单) ÷ COUNT(商机 WHERE 阶段 IN (赢单, 输单))",
        "COUNT(opportunity WHERE stage = won) ÷ COUNT(opportunity WHERE stage IN (won, lost))",
    ),
    "won_deals": (
        "赢单数",
        "Deals won",
        "count",
        "COUNT(商机 WHERE 阶段 = 赢单)",
        "COUNT(opportunity WHERE stage = won)",
    ),
    "closed_deals": (
        "关闭商机数",
        "Deals closed",
        "count",
        "COUNT(商机 WHERE 阶段 IN (赢单, 输单))",
        "COUNT(opportunity WHERE stage IN (won, lost))",
    ),
    "avg_margin": (
        "赢单平均毛利率",
        "Average margin of won deals",
        "percent",
        "AVG(商机.毛利率 WHERE 阶段 = 赢单)",
        "AVG(opportunity.margin WHERE stage = won)",
    ),
}


def publish_metrics(published: Registry) -> None:
    for key, (name_zh, name_en, unit, zh, en) in _DEFINITIONS.items():
        owner = "cfo" if key == "avg_margin" else "sales_vp"
        published.publish(
            Metric(key, name_zh, name_en, unit, zh, en, "on_read", owner, _metric_statement(key), ("performance",))
        )
    published.publish_dashboard(
        Dashboard(
            "performance",
            "业绩看板",
            "Performance",
            "/dashboard",
            METRICS,
            "sales_vp",
            statements=_dashboard_statements,
            formulas_of="opportunity",
        )
    )


__all__ = ["DIMENSIONS", "Breakdown", "Figures", "Slice", "breakdown", "next_dimension", "statement", "value_of"]
