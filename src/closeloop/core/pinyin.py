"""Toneless pinyin of Chinese text, as ``pypinyin.lazy_pinyin(text, style=Style.NORMAL)`` gives it,
with each segmented word converted once per process.

``pypinyin`` segments a text into words and converts each word through its phrase and character
tables and several passes of style rules; the conversion is most of the cost and depends only on
the word. Company names repeat their words (科技, 有限公司, 医院 …), so an import of 20,000 names
converts a few thousand distinct words instead of 60,000. The result is the same list of syllables
(``tests/core/test_pinyin.py`` compares the two on generated text).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pypinyin import Style
from pypinyin.converter import UltimateConverter
from pypinyin.core import Pinyin

#: words kept (a word is a few characters; the tables stop growing at this many)
MEMO_SIZE = 200_000


class _MemoConverter(UltimateConverter):
    """``lazy_pinyin``'s own converter, remembering each word's result."""

    def __init__(self) -> None:
        super().__init__(v_to_u=False, neutral_tone_with_five=False, tone_sandhi=False)
        self._memo: dict[tuple[Any, ...], tuple[tuple[str, ...], ...]] = {}

    def convert(
        self,
        words: str,
        style: Style,
        heteronym: bool,
        errors: Callable[[str], str] | str,
        strict: bool = True,
        **kwargs: Any,
    ) -> list[list[str]]:
        if kwargs or callable(errors):
            return super().convert(words, style, heteronym, errors, strict, **kwargs)
        key = (words, style, heteronym, errors, strict)
        found = self._memo.get(key)
        if found is None:
            found = tuple(tuple(item) for item in super().convert(words, style, heteronym, errors, strict))
            if len(self._memo) < MEMO_SIZE:
                self._memo[key] = found
        return [list(item) for item in found]


_PINYIN = Pinyin(_MemoConverter())


def toneless(text: str) -> list[str]:
    """The syllables of ``text`` without tones (other characters kept as pypinyin keeps them)."""
    result: list[str] = _PINYIN.lazy_pinyin(text, style=Style.NORMAL)
    return result
