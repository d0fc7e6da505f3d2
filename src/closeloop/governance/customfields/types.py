"""Field types and the checks one definition implies for a value (pure: no database).

Stored forms (in the record's ``custom`` JSON document) are chosen so that the database can
filter and sort them the same way on SQLite and PostgreSQL: numbers and money as JSON numbers,
dates as ``YYYY-MM-DD`` strings, users and record links as integer ids, multi-choice as a list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from closeloop.core.money import quantize

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CHOICE_PATTERN = re.compile(r"^[^\"\\\x00-\x1f]{1,60}$")
MAX_TEXT = 2000
#: JSON numbers are doubles: below 10^13, money keeps its cents exactly (15 significant digits)
MAX_MONEY = Decimal("9999999999999.99")
_TRUE = {"true", "1", "yes", "y", "是", "对"}
_FALSE = {"false", "0", "no", "n", "否", "错"}


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    MONEY = "money"
    DATE = "date"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    USER = "user"
    RECORD_LINK = "record_link"
    BOOLEAN = "boolean"
    #: computed from a formula over the record and its related records; read-only
    FORMULA = "formula"


#: what a value of each type filters like: the list operators it allows
OPERATORS: dict[FieldType, frozenset[str]] = {
    FieldType.TEXT: frozenset({"eq", "ne", "in", "contains", "startswith", "isnull"}),
    FieldType.NUMBER: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    FieldType.MONEY: frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "isnull"}),
    FieldType.DATE: frozenset({"eq", "gt", "gte", "lt", "lte", "isnull"}),
    FieldType.CHOICE: frozenset({"eq", "ne", "in", "isnull"}),
    FieldType.MULTI_CHOICE: frozenset({"contains", "isnull"}),
    FieldType.USER: frozenset({"eq", "ne", "in", "isnull"}),
    FieldType.RECORD_LINK: frozenset({"eq", "ne", "in", "isnull"}),
    FieldType.BOOLEAN: frozenset({"eq", "isnull"}),
    FieldType.FORMULA: frozenset(),  # by the formula's result type (crm.customfields)
}


class ValueProblem(ValueError):
    """What is wrong with one value, and a code for machines."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The parts of a definition that decide whether a value is acceptable."""

    name: str
    field_type: FieldType
    required: bool = False
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    #: a choice's labels (lowercased) → its value: imports and people type 经销 for ``dealer``
    labels: Mapping[str, str] = field(default_factory=dict)

    def choice(self, text: str) -> str:
        if text in self.choices:
            return text
        found = self.labels.get(text.lower())
        if found is None:
            raise ValueProblem(f"'{text}' is not one of: {', '.join(self.choices)}", "not_a_choice")
        return found

    @property
    def sortable(self) -> bool:
        return self.field_type is not FieldType.MULTI_CHOICE


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueProblem("must be a number")
    try:
        number = Decimal(str(value).strip().replace(",", "")) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise ValueProblem("must be a number") from None
    if not number.is_finite():
        raise ValueProblem("must be a finite number")
    return number


def plain(number: Decimal) -> str:
    """``100`` rather than ``1E+2``; ``0.5`` rather than ``0.5000``."""
    return format(number.normalize(), "f")


def _check_range(rule: FieldRule, number: Decimal) -> None:
    if rule.min_value is not None and number < rule.min_value:
        raise ValueProblem(f"must be at least {plain(rule.min_value)}", "out_of_range")
    if rule.max_value is not None and number > rule.max_value:
        raise ValueProblem(f"must be at most {plain(rule.max_value)}", "out_of_range")


def clean_value(rule: FieldRule, value: Any) -> Any:
    """The stored form of ``value`` for a field of ``rule``, or :class:`ValueProblem`.

    Accepts the JSON form (numbers, booleans, lists) and the text form of an import cell alike.
    ``None`` (or an empty text) means *no value*; whether that is allowed is the caller's call.
    """
    kind = rule.field_type
    if kind is FieldType.FORMULA:
        raise ValueProblem("is computed from its formula; it cannot be set", "computed")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind is FieldType.TEXT:
        if not isinstance(value, str):
            raise ValueProblem("must be text")
        text = value.strip()
        limit = rule.max_length or MAX_TEXT
        if len(text) > limit:
            raise ValueProblem(f"must be at most {limit} characters", "too_long")
        if "\x00" in text:
            raise ValueProblem("must not contain NUL characters", "invalid_character")
        if rule.pattern and not re.fullmatch(rule.pattern, text):
            raise ValueProblem(f"does not match the pattern {rule.pattern}", "pattern")
        return text
    if kind in (FieldType.NUMBER, FieldType.MONEY):
        number = _decimal(value)
        if kind is FieldType.MONEY:
            number = quantize(number)
            if abs(number) > MAX_MONEY:
                raise ValueProblem(f"must be at most {MAX_MONEY} in size", "out_of_range")
        elif abs(number) >= Decimal("1e15"):
            raise ValueProblem("is too large", "out_of_range")
        _check_range(rule, number)
        return int(number) if number == number.to_integral_value() and kind is FieldType.NUMBER else float(number)
    if kind is FieldType.DATE:
        if isinstance(value, date):
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueProblem("must be a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value.strip()[:10].replace("/", "-")).isoformat()
        except ValueError:
            raise ValueProblem(f"'{value}' is not a date (YYYY-MM-DD)") from None
    if kind is FieldType.CHOICE:
        return rule.choice(str(value).strip())
    if kind is FieldType.MULTI_CHOICE:
        items = [part.strip() for part in value.split(";")] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ValueProblem("must be a list of choices")
        chosen: list[str] = []
        for item in items:
            text = str(item).strip()
            if not text:
                continue
            text = rule.choice(text)
            if text not in chosen:
                chosen.append(text)
        return chosen or None
    if kind in (FieldType.USER, FieldType.RECORD_LINK):
        if isinstance(value, bool):
            raise ValueProblem("must be a record id")
        try:
            identifier = int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ValueProblem("must be a record id") from None
        if not 1 <= identifier < 2**63:
            raise ValueProblem("must be a record id")
        return identifier
    if kind is FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueProblem("must be true or false")
    raise AssertionError(kind)


def read_value(field_type: FieldType, stored: Any) -> Any:
    """The API form of a stored value (money as a string with two decimals, like built-in money)."""
    if stored is None:
        return None
    if field_type is FieldType.MONEY:
        return str(quantize(Decimal(str(stored))))
    return stored


def labels_of(choices: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Each choice's Chinese and English label, lowercased, → its value."""
    labels: dict[str, str] = {}
    for choice in choices:
        for key in ("label_zh", "label_en"):
            if choice.get(key):
                labels.setdefault(choice[key].strip().lower(), choice["value"])
    return labels
