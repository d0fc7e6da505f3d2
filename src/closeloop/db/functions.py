"""SQL expressions that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, exists, func, literal, literal_column
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine


class days_between(FunctionElement[float]):
    """``later - earlier`` in (fractional) days, for two timestamp columns."""

    type = Float()
    inherit_cache = True
    name = "days_between"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"(julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)}))"


@compiles(days_between, "postgresql")
def _days_between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)})) / 86400.0)"


class id_list(FunctionElement[str]):
    """The values of an integer column across a group, as ``"3,7,12"`` (order not guaranteed)."""

    type = String()
    inherit_cache = True
    name = "id_list"


@compiles(id_list, "sqlite")
def _id_list_sqlite(element: id_list, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"group_concat({compiler.process(column, **kw)}, ',')"


@compiles(id_list, "postgresql")
def _id_list_postgresql(element: id_list, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    return f"string_agg(CAST({compiler.process(column, **kw)} AS TEXT), ',')"


def parse_id_list(value: str | None) -> list[int]:
    """``"7,3"`` → ``[3, 7]``; ``None`` (no rows) → ``[]``."""
    return sorted(int(part) for part in value.split(",")) if value else []


class json_list_holds(FunctionElement[bool]):
    """``json_list_holds(document, key, value)``: the JSON list under ``key`` holds the text ``value``."""

    type = Boolean()
    inherit_cache = True
    name = "json_list_holds"


@compiles(json_list_holds, "sqlite")
def _json_list_holds_sqlite(element: json_list_holds, compiler: Any, **kw: Any) -> str:
    document, key, value = list(element.clauses)
    items = func.json_each(document, literal('$."') + key + literal('"')).table_valued("value")
    return str(compiler.process(exists().select_from(items).where(items.c.value == value), **kw))


@compiles(json_list_holds, "postgresql")
def _json_list_holds_postgresql(element: json_list_holds, compiler: Any, **kw: Any) -> str:
    document, key, value = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"(({document} -> CAST({key} AS TEXT)) @> jsonb_build_array(CAST({value} AS TEXT)))"


class quarter_of(FunctionElement[str]):
    """The calendar quarter (UTC) of a timestamp column as ``"2025-Q3"``."""

    type = String()
    inherit_cache = True
    name = "quarter_of"


@compiles(quarter_of, "sqlite")
def _quarter_of_sqlite(element: quarter_of, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    value = compiler.process(column, **kw)
    return f"(strftime('%Y', {value}) || '-Q' || ((CAST(strftime('%m', {value}) AS INTEGER) + 2) / 3))"


@compiles(quarter_of, "postgresql")
def _quarter_of_postgresql(element: quarter_of, compiler: Any, **kw: Any) -> str:
    (column,) = list(element.clauses)
    value = compiler.process(column, **kw)
    return f"to_char(({value}) AT TIME ZONE 'UTC', 'YYYY-\"Q\"Q')"


#: the SQL types a JSON scalar is read as (``json_scalar``), and the Python-side type of each
JSON_CASTS: dict[str, TypeEngine[Any]] = {
    "FLOAT": Float(),
    "VARCHAR": String(),
    "INTEGER": Integer(),
    "BOOLEAN": Boolean(),
}
_JSON_KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")


class _json_scalar(FunctionElement[Any]):
    name = "json_scalar"
    inherit_cache = True


def json_scalar(document: Any, key: str, cast: str) -> FunctionElement[Any]:
    """The value under ``key`` of a JSON ``document``, read as ``cast`` (one of :data:`JSON_CASTS`).

    The key is written into the SQL text, not bound: an expression index on the same expression
    (:mod:`closeloop.crm.customfields`) only matches a query that spells the key out. Keys are
    custom-field names (lowercase letters, digits and ``_``), checked here again. SQLite:
    ``CAST(JSON_EXTRACT(document, '$."key"') AS cast)``; PostgreSQL: see :data:`PG_JSON_FUNCTIONS`.
    """
    if not _JSON_KEY.fullmatch(key) or cast not in JSON_CASTS:
        raise ValueError(f"not a JSON field key or cast: {key!r} {cast!r}")
    element = _json_scalar(document, literal_column(f"'{key}'"), literal_column(cast))
    element.type = JSON_CASTS[cast]
    return element


@compiles(_json_scalar, "sqlite")
def _json_scalar_sqlite(element: _json_scalar, compiler: Any, **kw: Any) -> str:
    document, key, cast = list(element.clauses)
    path = f"'$.\"{key.name.strip(chr(39))}\"'"
    return f"CAST(JSON_EXTRACT({compiler.process(document, **kw)}, {path}) AS {cast.name})"


#: PostgreSQL reads a JSON scalar through the migration's ``closeloop_json_*`` functions, not a
#: plain ``CAST(custom ->> 'key' AS …)``: those are declared LEAKPROOF, and under row-level security
#: the planner only uses an index condition built of leakproof functions (``->>`` and the casts
#: are not). They return NULL for a value of another JSON type, as SQLite's CAST reads it as 0/''.
PG_JSON_FUNCTIONS = {
    "FLOAT": "closeloop_json_number",
    "VARCHAR": "closeloop_json_text",
    "INTEGER": "closeloop_json_integer",
    "BOOLEAN": "closeloop_json_boolean",
}


@compiles(_json_scalar, "postgresql")
def _json_scalar_postgresql(element: _json_scalar, compiler: Any, **kw: Any) -> str:
    document, key, cast = list(element.clauses)
    return f"{PG_JSON_FUNCTIONS[cast.name]}({compiler.process(document, **kw)}, {key.name})"
