"""Company names reduced to what identifies the company, and to how it sounds.

``name_key``: Unicode NFKC (full-width letters, digits and brackets become half-width), traditional
characters folded to simplified (OpenCC's ``t2s`` table, so 華為技術 and 华为技术 meet), case folded,
legal form suffixes removed (有限公司, 股份有限公司, 有限责任公司, 集团, 公司; Co., Ltd., Inc., LLC, Corp,
Corporation, Company, Limited, Group, Holdings, GmbH, PLC), punctuation and spaces removed.
``sound_key``: the same name in toneless pinyin (pypinyin), so that 北京协和医院 and 北京协合医院,
華為 and 华为, or 华为 and "Huawei" meet. Pinyin cannot meet a translation: 华为技术 ("huaweijishu")
and "Huawei Technologies" stay apart, as do different names that sound alike only in part.
``mobile_key``: a phone number as E.164 (``+8613800138000``) read by ``phonenumbers`` with China
as the default region, so "138 0013 8000", "+86-138-0013-8000" and "(0086) 13800138000" meet.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc
import phonenumbers

from closeloop.core import phones
from closeloop.core.pinyin import toneless

#: legal-form suffixes written in Chinese, longest first (stripped repeatedly from the end)
CHINESE_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "分公司", "集团", "公司")
#: legal-form words written in Latin letters (stripped repeatedly as whole trailing words)
LATIN_SUFFIXES = frozenset(
    {
        "co",
        "company",
        "corp",
        "corporation",
        "inc",
        "incorporated",
        "llc",
        "ltd",
        "limited",
        "group",
        "holdings",
        "gmbh",
        "plc",
    }
)
_WORDS = re.compile(r"\w+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_TO_SIMPLIFIED = opencc.OpenCC("t2s")


def simplified(text: str) -> str:
    """``text`` with traditional Chinese characters replaced by simplified ones (OpenCC ``t2s``)."""
    return _TO_SIMPLIFIED.convert(text) if _CJK.search(text) else text


@lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """What identifies a company in its name (see the module's description); ``""`` for no name."""
    words = _WORDS.findall(simplified(unicodedata.normalize("NFKC", name)).casefold().replace("_", " "))
    changed = True
    while changed:  # trailing legal-form words, Latin or Chinese, in any order ("Acme Co有限公司")
        changed = False
        if len(words) > 1 and words[-1] in LATIN_SUFFIXES:
            words.pop()
            changed = True
            continue
        for suffix in CHINESE_SUFFIXES:
            if words and words[-1].endswith(suffix) and words[-1] != suffix:
                words[-1] = words[-1][: -len(suffix)]
                changed = True
                break
            if len(words) > 1 and words[-1] == suffix:
                words.pop()
                changed = True
                break
    joined = "".join(words)
    stripped = joined
    changed = True
    while changed:  # a suffix written with spaces inside ("有限 公司")
        changed = False
        for suffix in CHINESE_SUFFIXES:
            if stripped.endswith(suffix) and len(stripped) > len(suffix):
                stripped = stripped[: -len(suffix)]
                changed = True
                break
    return stripped or joined


@lru_cache(maxsize=65536)
def sound_key(key: str) -> str:
    """``key`` (a :func:`name_key`) in toneless pinyin; keys without Chinese characters are their own."""
    if not _CJK.search(key):
        return key
    return "".join(toneless(key)).replace(" ", "")


@lru_cache(maxsize=65536)
def mobile_key(number: str, region: str = "CN") -> str:
    """``number`` in E.164 when ``phonenumbers`` reads it as a possible number (``region`` for numbers
    written without a country code); ``""`` otherwise."""
    text = unicodedata.normalize("NFKC", number or "").strip()
    if not text:
        return ""
    if text.startswith("00"):
        text = "+" + text[2:]
    parsed = phones.parsed(text, region)
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        return ""
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
