"""Scheduled rules, set-based: a rule's conditions turned into one SQL query that selects the
records that may match, instead of a loop over every record of the kind.

Each condition that SQL can express becomes a clause of that query; the others (custom fields,
regions and product lines, the exact shape of a streak, calendar months and business days …) are
left to the Python evaluation that follows. The query is a *pre-filter* — it never drops a record
the Python check would accept (bounds are widened by a hundredth of a unit where the Python side
rounds) — and every record it returns is then checked exactly by :func:`engine.evaluate`, which
also reads the values the decision record shows. So the cost is one query per rule plus the exact
check of the records that (almost) match, however many records the organization has.

What compiles, for a record of kind *K* (``compiled_names`` lists it per rule):

* *K*'s own columns (``lead.score > 80``, ``opportunity.stage == negotiation``) and columns of a
  record *K* points to (``account.tier == A`` on an opportunity), compared with numbers or texts;
* time since the last contact / the last order (``>``, ``>=``, ``<``, ``<=`` in minutes, hours,
  days, weeks), days in the stage, a lead unassigned for, a ticket open for;
* order and visit counts in a rolling window;
* "N emails in a row without a reply": as "at least N unanswered outbound emails" (the exact streak
  is checked in Python).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Enum, Float, Integer, Numeric, Select, String, func, select

from closeloop.automation import metrics
from closeloop.automation.definition import canonical_stage
from closeloop.automation.models import Decision
from closeloop.core.clock import as_utc
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind, Direction, TicketStatus
from closeloop.crm.orders.models import Order
from closeloop.db.scope import tenant_clause, within_organization
from closeloop.db.types import ScaledDecimal

_LINEAR = {None: timedelta(days=1), "day": timedelta(days=1), "hour": timedelta(hours=1),
           "minute": timedelta(minutes=1), "week": timedelta(weeks=1)}  # fmt: skip
_NOT_COLUMNS = {"region", "product_line", "is_key_account"}


@dataclass(frozen=True, slots=True)
class Plan:
    """The query for one scheduled rule, and which of its conditions it expresses."""

    statement: Select[Any]
    compiled: tuple[int, ...]
    left_to_python: tuple[int, ...]


def _number(value: Any) -> Any:
    """A number to compare with (``Decimal`` kept exact), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return value if isinstance(value, Decimal) else float(value)


def _compare(column: Any, op: str, expected: Any, *, kind: str = "number") -> Any:  # a SQL clause, or None
    """A plain comparison the way :func:`metrics.holds` makes it (texts case-insensitive); ``kind``
    is the column's: numbers compare with numbers only, texts with texts only."""
    number = _number(expected)
    if kind == "number" and op in (">", ">=", "<", "<=") and number is not None:
        return {">": column > number, ">=": column >= number, "<": column < number, "<=": column <= number}[op]
    if kind == "number" and op == "==" and number is not None:
        return column == number
    if kind == "text" and op in ("==", "in"):
        options = expected if isinstance(expected, list) else [expected]
        if not options or not all(isinstance(o, str) for o in options):
            return None
        texts = sorted({str(canonical_stage(o)).strip().lower() for o in options})
        return func.lower(column).in_(texts)
    return None


def _older_than(moment: Any, op: str, value: Any, unit: Any, now: datetime) -> Any:  # a SQL clause, or None
    """``time since moment <op> value unit`` as a bound on ``moment`` (a hundredth of a unit wider)."""
    number, step = _number(value), _LINEAR.get(unit)
    if number is None or step is None:
        return None
    slack = step / 100
    if op == ">":
        return moment < now - step * number + slack
    if op == ">=":
        return moment <= now - step * number + slack
    if op == "<":
        return moment > now - step * number - slack
    if op == "<=":
        return moment >= now - step * number - slack
    return None


def _activities_about(model: Any, record_type: str) -> Any:  # a SQL clause, or None
    if record_type in ("opportunity", "lead"):
        return getattr(Activity, f"{record_type}_id") == model.id
    if record_type == "account":
        return Activity.account_id == model.id
    return None


def _condition(
    organization_id: int, record_type: str, model: Any, condition: Mapping[str, Any], now: datetime
) -> Any:  # a SQL clause, or None
    """The SQL form of one condition on records of ``model``, or ``None`` when it has none."""
    name, op = str(condition.get("field_or_metric")), str(condition.get("op"))
    value, unit = condition.get("value"), condition.get("unit")
    about = _activities_about(model, record_type)
    if name == "time_since_last_contact" and about is not None:
        last = (
            select(func.max(Activity.occurred_at))
            .where(tenant_clause(organization_id, Activity), about, Activity.occurred_at <= now)
            .scalar_subquery()
        )
        return _older_than(func.coalesce(last, model.created_at), op, value, unit, now)
    if name == "time_since_last_order" and record_type == "account":
        last = (
            select(func.max(Order.ordered_at))
            .where(tenant_clause(organization_id, Order), Order.account_id == model.id, Order.ordered_at <= now)
            .scalar_subquery()
        )
        return _older_than(func.coalesce(last, model.created_at), op, value, unit, now)
    if name == "stage_duration" and record_type == "opportunity":
        return _older_than(model.stage_changed_at, op, value, unit, now)
    if name == "lead.unassigned_duration" and record_type == "lead" and op in (">", ">=") and (value or 0) > 0:
        older = _older_than(model.received_at, op, value, unit, now)
        return None if older is None else model.owner_id.is_(None) & older
    if name == "ticket.open_duration" and record_type == "ticket" and op in (">", ">=") and (value or 0) > 0:
        older = _older_than(model.opened_at, op, value, unit, now)
        open_ = model.status.in_([TicketStatus.OPEN, TicketStatus.IN_PROGRESS])
        return None if older is None else open_ & older
    if name == "email_unreplied" and op == "streak" and about is not None and _number(value) is not None:
        unanswered = (
            select(func.count(Activity.id))
            .where(
                tenant_clause(organization_id, Activity),
                about,
                Activity.occurred_at <= now,
                Activity.kind == ActivityKind.EMAIL,
                Activity.direction == Direction.OUTBOUND,
                Activity.is_replied.is_not(True),
            )
            .scalar_subquery()
        )
        return unanswered >= _number(value)
    if name in ("order_count", "visit_count") and about is not None and _number(value) is not None:
        start = metrics._window_start(as_utc(now), condition.get("window"))
        if name == "order_count":
            if record_type != "account":
                return None
            counted = select(func.count(Order.id)).where(
                tenant_clause(organization_id, Order), Order.account_id == model.id,
                Order.ordered_at > start, Order.ordered_at <= now,
            )  # fmt: skip
        else:
            counted = select(func.count(Activity.id)).where(
                tenant_clause(organization_id, Activity), about, Activity.kind == ActivityKind.VISIT,
                Activity.occurred_at > start, Activity.occurred_at <= now,
            )  # fmt: skip
        return _compare(counted.scalar_subquery(), op, value)
    noun, _, field = name.partition(".")
    if not field or field in _NOT_COLUMNS or field.startswith("custom.") or name in metrics.MEASURES:
        return None
    target = metrics.MODELS.get(noun)
    if target is None:
        return None
    column_name = metrics.FIELD_ALIASES.get((noun, field), field)
    column = target.__table__.c.get(column_name)
    if column is None:
        return None
    if isinstance(column.type, String | Enum):
        kind = "text"
    elif isinstance(column.type, ScaledDecimal):  # money: the bound value is scaled like the column
        number = _number(value)
        if number is None or (Decimal(str(value)) * Decimal(10) ** column.type.scale) % 1:
            return None
        kind, value = "number", Decimal(str(value))
    elif isinstance(column.type, Integer | Numeric | Float) and not isinstance(column.type, Boolean):
        kind = "number"
    else:
        return None
    clause = _compare(getattr(target, column_name), op, value, kind=kind)
    if clause is None:
        return None
    if noun == record_type:
        return clause
    reference = getattr(model, f"{noun}_id", None)
    if reference is None:
        return None
    return reference.in_(select(target.id).where(tenant_clause(organization_id, target), clause))


def plan(
    organization_id: int,
    record_type: str,
    conditions: list[Mapping[str, Any]],
    now: datetime,
    *,
    rule_id: int | None = None,
    rule_version: int | None = None,
    firing_key: str | None = None,
) -> Plan:
    """The query selecting the records of ``record_type`` that may match, created by ``now``, and —
    given the rule and the period — not fired on in that period yet."""
    model = metrics.MODELS[record_type]
    statement = within_organization(organization_id, model).where(model.created_at <= now)
    compiled, left = [], []
    for position, condition in enumerate(conditions):
        clause = _condition(organization_id, record_type, model, condition, now)
        if clause is None:
            left.append(position)
        else:
            compiled.append(position)
            statement = statement.where(clause)
    if rule_id is not None and firing_key is not None:
        fired = select(Decision.record_id).where(
            tenant_clause(organization_id, Decision), Decision.rule_id == rule_id,
            Decision.rule_version == rule_version, Decision.record_type == record_type,
            Decision.firing_key == firing_key,
        )  # fmt: skip
        statement = statement.where(model.id.not_in(fired))
    return Plan(statement.order_by(model.id), tuple(compiled), tuple(left))
