"""Money is a Decimal with a currency; never a float. :func:`written` is how an amount reads in titles
and generated text, whatever the reader's language (pages format with the locale)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCIES = frozenset({"CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD", "TWD", "KRW", "AUD", "CAD"})
DEFAULT_CURRENCY = "CNY"
CENT = Decimal("0.01")
#: the largest amount a request may carry and a document may total (16 digits, cents included)
MAX_AMOUNT = Decimal("99999999999999.99")


def quantize(value: Decimal) -> Decimal:
    """Round half-up to cents, as invoices and contracts do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def written(amount: object, currency: object = None) -> str:
    """``amount`` with thousands separators and two decimals, after its currency's sign or code
    (``¥328,057.00``, ``USD 1,200.00``); a value that is not a number is returned as it is."""
    try:
        text = f"{Decimal(str(amount)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(amount)
    code = str(currency or DEFAULT_CURRENCY).upper()
    return f"¥{text}" if code == DEFAULT_CURRENCY else f"{code} {text}"
