"""Building blocks of the CRM request schemas: strict objects, money, currency, short texts."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from closeloop.core.money import CURRENCIES


class Schema(BaseModel):
    """Request bodies: unknown fields are errors, text is trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _currency(value: str) -> str:
    value = value.upper()
    if value not in CURRENCIES:
        raise ValueError(f"unsupported currency; use one of {', '.join(sorted(CURRENCIES))}")
    return value


Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2, examples=["125000.00"])]
SignedMoney = Annotated[Decimal, Field(max_digits=16, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=-100, le=100, max_digits=5, decimal_places=2, examples=["32.50"])]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3, examples=["2"])]
Currency = Annotated[str, Field(min_length=3, max_length=3, examples=["CNY"]), AfterValidator(_currency)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(max_length=200)]
Text = Annotated[str, Field(max_length=20000)]
Phone = Annotated[str, Field(max_length=40, pattern=r"^[0-9+()\- ]{3,40}$", examples=["+86 138 0013 8000"])]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["li.wei@example.com"])]
ExternalRef = Annotated[str, Field(min_length=1, max_length=100)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
