"""Interface text in Chinese and English, from gettext catalogs (Babel), and locale formatting.

English is the source language. The catalogues are read by :mod:`closeloop.core.i18n` (the API
and the command line read the same ones): the Chinese catalog is every ``*.po`` file under
``translations/zh_CN/LC_MESSAGES/`` merged (one file per area of the workspace, so areas are
translated side by side without touching each other's file); ``tests/web/test_catalogs.py``
checks that every text the templates and pages use has a translation.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers

from closeloop.core.i18n import N_, SUPPORTED, TRANSLATIONS, catalog, translations

__all__ = ["N_", "SUPPORTED", "TRANSLATIONS", "catalog", "translations"]

#: the time zone dates and times are shown in (the product's users are in China first)
DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")


def negotiate(preferred: str | None, accept_language: str | None) -> str:
    """The user's setting first, then the browser's Accept-Language, then Chinese."""
    if preferred in SUPPORTED:
        return preferred
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().replace("-", "_").lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return "zh_CN"


@lru_cache(maxsize=8)
def _locale(locale: str) -> Locale:
    """``Locale.parse`` once per locale: it searches the locale data on every call, which made a
    page of 25 rows spend most of its time parsing the same locale name again."""
    return Locale.parse(locale)


def format_money(amount: Decimal | float | int | None, currency: str, locale: str) -> str:
    """``¥1,234,567.00`` — the full amount with its currency, grouped for the locale."""
    if amount is None:
        return "—"
    # the yuan is ¥ in both interfaces (CLDR's English "CN¥" reads oddly to the people who use it)
    return numbers.format_currency(amount, currency or "CNY", locale=_locale(locale)).replace("CN¥", "¥")


#: English short figures: the divisor and its suffix, largest first
_ENGLISH_MAGNITUDES = ((Decimal(1_000_000_000), "B"), (Decimal(1_000_000), "M"), (Decimal(1_000), "K"))
_WAN = Decimal(10_000)


def format_compact(amount: Decimal | float | int | None, locale: str, *, currency: str | None = None) -> str:
    """A short figure for charts and cards, always two decimals and grouped for the locale.

    Chinese counts in 万 at any size (``123.46万``, ``12,345.67万`` — people reading pipelines compare
    figures in 万, and 亿 would make neighbouring cards read in different units); below 1万 the
    figure is shown whole (``¥9,800.00``). English uses K / M / B (``¥1.23M``)."""
    if amount is None:
        return "—"
    value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    where = _locale(locale)
    suffix = ""
    if locale == "zh_CN":
        if abs(value) >= _WAN:
            value, suffix = value / _WAN, "万"
    else:
        for divisor, letter in _ENGLISH_MAGNITUDES:
            if abs(value) >= divisor:
                value, suffix = value / divisor, letter
                break
    figure = numbers.format_decimal(value, format="#,##0.00", locale=where, decimal_quantization=True) + suffix
    if currency:
        symbol = numbers.get_currency_symbol(currency, locale=where).replace("CN¥", "¥")
        return f"{symbol}{figure}"
    return figure


#: a table of large amounts reads in one unit per locale: 万元 in Chinese, millions of yuan in English
_TABLE_UNITS = {"zh_CN": (_WAN, "万元"), "en": (Decimal(1_000_000), "¥ millions")}


def money_unit(locale: str) -> str:
    """The unit a table of amounts is shown in (``万元`` / ``¥ millions``), named once in its header."""
    return _TABLE_UNITS.get(locale, _TABLE_UNITS["en"])[1]


def format_in_unit(amount: Decimal | float | int | None, locale: str) -> str:
    """``amount`` in the locale's table unit, two decimals, grouped, no symbol: ``1,234.57`` for
    ¥12,345,678 in Chinese (万元), ``12.35`` in English (¥ millions) — every cell of a column alike,
    whatever its size, unlike :func:`format_compact`."""
    if amount is None:
        return "—"
    value = Decimal(str(amount)) if isinstance(amount, float) else Decimal(amount)
    divisor = _TABLE_UNITS.get(locale, _TABLE_UNITS["en"])[0]
    return numbers.format_decimal(value / divisor, format="#,##0.00", locale=_locale(locale), decimal_quantization=True)


def format_number(value: Decimal | float | int | None, locale: str) -> str:
    if value is None:
        return "—"
    return numbers.format_decimal(value, locale=_locale(locale))


def format_percent(ratio: float | None, locale: str) -> str:
    """``0.253`` → ``25.3%``."""
    if ratio is None:
        return "—"
    return numbers.format_percent(ratio, format="#,##0.0%", locale=_locale(locale))


def format_date(value: date | datetime | str | None, locale: str) -> str:
    """``2026年11月26日`` / ``Nov 26, 2026`` (a time is shown in the display zone's day)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(DISPLAY_ZONE).date() if value.tzinfo else value.date()
    return dates.format_date(value, format="medium", locale=_locale(locale))


def format_datetime(value: datetime | str | None, locale: str) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(DISPLAY_ZONE)
    return dates.format_datetime(value, format="short", locale=_locale(locale))


#: each role's name in the interface (GLOSSARY.md)
ROLE_LABELS = {
    "rep": N_("Sales rep"),
    "manager": N_("Sales manager"),
    "director": N_("Regional director"),
    "sales_vp": N_("Sales VP"),
    "cfo": N_("CFO"),
    "it_director": N_("IT director"),
    "partner_user": N_("Partner user"),
    "admin": N_("Administrator"),
}

#: each record type's name in the interface
NOUN_LABELS = {
    "account": N_("Account"),
    "contact": N_("Contact"),
    "lead": N_("Lead"),
    "opportunity": N_("Opportunity"),
    "activity": N_("Activity"),
    "contract": N_("Contract"),
    "order": N_("Order"),
    "product": N_("Product"),
    "product_line": N_("Product line"),
    "quote": N_("Quote"),
    "referral": N_("Referral"),
    "task": N_("Task"),
    "ticket": N_("Ticket"),
}
