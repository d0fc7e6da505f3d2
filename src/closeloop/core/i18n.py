"""The gettext catalogues every adapter reads its words from (the web pages, the API's problem
documents, the command line's reports), and the language a caller asked for.

English is the source language. The Chinese catalogue is every ``*.po`` file under
``closeloop/web/translations/zh_CN/LC_MESSAGES/`` merged (the files sit beside the pages that were
translated first; the API and the command line read the same ones, so one sentence is translated
once for every way in).
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SUPPORTED = ("zh_CN", "en")
TRANSLATIONS = Path(__file__).parent.parent / "web" / "translations"


def catalog(locale: str) -> Catalog:
    """Every message of ``locale``, merged from its ``*.po`` files (later files win on a clash)."""
    merged = Catalog(locale=locale)
    for po_path in sorted((TRANSLATIONS / locale / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle, locale=locale):
                if message.id:
                    merged[message.id] = message
    return merged


@lru_cache(maxsize=8)
def translations(locale: str) -> NullTranslations:
    """The compiled catalog for ``locale`` (English needs none)."""
    if locale == "en" or locale not in SUPPORTED:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog(locale))
    buffer.seek(0)
    return Translations(buffer)


def N_(text: str) -> str:
    """Marks ``text`` for the catalog without translating it here (it is translated when shown)."""
    return text


def accepted_language(accept_language: str | None) -> str | None:
    """The first supported language an ``Accept-Language`` header names (``zh``, ``zh-CN``,
    ``zh-Hans`` → ``zh_CN``; ``en``, ``en-US`` → ``en``), in the header's order of preference
    (``q`` weights honoured); ``None`` when it names none (or is absent, or is ``*``)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, *options = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for option in options:
            if option.startswith("q="):
                try:
                    weight = float(option[2:])
                except ValueError:
                    weight = 0.0
        language = tag.replace("-", "_").lower()
        if weight > 0 and language.startswith("zh"):
            ranked.append((-weight, position, "zh_CN"))
        elif weight > 0 and language.startswith("en"):
            ranked.append((-weight, position, "en"))
    return min(ranked)[2] if ranked else None


def language(accept_language: str | None, *settings: str | None) -> str:
    """The language to answer in: the request's ``Accept-Language`` first, then each setting in
    turn (the user's own, the organization's default), then Chinese."""
    found = accepted_language(accept_language)
    if found is not None:
        return found
    for setting in settings:
        if setting in SUPPORTED:
            return setting
    return "zh_CN"
