"""Alert thresholds set by people on dashboard charts, checked on schedule by the worker.

"Notify me when the win rate of my region falls below 25 %": the threshold names a performance
metric, the drill-down scope it was set on (fixed dimension values), a closing period, a direction
and a value. :func:`check_all` evaluates every threshold *as its owner* (their row scope and field
masks, so a threshold never reveals more than its owner's dashboard does) and raises an in-app
notification on a breach. The notification's ``source_key`` is the threshold, so a breach that
persists is announced once and again only after the owner has read the first notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm import performance
from closeloop.crm.alerts.models import AlertThreshold
from closeloop.crm.metrics import registry
from closeloop.crm.schemas import Schema
from closeloop.db.scope import RowAccess, visible, within_organization
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require
from closeloop.org import notifications
from closeloop.org import service as org_service
from closeloop.org.models import Organization, User

log = logging.getLogger("closeloop.alerts")

PERIODS = ("all", "quarter", "year", "last_90_days")
DIRECTIONS = ("below", "above")
_PERIOD_TEXT = {
    "all": ("全部时间", "all time"),
    "quarter": ("本季度至今", "this quarter to date"),
    "year": ("本年至今", "this year to date"),
    "last_90_days": ("最近 90 天", "the last 90 days"),
}
_DIMENSION_TEXT = {
    "quarter": ("季度", "quarter"),
    "region": ("区域", "region"),
    "owner": ("销售", "rep"),
    "account": ("客户", "customer"),
    "product_line": ("产品线", "product line"),
}
MAX_PER_PERSON = 50


class ThresholdCreate(Schema):
    dashboard: Literal["performance"] = "performance"
    metric: Annotated[str, Field(max_length=60)]
    scope: dict[Annotated[str, Field(max_length=20)], Annotated[str, Field(max_length=40)]] = Field(
        default_factory=dict, max_length=5
    )
    period: Literal["all", "quarter", "year", "last_90_days"] = "all"
    direction: Literal["below", "above"]
    value: Annotated[Decimal, Field(ge=0, le=Decimal("1e13"), decimal_places=4)]


def period_window(period: str, today: date) -> tuple[date | None, date | None]:
    """The closing dates a period covers on ``today``."""
    if period == "quarter":
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
    if period == "year":
        return date(today.year, 1, 1), today
    if period == "last_90_days":
        return today - timedelta(days=89), today
    return None, None


def _slice(scope: dict[str, Any], period: str, today: date) -> performance.Slice:
    start, end = period_window(period, today)
    fixed = tuple((name, str(value)) for name, value in scope.items())
    try:
        return performance.Slice(fixed=fixed, start=start, end=end)
    except ValidationFailed as error:
        raise ValidationFailed.one(f"scope.{error.problems[0].field}", error.problems[0].message) from None


def _mine(actor: Actor) -> Any:
    return visible(actor, AlertThreshold, access=RowAccess.READ).where(AlertThreshold.owner_id == (actor.user_id or 0))


def create(session: Session, actor: Actor, data: ThresholdCreate) -> AlertThreshold:
    """Store a threshold for ``actor`` on a metric they may read, over a scope they can see."""
    require(actor, "funnel:read")
    if actor.user_id is None:
        raise ValidationFailed.one("owner", "only a person can be notified")
    if data.metric not in performance.readable_metrics(session, actor):
        raise ValidationFailed.one("metric", f"'{data.metric}' is not a metric you may read", "unknown")
    unit = registry().metric(data.metric).unit
    if unit == "ratio" and data.value > 1:
        raise ValidationFailed.one("value", "a rate is between 0 and 1 (0.25 for 25 %)")
    deals = _slice(dict(data.scope), data.period, utcnow().date())
    for dimension, value in deals.fixed:
        known = value == performance.NONE or dimension == "quarter"
        if not known and value not in performance.labels(session, actor, dimension, [value]):
            raise ValidationFailed.one(f"scope.{dimension}", "no such record in your scope", "not_found")
    count = len(list(session.scalars(_mine(actor).with_only_columns(AlertThreshold.id))))
    if count >= MAX_PER_PERSON:
        raise ValidationFailed.one("metric", f"you have {MAX_PER_PERSON} alerts already; delete one first")
    row = AlertThreshold(
        organization_id=actor.organization_id,
        owner_id=actor.user_id,
        dashboard=data.dashboard,
        metric=data.metric,
        scope=dict(deals.fixed),
        period=data.period,
        direction=data.direction,
        value=data.value,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "alert_threshold.created",
        subject_type="alert_threshold",
        subject_id=row.id,
        changes={"rule": [None, describe(session, actor, row)["en"]]},
    )
    return row


def mine(session: Session, actor: Actor) -> list[AlertThreshold]:
    """The actor's own thresholds, newest first."""
    return list(session.scalars(_mine(actor).order_by(AlertThreshold.id.desc())))


def delete(session: Session, actor: Actor, threshold_id: int) -> None:
    """Delete one of the actor's thresholds (anybody else's is *not found*)."""
    row = session.scalar(_mine(actor).where(AlertThreshold.id == threshold_id))
    if row is None:
        raise NotFound("alert_threshold", threshold_id)
    text = describe(session, actor, row)["en"]
    session.delete(row)
    session.flush()
    audit.record(
        session,
        actor,
        "alert_threshold.deleted",
        subject_type="alert_threshold",
        subject_id=threshold_id,
        changes={"rule": [text, None]},
    )


def format_value(unit: str, value: Any) -> str:
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{Decimal(str(value)) * 100:.1f}%"
    if unit == "percent":
        return f"{Decimal(str(value)):.2f}%"
    if unit == "money":
        return f"¥{Decimal(str(value)):,.2f}"
    return f"{Decimal(str(value)):,.0f}"


def describe(session: Session, actor: Actor, row: AlertThreshold) -> dict[str, str]:
    """The rule in words, both languages (names of the scope read as ``actor``)."""
    metric = registry().metric(row.metric)
    parts_zh, parts_en = [], []
    for dimension, value in row.scope.items():
        label = performance.labels(session, actor, dimension, [value]).get(value, value)
        zh, en = _DIMENSION_TEXT.get(dimension, (dimension, dimension))
        parts_zh.append(f"{zh}「{label}」")
        parts_en.append(f"{en} {label}")
    scope_zh = "、".join(parts_zh) or "我可见的全部"
    scope_en = ", ".join(parts_en) or "everything I can see"
    period_zh, period_en = _PERIOD_TEXT[row.period]
    threshold = format_value(metric.unit, row.value)
    verb_zh = "低于" if row.direction == "below" else "高于"
    verb_en = "falls below" if row.direction == "below" else "rises above"
    return {
        "zh_CN": f"{scope_zh}的{metric.name_zh}（{period_zh}）{verb_zh} {threshold}",
        "en": f"{metric.name_en} of {scope_en} ({period_en}) {verb_en} {threshold}",
    }


def serialize(session: Session, actor: Actor, row: AlertThreshold) -> dict[str, Any]:
    unit = registry().metric(row.metric).unit
    return {
        "id": row.id,
        "dashboard": row.dashboard,
        "metric": row.metric,
        "scope": row.scope,
        "period": row.period,
        "direction": row.direction,
        "value": str(row.value),
        "text": describe(session, actor, row),
        "created_at": row.created_at.isoformat(),
        "checked_at": row.checked_at.isoformat() if row.checked_at else None,
        "last_value": str(row.last_value) if row.last_value is not None else None,
        "last_value_text": format_value(unit, row.last_value) if row.last_value is not None else None,
        "breached": row.breached,
    }


def link_of(row: AlertThreshold) -> str:
    params = "&".join(f"{name}={value}" for name, value in row.scope.items())
    return f"/dashboard?{params}" if params else "/dashboard"


def check(session: Session, row: AlertThreshold, today: date) -> bool:
    """Evaluate one threshold as its owner; notify on a breach. Returns whether it is breached."""
    user = session.get(User, row.owner_id)
    if user is None or not user.is_active:
        return False
    owner = org_service.actor_for(session, user)
    try:
        value = performance.value_of(session, owner, row.metric, _slice(row.scope, row.period, today))
    except (ValidationFailed, NotFound) as error:  # the owner lost the right to read it: stays silent
        log.info("threshold %s no longer evaluable: %s", row.id, error)
        return False
    breached = value is not None and (
        Decimal(str(value)) < row.value if row.direction == "below" else Decimal(str(value)) > row.value
    )
    row.checked_at = utcnow()
    row.last_value = Decimal(str(value)).quantize(Decimal("0.0001")) if value is not None else None
    row.breached = breached
    if breached:
        metric = registry().metric(row.metric)
        text = describe(session, owner, row)
        now = format_value(metric.unit, value)
        notifications.notify(
            session,
            organization_id=row.organization_id,
            user_id=row.owner_id,
            message=notifications.Message(
                "alert",
                f"提醒：{text['zh_CN']}",
                f"Alert: {text['en']}",
                f"当前值 {now}",
                f"Now {now}",
                link_of(row),
            ),
            source_key=f"threshold:{row.id}",
        )
    session.flush()
    return breached


@dataclass(frozen=True, slots=True)
class CheckResult:
    checked: int
    breached: int


def check_all(database: Database, *, today: date | None = None) -> CheckResult:
    """Check every threshold of every organization, one organization per transaction."""
    today = today or utcnow().date()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    checked = breached = 0
    for organization_id in organization_ids:
        try:
            with database.unit_of_work(None, system=True) as session:
                for row in session.scalars(within_organization(organization_id, AlertThreshold)):
                    checked += 1
                    breached += check(session, row, today)
        except Exception:
            log.exception("alert check of organization %s failed", organization_id)
    return CheckResult(checked, breached)
