"""Domain errors with stable codes; each adapter renders them once (problem+json, form message, exit code)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One thing wrong with one field (``field`` is a dotted path such as ``lines.2.quantity``)."""

    field: str
    message: str
    code: str = "invalid"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass(eq=False)
class DomainError(Exception):
    """Base of every expected failure. ``status`` is the HTTP status an API adapter answers with."""

    message: str
    code: str = "error"
    status: int = 400
    problems: list[FieldProblem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    def __str__(self) -> str:
        # a problem that only repeats the message (a field's refusal) adds nothing to it
        details = "; ".join(f"{p.field}: {p.message}" for p in self.problems if p.message != self.message)
        if not details or details in self.message:
            return self.message
        return f"{self.message} ({details})"


class UnsupportedMediaType(DomainError):
    """A body in a form the endpoint does not read (JSON where it takes a multipart form with files):
    415, naming the media types it does take (``accepted_media_types``)."""

    def __init__(self, message: str, accepted: Sequence[str]) -> None:
        super().__init__(
            message, code="unsupported_media_type", status=415, extra={"accepted_media_types": list(accepted)}
        )


class NotFound(DomainError):
    def __init__(self, noun: str, identifier: object | None = None) -> None:
        text = f"{noun} not found" if identifier is None else f"{noun} {identifier} not found"
        super().__init__(text, code="not_found", status=404)


class ValidationFailed(DomainError):
    def __init__(self, problems: list[FieldProblem], message: str = "The request has invalid fields") -> None:
        super().__init__(message, code="validation_failed", status=422, problems=problems)

    @classmethod
    def one(cls, field_name: str, message: str, code: str = "invalid") -> ValidationFailed:
        return cls([FieldProblem(field_name, message, code)], message=f"{field_name}: {message}")


class UnknownParameters(ValidationFailed):
    """Query parameters the endpoint does not take (a typo such as ``?stauts=open`` would otherwise be
    ignored and answer an unfiltered list): 422 naming each, with the parameters it does take.

    The problem document carries them twice: in ``errors`` (``field`` = the parameter, code
    ``unknown``), as every 422 of the API does, and as RFC 9457's ``invalid_params``
    (``name``, ``reason``) with ``accepted_params`` beside it."""

    def __init__(
        self, names: Sequence[str], accepted: Iterable[str], *, reason: str = "is not a parameter of this endpoint"
    ) -> None:
        taken = sorted(set(accepted))
        listed = ", ".join(taken) or "none"
        problems = [FieldProblem(name, f"{reason} (accepted: {listed})", "unknown") for name in names]
        message = (
            f"{names[0]}: {problems[0].message}"
            if len(names) == 1
            else f"Unknown query parameters: {', '.join(names)} (accepted: {listed})"
        )
        super().__init__(problems, message=message)
        self.names, self.accepted, self.reason = list(names), taken, reason
        self.extra = {
            "invalid_params": [{"name": name, "reason": reason} for name in names],
            "accepted_params": taken,
            "message_zh": f"未知的查询参数：{'、'.join(names)}（可用的参数：{listed}）",
        }

    def accepting(self, *more: str) -> UnknownParameters:
        """The same refusal from an endpoint that takes ``more`` parameters besides (an export's ``format``)."""
        return UnknownParameters(self.names, [*self.accepted, *more], reason=self.reason)


class Forbidden(DomainError):
    def __init__(self, message: str, *, field_name: str | None = None) -> None:
        problems = [FieldProblem(field_name, message, "forbidden")] if field_name else []
        super().__init__(message, code="forbidden", status=403, problems=problems)


class ReadOnly(DomainError):
    """A record the caller may read but not change (it reads it through another record it owns,
    e.g. the account of its own deal): 403, not 404 — the caller can see the record, so denying
    that it exists would contradict the read it just made."""

    def __init__(self, noun: str, identifier: object) -> None:
        text = f"{noun} {identifier} is read-only for you: you may read it, but only its owner's reach may change it"
        super().__init__(text, code="read_only", status=403)


class Unauthenticated(DomainError):
    def __init__(self, message: str = "Authentication required") -> None:
        super().__init__(message, code="unauthenticated", status=401)


class Conflict(DomainError):
    def __init__(self, message: str, *, code: str = "conflict", field_name: str | None = None) -> None:
        problems = [FieldProblem(field_name, message, code)] if field_name else []
        super().__init__(message, code=code, status=409, problems=problems)


class PreconditionFailed(DomainError):
    def __init__(self, message: str = "The record was changed by someone else; reload it and try again") -> None:
        super().__init__(message, code="stale_version", status=412)
