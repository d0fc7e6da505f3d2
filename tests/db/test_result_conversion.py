"""The result conversions of the hot reads read every stored value as the standard library does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from closeloop.db.engine import json_loads
from closeloop.db.types import UTCDateTime

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@given(value=_json, ensure_ascii=st.booleans())
def test_a_json_document_reads_as_json_loads_reads_it(value: Any, ensure_ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    for stored in (text, text.encode()):  # SQLite hands back text, psycopg bytes
        read, expected = json_loads(stored), json.loads(stored)
        assert read == expected
        assert repr(read) == repr(expected)  # same types too: 2**70 stays an int, 1.0 a float


def test_what_orjson_refuses_is_read_by_json_loads() -> None:
    for text in ("NaN", "[Infinity, -Infinity]", '"\\ud800"'):
        assert repr(json_loads(text)) == repr(json.loads(text))


_process = UTCDateTime().result_processor(sqlite.dialect(), None)


@given(moment=st.datetimes())
def test_a_stored_sqlite_datetime_reads_as_an_aware_utc_datetime(moment: datetime) -> None:
    assert _process is not None
    for text in (str(moment), moment.isoformat(), moment.isoformat(sep=" ", timespec="microseconds")):
        read = _process(text)
        assert read == datetime.fromisoformat(text).replace(tzinfo=UTC)
        assert read is not None
        assert read.tzinfo is UTC


def test_a_stored_datetime_with_an_offset_reads_as_before() -> None:
    assert _process is not None
    text = "2026-11-27 10:00:00+08:00"
    assert _process(text) == datetime.fromisoformat(text).replace(tzinfo=UTC)
    assert _process(None) is None
    aware = datetime(2026, 11, 27, 10, tzinfo=timezone(timedelta(hours=8)))
    read = _process(aware)
    assert read == aware
    assert read is not None
    assert read.tzinfo is UTC
