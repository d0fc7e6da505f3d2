"""Tokens for the full-text index: jieba's search-mode segmentation (Chinese words and their
shorter parts), lower-cased Latin words and numbers; punctuation and whitespace dropped."""

from __future__ import annotations

import logging
import re
from functools import cache

import jieba

_WORD = re.compile(r"\w+")
#: words too common to tell passages apart (a query of only these still searches them)
_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "或",
        "及",
        "等",
        "对",
        "由",
        "其",
        "之",
        "为",
        "以",
        "于",
        "把",
        "被",
        "将",
        "就",
        "都",
        "而",
        "也",
        "并",
        "或者",
        "以及",
        "the",
        "a",
        "an",
        "of",
        "to",
        "in",
        "and",
        "or",
        "for",
        "is",
        "are",
        "be",
        "on",
        "by",
    ]
)


@cache
def _tokenizer() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def tokens(text: str) -> list[str]:
    """The index tokens of ``text``, in order (repeats kept, so term frequency counts)."""
    found: list[str] = []
    for piece in _tokenizer().cut_for_search(text):
        for word in _WORD.findall(piece.lower()):
            found.append(word)
    return found


def query_tokens(text: str) -> list[str]:
    """Distinct tokens of a query, without the stop words unless nothing else is left."""
    distinct = list(dict.fromkeys(tokens(text)))
    kept = [token for token in distinct if token not in _STOP]
    return kept or distinct


def words(text: str) -> list[str]:
    """``text`` cut into words (jieba's accurate mode), keeping every character — spaces and
    punctuation included — so that joining the words gives ``text`` back (for word-level diffs)."""
    return list(_tokenizer().cut(text, HMM=True))
