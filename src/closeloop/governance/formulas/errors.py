"""The one error a formula can have: what is wrong, and where."""

from __future__ import annotations

from dataclasses import dataclass

from closeloop.core.errors import FieldProblem, ValidationFailed


@dataclass(frozen=True, slots=True)
class Span:
    """Where a piece of a formula is: character offsets (0-based, ``end`` exclusive) and the line and
    column of its start (1-based, as an editor shows them)."""

    start: int
    end: int
    line: int
    column: int

    @classmethod
    def at(cls, text: str, start: int, end: int | None = None) -> Span:
        """The span of ``text[start:end]``, with its line and column counted from the text."""
        start = max(0, min(start, len(text)))
        line = text.count("\n", 0, start) + 1
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        return cls(start, start if end is None else max(start, end), line, column)

    def where(self) -> str:
        return f"line {self.line}, column {self.column}"


class FormulaError(ValidationFailed):
    """A formula that cannot be parsed or type-checked (422). It names the request field that holds
    the formula (``expression`` unless told otherwise) and carries the position in the problem body:
    ``position`` (0-based character offset), ``end``, ``line`` and ``column`` (1-based)."""

    def __init__(self, message: str, span: Span, *, field_name: str = "expression", code: str = "invalid_formula"):
        located = f"{message} (at {span.where()})"
        super().__init__([FieldProblem(field_name, located, code)], message=f"{field_name}: {located}")
        self.reason = message
        self.span = span
        self.extra = {"position": span.start, "end": span.end, "line": span.line, "column": span.column}

    @property
    def position(self) -> int:
        return self.span.start

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def for_field(self, field_name: str) -> FormulaError:
        """The same error naming another request field (a rule's ``condition``, a list's ``column``)."""
        return FormulaError(self.reason, self.span, field_name=field_name, code=self.problems[0].code)
