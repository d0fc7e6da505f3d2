"""Numbers as managers write them: Arabic digits with separators, Chinese numerals (十四, 两千五百,
一百万), magnitude suffixes (万 / 百万 / 千万 / 亿 / k / million) and English number words."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
LARGE_UNITS = {"万": 10_000, "亿": 100_000_000}
CHINESE_NUMERAL_CHARS = "".join(DIGITS) + "".join(SMALL_UNITS) + "".join(LARGE_UNITS)

#: Magnitude words written after a number: "100万", "1.5万", "3千万", "$50k", "2 million".
MAGNITUDES: dict[str, int] = {
    "千万": 10_000_000,
    "百万": 1_000_000,
    "万": 10_000,
    "亿": 100_000_000,
    "千": 1_000,
    "k": 1_000,
    "thousand": 1_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "million": 1_000_000,
    "w": 10_000,
    "bn": 1_000_000_000,
    "billion": 1_000_000_000,
}

ENGLISH_NUMBER_WORDS: dict[str, int] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
ENGLISH_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000}

_ENGLISH_WORD = "|".join(sorted([*ENGLISH_NUMBER_WORDS, *ENGLISH_SCALES], key=len, reverse=True))
ENGLISH_NUMBER_RE = re.compile(rf"(?:{_ENGLISH_WORD})(?:(?:[\s-]+|\s+and\s+)(?:{_ENGLISH_WORD}))*(?![a-z])")


class NumeralError(ValueError):
    """The text is not a well-formed numeral."""


def parse_chinese_int(text: str) -> int:
    """``"十四"`` → 14, ``"一百万"`` → 1000000, ``"两千零五"`` → 2005, ``"一亿三千万"`` → 130000000."""
    if not text or any(ch not in CHINESE_NUMERAL_CHARS for ch in text):
        raise NumeralError(f"not a Chinese numeral: {text!r}")
    total = 0  # everything already closed by 亿 / 万
    section = 0  # the part below 万 being built
    number = 0  # the last digit seen
    seen_digit = False
    for ch in text:
        if ch in DIGITS:
            number = DIGITS[ch]
            seen_digit = True
        elif ch in SMALL_UNITS:
            section += (number or 1) * SMALL_UNITS[ch]
            number = 0
        elif ch == "万":
            if not (seen_digit or section):
                raise NumeralError(f"not a Chinese numeral: {text!r}")
            total += (section + number) * LARGE_UNITS[ch]
            section = number = 0
        else:  # 亿
            if not (seen_digit or section or total):
                raise NumeralError(f"not a Chinese numeral: {text!r}")
            total = (total + section + number) * LARGE_UNITS[ch]
            section = number = 0
    return total + section + number


_CN_DIGITS = "零一二三四五六七八九"


def _section_to_chinese(value: int) -> str:
    """0 < value < 10000, without leading 零."""
    out: list[str] = []
    zero_pending = False
    for unit_value, unit_name in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = value // unit_value % 10
        if digit == 0:
            if out:
                zero_pending = True
            continue
        if zero_pending:
            out.append("零")
            zero_pending = False
        out.append(_CN_DIGITS[digit] + unit_name)
    return "".join(out)


def to_chinese(value: int) -> str:
    """The canonical Chinese numeral for ``value`` (0 ≤ value < 10¹⁶): 14 → 十四, 2005 → 二千零五."""
    if value < 0 or value >= 10**16:
        raise ValueError("out of range")
    if value == 0:
        return "零"
    parts: list[str] = []
    groups = [(value // 10**12) % 10**4, (value // 10**8) % 10**4, (value // 10**4) % 10**4, value % 10**4]
    names = ["万", "亿", "万", ""]
    started = False
    need_zero = False
    for index, (group, name) in enumerate(zip(groups, names, strict=True)):
        if group == 0:
            if started:
                need_zero = True
            if index == 1 and started:  # 一万亿: the 亿 closes the 万 above it
                parts.append("亿")
            continue
        if started and (need_zero or group < 1000):
            parts.append("零")
        parts.append(_section_to_chinese(group) + name)
        started = True
        need_zero = False
    text = "".join(parts).replace("亿亿", "亿")
    if text.startswith("一十"):
        text = text[1:]  # 十四, not 一十四
    return text


def parse_english_number(text: str) -> int:
    """``"three"`` → 3, ``"twenty-one"`` → 21, ``"two hundred"`` → 200."""
    total = 0
    current = 0
    words = [w for w in re.split(r"[\s-]+", text.lower()) if w and w != "and"]
    if not words:
        raise NumeralError(f"not a number: {text!r}")
    for word in words:
        if word in ENGLISH_NUMBER_WORDS:
            current += ENGLISH_NUMBER_WORDS[word]
        elif word == "hundred":
            current = (current or 1) * 100
        elif word in ENGLISH_SCALES:
            total += (current or 1) * ENGLISH_SCALES[word]
            current = 0
        else:
            raise NumeralError(f"not a number: {text!r}")
    return total + current


def parse_decimal(digits: str) -> Decimal:
    """``"500,000"`` → 500000, ``"1.5"`` → 1.5 (thousands separators must group by three)."""
    cleaned = digits.replace(",", "")
    try:
        return Decimal(cleaned)
    except InvalidOperation as error:  # pragma: no cover - the lexer only passes digit runs
        raise NumeralError(f"not a number: {digits!r}") from error


def plain(value: Decimal) -> int | float:
    """An int when the value is whole (1.5万 → 15000), else a float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)
