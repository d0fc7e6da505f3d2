"""The outcome of an import: counts, and every invalid row with its column, value and reason."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: a report lists at most this many problems (the counts stay exact)
MAX_PROBLEMS = 5000
_VALUE_CHARS = 200


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row (spreadsheet numbering: the header is row 1) was not imported.

    ``column`` is the file's header of the offending cell, or ``None`` when the problem is the
    row as a whole (a duplicate, a rule between fields whose column is not in the file).
    """

    row: int
    column: str | None
    value: str | None
    reason: str
    code: str = "invalid"

    @classmethod
    def of(cls, row: int, column: str | None, value: Any, reason: str, code: str = "invalid") -> RowProblem:
        text = None if value is None else str(value)
        if text is not None and len(text) > _VALUE_CHARS:
            text = text[: _VALUE_CHARS - 1] + "…"
        return cls(row, column, text, reason, code)


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    entity: str
    source: str
    dry_run: bool
    mapping: dict[str, str] = field(default_factory=dict)
    total_rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    problems_omitted: int = 0
    notes: list[str] = field(default_factory=list)
    #: rows imported all the same, with something to check (a possible duplicate in warn mode, CN-2)
    warnings: list[RowProblem] = field(default_factory=list)

    def add_problem(self, problem: RowProblem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.problems_omitted += 1

    def add_warning(self, warning: RowProblem) -> None:
        if len(self.warnings) < MAX_PROBLEMS:
            self.warnings.append(warning)

    def summary(self) -> str:
        if self.dry_run:
            return (
                f"{self.total_rows} rows: {self.created} to create, {self.updated} to update, "
                f"{self.unchanged} unchanged, {self.invalid} invalid"
            )
        return (
            f"{self.total_rows} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.invalid} invalid"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["problems"] = [RowProblem(**p) for p in data.get("problems", [])]
        values["warnings"] = [RowProblem(**w) for w in data.get("warnings", [])]
        return cls(**values)
