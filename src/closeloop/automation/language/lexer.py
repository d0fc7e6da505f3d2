"""Turn a sentence into typed tokens that keep their character offsets in the original text.

At every position the lexer tries, longest match first: a URL, a clock time (9点半, 8am, 09:30), a
number (500,000 · 1.5万 · 一百万 · $50k · three), a text after a colon (a task title), and the
longest lexicon phrase. Whatever matches nothing becomes an ``unknown`` token — the parser reports
it by position instead of guessing what it meant.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from closeloop.automation.language.lexicon import LENGTHS_BY_FIRST, LEXICON
from closeloop.automation.language.numerals import (
    CHINESE_NUMERAL_CHARS,
    ENGLISH_NUMBER_RE,
    MAGNITUDES,
    NumeralError,
    parse_chinese_int,
    parse_decimal,
    parse_english_number,
    plain,
)


@dataclass(slots=True)
class Token:
    kind: str
    value: Any
    start: int
    end: int
    text: str
    attrs: dict[str, Any] = field(default_factory=dict)


def normalise(text: str) -> str:
    """Full-width forms to half-width and lower case, one character for one (offsets are kept)."""
    out = []
    for ch in text:
        folded = unicodedata.normalize("NFKC", ch).lower()
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


_WORD_CHAR = re.compile(r"[a-z0-9]")
_URL = re.compile(r"https?://[^\s，。；、“”\"'<>（）()]+")
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_CN_SMALL = "零〇一二两三四五六七八九十"
_CLOCK_CN = re.compile(
    rf"(\d{{1,2}}|[{_CN_SMALL}]{{1,3}})\s*[点點](?:\s*(半|一刻|(\d{{1,2}}|[{_CN_SMALL}]{{1,3}})\s*分?))?"
)
_CLOCK_COLON = re.compile(r"(\d{1,2}):(\d{2})(?:\s*(am|pm|a\.m\.|p\.m\.))?(?![\d])")
_CLOCK_AMPM = re.compile(r"(\d{1,2})\s*(am|pm|a\.m\.|p\.m\.)(?![a-z])")
_CURRENCY_PREFIX = re.compile(r"(us\$|\$|¥|rmb\s?|usd\s?|cny\s?)")
_NUMBER = re.compile(_DIGITS)
_MAGNITUDE = re.compile(r"\s?(千万|百万|万|亿|thousand|million|billion|mn|bn|k|m)(?![a-z])|(千|w)(?![a-z])")
_CN_NUMERAL = re.compile(f"[{CHINESE_NUMERAL_CHARS}]+")
_TITLE_END = re.compile(r"[。;\n]|\.(?:\s|$)")


def _cn_small(text: str) -> int:
    return int(text) if text.isdigit() else parse_chinese_int(text)


def _clock(norm: str, i: int) -> tuple[int, str] | None:
    match = _CLOCK_CN.match(norm, i)
    if match:
        try:
            hour = _cn_small(match.group(1))
            minute = 30 if match.group(2) == "半" else 15 if match.group(2) == "一刻" else 0
            if match.group(3):
                minute = _cn_small(match.group(3))
        except NumeralError:
            return None
        if hour <= 24 and minute < 60:
            return match.end(), f"{hour % 24:02d}:{minute:02d}"
        return None
    for pattern in (_CLOCK_COLON, _CLOCK_AMPM):
        match = pattern.match(norm, i)
        if not match:
            continue
        hour = int(match.group(1))
        minute = int(match.group(2)) if pattern is _CLOCK_COLON else 0
        suffix = match.group(match.lastindex or 1) if match.lastindex and match.lastindex >= 2 else ""
        suffix = suffix if suffix and suffix[0] in "ap" else ""
        if suffix.startswith("p") and hour < 12:
            hour += 12
        if suffix.startswith("a") and hour == 12:
            hour = 0
        if hour < 24 and minute < 60:
            return match.end(), f"{hour:02d}:{minute:02d}"
    return None


def _number(norm: str, i: int) -> tuple[int, Decimal, str | None, bool] | None:
    """(end, value, currency, has_magnitude) for a number starting at ``i``."""
    currency: str | None = None
    j = i
    prefix = _CURRENCY_PREFIX.match(norm, i)
    if prefix and (prefix.group(1).strip() in ("$", "us$", "¥") or _NUMBER.match(norm, prefix.end())):
        currency = "USD" if "$" in prefix.group(1) or "usd" in prefix.group(1) else "CNY"
        j = prefix.end()
    digits = _NUMBER.match(norm, j)
    value: Decimal
    if digits:
        value = parse_decimal(digits.group(0))
        end = digits.end()
        if "," in digits.group(0) and end < len(norm) and norm[end : end + 1].isdigit():
            return None
    else:
        if currency is not None:
            return None
        cn = _CN_NUMERAL.match(norm, j)
        if cn:
            try:
                whole = parse_chinese_int(cn.group(0))
            except NumeralError:
                return None
            if whole == 0 and "零" not in cn.group(0) and "〇" not in cn.group(0):
                return None
            return cn.end(), Decimal(whole), None, any(ch in "万亿" for ch in cn.group(0))
        words = ENGLISH_NUMBER_RE.match(norm, j)
        if words and (j == 0 or not _WORD_CHAR.match(norm[j - 1])):
            try:
                return words.end(), Decimal(parse_english_number(words.group(0))), None, False
            except NumeralError:
                return None
        return None
    magnitude = _MAGNITUDE.match(norm, end)
    has_magnitude = False
    if magnitude:
        word = magnitude.group(1) or magnitude.group(2)
        if word != "m" or currency is not None:
            value *= MAGNITUDES[word]
            end = magnitude.end()
            has_magnitude = True
    return end, value, currency, has_magnitude


def _phrase(norm: str, i: int) -> tuple[int, str] | None:
    starts_word = _WORD_CHAR.match(norm[i]) is not None
    if starts_word and i > 0 and _WORD_CHAR.match(norm[i - 1]):
        return None
    for length in LENGTHS_BY_FIRST.get(norm[i], ()):
        if i + length > len(norm):
            continue
        candidate = norm[i : i + length]
        if candidate not in LEXICON:
            continue
        end = i + length
        if _WORD_CHAR.match(candidate[-1]) and end < len(norm) and _WORD_CHAR.match(norm[end]):
            continue
        return end, candidate
    return None


def _is_letter(text: str, norm: str, i: int) -> bool:
    """A capital letter standing alone (等级为A, tier B): a categorical value such as a tier."""
    if not ("a" <= norm[i] <= "z" and text[i].isupper()):
        return False
    before = norm[i - 1] if i > 0 else " "
    after = norm[i + 1] if i + 1 < len(norm) else " "
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


def tokenize(text: str) -> list[Token]:
    norm = normalise(text)
    tokens: list[Token] = []
    i = 0
    n = len(norm)
    while i < n:
        ch = norm[i]
        if ch.isspace() and ch != "\n":
            i += 1
            continue
        candidates: list[tuple[int, int, Token]] = []  # (end, priority, token)
        url = _URL.match(norm, i)
        if url:
            end = url.end()
            while end > i and norm[end - 1] in ".,;:!?":
                end -= 1
            candidates.append((end, 3, Token("url", text[i:end], i, end, text[i:end])))
        clock = _clock(norm, i)
        if clock:
            candidates.append((clock[0], 2, Token("clock", clock[1], i, clock[0], text[i : clock[0]])))
        number = _number(norm, i)
        if number:
            end, value, currency, magnitude = number
            attrs = {"currency": currency, "magnitude": magnitude}
            candidates.append((end, 0, Token("num", plain(value), i, end, text[i:end], attrs)))
        phrase = _phrase(norm, i)
        if phrase:
            end, key = phrase
            entry = LEXICON[key]
            candidates.append((end, 1, Token(entry.kind, entry.value, i, end, text[i:end], dict(entry.attrs))))
        if ch == ":" and tokens and tokens[-1].kind != "clock":
            stop = _TITLE_END.search(norm, i + 1)
            end = stop.start() if stop else n
            title = text[i + 1 : end].strip()
            if title:
                candidates.append((end, 4, Token("title", title, i, end, text[i:end])))
        if _is_letter(text, norm, i):
            candidates.append((i + 1, 2, Token("letter", text[i], i, i + 1, text[i])))
        if candidates:
            end, _, token = max(candidates, key=lambda c: (c[0], c[1]))
            tokens.append(token)
            i = end
            continue
        if _WORD_CHAR.match(ch):
            end = i
            while end < n and (_WORD_CHAR.match(norm[end]) or norm[end] in "'-_"):
                end += 1
        else:
            end = i + 1
        if tokens and tokens[-1].kind == "unknown" and tokens[-1].end == i and not _WORD_CHAR.match(ch):
            previous = tokens[-1]
            previous.end = end
            previous.text = text[previous.start : end]
        else:
            tokens.append(Token("unknown", None, i, end, text[i:end]))
        i = end
    return tokens
