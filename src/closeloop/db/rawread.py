"""Kept reads: a Core ``SELECT`` compiled once per dialect and run on the driver's own cursor.

The API's hottest statements (a record by id, a plain page — ``crm.records``) are built once per
shape and run thousands of times. Run through SQLAlchemy, each run still builds an execution
context, a cursor result with its metadata and a row object per row, and the rows are then made
into dicts in a second pass. A :class:`KeptRead` does the same work with what can be worked out
once kept:

* the SQL text and the order of its parameters (compiled once per dialect, with the same
  compiler; a statement with an *expanding* parameter, ``IN (…)``, is expanded per call by the
  compiler itself);
* each result column's processor: the very one SQLAlchemy would use (the column type's result
  processor for the dialect and the type code the driver reports), found on the first run;

and then per call: the session's connection (so its transaction, and on PostgreSQL the tenant's
``set_config`` at ``BEGIN`` — the row-level-security wall — are exactly as for any statement of the
session), the driver's cursor, ``fetchall``, and plain tuples with the processors applied. The
engine's ``before_cursor_execute`` / ``after_cursor_execute`` listeners still see the statement,
and a driver error is turned into SQLAlchemy's exception by the connection (invalidating it on a
disconnect) as it would be. With ``echo`` on, the statement runs through SQLAlchemy as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

#: a column's result processor (``None``: the driver's value is the answer)
Processor = Callable[[Any], Any] | None
#: what to apply to the value at a row's place
Step = tuple[int, Callable[[Any], Any]]


@dataclass
class _Compiled:
    """A statement compiled for one dialect."""

    compiled: Any  # SQLCompiler
    sql: str
    positional: bool
    #: bind names in the order the driver takes them (positional paramstyles)
    order: tuple[str, ...]
    #: each bind's fixed value, for those the caller does not pass
    fixed: dict[str, Any]
    #: bind processors by name
    binds: dict[str, Callable[[Any], Any]]
    expanding: bool
    columns: tuple[Any, ...]  # each result column's SQL type, in order
    #: what to apply to each row's values, in order (each column's processor, then its decoder),
    #: once the driver has described the result (first run)
    steps: tuple[Step, ...] | None = None


class KeptRead:
    """A ``SELECT`` to run many times with different parameters, each row handed back as a dict of
    the values SQLAlchemy would hand back (its result processors applied), keyed by ``names`` (one
    per selected column, in order), each value then passed through its ``decoders`` entry if any."""

    def __init__(
        self, statement: Select[Any], names: Sequence[str], decoders: Mapping[str, Callable[[Any], Any]] | None = None
    ) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"the names of a kept read's columns must differ: {names}")
        self.statement = statement
        self.names = tuple(names)
        self.decoders = dict(decoders or {})
        self._compiled: dict[Dialect, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect)
        if found is not None:
            return found
        with self._lock:
            found = self._compiled.get(dialect)
            if found is None:
                found = self._compiled[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled: Any = self.statement.compile(dialect=dialect)
        binds = compiled.binds  # name -> BindParameter
        # expanded per call: ``IN (…)`` parameters, values rendered into the SQL, escaped names
        expanding = bool(compiled.escaped_bind_names) or any(
            bind.expanding or bind.literal_execute for bind in binds.values()
        )
        fixed = {
            name: bind.effective_value
            for name, bind in binds.items()
            if not bind.required and bind.callable is None and not bind.expanding
        }
        processors = {name: proc for name, proc in compiled._bind_processors.items() if callable(proc)}
        columns = tuple(entry[3] for entry in compiled._result_columns)
        if len(columns) != len(self.names):
            raise ValueError(f"{len(self.names)} names for the {len(columns)} columns of a kept read")
        return _Compiled(
            compiled=compiled,
            sql=compiled.string,
            positional=bool(compiled.positional),
            order=tuple(compiled.positiontup or ()),
            fixed=fixed,
            binds=processors,
            expanding=expanding,
            columns=columns,
        )

    def dicts(self, session: Session, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The statement's rows for ``parameters``, in the session's transaction (flushing pending
        ORM changes first, as ``session.execute`` would)."""
        if session.autoflush and (session.new or session.deleted or session.identity_map):
            session.flush()
        connection = session.connection()
        if connection._echo:  # logged as SQLAlchemy logs it
            fetched = connection.execute(self.statement, dict(parameters)).all()
            return self._built(fetched, self._steps((None,) * len(self.names)))
        kept = self._for(connection.dialect)
        sql, arguments = self._arguments(kept, parameters)
        fetched = self._run(connection, kept, sql, arguments)
        assert kept.steps is not None  # set by the first run
        return self._built(fetched, kept.steps)

    def _steps(self, processors: Sequence[Processor]) -> tuple[Step, ...]:
        """Each column's processor, then its decoder, by the column's place."""
        steps: list[Step] = []
        for index, (name, process) in enumerate(zip(self.names, processors, strict=True)):
            if process is not None:
                steps.append((index, process))
            decode = self.decoders.get(name)
            if decode is not None:
                steps.append((index, decode))
        return tuple(steps)

    def _built(self, fetched: Sequence[Any], steps: tuple[Step, ...]) -> list[dict[str, Any]]:
        """One pass per row: the steps applied in place, then the dict."""
        names = self.names
        if not steps:
            return [dict(zip(names, row, strict=True)) for row in fetched]
        built = []
        for row in fetched:
            values = list(row)
            for index, step in steps:
                values[index] = step(values[index])
            built.append(dict(zip(names, values, strict=True)))
        return built

    @staticmethod
    def _arguments(kept: _Compiled, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        if kept.expanding:
            state = kept.compiled.construct_expanded_state(dict(parameters))
            values = dict(state.parameters)
            for name, process in state.processors.items():
                if name in values:
                    values[name] = process(values[name])
            if state.positiontup is not None:
                return state.statement, tuple(values[name] for name in state.positiontup)
            return state.statement, values
        values = {**kept.fixed, **parameters}
        for name, process in kept.binds.items():
            if name in values:
                values[name] = process(values[name])
        if kept.positional:
            return kept.sql, tuple(values[name] for name in kept.order)
        return kept.sql, values

    def _run(self, connection: Connection, kept: _Compiled, sql: str, arguments: Any) -> list[Any]:
        driver: Any = connection.connection.driver_connection
        events = connection._has_events or connection.engine._has_events
        cursor = None
        try:
            cursor = driver.cursor()
            if events:
                for listener in connection.dispatch.before_cursor_execute:
                    sql, arguments = listener(connection, cursor, sql, arguments, None, False) or (sql, arguments)
            cursor.execute(sql, arguments)
            if kept.steps is None:
                kept.steps = self._steps(self._processors(connection.dialect, kept, cursor.description))
            fetched: list[Any] = cursor.fetchall()
            if events:
                for listener in connection.dispatch.after_cursor_execute:
                    listener(connection, cursor, sql, arguments, None, False)
        except Exception as error:
            if cursor is not None:
                cursor.close()
            connection._handle_dbapi_exception(error, sql, arguments, None, None)
        cursor.close()
        return fetched

    @staticmethod
    def _processors(dialect: Dialect, kept: _Compiled, description: Sequence[Sequence[Any]]) -> tuple[Processor, ...]:
        if len(description) != len(kept.columns):  # never for a select of named columns
            raise RuntimeError(f"{len(description)} columns came back for {len(kept.columns)} selected")
        return tuple(
            type_._cached_result_processor(dialect, column[1])
            for type_, column in zip(kept.columns, description, strict=True)
        )
