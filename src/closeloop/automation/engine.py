"""The rule engine: an index of each organization's enabled rules by the event type that wakes
them, the evaluation of one event (or one scheduled check) against only the rules it can wake, and
the firing that writes the decision record and does — or schedules — the actions.

The worker drains the outbox in batches: each batch is one transaction that claims events, does
everything they cause and marks them processed, so a crash anywhere leaves a batch wholly done or
wholly undone, never half (exactly once). One event that fails is rolled back to its savepoint
and marked failed; the rest of its batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from closeloop.automation import actions as action_runner
from closeloop.automation import compile, explain, metrics
from closeloop.automation.definition import Trigger, canonical_stage, is_deferred, record_type_of, trigger_of
from closeloop.automation.models import Decision, PendingAction, Rule, RuleVersion
from closeloop.config import settings
from closeloop.core.clock import as_utc, utcnow
from closeloop.db.scope import tenant_clause, within_organization
from closeloop.db.session import Database, after_commit, execute_core, ids_in
from closeloop.governance.events import service as events
from closeloop.governance.events.service import Claimed
from closeloop.org.notifications import notify_many

log = logging.getLogger("closeloop.automation")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule_id: int
    version: int
    name: str
    owner_id: int
    undo_seconds: int
    definition: Mapping[str, Any]
    trigger: Trigger
    record_type: str
    #: each condition with its reader and checker (:func:`metrics.reader_for` / :func:`metrics.checker_for`)
    checks: tuple[tuple[Mapping[str, Any], Callable[[metrics.Context], Any], Callable[[Any], bool]], ...] = ()
    #: whether the trigger looks at the event's details beyond its type (:func:`trigger_matches`)
    filtered: bool = True

    def __post_init__(self) -> None:
        conditions = self.definition.get("conditions", ())
        checks = tuple((c, metrics.reader_for(c), metrics.checker_for(c)) for c in conditions)
        object.__setattr__(self, "checks", checks)
        object.__setattr__(self, "filtered", has_filter(self.trigger))


@dataclass
class RuleIndex:
    """Enabled rules by the outbox event type that wakes them, and the scheduled ones."""

    by_event: dict[str, list[CompiledRule]] = field(default_factory=dict)
    scheduled: list[CompiledRule] = field(default_factory=list)

    def for_event(self, event_type: str) -> list[CompiledRule]:
        return self.by_event.get(event_type, [])

    @classmethod
    def build(cls, rules: Iterable[CompiledRule]) -> RuleIndex:
        index = cls()
        for rule in rules:
            if rule.trigger.event_type is not None:
                index.by_event.setdefault(rule.trigger.event_type, []).append(rule)
            else:
                index.scheduled.append(rule)
        return index


def compile_rule(rule: Rule, version: RuleVersion) -> CompiledRule:
    return CompiledRule(
        rule.id,
        version.version,
        rule.name,
        rule.owner_id,
        rule.undo_seconds,
        version.definition,
        trigger_of(version.definition),
        record_type_of(version.definition),
    )


_INDEXES: dict[int, tuple[tuple[int, Any], RuleIndex]] = {}


def index_for(session: Session, organization_id: int) -> RuleIndex:
    """The organization's rule index, rebuilt only when its rules changed."""
    live = (tenant_clause(organization_id, Rule), Rule.enabled.is_(True), Rule.deleted_at.is_(None))
    stamp_row = session.execute(select(func.count(Rule.id), func.max(Rule.updated_at)).where(*live)).one()
    stamp = (int(stamp_row[0]), stamp_row[1])
    cached = _INDEXES.get(organization_id)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    rows = session.execute(
        select(Rule, RuleVersion)
        .join(RuleVersion, (RuleVersion.rule_id == Rule.id) & (RuleVersion.version == Rule.current_version))
        .where(*live)
        .order_by(Rule.id)
    ).all()
    index = RuleIndex.build(compile_rule(rule, version) for rule, version in rows)
    _INDEXES[organization_id] = (stamp, index)
    return index


def has_filter(trigger: Trigger) -> bool:
    """Whether :func:`trigger_matches` can say no for this trigger (else only the type matters)."""
    spec = trigger.spec
    event = spec.get("event")
    return event in ("email_received", "field_changed") or (
        (event == "activity_logged" and bool(spec.get("activity_type")))
        or (event == "opportunity_stage_changed" and bool(spec.get("to_stage")))
        or (event == "signal_recorded" and bool(spec.get("keyword")))
    )


def trigger_matches(trigger: Trigger, payload: Mapping[str, Any]) -> bool:
    """Whether an event's details match what the trigger asks beyond its type (the stage moved
    to, the kind of activity, a field's old and new values)."""
    spec = trigger.spec
    changes: Mapping[str, Any] = payload.get("changes") or {}

    def after(name: str) -> Any:
        value = changes.get(name)
        return value[1] if isinstance(value, list) and len(value) == 2 else None

    event = spec.get("event")
    if event == "email_received":
        return bool(after("kind") == "email" and after("direction") == "inbound")
    if event == "activity_logged" and spec.get("activity_type"):
        return bool(after("kind") == spec["activity_type"])
    if event == "opportunity_stage_changed" and spec.get("to_stage"):
        return bool(canonical_stage(str(after("stage"))) == canonical_stage(str(spec["to_stage"])))
    if event == "signal_recorded" and spec.get("keyword"):
        return str(payload.get("keyword") or "").strip().lower() == str(spec["keyword"]).strip().lower()
    if event == "field_changed":
        name = str(spec["field"]).split(".", 1)[1]
        change = changes.get(name)
        if not isinstance(change, list) or len(change) != 2:
            return False
        if "from" in spec and str(change[0]).lower() != str(spec["from"]).lower():
            return False
        return "to" not in spec or str(change[1]).lower() == str(spec["to"]).lower()
    return True


@dataclass
class Evaluation:
    """One rule looked at one record: each condition with the value seen, and whether it fires."""

    rule: CompiledRule
    record_type: str
    record_id: int
    record_owner_id: int | None
    conditions: list[dict[str, Any]]
    fires: bool
    record: Any = None


def load_record(session: Session, organization_id: int, record_type: str, record_id: int | None) -> Any:
    model = metrics.MODELS.get(record_type)
    if model is None or record_id is None:
        return None
    return session.scalar(select(model).where(tenant_clause(organization_id, model), model.id == record_id))


def evaluate(ctx: metrics.Context, rule: CompiledRule, *, record_id: int, full: bool = False) -> Evaluation:
    """Check the rule's conditions in order, stopping at the first that fails (all of them when ``full``).

    Hot path (every event × every rule its type wakes): the values are kept as plain tuples and the
    decision's condition entries are built only when the rule fires or ``full`` asks for them all."""
    record = ctx.record
    cache = ctx._cache
    looked: list[tuple[Any, Any, bool, Any]] = []
    fires = True
    for condition, read, check in rule.checks:
        value = read(ctx) if record is not None else None
        passed = check(value)
        detail = cache.pop(metrics.DETAIL, None) if cache else None  # what a value rests on (a forecast's period)
        looked.append((condition, value, passed, detail))
        if not passed:
            fires = False
            if not full:
                return Evaluation(rule, ctx.record_type, record_id, None, [], False, record)
    seen: list[dict[str, Any]] = []
    for condition, value, passed, detail in looked:
        entry = {**condition, "seen": metrics.plain(value), "passed": passed}
        if detail is not None:
            entry[metrics.DETAIL] = detail
        seen.append(entry)
    return Evaluation(rule, ctx.record_type, record_id, action_runner.owner_of(record), seen, fires, record)


#: called with (pending action id, when it may run) once the firing's transaction commits
_pending_hooks: list[Callable[[int, datetime], None]] = []


def on_pending(callback: Callable[[int, datetime], None]) -> None:
    if callback not in _pending_hooks:
        _pending_hooks.append(callback)


def _later(hook: Callable[[int, datetime], None], pending_id: int, run_after: datetime) -> Callable[[], None]:
    return lambda: hook(pending_id, run_after)


def describe(evaluation: Evaluation, event_type: str) -> tuple[str, str]:
    return explain.why(
        rule_name=evaluation.rule.name,
        version=evaluation.rule.version,
        event_type=event_type,
        record_type=evaluation.record_type,
        record_id=evaluation.record_id,
        conditions=evaluation.conditions,
        actions=evaluation.rule.definition.get("actions", []),
        record_name=explain.name_of(evaluation.record),
    )


def fire(
    session: Session,
    organization_id: int,
    evaluation: Evaluation,
    *,
    event_type: str,
    event_id: int | None,
    firing_key: str,
    now: datetime,
    digest: action_runner.Digest | None = None,
    writes: Writes | None = None,
) -> int | None:
    """Write the decision record, do the immediate actions and queue the deferred ones (with a
    ``digest``, the notices are gathered there for the caller to send, see :class:`Digest`).

    With ``writes`` (the drain's batch), a firing whose actions need no decision id (notices) adds
    its decision and notices there, to be written with the batch, and returns ``None``; otherwise
    the decision's id."""
    rule = evaluation.rule
    why_zh, why_en = describe(evaluation, event_type)
    actions = list(rule.definition.get("actions", []))
    taken: list[dict[str, Any]] = [
        {"type": a.get("type"), "target": a.get("target"), "params": a.get("params") or {}} for a in actions
    ]
    # Actions that need no decision id (notify, escalate, summaries) run first, so that the common
    # firing writes its decision in one statement, complete; approvals and deferred actions point
    # at the decision, so they come after it (and the decision's action list is updated).
    linked = [i for i, a in enumerate(actions) if is_deferred(a) or a.get("type") == "require_approval"]
    batched = writes is not None and not linked
    firing = action_runner.Firing(
        organization_id, rule.rule_id, rule.name, rule.owner_id, 0,
        evaluation.record_type, evaluation.record_id, why_zh, why_en, now, evaluation.record, digest,
        writes.notices if batched and writes is not None else None,
        {"version": rule.version, "event_type": event_type, "conditions": evaluation.conditions, "actions": actions},
    )  # fmt: skip
    for position, action in enumerate(actions):
        if position not in linked:
            taken[position] |= {"status": "done", "result": action_runner.run_now(session, firing, action)}
    decision = {
        "organization_id": organization_id,
        "rule_id": rule.rule_id,
        "rule_version": rule.version,
        "rule_name": rule.name,
        "event_id": event_id,
        "event_type": event_type,
        "firing_key": firing_key,
        "record_type": evaluation.record_type,
        "record_id": evaluation.record_id,
        "record_owner_id": evaluation.record_owner_id,
        "conditions": evaluation.conditions,
        "actions": taken,
        "why_zh": why_zh,
        "why_en": why_en,
        "created_at": now,
    }
    if writes is not None:
        if batched:
            writes.decisions.append(decision)
            return None
        writes.flush(session)  # the batch's earlier decisions keep their order
    # Core statements, not the ORM's unit of work: a burst of events writes thousands of these
    decision_id = execute_core(session, insert(Decision).returning(Decision.id), decision).scalar_one()
    assert isinstance(decision_id, int)
    if not linked:
        return decision_id
    firing = replace(firing, decision_id=decision_id)
    for position in linked:
        action = actions[position]
        if not is_deferred(action):
            taken[position] |= {"status": "done", "result": action_runner.run_now(session, firing, action)}
            continue
        run_after = now + timedelta(seconds=rule.undo_seconds)
        pending = PendingAction(
            organization_id=organization_id,
            decision_id=decision_id,
            rule_id=rule.rule_id,
            position=position,
            action=dict(action),
            record_type=evaluation.record_type,
            record_id=evaluation.record_id,
            record_owner_id=evaluation.record_owner_id,
            run_after=run_after,
            status="pending",
            result={},
            created_at=now,
        )
        session.add(pending)
        session.flush()
        taken[position] |= {"status": "pending", "pending_action_id": pending.id, "run_after": run_after.isoformat()}
        for hook in _pending_hooks:
            after_commit(session, _later(hook, pending.id, run_after))
    execute_core(session, update(Decision).where(Decision.id == decision_id).values(actions=taken))
    return decision_id


@dataclass
class Writes:
    """The decision records and notices of a drained batch's plain firings, written with one
    statement each when the batch ends — in its transaction, before its events are marked processed,
    so that a crash loses or keeps them together with the events (exactly once). Anything in the
    engine that reads decisions during the batch (the once-per-streak check) flushes them first."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)

    def flush(self, session: Session) -> None:
        if self.decisions:
            session.execute(insert(Decision), self.decisions)
            self.decisions = []
        if self.notices:
            notify_many(session, self.notices)
            self.notices = []


def preload(session: Session, claimed: list[Claimed], indexes: dict[int, RuleIndex]) -> dict[tuple[str, int], Any]:
    """The records a batch of events is about, in one query per organization and kind of record
    (instead of one query per event)."""
    wanted: dict[tuple[int, str], set[int]] = {}
    for event in claimed:
        index = indexes.get(event.organization_id)
        if index is None or event.subject_id is None or event.subject_type not in metrics.MODELS:
            continue
        if index.for_event(event.event_type) and event.actor_kind != "rule":
            wanted.setdefault((event.organization_id, event.subject_type), set()).add(event.subject_id)
    found: dict[tuple[str, int], Any] = {}
    for (organization_id, record_type), ids in wanted.items():
        model = metrics.MODELS[record_type]
        for record in session.scalars(
            select(model).where(tenant_clause(organization_id, model), ids_in(session, model.id, sorted(ids)))
        ):
            found[(record_type, record.id)] = record
    return found


def process_event(
    session: Session,
    event: Claimed,
    index: RuleIndex,
    records: dict[tuple[str, int], Any] | None = None,
    writes: Writes | None = None,
) -> int:
    """Evaluate ``event`` against the rules its type can wake; returns how many rules were checked."""
    candidates = index.for_event(event.event_type)
    if not candidates or event.actor_kind == "rule":  # rules do not wake on what rules did (no loops)
        return 0
    if records is not None:
        record = records.get((event.subject_type, event.subject_id or 0))
    else:
        record = load_record(session, event.organization_id, event.subject_type, event.subject_id)
    ctx = metrics.Context(session, event.organization_id, event.subject_type, record, event.occurred_at)
    checked = 0
    for rule in candidates:
        if rule.filtered and not trigger_matches(rule.trigger, event.payload):
            continue
        checked += 1
        evaluation = evaluate(ctx, rule, record_id=event.subject_id or 0)
        if evaluation.fires:
            key = once_key(evaluation)
            if key is None:
                key = f"event:{event.id}"
            else:
                if writes is not None:
                    writes.flush(session)  # the batch's earlier firings count
                if _fired(session, event.organization_id, evaluation, key):
                    continue  # this streak fired already (on an earlier event)
            fire(
                session, event.organization_id, evaluation,
                event_type=event.event_type, event_id=event.id, firing_key=key, now=utcnow(), writes=writes,
            )  # fmt: skip
    return checked


def once_key(evaluation: Evaluation) -> str | None:
    """The firing key of a firing that must happen once per streak rather than once per event, if any."""
    for condition in evaluation.conditions:
        detail = condition.get(metrics.DETAIL)
        if isinstance(detail, Mapping) and metrics.ONCE in detail:
            return f"once:{detail[metrics.ONCE]}"[:80]
    return None


def _fired(session: Session, organization_id: int, evaluation: Evaluation, key: str) -> bool:
    rule = evaluation.rule
    return (
        session.scalar(
            select(Decision.id).where(
                tenant_clause(organization_id, Decision),
                Decision.rule_id == rule.rule_id,
                Decision.rule_version == rule.version,
                Decision.record_type == evaluation.record_type,
                Decision.record_id == evaluation.record_id,
                Decision.firing_key == key,
            )
        )
        is not None
    )


def drain(database: Database, *, batch: int = 500, limit: int | None = None) -> int:
    """Process waiting outbox events until none are left (or ``limit`` were processed).

    A batch runs straight through in one transaction; if any event in it fails, the batch is
    rolled back and run again event by event, each in a savepoint, so that only the failing event
    is set aside (marked failed, retried later) and the others are processed."""
    processed = 0
    while limit is None or processed < limit:
        try:
            count = _drain_batch(database, batch, careful=False)
        except Exception:
            log.info("a batch of events failed; processing it event by event")
            count = _drain_batch(database, batch, careful=True)
        if not count:
            break
        processed += count
    return processed


#: what higher layers do with each drained event (the assistant's workflows queue their runs)
_event_hooks: list[Callable[[Session, Claimed], None]] = []


def on_event(callback: Callable[[Session, Claimed], None]) -> None:
    """Call ``callback(session, event)`` for every event the drain processes, in its transaction."""
    if callback not in _event_hooks:
        _event_hooks.append(callback)


def _handle(
    session: Session, event: Claimed, index: RuleIndex, records: dict[tuple[str, int], Any], writes: Writes
) -> None:
    """What one event causes: the next step of a playbook when its task is done, the rules it wakes,
    and what the hooks of higher layers do with it."""
    if event.event_type == "task.updated" and "status" in (event.payload.get("changes") or {}):
        from closeloop.automation import playbooks
        from closeloop.org import service as org_service

        playbooks.advance(session, org_service.system_actor(event.organization_id, label="playbook"), event, utcnow())
    process_event(session, event, index, records, writes)
    for hook in _event_hooks:
        hook(session, event)


def _drain_batch(database: Database, batch: int, *, careful: bool) -> int:
    with database.unit_of_work(None, system=True) as session:
        claimed = events.claim(session, limit=batch)
        done: list[int] = []
        indexes: dict[int, RuleIndex] = {}
        for organization_id in sorted({event.organization_id for event in claimed}):
            indexes[organization_id] = index_for(session, organization_id)
        records = preload(session, claimed, indexes)
        writes = Writes()
        for event in claimed:
            if not careful:
                _handle(session, event, indexes[event.organization_id], records, writes)
                done.append(event.id)
                continue
            try:
                with session.begin_nested():  # event by event: its writes go in its savepoint
                    _handle(session, event, indexes[event.organization_id], records, writes)
                    writes.flush(session)
                done.append(event.id)
            except Exception as error:
                writes = Writes()
                log.exception("event %s (%s) failed", event.id, event.event_type)
                events.mark_failed(session, event.id, repr(error))
        writes.flush(session)
        events.mark_processed(session, done)
    return len(claimed)


# --- scheduled rules ---------------------------------------------------------------------------

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def period_key(trigger: Trigger, now: datetime) -> str | None:
    """The period a scheduled rule runs in at ``now`` (``daily:2026-11-26``), or ``None`` when it is
    not its time (daily rules run in the hour their ``time`` names, 08:00 when none is given). Hours,
    days, weeks and months are those of the business time zone: 每周一早上9点 is 9:00 in Shanghai."""
    spec, moment = trigger.spec, as_utc(now).astimezone(ZoneInfo(settings.business_timezone))
    frequency = trigger.frequency or "daily"
    if frequency == "hourly":
        return f"hourly:{moment:%Y-%m-%dT%H}"
    hour = int(str(spec.get("time") or "08:00").split(":")[0])
    if moment.hour != hour:
        return None
    if frequency == "daily":
        if spec.get("days") == "weekdays" and moment.weekday() >= 5:
            return None
        return f"daily:{moment:%Y-%m-%d}"
    if frequency == "weekly":
        day = str(spec.get("day") or "monday").lower()
        return f"weekly:{moment:%G-W%V}" if _WEEKDAYS[moment.weekday()] == day else None
    last_day = (moment + timedelta(days=1)).month != moment.month
    wanted = spec.get("day_of_month") or (None if spec.get("day") == "last_day" else 1)
    if (wanted is None and not last_day) or (wanted is not None and moment.day != int(wanted)):
        return None
    if frequency == "quarterly" and moment.month % 3 != (0 if wanted is None else 1):
        return None
    return f"{frequency}:{moment:%Y-%m}"


def candidates_of(session: Session, organization_id: int, record_type: str, *, as_of: datetime) -> list[Any]:
    model = metrics.MODELS[record_type]
    return list(
        session.scalars(within_organization(organization_id, model).where(model.created_at <= as_of).order_by(model.id))
    )


def run_scheduled_rule(session: Session, organization_id: int, rule: CompiledRule, now: datetime) -> int:
    """Evaluate one scheduled rule on the records of its kind; returns the number of firings.

    One query selects the records that may match — the conditions SQL can express, and not fired
    on in this period yet (:mod:`closeloop.automation.compile`) — and only those are checked
    exactly (with the conditions SQL cannot express), which also reads the values the decision shows."""
    key = period_key(rule.trigger, now)
    if key is None:
        return 0
    query = compile.plan(
        organization_id, rule.record_type, list(rule.definition.get("conditions", [])), now,
        rule_id=rule.rule_id, rule_version=rule.version, firing_key=key,
    )  # fmt: skip
    fired = 0
    # a rule about people tells each recipient once, listing the people (a manager's reps)
    digest = action_runner.Digest(rule.rule_id, rule.name) if rule.record_type == "user" else None
    for record in session.scalars(query.statement):
        ctx = metrics.Context(session, organization_id, rule.record_type, record, now)
        evaluation = evaluate(ctx, rule, record_id=record.id)
        if evaluation.fires:
            once = once_key(evaluation)
            if once is not None and _fired(session, organization_id, evaluation, once):
                continue  # this stretch fired already, at an earlier check
            fire(
                session, organization_id, evaluation,
                event_type="schedule", event_id=None, firing_key=once or key, now=now, digest=digest,
            )  # fmt: skip
            fired += 1
    if digest is not None:
        digest.send(session, organization_id)
    return fired


def run_scheduled_rule_by_loop(session: Session, organization_id: int, rule: CompiledRule, now: datetime) -> int:
    """The former way, every record of the kind checked in Python: kept for the benchmark's comparison
    and as the reference the set-based query is tested against."""
    key = period_key(rule.trigger, now)
    if key is None:
        return 0
    fired = 0
    already = set(
        session.scalars(
            select(Decision.record_id).where(
                tenant_clause(organization_id, Decision),
                Decision.rule_id == rule.rule_id,
                Decision.rule_version == rule.version,
                Decision.firing_key == key,
            )
        )
    )
    for record in candidates_of(session, organization_id, rule.record_type, as_of=now):
        if record.id in already:
            continue
        ctx = metrics.Context(session, organization_id, rule.record_type, record, now)
        evaluation = evaluate(ctx, rule, record_id=record.id)
        if evaluation.fires:
            once = once_key(evaluation)
            if once is not None and _fired(session, organization_id, evaluation, once):
                continue
            fire(
                session, organization_id, evaluation,
                event_type="schedule", event_id=None, firing_key=once or key, now=now,
            )  # fmt: skip
            fired += 1
    return fired


def run_schedules(database: Database, *, now: datetime | None = None) -> int:
    """The periodic check: every organization's scheduled rules whose time it is (hourly)."""
    from closeloop.org.models import Organization

    now = now or utcnow()
    with database.reading(None, system=True) as session:
        organization_ids = list(session.scalars(select(Organization.id).order_by(Organization.id)))
    fired = 0
    for organization_id in organization_ids:
        with database.reading(None, system=True) as session:
            scheduled = list(index_for(session, organization_id).scheduled)
        for rule in scheduled:
            try:
                with database.unit_of_work(None, system=True) as session:
                    fired += run_scheduled_rule(session, organization_id, rule, now)
            except Exception:
                log.exception("scheduled rule %s failed", rule.rule_id)
    return fired


# --- the undo window ----------------------------------------------------------------------------


def run_due_actions(
    database: Database, *, now: datetime | None = None, batch: int = 100, organization_id: int | None = None
) -> int:
    """Run pending actions whose undo window has ended, each once: the action and its ``done`` mark
    share a transaction. A webhook's action only queues its delivery (same transaction); the
    delivery is sent — and retried — by :func:`closeloop.automation.webhooks.deliver_due`. With
    ``organization_id``, only that organization's."""
    ran = 0
    while True:
        moment = now or utcnow()
        with database.unit_of_work(None, system=True) as session:
            statement = (
                select(PendingAction)
                .where(PendingAction.status == "pending", PendingAction.run_after <= moment)
                .order_by(PendingAction.run_after, PendingAction.id)
                .limit(batch)
            )
            if organization_id is not None:
                statement = statement.where(tenant_clause(organization_id, PendingAction))
            if session.get_bind().dialect.name == "postgresql":
                statement = statement.with_for_update(skip_locked=True)
            due = list(session.scalars(statement))
            if not due:
                return ran
            for pending in due:
                _run_pending(session, pending, moment)
                ran += 1


def _run_pending(session: Session, pending: PendingAction, now: datetime) -> None:
    decision = session.get(Decision, pending.decision_id)
    rule = session.get(Rule, pending.rule_id)
    if decision is None or rule is None:
        pending.status, pending.finished_at = "failed", now
        pending.result = {"error": "the decision or rule is gone"}
        return
    firing = action_runner.Firing(
        pending.organization_id, rule.id, rule.name, rule.owner_id, decision.id,
        pending.record_type, pending.record_id, decision.why_zh, decision.why_en, now,
        explained={"version": decision.rule_version, "event_type": decision.event_type,
                   "conditions": decision.conditions, "actions": decision.actions},
    )  # fmt: skip
    try:
        with session.begin_nested():
            result = action_runner.run_deferred(session, firing, pending.action, delivery_id=pending.id)
        pending.status, pending.result = "done", result
    except Exception as error:
        log.exception("pending action %s failed", pending.id)
        pending.status, pending.result = "failed", {"error": str(error)[:500]}
    pending.finished_at = now
    _mirror(decision, pending)


def _mirror(decision: Decision, pending: PendingAction) -> None:
    """Copy a pending action's outcome into its decision's list of actions."""
    actions = [dict(a) for a in decision.actions]
    for entry in actions:
        if entry.get("pending_action_id") == pending.id:
            entry["status"] = pending.status
            entry["result"] = pending.result
    decision.actions = actions
