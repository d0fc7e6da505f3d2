"""Building blocks of the CRM request schemas: strict objects, money, currency, short texts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from closeloop.core import phones
from closeloop.core.money import CURRENCIES


class Schema(BaseModel):
    """Request bodies: unknown fields are errors, text is trimmed and holds no NUL character."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        """Refuse NUL characters: PostgreSQL cannot store them in text, and no real input holds one."""
        if type(value) is str:  # the common case, without a second call (this runs for every field)
            if "\x00" in value:
                raise ValueError("must not contain NUL characters")
            return value
        if isinstance(value, list | tuple | dict) and _holds_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return False


def _currency(value: str) -> str:
    value = value.upper()
    if value not in CURRENCIES:
        raise ValueError(f"unsupported currency; use one of {', '.join(sorted(CURRENCIES))}")
    return value


def _utc(value: datetime) -> datetime:
    """An aware UTC moment (a value without an offset is taken to be UTC, as everywhere in Closeloop)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the range of dates Closeloop stores") from None


Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2, examples=["125000.00"])]
SignedMoney = Annotated[Decimal, Field(max_digits=16, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=-100, le=100, max_digits=5, decimal_places=2, examples=["32.50"])]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3, examples=["2"])]
Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["CNY"]), AfterValidator(_currency)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=200)]
Text = Annotated[str, Field(max_length=20000)]
#: a mobile, landline (with its area code) or international number: the same rule as the quality scan
Phone = Annotated[str, Field(max_length=40, examples=["+86 138 0013 8000"]), AfterValidator(phones.checked_phone)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["li.wei@example.com"])]
ExternalRef = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Timestamp = Annotated[datetime, AfterValidator(_utc), Field(examples=["2026-03-01T09:30:00+08:00"])]
CustomValues = Annotated[
    dict[str, Any],
    Field(
        max_length=200,
        description=(
            "Values of your organization's custom fields, by name (their definitions: "
            "`GET /api/v1/custom-fields`; the record type's full schema: `GET /api/v1/schema/{type}`). "
            "On a change, only the fields given change; `null` clears one."
        ),
        examples=[{"region_score": 87}],
    ),
]
