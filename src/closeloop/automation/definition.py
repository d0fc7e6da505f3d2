"""The structure of a rule (what the plain-language parser produces, see
``shared/data/rules/README.md``), checked before it is stored, and what the engine derives from it:
which outbox event wakes it, which kind of record it is about, which actions wait in the undo window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from closeloop.core.errors import FieldProblem, ValidationFailed

#: the rule vocabulary's events → the outbox's ``noun.verb`` event types
EVENT_TYPES: dict[str, str] = {
    "activity_logged": "activity.created",
    "email_received": "activity.created",
    "opportunity_stage_changed": "opportunity.stage_changed",
    "lead_created": "lead.created",
    "order_placed": "order.created",
    "ticket_opened": "ticket.created",
    "signal_recorded": "signal.recorded",
}
FREQUENCIES = ("hourly", "daily", "weekly", "monthly", "quarterly")
OPS = (">", ">=", "<", "<=", "==", "in", "streak")
UNITS = ("minute", "hour", "day", "business_day", "week", "month", "count", "CNY", "USD", "percent", "point")
ACTION_TYPES = (
    "notify",
    "create_task",
    "escalate",
    "push_summary",
    "webhook",
    "set_field",
    "require_approval",
    "assign",
    "apply_playbook",
    "reserve_stock",
)
#: actions that change data or leave the system: they wait in the undo window
DEFERRED_ACTIONS = frozenset({"create_task", "set_field", "webhook", "assign", "apply_playbook", "reserve_stock"})
#: (a rule about a person names measures only, never a user's fields: see PERSON_METRICS)
RECORD_TYPES = ("account", "opportunity", "lead", "ticket", "order", "activity")
#: role names managers write → the product's roles
ROLE_ALIASES: dict[str, str] = {
    "rep": "rep",
    "sales": "rep",
    "sales_rep": "rep",
    "manager": "manager",
    "sales_manager": "manager",
    "regional_manager": "manager",
    "team_lead": "manager",
    "key_account_manager": "manager",
    "support_manager": "manager",
    "sales_ops": "admin",
    "sales_operations": "admin",
    "director": "director",
    "sales_director": "director",
    "regional_director": "director",
    "sales_vp": "sales_vp",
    "vp": "sales_vp",
    "cfo": "cfo",
    "finance": "cfo",
    "finance_director": "cfo",
    "it_director": "it_director",
    "admin": "admin",
}
PERSON_TARGETS = ("owner", "account_owner", "manager", "self")
STAGE_ALIASES = {"closed_won": "won", "closed_lost": "lost", "quote": "proposal"}


@dataclass(frozen=True, slots=True)
class Trigger:
    """How a rule is woken: by an outbox event type (``event_type``) with a filter on its payload,
    or by the clock (``frequency``)."""

    kind: str  # "event" | "schedule"
    event_type: str | None
    frequency: str | None
    spec: Mapping[str, Any]


def trigger_of(definition: Mapping[str, Any]) -> Trigger:
    spec = definition["trigger"]
    if spec["kind"] == "schedule":
        return Trigger("schedule", None, str(spec.get("frequency") or "daily"), spec)
    event = str(spec["event"])
    if event == "field_changed":
        noun = str(spec["field"]).split(".", 1)[0]
        return Trigger("event", f"{noun}.updated", None, spec)
    return Trigger("event", EVENT_TYPES.get(event, event), None, spec)


def record_type_of(definition: Mapping[str, Any]) -> str:
    """The kind of record a rule is about: its event's subject, else what its conditions name."""
    trigger = trigger_of(definition)
    if trigger.event_type is not None:
        return trigger.event_type.split(".", 1)[0]
    names = [str(c.get("field_or_metric", "")) for c in definition.get("conditions", [])]
    if any(name in PERSON_METRICS for name in names):
        return "user"
    for prefix, record_type in (
        ("opportunity.", "opportunity"),
        ("stage_duration", "opportunity"),
        ("lead.", "lead"),
        ("ticket.", "ticket"),
        ("order.", "order"),
    ):
        if any(name.startswith(prefix) for name in names):
            return record_type
    return "account"


def is_deferred(action: Mapping[str, Any]) -> bool:
    return str(action.get("type")) in DEFERRED_ACTIONS


def canonical_stage(value: Any) -> Any:
    return STAGE_ALIASES.get(str(value).lower(), str(value).lower()) if isinstance(value, str) else value


#: how an assignment to a team picks its member
ASSIGN_STRATEGIES = ("round_robin", "least_loaded")
#: measures the vocabulary knows but the product cannot read yet, with why (none at the moment)
UNSUPPORTED_METRICS: dict[str, str] = {}
#: measures about a person (a rep) rather than a customer record: a rule using one is about users
PERSON_METRICS = frozenset({"forecast_deviation"})


def team_of(target: str) -> str | None:
    """The team an assignment names (``team:reports``, ``team:department:12``, ``team:华东销售1组``), or ``None``."""
    return target[5:].strip() or None if target.startswith("team:") else None


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def validate(
    definition: Any,
    *,
    metrics: frozenset[str],
    allowed_hosts: frozenset[str],
    teams: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``teams``: the team names assignments may use (departments by name, lower case, and by
    ``department:<id>``); ``team:reports`` (the rule owner's direct reports) and
    ``team:reports:<user id>`` are always accepted."""
    """Check a rule's structure; every problem names its path (``conditions.1.op``). Returns the
    definition as stored."""
    problems: list[FieldProblem] = []

    def problem(path: str, message: str) -> None:
        problems.append(FieldProblem(path, message))

    if not isinstance(definition, Mapping):
        raise ValidationFailed.one("definition", "must be an object with trigger, conditions and actions")
    trigger = definition.get("trigger")
    if not isinstance(trigger, Mapping) or trigger.get("kind") not in ("event", "schedule"):
        problem("trigger.kind", "must be 'event' or 'schedule'")
    elif trigger["kind"] == "event":
        event = trigger.get("event")
        if not isinstance(event, str) or not (event in EVENT_TYPES or event == "field_changed" or "." in event):
            problem(
                "trigger.event",
                f"unknown event {event!r}; use one of {', '.join(sorted(EVENT_TYPES))}, "
                "field_changed, or a 'noun.verb' event type",
            )
        elif event == "field_changed" and "." not in str(trigger.get("field", "")):
            problem("trigger.field", "a field change names its field as 'record.field' (account.tier)")
    elif trigger.get("frequency", "daily") not in FREQUENCIES:
        problem("trigger.frequency", f"must be one of {', '.join(FREQUENCIES)}")
    conditions = definition.get("conditions", [])
    if not isinstance(conditions, list):
        problem("conditions", "must be a list")
        conditions = []
    for index, condition in enumerate(conditions):
        path = f"conditions.{index}"
        if not isinstance(condition, Mapping):
            problem(path, "must be an object")
            continue
        name = condition.get("field_or_metric")
        if isinstance(name, str) and name in UNSUPPORTED_METRICS:
            problem(f"{path}.field_or_metric", UNSUPPORTED_METRICS[name])
        elif (
            isinstance(name, str)
            and name in PERSON_METRICS
            and isinstance(trigger, Mapping)
            and (trigger.get("kind") != "schedule")
        ):
            problem(
                f"{path}.field_or_metric",
                f"{name} is measured per person over a finished forecast period: use a schedule "
                "(weekly, monthly …), not an event, as the trigger",
            )
        elif not isinstance(name, str) or not _known_metric(name, metrics):
            problem(f"{path}.field_or_metric", f"{name!r} is not a field or measure rules can read")
        if name == "keyword_streak" and not str(condition.get("keyword") or "").strip():
            problem(f"{path}.keyword", "a keyword streak names its keyword (the word the account searched for)")
        if condition.get("op") not in OPS:
            problem(f"{path}.op", f"must be one of {' '.join(OPS)}")
        unit = condition.get("unit")
        if unit is not None and unit not in UNITS:
            problem(f"{path}.unit", f"must be one of {', '.join(UNITS)} or empty")
        if "value" not in condition:
            problem(f"{path}.value", "is required")
        elif condition.get("op") in (">", ">=", "<", "<=", "streak") and not _is_number(condition.get("value")):
            problem(
                f"{path}.value",
                f"{condition.get('op')} compares numbers: give a number, not {condition.get('value')!r}",
            )
    actions = definition.get("actions", [])
    if not isinstance(actions, list) or not actions:
        problem("actions", "a rule needs at least one action")
        actions = []
    for index, action in enumerate(actions):
        path = f"actions.{index}"
        if not isinstance(action, Mapping) or action.get("type") not in ACTION_TYPES:
            problem(f"{path}.type", f"must be one of {', '.join(ACTION_TYPES)}")
            continue
        kind, target = action["type"], str(action.get("target") or "")
        params = action.get("params") or {}
        if kind == "webhook":
            host = urlsplit(target).hostname
            if urlsplit(target).scheme not in ("https", "http") or not host:
                problem(f"{path}.target", "a webhook needs a URL (https://host/path)")
            elif host.lower() not in allowed_hosts:
                problem(f"{path}.target", f"{host} is not among the organization's allowed webhook hosts")
        elif kind == "set_field":
            if "." not in target or "value" not in params:
                problem(f"{path}.target", "set_field names 'record.field' and params.value")
            elif target == "opportunity.stage" and params.get("value") == "lost" and not params.get("lost_reason"):
                problem(f"{path}.params.lost_reason", "a deal set to lost needs params.lost_reason (why it was lost)")
        elif kind == "reserve_stock":
            quantity = params.get("quantity")
            if not target.startswith("product:") or not target[8:].strip():
                problem(f"{path}.target", "reserve_stock names 'product:<id, code or name>'")
            if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
                problem(f"{path}.params.quantity", "the number of units to reserve, more than zero")
        elif kind == "apply_playbook":
            if target != "auto" and not target.startswith("playbook:"):
                problem(f"{path}.target", "apply_playbook names 'auto' or 'playbook:<id or name>'")
        elif target.startswith("team:"):
            if not _known_team(team_of(target), teams):
                known = ", ".join(sorted(t for t in teams if not t.startswith("department:"))[:20]) or "none"
                problem(
                    f"{path}.target",
                    f"no team {team_of(target)!r}: name a department ({known}), team:department:<id>, "
                    "team:reports (your direct reports) or team:reports:<user id>",
                )
        elif not _known_target(target):
            problem(f"{path}.target", f"{target!r} is not a person or role rules can reach")
        if kind == "assign" and params.get("strategy", "round_robin") not in ASSIGN_STRATEGIES:
            problem(f"{path}.params.strategy", f"must be one of {', '.join(ASSIGN_STRATEGIES)}")
        link = params.get("link")
        if link is not None and (not isinstance(link, str) or not link.startswith("/") or link.startswith("//")):
            problem(f"{path}.params.link", "a link is a page of the product: a path starting with '/'")
        if kind == "create_task" and not str(params.get("title") or "").strip():
            problem(f"{path}.params.title", "a task needs a title")
    if problems:
        raise ValidationFailed(problems, message="The rule has invalid parts")
    return {
        "trigger": dict(trigger or {}),
        "conditions": [dict(c) for c in conditions],
        "actions": [dict(a) for a in actions],
    }


def _known_metric(name: str, metrics: frozenset[str]) -> bool:
    if name in metrics:
        return True
    noun, _, field = name.partition(".")
    return noun in RECORD_TYPES and bool(field)


def _known_team(team: str | None, teams: frozenset[str]) -> bool:
    if team is None:
        return False
    if team == "reports" or (team.startswith("reports:") and team[8:].isdigit()):
        return True
    return team.lower() in teams


def _known_target(target: str) -> bool:
    if target in PERSON_TARGETS or target.startswith("user:"):
        return True
    return target.startswith("role:") and target[5:] in ROLE_ALIASES
