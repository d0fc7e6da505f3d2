"""Money is a Decimal with a currency; never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD", "TWD", "KRW", "AUD", "CAD"})
DEFAULT_CURRENCY = "CNY"
CENT = Decimal("0.01")
#: the largest amount a request may carry and a document may total (16 digits, cents included)
MAX_AMOUNT = Decimal("99999999999999.99")


def quantize(value: Decimal) -> Decimal:
    """Round half-up to cents, as invoices and contracts do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)
