"""Parsing cells the way people type them into spreadsheets, in Chinese and English.

Each parser takes a cell (text from CSV; text, number, date or time from XLSX) and returns a
typed value, ``None`` for a blank cell, or raises :class:`ValueProblem` saying what was expected.

* dates: ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日``, ``20240305``, Excel serial
  numbers (``45356``), and day/month/year orders only when unambiguous (``25/12/2024``);
* date-times: the same dates with ``14:30`` or ``14:30:15`` (ISO ``T`` too, with an offset or
  ``Z``); a date-time without an offset is taken as UTC, as the API does;
* money and numbers: thousands separators (``1,234.50``), currency marks (``¥ ￥ $ € £``,
  ``RMB``, ``CNY``, ``USD``…), full-width digits, ``万`` (×10⁴) and ``亿`` (×10⁸), and
  accounting negatives ``(1,234.00)``;
* booleans: 是/否, 对/错, 真/假, 有/无, yes/no, y/n, true/false, 1/0, on/off, ✓/✗;
* picklists: the code or a label in Chinese or English (``赢单`` → ``won``), case-insensitive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from closeloop.core.clock import as_utc


class ValueProblem(ValueError):
    """A cell that cannot become the value its field needs; the message says what was expected."""


_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01, counting Excel's phantom 1900-02-29
_EXCEL_MAX_SERIAL = 2_958_465  # 9999-12-31
_BLANKS = frozenset({"", "-", "--", "—", "n/a", "na", "null", "none", "无数据"})


def is_blank(value: Any) -> bool:
    """A cell with nothing in it (or a placeholder such as ``-`` or ``N/A``)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip().lower() in _BLANKS
    return False


def _text(value: Any) -> str:
    """Cell text, NFKC-normalized (full-width digits and letters become ASCII) and trimmed."""
    text = str(value)
    return text.strip() if text.isascii() else unicodedata.normalize("NFKC", text).strip()


# --- text -------------------------------------------------------------------------------------


def parse_text(value: Any) -> str | None:
    """Trimmed text; numbers from XLSX lose a spurious ``.0`` (a phone typed as 13800138000)."""
    if type(value) is str:
        return value.strip() or None
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


# --- numbers ----------------------------------------------------------------------------------

_CURRENCY_MARKS = re.compile(
    r"(?i)^(?:rmb|cny|usd|eur|hkd|jpy|gbp|us\$|hk\$|[¥$€£])|(?:rmb|cny|usd|eur|hkd|jpy|gbp|元)$"
)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_MULTIPLIERS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}


def parse_decimal(value: Any) -> Decimal | None:
    """A decimal number, money marks and separators removed (see the module docstring)."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        raise ValueProblem("is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        return value
    text = _text(value).replace(" ", "").replace("\u00a0", "")
    if text.isascii() and text.isdigit() and len(text.lstrip("0")) <= _LARGEST_DIGITS:
        return Decimal(text)
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.startswith("-") and len(text) > 1 and not text[1].isdigit():  # -¥1,000
        negative, text = not negative, text[1:]
    if not (text[:1].isdigit() and text[-1:].isdigit()):
        previous = None
        while previous != text:
            previous = text
            text = _CURRENCY_MARKS.sub("", text)
    multiplier = Decimal(1)
    if text and text[-1] in _MULTIPLIERS:
        multiplier, text = _MULTIPLIERS[text[-1]], text[:-1]
    if _GROUPED.match(text):
        text = text.replace(",", "")
    if not _NUMBER.match(text):
        raise ValueProblem("is not a number (write it like 1234.50 or 1,234.50)")
    try:
        number = Decimal(text) * multiplier
    except InvalidOperation:
        raise ValueProblem("is not a number") from None
    if not number.is_finite():
        raise ValueProblem("is not a finite number")
    if number.adjusted() >= _LARGEST_DIGITS:
        raise ValueProblem(TOO_LARGE)
    return -number if negative else number


#: an amount as most files write it (``1234.5``, ``1,234.50``): ASCII digits, optional thousands
#: separators, at most two decimals — read directly; anything else takes the general path
_PLAIN_MONEY = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]{1,2})?")
_CENT = Decimal("0.01")
#: a number with more digits before the point than this is refused as too large (no column holds it,
#: and rounding it to cents would overflow the decimal context)
_LARGEST_DIGITS = 18
#: an amount's limit: 14 digits before the point, as every money field stores it
_MONEY_DIGITS = 14
TOO_LARGE = "is too large"
TOO_LARGE_MONEY = "is too large (at most 99,999,999,999,999.99)"


def parse_money(value: Any) -> Decimal | None:
    """An amount in currency units with at most two decimals (more are an error, not rounded) and at
    most 14 digits before the point."""
    if type(value) is str and _PLAIN_MONEY.fullmatch(value):
        plain = Decimal(value.replace(",", ""))
        if plain.adjusted() >= _MONEY_DIGITS:
            raise ValueProblem(TOO_LARGE_MONEY)
        return plain.quantize(_CENT)
    try:
        number = parse_decimal(value)
    except ValueProblem as problem:
        raise ValueProblem(TOO_LARGE_MONEY if str(problem) == TOO_LARGE else str(problem)) from None
    if number is None:
        return None
    if number.adjusted() >= _MONEY_DIGITS:
        raise ValueProblem(TOO_LARGE_MONEY)
    if number != number.quantize(Decimal("0.01")):
        raise ValueProblem("has more than two decimal places")
    return number.quantize(Decimal("0.01"))


def parse_int(value: Any) -> int | None:
    """A whole number (``1,200`` and ``1200.0`` are fine; ``12.5`` is not)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value.lstrip("0")) <= _LARGEST_DIGITS:
        return int(value)
    number = parse_decimal(value)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ValueProblem("is not a whole number")
    return int(number)


# --- booleans ---------------------------------------------------------------------------------

_TRUE = frozenset({"是", "对", "真", "有", "已", "y", "yes", "true", "t", "1", "on", "✓", "√", "x"})
_FALSE = frozenset({"否", "错", "假", "无", "未", "n", "no", "false", "f", "0", "off", "✗", "×"})


def parse_bool(value: Any) -> bool | None:
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueProblem("is not yes or no (是/否, yes/no, true/false, 1/0)")


# --- dates ------------------------------------------------------------------------------------

_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DMY_OR_MDY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")
_SERIAL = re.compile(r"^\d{1,7}(?:\.\d+)?$")
_TIME = re.compile(r"^(\d{1,2})[:：时](\d{2})(?:[:：分](\d{2})(?:\.(\d{1,6}))?秒?)?$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")

DATE_HINT = "is not a date (use YYYY-MM-DD, 2024/3/5 or 2024年3月5日)"


def excel_serial_to_date(serial: float) -> date:
    if not 1 <= serial <= _EXCEL_MAX_SERIAL:
        raise ValueProblem(DATE_HINT)
    return _EXCEL_EPOCH + timedelta(days=int(serial))


def date_to_excel_serial(value: date) -> int:
    return (value - _EXCEL_EPOCH).days


def _ymd(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueProblem(f"is not a real date ({year}-{month:02d}-{day:02d})") from None


def parse_date(value: Any) -> date | None:
    if is_blank(value):
        return None
    if isinstance(value, datetime):
        return as_utc(value).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise ValueProblem(DATE_HINT)
    if isinstance(value, int | float):
        return excel_serial_to_date(float(value))
    text = _text(value)
    date_part, _, time_part = text.replace("T", " ").partition(" ")
    if time_part:
        match = _TIME.match(_OFFSET.sub("", time_part.strip()).strip())
        if match is None:
            raise ValueProblem(DATE_HINT)
        if any(int(group or 0) for group in match.groups()):
            raise ValueProblem("is a date with a time of day; this field takes a date only")
    return _parse_date_text(date_part)


def _parse_date_text(text: str) -> date:
    if match := _YMD.match(text):
        return _ymd(int(match[1]), int(match[2]), int(match[3]))
    if match := _COMPACT.match(text):
        return _ymd(int(match[1]), int(match[2]), int(match[3]))
    if match := _DMY_OR_MDY.match(text):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        if first > 12 >= second:
            return _ymd(year, second, first)
        if second > 12 >= first:
            return _ymd(year, first, second)
        if first == second:
            return _ymd(year, first, second)
        raise ValueProblem(f"is ambiguous: day and month could be either way round; write it as {year}-MM-DD")
    if _SERIAL.match(text):
        return excel_serial_to_date(float(text))
    raise ValueProblem(DATE_HINT)


def parse_datetime(value: Any) -> datetime | None:
    """An aware UTC date-time; a date alone means midnight UTC; no offset means UTC."""
    if is_blank(value):
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time.min, tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueProblem(DATE_HINT)
    if isinstance(value, int | float):
        day = excel_serial_to_date(float(value))
        fraction = float(value) - int(value)
        return datetime.combine(day, time.min, tzinfo=UTC) + timedelta(seconds=round(fraction * 86400))
    text = _text(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        return as_utc(parsed)
    date_part, _, time_part = text.replace("T", " ").partition(" ")
    day = _parse_date_text(date_part)
    time_part = time_part.strip()
    if not time_part:
        return datetime.combine(day, time.min, tzinfo=UTC)
    match = _TIME.match(time_part)
    if not match:
        raise ValueProblem("has a time of day that is not HH:MM or HH:MM:SS")
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    micro = int((match[4] or "0").ljust(6, "0"))
    if hour > 23 or minute > 59 or second > 59:
        raise ValueProblem(f"has an impossible time of day ({time_part})")
    return datetime.combine(day, time(hour, minute, second, micro), tzinfo=UTC)


# --- picklists --------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def normalize_label(text: str) -> str:
    """How picklist labels and headers are compared: NFKC, lower case, no spaces, dashes or underscores."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"[\s_\-./:：()（）*＊]+", "", text)


def parse_choice(value: Any, labels: Mapping[str, str], *, choices: tuple[str, ...]) -> str | None:
    """The code of a picklist value given as its code or any of its labels (``labels``: label → code)."""
    if is_blank(value):
        return None
    key = normalize_label(str(value))
    code = labels.get(key)
    if code is None:
        raise ValueProblem(f"is not one of: {', '.join(choices)}")
    return code
