"""How a parsed rule is compared with a labelled one (``rules/dev.jsonl``), with the alternatives the
labels accept: an inferred periodic check of any frequency (or the event plus a delayed check), a
time given in other units (2 weeks = 14 days), ``>`` where a bare duration is labelled ``>=``, an
``escalate`` where "介入提醒" is labelled a notification asking the manager to step in, a task title
that says the same thing in fewer words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TIME_IN_MINUTES = {"minute": 1, "hour": 60, "day": 1440, "week": 10080}


@dataclass(frozen=True, slots=True)
class Agreement:
    trigger: bool
    conditions: bool
    actions: bool

    @property
    def exact(self) -> bool:
        return self.trigger and self.conditions and self.actions


def _trigger_agrees(got: dict[str, Any], expected: dict[str, Any], expected_conditions: list[dict[str, Any]]) -> bool:
    if expected.get("inferred"):
        if got.get("kind") == "schedule" and got.get("inferred"):
            return True
        return got.get("kind") == "event" and any(
            c["field_or_metric"].startswith(got.get("event", "").split("_")[0] + ".") for c in expected_conditions
        )
    return got == expected


def _amount(condition: dict[str, Any]) -> tuple[Any, Any]:
    unit = condition.get("unit")
    value = condition.get("value")
    if unit in _TIME_IN_MINUTES and isinstance(value, int | float):
        return value * _TIME_IN_MINUTES[unit], "minute"
    return value, unit


def _condition_agrees(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    if got.get("field_or_metric") != expected.get("field_or_metric"):
        return False
    if _amount(got) != _amount(expected):
        return False
    if got.get("window") != expected.get("window"):
        return False
    op, wanted = got.get("op"), expected.get("op")
    return op == wanted or (wanted == ">=" and op == ">" and expected.get("unit") in _TIME_IN_MINUTES)


def _title_agrees(got: Any, expected: Any) -> bool:
    if got == expected:
        return True
    if not isinstance(got, str) or not isinstance(expected, str):
        return False
    a, b = got.lower(), expected.lower()
    return a in b or b in a


def _action_agrees(got: dict[str, Any], expected: dict[str, Any]) -> bool:
    if got.get("target") != expected.get("target"):
        return False
    if got.get("type") != expected.get("type"):
        intervene = expected.get("type") == "notify" and expected.get("params", {}).get("purpose") == "intervene"
        return intervene and got.get("type") == "escalate"
    got_params = dict(got.get("params") or {})
    expected_params = dict(expected.get("params") or {})
    if not _title_agrees(got_params.pop("title", None), expected_params.pop("title", None)):
        return False
    return got_params == expected_params


def _matched(got: list[dict[str, Any]], expected: list[dict[str, Any]], agrees: Any) -> bool:
    if len(got) != len(expected):
        return False
    remaining = list(got)
    for item in expected:
        match = next((candidate for candidate in remaining if agrees(candidate, item)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def agreement(got: dict[str, Any], expected: dict[str, Any]) -> Agreement:
    """Field by field: does ``got`` say what ``expected`` says?"""
    expected_conditions = list(expected.get("conditions") or [])
    return Agreement(
        trigger=_trigger_agrees(got.get("trigger") or {}, expected.get("trigger") or {}, expected_conditions),
        conditions=_matched(list(got.get("conditions") or []), expected_conditions, _condition_agrees),
        actions=_matched(list(got.get("actions") or []), list(expected.get("actions") or []), _action_agrees),
    )
