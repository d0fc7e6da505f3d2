"""Toneless pinyin of Chinese text, exactly as ``pypinyin.lazy_pinyin(text, style=Style.NORMAL)``
gives it, without pypinyin's per-call segmentation for most company names.

``pypinyin`` splits a text into runs of Chinese and other characters, segments each Chinese run
into the words of its phrase dictionary (forward maximum matching), converts each word — a phrase
by its own reading, any other character by the first reading of its character table — and
styles each syllable. The result therefore depends only on the characters, *unless* a phrase of
the dictionary reads differently from its characters' first readings (银行 háng, 重庆 chóng …).

:func:`toneless` uses that:

* each character's syllables are taken once from pypinyin's own converter (a per-character table,
  :func:`_character`);
* a run of Chinese characters is read character by character when every phrase of the
  dictionary that occurs anywhere in it (at any position, any length, found through the
  segmenter's own prefix set) reads the same as its characters — so no segmentation can change
  the result; each phrase is checked once (:func:`_reads_as_characters`);
* any other run (a phrase that reads differently, a character without a reading) goes through
  pypinyin's segmentation and converter, each segmented word remembered (:class:`_MemoConverter`).

``tests/core/test_pinyin.py`` compares the result with ``lazy_pinyin`` on generated text and on all
demo names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain
from typing import Any

from pypinyin import Style
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT, RE_HANS
from pypinyin.converter import UltimateConverter
from pypinyin.core import Pinyin
from pypinyin.seg.mmseg import p_set
from pypinyin.utils import _remove_dup_and_empty

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


_CONVERTER = _MemoConverter()
_PINYIN = Pinyin(_CONVERTER)
#: a character's syllables outside a phrase (``None``: no reading in pypinyin's table)
_CHARACTERS: dict[str, tuple[str, ...] | None] = {}
#: whether a phrase of the dictionary reads as its characters do outside it
_PHRASES: dict[str, bool] = {}
#: syllables of the runs of characters seen (see :func:`_run`)
_RUN_MEMO: dict[str, tuple[str, ...]] = {}
#: pypinyin's split of a text into runs of characters with a reading (``RE_HANS``) and of others,
#: as ``simpleseg.simple_seg`` makes it character by character
_HAN_CLASS = RE_HANS.pattern.removeprefix("^(?:").removesuffix(")+$")
_HANS = re.compile(f"{_HAN_CLASS}+")
_RUNS = re.compile(f"{_HAN_CLASS}+|[^{_HAN_CLASS[1:-1]}]+")
#: every prefix of every phrase (the set of pypinyin's segmenter)
_PREFIXES: frozenset[str] | set[str] = p_set._set


def _character(han: str) -> tuple[str, ...] | None:
    """The syllables pypinyin gives ``han`` outside a phrase (its first reading, styled), computed
    as ``DefaultConverter.convert`` does for a word that is not in the phrase table; ``None`` when
    pypinyin has no reading for it."""
    if han in _CHARACTERS:
        return _CHARACTERS[han]
    result: tuple[str, ...] | None = None
    if ord(han) in PINYIN_DICT:
        style, strict = Style.NORMAL, True
        readings = _CONVERTER._single_pinyin(han, style, False, "default", strict)
        post = _CONVERTER.post_pinyin(han, False, readings)
        if post is not None:
            readings = post
        styled = _CONVERTER.convert_styles(readings, han, style, False, "default", strict)
        result = tuple(chain.from_iterable(_remove_dup_and_empty(styled)))
    _CHARACTERS[han] = result
    return result


def _reads_as_characters(phrase: str) -> bool:
    """Whether pypinyin reads ``phrase`` (a key of its phrase table) as its characters one by one."""
    found = _PHRASES.get(phrase)
    if found is None:
        by_character: list[str] = []
        for han in phrase:
            syllables = _character(han)
            if syllables is None:
                found = False
                break
            by_character.extend(syllables)
        else:
            as_phrase = chain.from_iterable(_CONVERTER.convert(phrase, Style.NORMAL, False, "default", True))
            found = list(as_phrase) == by_character
        _PHRASES[phrase] = found
    return found


def _by_characters(run: str) -> list[str] | None:
    """The syllables of ``run`` (Chinese characters only) read character by character, or ``None``
    when a phrase in it (or a character without a reading) could make pypinyin read it otherwise."""
    syllables: list[str] = []
    characters = _CHARACTERS
    for han in run:
        found = characters[han] if han in characters else _character(han)
        if found is None:
            return None
        syllables.extend(found)
    prefixes, phrases = _PREFIXES, PHRASES_DICT
    length = len(run)
    for start in range(length):
        for end in range(start + 1, length + 1):
            word = run[start:end]
            if word not in prefixes:  # no phrase starts with it: none longer from ``start`` either
                break
            if word in phrases and not _reads_as_characters(word):
                return None
    return syllables


def _run(run: str) -> tuple[str, ...]:
    """The syllables of one run of :data:`_RUNS` (as ``lazy_pinyin`` gives them for it alone)."""
    if not _HANS.match(run):
        return (run,)  # no reading: kept as written (``errors="default"``), one item per run
    found = _RUN_MEMO.get(run)
    if found is None:
        fast = _by_characters(run)
        found = tuple(_PINYIN.lazy_pinyin(run, style=Style.NORMAL) if fast is None else fast)
        if len(_RUN_MEMO) < MEMO_SIZE:
            _RUN_MEMO[run] = found
    return found


def toneless(text: str) -> list[str]:
    """The syllables of ``text`` without tones (other characters kept as pypinyin keeps them)."""
    result: list[str] = []
    for run in _RUNS.findall(text):
        result.extend(_run(run))
    return result
