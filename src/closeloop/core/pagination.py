"""Opaque cursors for keyset pagination: they carry the last row's sort key and id."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from closeloop.core.errors import ValidationFailed

T = TypeVar("T")

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Cursor:
    sort: str
    value: Any
    id: int

    def encode(self) -> str:
        raw = json.dumps([self.sort, self.value, self.id], separators=(",", ":"), ensure_ascii=False)
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, *, sort: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
            sort_name, value, row_id = data
            if not isinstance(row_id, int) or not isinstance(sort_name, str) or not -(2**63) <= row_id < 2**63:
                raise ValueError
        except (ValueError, TypeError, RecursionError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            raise ValidationFailed.one("cursor", "is not a cursor this API issued") from None
        if sort_name != sort:
            raise ValidationFailed.one("cursor", f"was issued for sort '{sort_name}', not '{sort}'")
        return cls(sort=sort_name, value=value, id=row_id)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
