"""What a rule's conditions read: a record's fields (and its account's), and measures over its
history (streaks of unanswered emails, time since the last contact, days in a stage …), each taken
*as of* a moment so that a backtest sees what the rule would have seen then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.automation.definition import canonical_stage
from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.clock import as_utc
from closeloop.crm import customfields
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind, Direction, TicketStatus
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.orders.models import Order
from closeloop.crm.products.models import Product, ProductLine
from closeloop.crm.tickets.models import Ticket
from closeloop.db.scope import tenant_clause
from closeloop.forecasting import scorecards, signals
from closeloop.org.models import Region, User

MODELS: dict[str, type[Any]] = {
    "account": Account,
    "opportunity": Opportunity,
    "lead": Lead,
    "ticket": Ticket,
    "order": Order,
    "activity": Activity,
    #: a person (a rep): rules on forecast deviation are about people
    "user": User,
}
_MISSING = object()


@dataclass
class Context:
    """The record a rule looks at, the moment it looks, and what it already looked up."""

    session: Session
    organization_id: int
    record_type: str
    record: Any
    now: datetime
    #: how related records are found (a backtest passes one that rewinds them to ``now``)
    lookup: Callable[[str, int, datetime], Any] | None = None
    #: a backtest's batch of the same: ``(noun, ids, moment)`` → each record as it was (``None``: not yet)
    lookup_many: Callable[[str, Sequence[int], datetime], Mapping[int, Any]] | None = None
    #: a backtest's activities read once for all its checks (:class:`History`), instead of queries per check
    history: History | None = None
    _cache: dict[str, Any] = field(default_factory=dict)

    def related(self, noun: str) -> Any:
        """The record itself, or the one of kind ``noun`` it points to (an opportunity's account)."""
        if noun == self.record_type:
            return self.record
        if noun in self._cache:
            return self._cache[noun]
        model = MODELS.get(noun)
        reference = getattr(self.record, f"{noun}_id", None)
        if noun == "account" and reference is None and self.record_type == "lead":
            reference = getattr(self.record, "converted_account_id", None)
        found = None
        if model is not None and reference is not None and self.lookup is not None:
            found = self.lookup(noun, int(reference), self.now)
        elif model is not None and reference is not None:
            found = self.session.scalar(
                select(model).where(tenant_clause(self.organization_id, model), model.id == reference)
            )
        self._cache[noun] = found
        return found

    def account_id(self) -> int | None:
        account = self.related("account")
        return account.id if account is not None else None


def _since(now: datetime, moment: datetime | None, unit: str | None) -> float | None:
    if moment is None:
        return None
    return to_unit(as_utc(now) - as_utc(moment), unit, start=as_utc(moment))


def to_unit(span: timedelta, unit: str | None, *, start: datetime | None = None) -> float:
    """A duration in ``unit`` (days by default); months are calendar months, business days skip weekends."""
    seconds = span.total_seconds()
    if unit == "minute":
        return round(seconds / 60, 2)
    if unit == "hour":
        return round(seconds / 3600, 2)
    if unit == "week":
        return round(seconds / (7 * 86400), 2)
    if unit == "month" and start is not None:
        end = start + span
        months = (end.year - start.year) * 12 + end.month - start.month
        if end.day < start.day:
            months -= 1
        return float(max(months, 0))
    if unit == "business_day" and start is not None:  # working days of the business time zone
        days, day = 0, calendar.local_date(start, settings.business_timezone)
        last = calendar.local_date(start + span, settings.business_timezone)
        while day < last and days < 10000:
            day += timedelta(days=1)
            days += day.weekday() < 5
        return float(days)
    return round(seconds / 86400, 2)


def _window_start(now: datetime, window: Any, default_days: int = 30) -> datetime:
    if isinstance(window, Mapping):
        value, unit = float(window.get("value", default_days)), str(window.get("unit", "day"))
        hours = {"hour": 1, "day": 24, "week": 168, "month": 24 * 30}.get(unit, 24)
        return now - timedelta(hours=value * hours)
    return now - timedelta(days=default_days)


@dataclass(frozen=True, slots=True)
class Touch:
    """What the history measures read of one activity."""

    occurred_at: datetime
    id: int
    kind: str
    direction: str
    is_replied: bool | None


class History:
    """The activities of many records, read in one query and kept in time order per record: a
    backtest checks thousands of (record, moment) pairs, and two queries per check (the last
    contact, a streak) made trying a rule take minutes on the demo (docs/benchmarks.md, tenth
    session). Each measure gives what its query gives, as of the check's moment."""

    def __init__(self, session: Session, organization_id: int, record_type: str, ids: Sequence[int], until: datetime):
        self.record_type = record_type
        self.column = f"{record_type}_id" if record_type in ("opportunity", "lead") else "account_id"
        self.by_key: dict[int, list[Touch]] = {}
        self.keys: dict[int, list[tuple[datetime, int]]] = {}
        wanted = sorted({i for i in ids if i is not None})
        column = getattr(Activity, self.column)
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(
                    column, Activity.occurred_at, Activity.id, Activity.kind, Activity.direction, Activity.is_replied
                ).where(
                    tenant_clause(organization_id, Activity),
                    column.in_(wanted[start : start + 500]),
                    Activity.occurred_at <= until,
                )
            ).all()
            for key, *touch in rows:
                self.by_key.setdefault(key, []).append(Touch(as_utc(touch[0]), *touch[1:]))
        for key, touches in self.by_key.items():
            touches.sort(key=lambda t: (t.occurred_at, t.id))
            self.keys[key] = [(t.occurred_at, t.id) for t in touches]

    def until(self, key: int | None, now: datetime) -> list[Touch]:
        """The record's activities up to ``now`` (inclusive), oldest first."""
        if key is None or key not in self.by_key:
            return []
        end = bisect_right(self.keys[key], (as_utc(now), 2**63))
        return self.by_key[key][:end]

    def key_of(self, ctx: Context) -> int | None:
        return getattr(ctx.record, "id", None)

    #: the kinds of record whose activities a history holds (by the record's own id)
    KINDS = ("account", "opportunity", "lead")


def _activities_of(ctx: Context) -> Any:
    """Activities about the record: its own (an opportunity's, a lead's) or, for an account, all of its."""
    clauses = [tenant_clause(ctx.organization_id, Activity), Activity.occurred_at <= ctx.now]
    if ctx.record_type in ("opportunity", "lead"):
        clauses.append(getattr(Activity, f"{ctx.record_type}_id") == ctx.record.id)
    else:
        clauses.append(Activity.account_id == (ctx.account_id() or 0))
    return clauses


def _touches(ctx: Context) -> list[Touch] | None:
    """The record's activities up to the check's moment, when a backtest read them in advance."""
    history = ctx.history
    if history is None or history.record_type != ctx.record_type:
        return None
    return history.until(history.key_of(ctx), ctx.now)


def last_contact(ctx: Context, condition: Mapping[str, Any]) -> Any:
    touches = _touches(ctx)
    if touches is not None:
        moment = touches[-1].occurred_at if touches else getattr(ctx.record, "created_at", None)
        return _since(ctx.now, moment, condition.get("unit"))
    moment = ctx.session.scalar(select(func.max(Activity.occurred_at)).where(*_activities_of(ctx)))
    if moment is None:
        moment = getattr(ctx.record, "created_at", None)
    return _since(ctx.now, moment, condition.get("unit"))


def last_visit(ctx: Context, condition: Mapping[str, Any]) -> Any:
    touches = _touches(ctx)
    if touches is not None:
        visits = [t.occurred_at for t in touches if t.kind == ActivityKind.VISIT]
        latest = visits[-1] if visits else getattr(ctx.record, "created_at", None)
        return _since(ctx.now, latest, condition.get("unit"))
    moment = ctx.session.scalar(
        select(func.max(Activity.occurred_at)).where(*_activities_of(ctx), Activity.kind == ActivityKind.VISIT)
    )
    return _since(ctx.now, moment or getattr(ctx.record, "created_at", None), condition.get("unit"))


def last_order(ctx: Context, condition: Mapping[str, Any]) -> Any:
    account_id = ctx.account_id() or 0
    moment = ctx.session.scalar(
        select(func.max(Order.ordered_at)).where(
            tenant_clause(ctx.organization_id, Order), Order.account_id == account_id, Order.ordered_at <= ctx.now
        )
    )
    account = ctx.related("account")
    return _since(ctx.now, moment or (account.created_at if account is not None else None), condition.get("unit"))


def _streak(ctx: Context, kind: ActivityKind) -> int:
    """Outbound messages in a row, newest first, that got no answer (an inbound message ends the streak)."""
    touches = _touches(ctx)
    if touches is not None:
        rows = [(t.direction, t.is_replied) for t in reversed(touches) if t.kind == kind][:100]
        return _count_unanswered(rows)
    found = ctx.session.execute(
        select(Activity.direction, Activity.is_replied)
        .where(*_activities_of(ctx), Activity.kind == kind)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(100)
    ).all()
    return _count_unanswered([(direction, replied) for direction, replied in found])


def _count_unanswered(rows: Sequence[tuple[Any, Any]]) -> int:
    count = 0
    for direction, replied in rows:
        if direction == Direction.INBOUND or replied:
            break
        count += 1
    return count


def email_unreplied(ctx: Context, condition: Mapping[str, Any]) -> Any:
    return _streak(ctx, ActivityKind.EMAIL)


def call_unanswered(ctx: Context, condition: Mapping[str, Any]) -> Any:
    return _streak(ctx, ActivityKind.CALL)


def customer_replied(ctx: Context, condition: Mapping[str, Any]) -> Any:
    return _streak(ctx, ActivityKind.EMAIL) == 0


def _stretch(ctx: Context, measure: str, start: datetime | None, unit: str | None) -> float | None:
    """How long a stretch has lasted (a stage, an unassigned lead, an open ticket); a rule on it fires
    once per stretch, not at every check while it lasts: the stretch's start is in the firing key."""
    if start is None:
        return None
    ctx._cache[DETAIL] = {ONCE: f"{measure}:{as_utc(start).isoformat()}"}
    return _since(ctx.now, start, unit)


def stage_duration(ctx: Context, condition: Mapping[str, Any]) -> Any:
    opportunity = ctx.related("opportunity")
    if opportunity is None:
        return None
    return _stretch(ctx, "stage", opportunity.stage_changed_at, condition.get("unit"))


def lead_unassigned(ctx: Context, condition: Mapping[str, Any]) -> Any:
    lead = ctx.related("lead")
    if lead is None:
        return None
    return 0.0 if lead.owner_id is not None else _stretch(ctx, "unassigned", lead.received_at, condition.get("unit"))


def ticket_open(ctx: Context, condition: Mapping[str, Any]) -> Any:
    ticket = ctx.related("ticket")
    if ticket is None:
        return None
    if ticket.status not in (TicketStatus.OPEN, TicketStatus.IN_PROGRESS):
        return 0.0
    return _stretch(ctx, "open", ticket.opened_at, condition.get("unit"))


def order_count(ctx: Context, condition: Mapping[str, Any]) -> Any:
    start = _window_start(ctx.now, condition.get("window"))
    return int(
        ctx.session.scalar(
            select(func.count(Order.id)).where(
                tenant_clause(ctx.organization_id, Order),
                Order.account_id == (ctx.account_id() or 0),
                Order.ordered_at > start,
                Order.ordered_at <= ctx.now,
            )
        )
        or 0
    )


def visit_count(ctx: Context, condition: Mapping[str, Any]) -> Any:
    start = _window_start(ctx.now, condition.get("window"))
    touches = _touches(ctx)
    if touches is not None:
        return sum(1 for t in touches if t.kind == ActivityKind.VISIT and t.occurred_at > as_utc(start))
    return int(
        ctx.session.scalar(
            select(func.count(Activity.id)).where(
                *_activities_of(ctx), Activity.kind == ActivityKind.VISIT, Activity.occurred_at > start
            )
        )
        or 0
    )


def _region_name(ctx: Context, record: Any) -> Any:
    if record is None or record.region_id is None:
        return None
    return ctx.session.scalar(
        select(Region.name).where(tenant_clause(ctx.organization_id, Region), Region.id == record.region_id)
    )


def _product_line(ctx: Context, noun: str) -> Any:
    record = ctx.related(noun)
    if record is None:
        return None
    if noun == "lead":
        line_id = record.product_line_id
    else:
        product_id = getattr(record, "product_id", None)
        line_id = ctx.session.scalar(
            select(Product.product_line_id).where(
                tenant_clause(ctx.organization_id, Product), Product.id == (product_id or 0)
            )
        )
    if line_id is None:
        return None
    return ctx.session.scalar(
        select(ProductLine.name).where(tenant_clause(ctx.organization_id, ProductLine), ProductLine.id == line_id)
    )


#: where a measure leaves what stands behind its value (kept with the condition in the decision)
DETAIL = "detail"
#: in a detail: what makes a firing happen once however many events or scheduled checks see it (a
#: streak's keyword and first day; the start of a stage, of an unassigned lead's wait, of an open ticket)
ONCE = "once"
#: a condition's window → the forecast period it reads: "last week" the last finished ISO week,
#: quarters the last finished quarter, anything else (last month, no window) the last finished month;
#: weeks and months are those of the business time zone (see docs/automation.md)
_DEVIATION_GRANULARITY = {"last_week": "week", "last_quarter": "quarter", "this_quarter": "quarter"}


def forecast_deviation(ctx: Context, condition: Mapping[str, Any]) -> Any:
    """A person's forecast deviation in percent over the latest finished forecast period, as the
    forecasting scorecards compute it (:func:`closeloop.forecasting.scorecards.owner_deviation`, and
    :func:`~closeloop.forecasting.scorecards.owner_week_deviation` for a week). ``None`` (the
    condition does not hold) when the record is not a person, no snapshot stands for that period,
    or nothing was forecast for them."""
    if ctx.record_type != "user":
        return None
    window = condition.get("window")
    granularity = _DEVIATION_GRANULARITY.get(window, "month") if isinstance(window, str) else "month"
    zone = settings.business_timezone
    if granularity == "week":
        found = scorecards.owner_week_deviation(
            ctx.session, ctx.organization_id, ctx.record.id, now=ctx.now, timezone=zone
        )
    else:
        found = scorecards.owner_deviation(
            ctx.session,
            ctx.organization_id,
            ctx.record.id,
            as_of=calendar.local_date(as_utc(ctx.now), zone),
            granularity=granularity,
        )
    if found is None:
        return None
    ctx._cache[DETAIL] = {
        "period": found.period,
        "period_start": found.period_start.isoformat(),
        "period_end": found.period_end.isoformat(),
        "expected": str(found.expected),
        "actual": str(found.actual),
    }
    return None if found.rate is None else round(found.rate * 100, 2)


def keyword_streak(ctx: Context, condition: Mapping[str, Any]) -> Any:
    """Consecutive days, ending on the day of the check, on which the record's account searched or
    asked about the condition's ``keyword`` (inquiry signals, :mod:`closeloop.forecasting.signals`)."""
    account_id = ctx.account_id()
    if account_id is None:
        return None
    keyword = str(condition.get("keyword") or "")
    days, first = signals.keyword_streak(ctx.session, ctx.organization_id, account_id, keyword, ctx.now)
    if first is not None:  # a streak fires once: its first day is part of the firing key
        ctx._cache[DETAIL] = {"keyword": keyword, "streak_start": first.isoformat(), ONCE: f"{keyword}:{first}"}
    return days


#: measures by name (the names of the rule vocabulary)
MEASURES: dict[str, Callable[[Context, Mapping[str, Any]], Any]] = {
    "time_since_last_contact": last_contact,
    "time_since_last_visit": last_visit,
    "time_since_last_order": last_order,
    "email_unreplied": email_unreplied,
    "call_unanswered": call_unanswered,
    "customer_replied": customer_replied,
    "stage_duration": stage_duration,
    "lead.unassigned_duration": lead_unassigned,
    "ticket.open_duration": ticket_open,
    "order_count": order_count,
    "visit_count": visit_count,
    "forecast_deviation": forecast_deviation,
    "keyword_streak": keyword_streak,
}
#: fields named differently in the vocabulary than on the record
FIELD_ALIASES = {("order", "amount"): "total", ("lead", "created_date"): "received_at"}
METRIC_NAMES = frozenset(MEASURES)


def read(ctx: Context, condition: Mapping[str, Any]) -> Any:
    """The value a condition sees."""
    name = str(condition["field_or_metric"])
    measure = MEASURES.get(name)
    if measure is not None:
        return measure(ctx, condition)
    noun, _, field_name = name.partition(".")
    if field_name in ("region",):
        return _region_name(ctx, ctx.related(noun))
    if field_name == "product_line":
        return _product_line(ctx, noun)
    record = ctx.related(noun)
    if record is None:
        return None
    if field_name == "is_key_account" and noun == "account":
        custom = getattr(record, "custom", None) or {}
        return bool(custom.get("is_key_account", record.tier == "A"))
    if field_name.startswith("custom."):  # a formula field is computed (GOV-2: formulas in rules)
        if ctx.lookup_many is None:
            return customfields.rule_value(ctx.session, ctx.organization_id, noun, field_name[7:], record)
        # a backtest: the formula on the record as rebuilt for ``now``, and on the related rows of then
        many = ctx.lookup_many
        return customfields.rule_value(
            ctx.session,
            ctx.organization_id,
            noun,
            field_name[7:],
            record,
            as_of=ctx.now,
            rewind=lambda kind, ids: many(kind, ids, ctx.now),
            rewindable=frozenset(MODELS),
        )
    attribute = FIELD_ALIASES.get((noun, field_name), field_name)
    value = getattr(record, attribute, _MISSING)
    if value is _MISSING:
        value = (getattr(record, "custom", None) or {}).get(field_name)
    return value


def reader_for(condition: Mapping[str, Any]) -> Callable[[Context], Any]:
    """:func:`read` for one condition, specialised once per rule version: a plain field of the
    record (or of the record it points to) is a ``getattr`` on the record; anything else — measures,
    regions, product lines, custom fields and formulas — goes through :func:`read` itself."""
    name = str(condition["field_or_metric"])
    noun, _, field_name = name.partition(".")
    if (
        name in MEASURES
        or not field_name
        or field_name in ("region", "product_line", "is_key_account")
        or field_name.startswith("custom.")
    ):
        return lambda ctx: read(ctx, condition)
    attribute = FIELD_ALIASES.get((noun, field_name), field_name)

    def read_field(ctx: Context) -> Any:
        record = ctx.record if noun == ctx.record_type else ctx.related(noun)
        if record is None:
            return None
        value = getattr(record, attribute, _MISSING)
        if value is _MISSING:
            value = (getattr(record, "custom", None) or {}).get(field_name)
        return value

    return read_field


def checker_for(condition: Mapping[str, Any]) -> Callable[[Any], bool]:
    """:func:`holds` for one condition, specialised once per rule version: an equality with a text
    compares against the expected text computed once; the rest is :func:`holds` itself."""
    op, expected = condition["op"], condition.get("value")
    if op != "==" or not isinstance(expected, str):
        return lambda seen: holds(condition, seen)
    wanted = _text(expected)
    truth = bool(expected)

    def equals_text(seen: Any) -> bool:
        if seen is None:
            return False
        if isinstance(seen, bool):
            return seen == truth
        return _text(seen) == wanted

    return equals_text


def plain(value: Any) -> Any:
    """A value as a decision record keeps it (JSON)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def holds(condition: Mapping[str, Any], seen: Any) -> bool:
    """Whether the value ``seen`` satisfies ``condition``."""
    op, expected = condition["op"], condition.get("value")
    if seen is None:
        return False
    if op == "streak":
        return _number(seen) >= _number(expected)
    if op == "==":
        if isinstance(expected, bool) or isinstance(seen, bool):
            return bool(seen) == bool(expected)
        if isinstance(expected, int | float) and not isinstance(seen, str):
            return _number(seen) == _number(expected)
        return _text(seen) == _text(expected)
    if op == "in":
        options = expected if isinstance(expected, list) else [expected]
        return _text(seen) in {_text(option) for option in options}
    try:
        left, right = _number(seen), _number(expected)
    except (TypeError, ValueError):  # a text seen where a number was expected: the condition does not hold
        return False
    if op == ">":
        return left > right
    if op == ">=":
        return left >= right
    if op == "<":
        return left < right
    return left <= right


def _text(value: Any) -> str:
    try:
        return _text_of(value)
    except TypeError:  # an unhashable value: not cached
        return _text_of.__wrapped__(value)


@lru_cache(maxsize=4096)
def _text_of(value: Any) -> str:
    """The form categorical values are compared in (canonical stage keys, case and spaces ignored)."""
    return str(canonical_stage(str(value))).strip().lower()


def _number(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)
