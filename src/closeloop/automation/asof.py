"""Records as they were at a past moment, rebuilt from the audit trail — what a backtest reads.

The audit trail keeps ``{field: [before, after]}`` for every change of a record. To see a record as
of moment *t*, take its current row and, for each field changed after *t*, put back the *before*
value of the earliest such change. A record created after *t* did not exist then (``None``).

Everything is loaded in batches: one query per kind of record for the rows, one per kind for
their audit entries after the earliest moment asked about — never one query per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Date, DateTime, Numeric, select
from sqlalchemy.orm import Session

from closeloop.automation.metrics import MODELS
from closeloop.core.clock import as_utc
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit.models import AuditEntry

_CUSTOM = "custom."


class Snapshot:
    """A record seen at a past moment: the rewound values, and the current row for everything else."""

    __slots__ = ("_record", "_values")

    def __init__(self, record: Any, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_record", record)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        return getattr(object.__getattribute__(self, "_record"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a snapshot of the past is read-only")


def _coerce(model: type[Any], name: str, value: Any) -> Any:
    """An audit value (JSON) back in the column's Python type, so conditions compare it as they would the row."""
    if value is None:
        return None
    column = model.__table__.c.get(name)
    if column is None or not isinstance(value, str):
        return value
    try:
        if isinstance(column.type, DateTime):
            return as_utc(datetime.fromisoformat(value))
        if isinstance(column.type, Date):
            return date.fromisoformat(value)
        if isinstance(column.type, Numeric):
            return Decimal(value)
    except (ValueError, InvalidOperation):
        return value
    return value


class Rewinder:
    """Records of one organization and their changes since ``since``, to be seen as of any later moment."""

    def __init__(self, session: Session, organization_id: int, since: datetime) -> None:
        self.session = session
        self.organization_id = organization_id
        self.since = since
        self._rows: dict[tuple[str, int], Any] = {}
        #: (kind, id) → [(occurred_at, changes)], newest first
        self._changes: dict[tuple[str, int], list[tuple[datetime, dict[str, Any]]]] = {}
        self.queries = 0

    def load(self, record_type: str, ids: Iterable[int | None]) -> None:
        """Fetch the rows and their audit entries for the ids not loaded yet (two queries)."""
        model = MODELS.get(record_type)
        wanted = sorted({i for i in ids if i is not None and (record_type, i) not in self._rows})
        if model is None or not wanted:
            return
        for start in range(0, len(wanted), 900):
            chunk = wanted[start : start + 900]
            for record_id in chunk:
                self._rows[(record_type, record_id)] = None
            for row in self.session.scalars(
                select(model).where(tenant_clause(self.organization_id, model), model.id.in_(chunk))
            ):
                self._rows[(record_type, row.id)] = row
            for subject_id, occurred_at, changes in self.session.execute(
                select(AuditEntry.subject_id, AuditEntry.occurred_at, AuditEntry.changes)
                .where(
                    tenant_clause(self.organization_id, AuditEntry),
                    AuditEntry.subject_type == record_type,
                    AuditEntry.subject_id.in_(chunk),
                    AuditEntry.occurred_at > self.since,
                )
                .order_by(AuditEntry.seq.desc())
            ):
                self._changes.setdefault((record_type, int(subject_id)), []).append(
                    (as_utc(occurred_at), changes or {})
                )
            self.queries += 2

    def rows(self, record_type: str) -> list[Any]:
        """The current rows of that kind loaded so far."""
        return [row for (kind, _), row in self._rows.items() if kind == record_type and row is not None]

    def current(self, record_type: str, record_id: int) -> Any:
        if (record_type, record_id) not in self._rows:
            self.load(record_type, [record_id])
        return self._rows.get((record_type, record_id))

    def as_of(self, record_type: str, record_id: int | None, moment: datetime) -> Any:
        """The record as it was at ``moment`` (``None`` when it did not exist yet)."""
        if record_id is None:
            return None
        row = self.current(record_type, record_id)
        if row is None:
            return None
        created = getattr(row, "created_at", None)
        moment = as_utc(moment)
        if created is not None and as_utc(created) > moment:
            return None
        values: dict[str, Any] = {}
        custom: dict[str, Any] | None = None
        model = MODELS[record_type]
        # newest first: an older change's "before" overwrites a newer one's, leaving the value at ``moment``
        for occurred_at, changes in self._changes.get((record_type, record_id), ()):
            if occurred_at <= moment:
                break
            for name, pair in changes.items():
                if not isinstance(pair, list) or len(pair) != 2:
                    continue
                if name.startswith(_CUSTOM):
                    if custom is None:
                        custom = dict(getattr(row, "custom", None) or {})
                    if pair[0] is None:
                        custom.pop(name[len(_CUSTOM) :], None)
                    else:
                        custom[name[len(_CUSTOM) :]] = pair[0]
                elif name in model.__table__.c:
                    values[name] = _coerce(model, name, pair[0])
        if custom is not None:
            values["custom"] = custom
        return Snapshot(row, values) if values else row
