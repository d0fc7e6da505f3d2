"""Interface text in Chinese and English, from gettext catalogs (Babel)."""

from __future__ import annotations

import io
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel import Locale, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED = ("zh_CN", "en")
_HERE = Path(__file__).parent / "translations"


@lru_cache(maxsize=8)
def translations(locale: str) -> NullTranslations:
    """The catalog for ``locale``, compiled from its .po file (English is the source language)."""
    po_path = _HERE / locale / "LC_MESSAGES" / "messages.po"
    if locale == "en" or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


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


def format_money(amount: Decimal | None, currency: str, locale: str) -> str:
    if amount is None:
        return "—"
    return numbers.format_currency(amount, currency, locale=Locale.parse(locale))
