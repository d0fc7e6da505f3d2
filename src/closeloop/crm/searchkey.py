"""The search key of a record: its name in characters, in toneless pinyin and as initials.

``北京协和医院`` → ``北京协和医院 beijingxieheyiyuan bjxhyy``; ``Acme Corp.`` → ``acmecorp ac``. A query
reduced by :func:`query_key` is a substring of the key when it is part of the name written in
characters, in pinyin, or in initials. Records that are searched mix in :class:`Searchable`: every
ORM insert or update recomputes the key from the fields named in ``__search_fields__``; writes that
bypass the ORM call ``crm.search.refresh_keys`` afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, ClassVar

from sqlalchemy import String, event
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from closeloop.core.pinyin import toneless

KEY_LENGTH = 1000
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_HAN}]")
#: runs of Chinese characters, or words of any other letters and digits
_TOKENS = re.compile(f"[{_HAN}]+|[^\\W_{_HAN}]+")


def _normalized(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=65536)
def query_key(text: str) -> str:
    """``text`` as it is looked for in a key: NFKC, case-folded, letters and digits only."""
    return "".join(_TOKENS.findall(_normalized(text)))


@lru_cache(maxsize=65536)
def key_parts(text: str) -> tuple[str, str, str]:
    """(characters, full pinyin, initials) of one text."""
    tokens = _TOKENS.findall(_normalized(text))
    full: list[str] = []
    initials: list[str] = []
    for token in tokens:
        if _CJK.match(token):
            for syllable in toneless(token):
                reduced = query_key(syllable)
                full.append(reduced)
                initials.append(reduced[:1])
        else:
            full.append(token)
            initials.append(token[0])
    return "".join(tokens), "".join(full), "".join(initials)


def search_key(*texts: str | None) -> str | None:
    """The key of a record whose searched fields hold ``texts`` (``None`` when all are empty)."""
    seen: list[str] = []
    for text in texts:
        if not text:
            continue
        for part in key_parts(text):
            if part and part not in seen:
                seen.append(part)
    return " ".join(seen)[:KEY_LENGTH] if seen else None


class Searchable:
    """A record found by the search box; ``__search_fields__`` are the fields its key is made of."""

    __search_fields__: ClassVar[tuple[str, ...]] = ("name",)

    search_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH), nullable=True)


def _keep_key(_mapper: Mapper[Any], _connection: Any, target: Any) -> None:
    target.search_key = search_key(*(getattr(target, name, None) for name in target.__search_fields__))


event.listen(Searchable, "before_insert", _keep_key, propagate=True)
event.listen(Searchable, "before_update", _keep_key, propagate=True)
