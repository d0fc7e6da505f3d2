"""Company names reduced to what identifies the company, and to how it sounds.

``name_key``: Unicode NFKC (full-width letters and digits become half-width), case folded, legal
form suffixes removed (有限公司, 股份有限公司, 有限责任公司, 集团, 公司; Co., Ltd., Inc., LLC, Corp,
Corporation, Company, Limited, Group, Holdings, GmbH, PLC), punctuation and spaces removed.
``sound_key``: the same name in toneless pinyin (pypinyin), so that 北京协和医院 and 北京协合医院,
華為 and 华为, or 华为 and "Huawei" meet. Pinyin cannot meet a translation: 华为技术 ("huaweijishu")
and "Huawei Technologies" stay apart, as do different names that sound alike only in part.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

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


@lru_cache(maxsize=65536)
def name_key(name: str) -> str:
    """What identifies a company in its name (see the module's description); ``""`` for no name."""
    words = _WORDS.findall(unicodedata.normalize("NFKC", name).casefold().replace("_", " "))
    while len(words) > 1 and words[-1] in LATIN_SUFFIXES:
        words.pop()
    joined = "".join(words)
    stripped = joined
    changed = True
    while changed:
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
    return "".join(lazy_pinyin(key, style=Style.NORMAL)).replace(" ", "")
