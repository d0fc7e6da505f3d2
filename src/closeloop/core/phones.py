"""The one phone-number rule of Closeloop: the record forms and the API (``crm.schemas.Phone``),
the importer (through the same schemas) and the data-quality scan (``quality.checks``) all ask
:func:`phone_problem`, so a number the forms accept is never flagged by the scan, and the other
way round.

Chinese mobiles are checked by their format (1[3-9] and nine digits, with an optional +86 / 0086
/ 86); landlines (with their area code, e.g. ``0771-2399445``), service numbers (``400-820-8820``)
and international numbers (``+1 650 253 0000``) by ``phonenumbers`` — Google's libphonenumber
numbering plans, China as the default region — rather than a hand-written pattern.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

#: a Chinese mobile number: 1[3-9] and nine digits, with an optional +86 / 0086 / 86 in front
_CHINESE_MOBILE = re.compile(r"^(?:\+?86|0086)?1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-().]")
#: what a phone number may be written with at all (digits, +, separators, an extension)
_WRITTEN = re.compile(r"^[0-9+()\-. ]+(?:(?:ext\.?|x|转|#)\s*\d{1,6})?$", re.IGNORECASE)

NOT_A_NUMBER = "not a phone number"
NOT_VALID = "not a valid mobile or landline number (landlines need their area code)"


#: Chinese numbers in the common shapes whose parse is plain (see :func:`_plain_chinese`), written
#: with spaces and hyphens only: a mobile (not 1[12]…, not 179…, whose leading digits
#: ``phonenumbers`` may read as a carrier code), with an optional +86 / 0086 / 86; or a landline
#: with its trunk 0 (the area code 1–3 digits, not starting 0), optionally after +86 / 0086, or
#: after +86 / 0086 without the trunk 0 when the area code does not start with 1
_PLAIN_CHINESE = re.compile(
    r"^(?:(?:\+86|0086|86)?(?P<mobile>1(?:[3-68-9]\d|7[0-8])\d{8})"
    r"|(?:\+86|0086)?0(?P<trunk>[1-9]\d{8,10})"
    r"|(?:\+86|0086)(?P<national>[2-9]\d{8,10}))$"
)
_SPACES_AND_HYPHENS = re.compile(r"[ \-]")


def _plain_chinese(text: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(text, "CN")`` gives for a number of :data:`_PLAIN_CHINESE`'s shapes
    (country code 86, the national number without country code and trunk 0, nothing else set),
    without its general parser; ``None`` for any other text. ``tests/core/test_phones.py`` compares
    the two on generated numbers of these shapes and around them."""
    match = _PLAIN_CHINESE.match(_SPACES_AND_HYPHENS.sub("", text))
    if match is None:
        return None
    digits = match.group("mobile") or match.group("trunk") or match.group("national")
    return phonenumbers.PhoneNumber(country_code=86, national_number=int(digits))


@lru_cache(maxsize=65536)
def parsed(text: str, region: str = "CN") -> phonenumbers.PhoneNumber | None:
    """``phonenumbers.parse(text, region)``, or ``None`` when it cannot be read; remembered, so that
    the check of a number and its key (``quality.names.mobile_key``) parse it once. Callers must not
    change the returned object. Chinese numbers in the common shapes are read without the general
    parser (:func:`_plain_chinese`, the same result)."""
    if region == "CN" and text and (plain := _plain_chinese(text)) is not None:
        return plain
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> tuple[frozenset[int], re.Pattern[str]] | None:
    """A numbering-plan description as (possible lengths, compiled pattern); ``None`` when it can
    match nothing (absent, or without a pattern), as ``phonenumbers`` treats it."""
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _chinese_plan() -> tuple[tuple[frozenset[int], re.Pattern[str]], list[tuple[frozenset[int], re.Pattern[str]]]]:
    """China's general description and its number types in the order ``is_valid_number`` tries them
    (``phonenumberutil._number_type_helper``): any type matching makes a number valid."""
    plan = phonenumbers.PhoneMetadata.metadata_for_region("CN")
    general = _desc(plan.general_desc) if plan is not None else None
    if plan is None or general is None or tuple(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[86]) != ("CN",):
        raise RuntimeError("phonenumbers' metadata no longer has country code 86 as China alone")
    kinds = ["premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail"]
    kinds.append("fixed_line")
    if not plan.same_mobile_and_fixed_line_pattern:
        kinds.append("mobile")
    return general, [d for kind in kinds if (d := _desc(getattr(plan, kind))) is not None]


_CN_GENERAL, _CN_TYPES = _chinese_plan()


def is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number(number)``; for Chinese numbers (country code 86, no leading
    zero kept) by China's numbering-plan patterns directly, without the library's lookups around
    them — the same patterns in the same way (``tests/core/test_phones.py`` compares the two)."""
    if number.country_code != 86 or number.italian_leading_zero:
        return bool(phonenumbers.is_valid_number(number))
    national = str(number.national_number)
    size = len(national)
    lengths, pattern = _CN_GENERAL
    if (lengths and size not in lengths) or pattern.fullmatch(national) is None:
        return False
    return any(
        (not lengths or size in lengths) and pattern.fullmatch(national) is not None for lengths, pattern in _CN_TYPES
    )


@lru_cache(maxsize=65536)
def phone_problem(value: str) -> str | None:
    """Why ``value`` is not a usable phone number, or ``None`` (one of :data:`NOT_A_NUMBER`,
    :data:`NOT_VALID`, or ``"empty"``)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return "empty"
    compact = _SEPARATORS.sub("", text)
    if _CHINESE_MOBILE.match(compact):
        return None
    if not _WRITTEN.match(text):
        return NOT_A_NUMBER
    number = parsed(text, "CN")
    if number is None:
        return NOT_A_NUMBER
    if not is_valid(number):
        return NOT_VALID
    return None


def checked_phone(value: str) -> str:
    """``value`` if it is a usable phone number; a ``ValueError`` naming why not (for schemas)."""
    problem = phone_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value
