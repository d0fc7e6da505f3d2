"""The buyer's tax number on an invoice title: an 18-character unified social credit code
(统一社会信用代码, GB 32100-2015, with its check character) or a legacy taxpayer number
(纳税人识别号) of 15, 17 or 20 digits and capitals."""

from __future__ import annotations

import re

#: the code's alphabet: digits and capitals without I, O, S, V, Z
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_LEGACY = re.compile(r"[0-9A-Z]{15}|[0-9A-Z]{17}|[0-9A-Z]{20}")


def check_character(first17: str) -> str:
    """The 18th character of a unified social credit code whose first 17 are given."""
    total = sum(ALPHABET.index(char) * weight for char, weight in zip(first17, WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def normalize(value: str) -> str:
    """Upper case, without spaces and hyphens (as people copy it from a business licence)."""
    return re.sub(r"[\s\-]", "", value).upper()


def problem(value: str) -> str | None:
    """Why ``value`` (normalized) is not a tax number, or None when it is one."""
    if len(value) == 18:
        if not _CREDIT_CODE.fullmatch(value):
            return "a unified social credit code has 18 digits and capitals (no I, O, S, V, Z)"
        if check_character(value[:17]) != value[17]:
            return "the check character of this unified social credit code is wrong"
        return None
    if _LEGACY.fullmatch(value):
        return None
    return "a tax number is an 18-character unified social credit code or a 15, 17 or 20-character taxpayer number"
