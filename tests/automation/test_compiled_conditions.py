"""The engine's conditions specialised once per rule version (``metrics.reader_for`` /
``checker_for``, ``engine.has_filter``) say exactly what the general ``read`` / ``holds`` /
``trigger_matches`` say, for any value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.automation import engine, metrics
from closeloop.automation.definition import EVENT_TYPES, trigger_of

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False),
    st.sampled_from(["A", "a ", "won", "closed_won", "", "医疗", "1", "true", "False"]),
)
TEXTS = st.sampled_from(["A", "a", "won", "closed_won", "", "医疗", "1", "0"])


@given(expected=st.one_of(TEXTS, st.booleans(), st.integers(-3, 3)), seen=VALUES, op=st.sampled_from(["==", "in"]))
def test_a_specialised_check_agrees_with_holds(expected: Any, seen: Any, op: str) -> None:
    condition = {"field_or_metric": "account.tier", "op": op, "value": expected}
    assert metrics.checker_for(condition)(seen) == metrics.holds(condition, seen)


@given(value=VALUES, custom=st.dictionaries(st.sampled_from(["tier", "segment"]), VALUES, max_size=2))
@pytest.mark.parametrize("name", ["account.tier", "account.segment", "opportunity.amount", "order.amount"])
def test_a_specialised_read_agrees_with_read(name: str, value: Any, custom: dict[str, Any]) -> None:
    account = SimpleNamespace(id=1, tier=value, custom=custom)
    record_type = name.split(".")[0]
    record = account if record_type == "account" else SimpleNamespace(id=2, amount=value, total=Decimal(7))
    condition = {"field_or_metric": name, "op": "==", "value": "A"}

    def context() -> metrics.Context:
        return metrics.Context(None, 1, record_type, record, datetime(2026, 11, 2, tzinfo=UTC))  # type: ignore[arg-type]

    assert metrics.reader_for(condition)(context()) == metrics.read(context(), condition)


@pytest.mark.parametrize(
    "trigger",
    [{"kind": "event", "event": event} for event in EVENT_TYPES]
    + [
        {"kind": "event", "event": "activity_logged", "activity_type": "visit"},
        {"kind": "event", "event": "opportunity_stage_changed", "to_stage": "won"},
        {"kind": "event", "event": "signal_recorded", "keyword": "配件"},
        {"kind": "event", "event": "field_changed", "field": "account.tier", "to": "A"},
        {"kind": "event", "event": "lead.assigned"},
    ],
)
def test_an_unfiltered_trigger_matches_every_payload(trigger: dict[str, Any]) -> None:
    spec = trigger_of({"trigger": trigger})
    payloads: list[dict[str, Any]] = [
        {},
        {"changes": {"kind": [None, "call"], "direction": [None, "outbound"], "stage": ["new", "lost"]}},
        {"keyword": "别的"},
        {"changes": {"tier": ["A", "B"]}},
    ]
    if not engine.has_filter(spec):
        assert all(engine.trigger_matches(spec, payload) for payload in payloads)
    else:  # a filtered trigger turns at least one of them down
        assert not all(engine.trigger_matches(spec, payload) for payload in payloads)
