"""Why an import cannot start at all (as opposed to a row that is invalid, which is only reported)."""

from __future__ import annotations

from closeloop.core.errors import DomainError, FieldProblem


class UnreadableFile(DomainError):
    """The file cannot be read as a table: undecodable bytes, a broken workbook, no header row.
    ``message_zh`` is the same sentence in Chinese, values and all (the API's ``detail`` for a
    Chinese reader, the import page's words); without it a Chinese reader gets the kind of refusal."""

    def __init__(self, message: str, message_zh: str | None = None) -> None:
        super().__init__(
            message, code="unreadable_file", status=422, extra={"message_zh": message_zh} if message_zh else {}
        )


class UnusableMapping(DomainError):
    """The column mapping names unknown columns or fields, or leaves a required field unmapped."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        details = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(f"The column mapping cannot be used: {details}", code="unusable_mapping", status=422)
        self.problems = problems

    def __str__(self) -> str:
        return self.message
