"""Freshness monitoring (GOV-4): a field or a feed that stops changing when it used to is flagged,
and whoever answers for it hears about it.

**What is watched.** Every field of every record type that the audit trail shows changing (built-in
fields and custom fields, ``account.industry``, ``account.custom.intent``), and every import feed
(``import:<entity>:<source>``, where the source is the file name with its dates and numbers taken
out, so that ``crm-export-2026-10-01.csv`` and ``crm-export-2026-10-08.csv`` are one feed). Field
changes come from ``*.created`` and ``*.updated`` entries of the audit trail (imports write those
too); import runs from the import jobs, which the caller passes in as a :data:`Source` (the
import package sits above this one).

**The rule.** From the last ``freshness_lookback_days`` (365) of history, each feed's change days
are collected. A feed changed in fewer than ``freshness_min_active_weeks`` (6) distinct weeks has
no rhythm and is never alerted (status ``irregular``). Otherwise its *usual gap* is the 90th
percentile of the gaps, in days, between consecutive change days, and it is **stale** when the
time since its last change exceeds ``max(factor × usual gap, freshness_min_silent_days)``
(factor 4, at least 14 days). A :class:`~closeloop.quality.models.FreshnessSetting` per feed
overrides the factor, sets a fixed limit in days (which also watches an irregular feed), or mutes
the feed.

**Alerts** go to the person accountable for the feed's asset in the data asset map (GOV-7: the
field group of a masked or custom field, else the record type); without one, to the active sales
VPs, else to those who manage the schema. Each is an in-app notification with the source key
``freshness:<feed>``, so a silence already announced is not announced again while unread.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm import assets, customfields, records
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.fields import FIELD_RULES, masked_fields
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role, require
from closeloop.org import notifications
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.quality.models import FreshnessSetting

#: one change of a feed: (feed key, when)
Change = tuple[str, datetime]
#: where changes other than the audit trail's come from (import runs): (session, organization, since)
Source = Callable[[Session, int, datetime], Iterable[Change]]

STATUSES = ("stale", "fresh", "irregular", "muted")
#: weeks of history shown per feed
HISTORY_WEEKS = 12
#: audit keys that are bookkeeping, not data
_IGNORED = frozenset({"version", "created_at", "updated_at", "deleted_at", "id", "organization_id"})
#: record types the product writes itself (the quality loop's tasks churn by design)
_SKIPPED_NOUNS = frozenset({"task"})
_NUMBERS = re.compile(r"[\d_\-.\s]+")


def import_feed(entity: str, file_name: str) -> str:
    """The feed key of an import: its entity and its file name without dates, numbers or extension."""
    stem = file_name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    source = _NUMBERS.sub("-", stem.lower()).strip("-")[:60] or "file"
    return f"import:{entity}:{source}"


@dataclass
class Feed:
    key: str
    noun: str
    #: the field (``industry``, ``custom.intent``), or ``None`` for an import feed
    field: str | None
    days: set[date] = dataclasses.field(default_factory=set)
    changes: int = 0
    last_change: datetime | None = None
    weekly: list[int] = dataclasses.field(default_factory=lambda: [0] * HISTORY_WEEKS)


@dataclass(frozen=True)
class Status:
    key: str
    kind: str  # "field" or "import"
    noun: str
    field: str | None
    label_zh: str
    label_en: str
    status: str
    last_change: datetime | None
    silent_days: int | None
    usual_gap_days: int | None
    limit_days: int | None
    active_weeks: int
    changes: int
    #: changes per week, oldest first, the newest week last
    weekly: list[int]
    asset: str
    owner_id: int | None
    owner: str | None
    factor: float | None
    max_silent_days: int | None
    muted: bool

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _percentile(values: Sequence[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def collect(
    session: Session, organization_id: int, *, now: datetime, sources: Sequence[Source] = ()
) -> dict[str, Feed]:
    """Every feed that changed in the lookback window, with its change days and weekly counts."""
    since = now - timedelta(days=settings.freshness_lookback_days)
    nouns = {rt.noun for rt in records.all_record_types() if rt.noun not in _SKIPPED_NOUNS}
    fields_of = {rt.noun: set(rt.read_fields) for rt in records.all_record_types()}
    feeds: dict[str, Feed] = {}
    week_zero = now - timedelta(weeks=HISTORY_WEEKS)

    def add(key: str, noun: str, name: str | None, moment: datetime) -> None:
        feed = feeds.get(key)
        if feed is None:
            feed = feeds[key] = Feed(key, noun, name)
        moment = as_utc(moment)
        feed.days.add(moment.date())
        feed.changes += 1
        if feed.last_change is None or moment > feed.last_change:
            feed.last_change = moment
        if moment > week_zero:
            index = min(HISTORY_WEEKS - 1, int((moment - week_zero) / timedelta(weeks=1)))
            feed.weekly[index] += 1

    statement = (
        select(AuditEntry.occurred_at, AuditEntry.subject_type, AuditEntry.changes)
        .where(
            tenant_clause(organization_id, AuditEntry),
            AuditEntry.occurred_at >= since,
            AuditEntry.occurred_at <= now,
            AuditEntry.subject_type.in_(sorted(nouns)),
            AuditEntry.action.like("%.created") | AuditEntry.action.like("%.updated"),
        )
        .execution_options(yield_per=2000)
    )
    for occurred_at, noun, changes in session.execute(statement):
        known = fields_of.get(noun, set())
        for name in changes or {}:
            if name in _IGNORED or not (name in known or name.startswith(customfields.PREFIX)):
                continue
            add(f"{noun}.{name}", noun, name, occurred_at)
    for source in sources:
        for key, moment in source(session, organization_id, since):
            if as_utc(moment) <= now:
                add(key, key.split(":")[1], None, moment)
    return feeds


def _asset_of(noun: str, name: str | None) -> tuple[str, str]:
    if name is not None and name.startswith(customfields.PREFIX):
        return "field_group", f"{noun}.custom"
    if name is not None and name in FIELD_RULES.get(noun, {}):
        return "field_group", f"{noun}.finance"
    return "record_type", noun


class _Owners:
    """Who answers for each asset (the map's accountable person), and who hears when nobody does."""

    def __init__(self, session: Session, organization_id: int) -> None:
        system = org_service.system_actor(organization_id, label="freshness monitor")
        self.accountable = {
            (row["kind"], row["key"]): (row["accountable_user_id"], row["accountable"])
            for row in assets.rows(session, system)
        }
        users = session.execute(
            select(User.id, User.display_name, User.role, User.is_active).where(tenant_clause(organization_id, User))
        ).all()
        self.active = {row.id for row in users if row.is_active}
        self.names = {row.id: row.display_name for row in users}
        vps = sorted(row.id for row in users if row.is_active and row.role == Role.SALES_VP.value)
        managers = sorted(
            row.id
            for row in users
            if row.is_active and row.role in {r.value for r in Role if "schema:manage" in ROLE_PERMISSIONS[r]}
        )
        self.fallback = vps or managers

    def of(self, asset: tuple[str, str]) -> tuple[int | None, str | None]:
        user_id, name = self.accountable.get(asset, (None, None))
        if user_id is not None and user_id in self.active:
            return user_id, name
        return None, None

    def recipients(self, asset: tuple[str, str]) -> list[int]:
        user_id, _ = self.of(asset)
        return [user_id] if user_id is not None else list(self.fallback)


def _labels(session: Session, organization_id: int, noun: str, name: str | None) -> tuple[str, str]:
    noun_zh = assets.NAMES_ZH.get(noun, noun)
    noun_en = noun.replace("_", " ").capitalize()
    if name is None:
        return f"{noun_zh}导入", f"{noun_en} import"
    if name.startswith(customfields.PREFIX):
        short = name.removeprefix(customfields.PREFIX)
        for definition in customfields.definitions(session, organization_id, noun):
            if definition.name == short:
                return f"{noun_zh} · {definition.label_zh}", f"{noun_en} · {definition.label_en}"
    return f"{noun_zh} · {name}", f"{noun_en} · {name}"


def evaluate(
    session: Session, organization_id: int, *, now: datetime | None = None, sources: Sequence[Source] = ()
) -> list[Status]:
    """The status of every feed of the organization, stale ones first."""
    moment = now or utcnow()
    feeds = collect(session, organization_id, now=moment, sources=sources)
    configured = {
        row.feed: row
        for row in session.scalars(select(FreshnessSetting).where(tenant_clause(organization_id, FreshnessSetting)))
    }
    owners = _Owners(session, organization_id)
    found: list[Status] = []
    for key, feed in feeds.items():
        setting = configured.get(key)
        days = sorted(feed.days)
        weeks = {day.isocalendar()[:2] for day in days}
        gaps = [(later - earlier).days for earlier, later in itertools.pairwise(days)]
        usual = _percentile(gaps, 0.9) if gaps else None
        factor = setting.factor if setting and setting.factor else settings.freshness_factor
        regular = len(weeks) >= settings.freshness_min_active_weeks and usual is not None
        limit: int | None = None
        if setting is not None and setting.max_silent_days:
            limit = setting.max_silent_days
        elif regular and usual is not None:
            limit = max(math.ceil(factor * usual), settings.freshness_min_silent_days)
        silent = (moment - feed.last_change).days if feed.last_change else None
        if setting is not None and setting.muted:
            state = "muted"
        elif limit is None:
            state = "irregular"
        else:
            state = "stale" if silent is not None and silent > limit else "fresh"
        asset = _asset_of(feed.noun, feed.field)
        owner_id, owner = owners.of(asset)
        label_zh, label_en = _labels(session, organization_id, feed.noun, feed.field)
        found.append(
            Status(
                key=key,
                kind="import" if feed.field is None else "field",
                noun=feed.noun,
                field=feed.field,
                label_zh=label_zh,
                label_en=label_en,
                status=state,
                last_change=feed.last_change,
                silent_days=silent,
                usual_gap_days=usual,
                limit_days=limit,
                active_weeks=len(weeks),
                changes=feed.changes,
                weekly=feed.weekly,
                asset=f"{asset[0]}/{asset[1]}",
                owner_id=owner_id,
                owner=owner,
                factor=setting.factor if setting else None,
                max_silent_days=setting.max_silent_days if setting else None,
                muted=bool(setting and setting.muted),
            )
        )
    order = {state: index for index, state in enumerate(STATUSES)}
    found.sort(key=lambda item: (order[item.status], -(item.silent_days or 0), item.key))
    return found


def _readable(session: Session, actor: Actor, status: Status) -> bool:
    try:
        record_type = records.record_type_for(status.noun)
    except KeyError:
        return False
    if not actor.can(f"{record_type.plural}:read"):
        return False
    if status.field is None:
        return actor.can("imports:run") or actor.can(f"{record_type.plural}:write")
    if status.field.startswith(customfields.PREFIX):
        short = status.field.removeprefix(customfields.PREFIX)
        return any(d.name == short for d in customfields.readable(session, actor, status.noun))
    return status.field not in masked_fields(session, actor, status.noun)


def report(
    session: Session, actor: Actor, *, status: str | None = None, sources: Sequence[Source] = ()
) -> list[dict[str, Any]]:
    """The feeds the actor may know of (no masked field, no record type they cannot read)."""
    require(actor, "quality:read")
    if status is not None and status not in STATUSES:
        raise ValidationFailed.one("status", f"use one of: {', '.join(STATUSES)}")
    return [
        item.as_dict()
        for item in evaluate(session, actor.organization_id, sources=sources)
        if (status is None or item.status == status) and _readable(session, actor, item)
    ]


def _message(status: Status) -> notifications.Message:
    gap = status.usual_gap_days
    return notifications.Message(
        kind="freshness",
        title_zh=f"数据断更：{status.label_zh} 已 {status.silent_days} 天没有变化",
        title_en=f"Stale data: {status.label_en} has not changed for {status.silent_days} days",
        body_zh=(
            f"它通常每 {gap} 天左右就有变化（近一年 {status.active_weeks} 周有变化，共 {status.changes} 次），"
            f"超过了 {status.limit_days} 天的限度。请检查上游的映射或导入是否悄悄改变了。"
            if gap
            else f"超过了设定的 {status.limit_days} 天限度。请检查上游的映射或导入。"
        ),
        body_en=(
            f"It usually changes every {gap} days or so (changes in {status.active_weeks} weeks of the last year, "
            f"{status.changes} in all), beyond the {status.limit_days}-day limit. Check whether an upstream mapping "
            "or import changed silently."
            if gap
            else f"It is past its {status.limit_days}-day limit. Check the upstream mapping or import."
        ),
        link="/quality#freshness",
    )


@dataclass
class AlertRun:
    statuses: list[Status]
    #: feed key → users notified this run (not those already notified and unread)
    alerted: dict[str, list[int]] = dataclasses.field(default_factory=dict)


def alert(
    session: Session, organization_id: int, *, now: datetime | None = None, sources: Sequence[Source] = ()
) -> AlertRun:
    """Evaluate every feed and tell the owner of each stale one (once while the notice is unread)."""
    statuses = evaluate(session, organization_id, now=now, sources=sources)
    owners = _Owners(session, organization_id)
    run = AlertRun(statuses)
    for item in statuses:
        if item.status != "stale":
            continue
        kind, key = item.asset.split("/", 1)
        for user_id in owners.recipients((kind, key)):
            sent = notifications.notify(
                session,
                organization_id=organization_id,
                user_id=user_id,
                message=_message(item),
                source_key=f"freshness:{item.key}"[:120],
            )
            if sent is not None:
                run.alerted.setdefault(item.key, []).append(user_id)
    return run


def configure(
    session: Session,
    actor: Actor,
    *,
    feed: str,
    factor: float | None,
    max_silent_days: int | None,
    muted: bool,
    sources: Sequence[Source] = (),
) -> dict[str, Any]:
    """Set how long ``feed`` may stay silent (``schema:manage``); audited as ``freshness.configured``."""
    require(actor, "schema:manage")
    if factor is not None and not 1 <= factor <= 100:
        raise ValidationFailed.one("factor", "between 1 and 100 times the usual gap")
    if max_silent_days is not None and not 1 <= max_silent_days <= 3650:
        raise ValidationFailed.one("max_silent_days", "between 1 and 3650 days")
    known = {item.key: item for item in evaluate(session, actor.organization_id, sources=sources)}
    if feed not in known or not _readable(session, actor, known[feed]):
        raise NotFound("freshness feed", feed)
    row = session.scalar(visible(actor, FreshnessSetting, access=RowAccess.WRITE).where(FreshnessSetting.feed == feed))
    before: dict[str, Any] = {}
    values: dict[str, Any] = {"factor": factor, "max_silent_days": max_silent_days, "muted": muted}
    if row is None:
        row = FreshnessSetting(organization_id=actor.organization_id, feed=feed, **values)
        session.add(row)
    else:
        before = {"factor": row.factor, "max_silent_days": row.max_silent_days, "muted": row.muted}
        for name, value in values.items():
            setattr(row, name, value)
    row.updated_at = utcnow()
    session.flush()
    difference = audit.diff(before, values)
    if difference:
        audit.record(
            session,
            actor,
            "freshness.configured",
            subject_type="quality_freshness_setting",
            subject_id=row.id,
            changes={"feed": [None, feed], **difference},
        )
    return next(
        item.as_dict() for item in evaluate(session, actor.organization_id, sources=sources) if item.key == feed
    )
