"""The compliance checker's per-text logic: from one Hyperscan scan's ids to a short text's findings.

:class:`PlainPath` holds one language's tables (resolved once by the :class:`~.matcher.Checker`)
and does, for a text the prefilter scanned, what the automaton path does: the rules whose trigger
words fired, the sector from the distinct cues, the term automaton when a term can be there, ``re``
for the claim patterns the scan reported, then the filters (the rule's sectors, the near-miss
phrases, a negation before the phrase, the lead time of a delivery promise) and the merge of
overlapping candidates into :class:`~.finding.Finding` objects. The helpers both paths share
(trimming, word cuts, negation, lead times, the merge) live here too.

This module is compiled by mypyc when the package is installed (``setup.py``; about 9 µs of Python
per hit-dense text, the part of the checker a faster scan cannot shrink). The source stays the
fallback: without a compiler, or with ``CLOSELOOP_PURE_PYTHON=1`` at install, Python imports this
file as it is, and the findings are the same either way (tests/assistant). So the code here keeps
to what mypyc compiles well: precise types, no dynamic attributes, plain loops, and imports of
nothing but ``re`` and :mod:`.finding` (the build type-checks what this module imports).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from closeloop.assistant.compliance.finding import Finding

#: a candidate finding: start, end, level, category, citation, rewrite, explanation, rule
Candidate = tuple[int, int, int, str, str, str, str, str]
#: what a rule says in one sector: level, category, citation, rewrite, explanation, rule
Meta = tuple[int, str, str, str, str, str]
#: a claim pattern's owner: rule index, the pattern, whether it has a ``span`` group, the rule's sectors
Owner = tuple[int, re.Pattern[str], bool, tuple[str, ...] | None]

#: Hyperscan ids beside the claim patterns' (0, 1, …): near-miss phrases, negation cues, any term,
#: an English word in a Chinese text, one id per near-miss phrase (+ its place in common.yaml's
#: list), a rule's trigger words (+ rule index) and one sector cue each (+ cue number)
SAFE: Final = 1_000_000
NEGATION: Final = 1_000_001
TERMS: Final = 1_000_002
ENGLISH_WORD: Final = 1_000_003
SAFE_EACH: Final = 1_500_000
TRIGGERED: Final = 2_000_000
CUE: Final = 3_000_000

_NUMERALS: Final[dict[str, int]] = {
    "零": 0, "一": 1, "两": 2, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
}  # fmt: skip
_EN_NUMBERS: Final[dict[str, int]] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "twelve": 12, "a": 1, "an": 1,
}  # fmt: skip
_NUM: Final = r"(\d+|[一二两三四五六七八九十]+|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
_UNIT_DAYS: Final[dict[str, int]] = {
    "天": 1, "日": 1, "工作日": 1, "个工作日": 1, "周": 7, "星期": 7, "个星期": 7, "个月": 30, "月": 30,
}  # fmt: skip
_EN_UNIT_DAYS: Final[dict[str, int]] = {
    "day": 1, "days": 1, "business days": 1, "working days": 1, "week": 7, "weeks": 7, "month": 30, "months": 30,
}  # fmt: skip
_LEAD_ZH: Final = re.compile(
    r"(?:交期|周期|排期|工期|报关|一般|正常|通常|标准|需要|要)[^，。；！？]{0,10}?" + _NUM
    + r"(?:\s*(?:到|至|-|~)\s*" + _NUM + r")?\s*(个工作日|工作日|天|周|个星期|星期|个月)"
)  # fmt: skip
_LEAD_EN: Final = re.compile(
    r"(?:lead time|takes|normally|usually|typically|standard)[^.;!?]{0,25}?\b" + _NUM
    + r"(?:\s*(?:to|-)\s*" + _NUM + r")?\s*(business days|working days|days|day|weeks|week|months|month)\b",
    re.IGNORECASE,
)  # fmt: skip
#: the words of a promise and the days they name, Chinese first (the first that matches decides)
_PROMISES: Final[tuple[tuple[re.Pattern[str], int], ...]] = (
    (re.compile(r"今天|今晚|当天|马上|立刻"), 0),
    (re.compile(r"明天|明早|明晚"), 1),
    (re.compile(r"大后天"), 3),
    (re.compile(r"后天"), 2),
    (re.compile(r"下周|下星期|下礼拜"), 7),
    (re.compile(r"本周|这周|周[一二三四五六日天]"), 5),
    (re.compile(r"下个?月"), 30),
    (re.compile(r"\b(?:today|tonight|this (?:afternoon|morning|evening))\b", re.I), 0),
    (re.compile(r"\btomorrow\b", re.I), 1),
    (re.compile(r"\b(?:by|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|\bthis week\b", re.I), 5),
    (re.compile(r"\bnext week\b", re.I), 7),
    (re.compile(r"\bnext month\b", re.I), 30),
)
_COUNTED: Final = re.compile(_NUM + r"\s*(天|周|个月|days?|weeks?|months?)", re.IGNORECASE)
_DATED: Final = re.compile(r"\d+\s*[号日]")
#: what ends a clause (a negation counts only in the phrase's own clause)
_CLAUSE_ENDS: Final = frozenset("，。；！？,;!?.\n")
#: a bare 不/没/无/非/别 right before a Chinese phrase negates it
_BARE_NEGATIONS: Final = frozenset("不没无非别")
#: what a span loses at its start (besides white space) and at its end
_TRIM_START: Final = frozenset("，。；！？,;:、")
_TRIM_END: Final = frozenset("，。；！？,;:、.")
_CJK: Final = re.compile(r"[\u4e00-\u9fff]")


class PlainPath:
    """One language's tables for the plain path; :meth:`check` gives a scanned text's findings."""

    def __init__(
        self,
        *,
        chinese: bool,
        always: tuple[int, ...],
        cue_sectors: dict[int, tuple[str, ...]],
        unfiltered: set[int],
        safe_unfiltered: list[int],
        term_automaton: Any,
        sector_order: list[str],
        owners: dict[int, Owner],
        meta: list[dict[str, Meta | None]],
        flags: list[tuple[bool, bool]],
        negation: re.Pattern[str],
        negation_always: bool,
        near_misses: Callable[[list[int]], re.Pattern[str]],
        priority: dict[str, int],
    ) -> None:
        self.chinese = chinese
        self.always = always
        self.cue_sectors = cue_sectors
        self.unfiltered = unfiltered
        self.safe_unfiltered = safe_unfiltered
        self.term_automaton = term_automaton
        self.sector_order = sector_order
        self.owners = owners
        self.meta = meta
        self.flags = flags
        self.negation = negation
        self.negation_always = negation_always
        self.near_misses = near_misses
        self.priority = priority

    def check(self, text: str, found: tuple[int, ...], sector: str | None, lead_time_days: int | None) -> list[Finding]:
        """The findings of a short text the prefilter scanned; ``found`` are the ids that matched.

        The same steps as the automaton path, with Hyperscan's answers: the rules whose trigger words
        are in the text, the sector from the distinct cues found, the term automaton only when a term
        can be there, each fired rule's patterns only where they can match, and the near-miss and
        negation searches only when the scan saw one.
        """
        unfiltered = self.unfiltered
        # one pass over the ids: claim patterns that can match, fired rules, cue counts per sector
        candidates: list[int] = []
        fired: set[int] = set(self.always)
        counts: dict[str, int] = {}
        near_misses: list[int] = []
        cue_sectors = self.cue_sectors
        for ident in found:
            if ident < SAFE:
                candidates.append(ident)
            elif ident >= CUE:
                for cue_sector in cue_sectors[ident]:
                    counts[cue_sector] = counts.get(cue_sector, 0) + 1
            elif ident >= TRIGGERED:
                fired.add(ident - TRIGGERED)
            elif ident >= SAFE_EACH:
                near_misses.append(ident - SAFE_EACH)
        if unfiltered:
            for number in self.safe_unfiltered:
                if number not in near_misses:
                    near_misses.append(number)
            union = set(candidates)
            for ident in unfiltered:
                if ident < SAFE:
                    union.add(ident)
            candidates = list(union)
        spans: list[tuple[int, int, int]] = []
        if TERMS in found or TERMS in unfiltered:
            lowered = lowered_text(text)
            for end_index, payload in self.term_automaton.iter(lowered):
                length: int = payload[0]
                term_rules: tuple[int, ...] = payload[1]
                start: int = end_index - length + 1
                end: int = end_index + 1
                if not (lowered[start].isascii() and word_cut(lowered, start, end)):
                    for index in term_rules:
                        spans.append((start, end, index))
        if not spans and not fired:
            return []
        text_sector = sector if sector is not None else self._most_cued(counts)
        # pattern ids run in rule order, then in each rule's pattern order (the automaton path's
        # order); their spans, trimmed, follow the term hits
        if candidates:
            owners = self.owners
            candidates.sort()
            for ident in candidates:
                index, pattern, spanned, allowed = owners[ident]
                if index not in fired or (allowed is not None and text_sector not in allowed):
                    continue
                for match in pattern.finditer(text):
                    start, end = match.span("span") if spanned else match.span()
                    if end > start and (
                        text[start] in _TRIM_START
                        or text[end - 1] in _TRIM_END
                        or text[start].isspace()
                        or text[end - 1].isspace()
                    ):
                        start, end = trim(text, start, end)
                    if end > start:
                        spans.append((start, end, index))
        if not spans:
            return []
        # the filters in order: the rule's sectors, the near-miss phrases (the alternation of those
        # the scan saw: a phrase that matches nowhere never wins at any position), a negation, the
        # lead time; the near-miss spans are found only once a candidate needs them
        safe = self.near_misses(near_misses) if near_misses else None
        safe_spans: list[tuple[int, int]] | None = None
        negation = NEGATION in found or self.negation_always
        meta = self.meta
        flags = self.flags
        kept: list[Candidate] = []
        for start, end, index in spans:
            said = meta[index][text_sector]
            if said is None:
                continue
            if safe is not None:
                if safe_spans is None:
                    safe_spans = [near_miss.span() for near_miss in safe.finditer(text)]
                if covered(safe_spans, start, end):
                    continue
            negatable, delivery = flags[index]
            if negation and negatable and negated(text, start, self.chinese, self.negation):
                continue
            if not delivery:
                level, category, citation, rewrite, explanation, rule = said
                kept.append((start, end, level, category, citation, rewrite, explanation, rule))
            else:
                overpromised = overpromise(text, start, end, said, lead_time_days)
                if overpromised is not None:
                    kept.append(overpromised)
        return merge(text, kept, self.priority)

    def sector_of(self, found: tuple[int, ...]) -> str:
        """The sector of a text the prefilter scanned, from the cues it found (``Checker.sector_of``)."""
        counts: dict[str, int] = {}
        cue_sectors = self.cue_sectors
        for ident in found:
            if ident >= CUE:
                for cue_sector in cue_sectors[ident]:
                    counts[cue_sector] = counts.get(cue_sector, 0) + 1
        return self._most_cued(counts)

    def _most_cued(self, counts: dict[str, int]) -> str:
        """The sector with most distinct cues (ties: common.yaml's order); ``general`` without any."""
        if not counts:
            return "general"
        if len(counts) == 1:
            return next(iter(counts))
        best = max(counts.values())
        for name in self.sector_order:
            if counts.get(name, 0) == best:
                return name
        return "general"


def check_batch(
    paths: dict[str, PlainPath],
    scanners: dict[str, tuple[Callable[[str], tuple[int, ...]], re.Pattern[str]]],
    texts: Sequence[str],
    langs: Sequence[str | None],
    leads: Sequence[int | None],
    sector: str | None,
    results: list[list[Finding]],
    longest: int,
    english: list[tuple[int, str]],
) -> list[int]:
    """The batch loop of ``Checker.check_many``: scans each short text (``scanners``: per language,
    the prefilter's scan and the plain-text pattern) and puts its findings
    in ``results``; gives the positions it left to the caller (texts over ``longest`` characters and
    texts the prefilter does not scan). Empty texts have no findings. The positions of scanned
    Chinese texts in which the scan saw an English word (:data:`ENGLISH_WORD`) go to ``english``
    with their sector (the given one, else the text's): only those can hold English runs to check
    (``matcher.mixed``)."""
    rest: list[int] = []
    for position in range(len(texts)):
        text = texts[position]
        if not text:
            continue
        if len(text) > longest:
            rest.append(position)
            continue
        lang = langs[position]
        if not lang:
            lang = "zh" if _CJK.search(text) else "en"
        scanner = scanners.get(lang)
        if scanner is None:
            rest.append(position)
            continue
        scan, plain = scanner
        if plain.fullmatch(text) is None:
            rest.append(position)
            continue
        found = scan(text)
        path = paths[lang]
        if ENGLISH_WORD in found:
            english.append((position, sector if sector is not None else path.sector_of(found)))
        results[position] = path.check(text, found, sector, leads[position])
    return rest


def covered(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether one of ``spans`` holds ``start``–``end`` whole."""
    return any(low <= start and end <= high for low, high in spans)


def collect(ident: int, start: int, end: int, flags: int, found: set[int]) -> None:
    """Hyperscan's match callback: the id of an expression that matched."""
    found.add(ident)


def lowered_text(text: str) -> str:
    """The text lower-cased character by character, so positions stay those of ``text``."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join([char.lower() if len(char.lower()) == 1 else char for char in text])
    return lowered


def word_cut(text: str, start: int, end: int) -> bool:
    """Whether an ASCII term match cuts a word (``best`` inside ``bestseller``)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return (text[start].isalnum() and before.isascii() and before.isalnum()) or (
        text[end - 1].isalnum() and after.isascii() and after.isalnum()
    )


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without white space and clause punctuation at its ends."""
    while start < end and (text[start].isspace() or text[start] in _TRIM_START):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _TRIM_END):
        end -= 1
    return start, end


def negated(text: str, start: int, chinese: bool, negation: re.Pattern[str]) -> bool:
    """Whether a negation cue stands before ``start`` in the same clause (a few characters back)."""
    low = start - (12 if chinese else 30)
    window = text[max(0, low) : start]
    position = len(window)
    while position > 0 and window[position - 1] not in _CLAUSE_ENDS:
        position -= 1
    prefix = window[position:]  # after the window's last clause end (all of it when there is none)
    if chinese and prefix and prefix[-1] in _BARE_NEGATIONS:
        return True
    return negation.search(prefix) is not None


def number(text: str) -> int | None:
    """``七`` → 7, ``十二`` → 12, ``six`` → 6, ``14`` → 14; ``None`` for what is not a number."""
    if text.isdigit():
        return int(text)
    english = _EN_NUMBERS.get(text.lower())
    if english is not None:
        return english
    for char in text:
        if char not in _NUMERALS:
            return None
    if text.startswith("十"):
        return 10 + (_NUMERALS[text[1]] if len(text) > 1 else 0)
    if len(text) == 3 and text[1] == "十":
        return _NUMERALS[text[0]] * 10 + _NUMERALS[text[2]]
    if len(text) == 2 and text[1] == "十":
        return _NUMERALS[text[0]] * 10
    return _NUMERALS[text[0]] if len(text) == 1 else None


def lead_time_in_text(text: str) -> int | None:
    """The shortest lead time the message states (``正常七到十天`` → 7, "six weeks" → 42), in days."""
    found: list[int] = []
    for match in _LEAD_ZH.finditer(text):
        low = number(match.group(1))
        if low is not None:
            found.append(low * _UNIT_DAYS[match.group(3)])
    for match in _LEAD_EN.finditer(text):
        low = number(match.group(1))
        if low is not None:
            found.append(low * _EN_UNIT_DAYS[match.group(3).lower()])
    return min(found) if found else None


def promised_days(span: str) -> int | None:
    """How many days from now a promise names (``明天`` → 1, "by Monday" → 5, ``三天出样`` → 3)."""
    for pattern, days in _PROMISES:
        if pattern.search(span):
            return days
    counted = _COUNTED.search(span)
    if counted:
        amount = number(counted.group(1))
        unit = counted.group(2).lower()
        if amount is not None:
            return amount * (_UNIT_DAYS.get(unit) or _EN_UNIT_DAYS.get(unit, 1))
    if _DATED.search(span):
        return 14
    return None


def overpromise(text: str, start: int, end: int, said: Meta, lead_time_days: int | None) -> Candidate | None:
    """A delivery promise's candidate when it promises sooner than the lead time (the given one, else
    one stated in the text), with both named in its explanation; ``None`` when it does not."""
    promised = promised_days(text[start:end])
    lead = lead_time_days if lead_time_days is not None else lead_time_in_text(text)
    if promised is None or (lead is not None and promised >= lead):
        return None
    level, category, citation, rewrite, explanation, name = said
    if lead is not None:
        explanation = f"{explanation} (lead time {lead} d, promised {promised} d)"
    return (start, end, level, category, citation, rewrite, explanation, name)


def finding(
    start: int, end: int, span: str, level: int, category: str, citation: str, rewrite: str, explanation: str, rule: str
) -> Finding:
    """``Finding(start, end, …)`` built without the frozen ``__init__``'s nine ``object.__setattr__``
    calls (half the cost of a finding on the dev texts): the same fields in the same ``__dict__``, so
    equality, hashing, ``repr`` and ``as_dict`` are a constructed one's (tests/assistant)."""
    built: Finding = object.__new__(Finding)
    object.__setattr__(
        built,
        "__dict__",
        {
            "start": start,
            "end": end,
            "span": span,
            "level": level,
            "category": category,
            "citation": citation,
            "rewrite": rewrite,
            "explanation": explanation,
            "rule": rule,
        },
    )
    return built


def _found(text: str, candidate: Candidate) -> Finding:
    start, end, level, category, citation, rewrite, explanation, rule = candidate
    return finding(start, end, text[start:end], level, category, citation, rewrite, explanation, rule)


def merge(text: str, candidates: list[Candidate], priority: dict[str, int]) -> list[Finding]:
    """Collapse overlapping candidates into one finding each (the category first in ``priority`` wins)."""
    if len(candidates) <= 1:  # the common case: nothing to sort or collapse
        return [_found(text, candidate) for candidate in candidates]
    if len(candidates) == 2:  # the next most common (a term inside a claim): the same steps, unrolled
        first, second = candidates[0], candidates[1]
        if second[0] < first[0] or (second[0] == first[0] and second[1] > first[1]):
            first, second = second, first
        if second[0] < first[1]:
            return [_collapse(text, [first, second], priority)]
        return [_found(text, first), _found(text, second)]
    candidates.sort(key=_position)
    merged: list[Finding] = []
    group: list[Candidate] = []
    group_end = -1
    for candidate in candidates:
        if group and candidate[0] < group_end:
            group.append(candidate)
            if candidate[1] > group_end:
                group_end = candidate[1]
        else:
            if group:
                merged.append(_collapse(text, group, priority))
            group = [candidate]
            group_end = candidate[1]
    merged.append(_collapse(text, group, priority))
    return merged


def _position(candidate: Candidate) -> tuple[int, int]:
    return candidate[0], -candidate[1]


def _rank(candidate: Candidate, priority: dict[str, int]) -> tuple[int, int, int]:
    return (priority.get(candidate[3], len(priority)), -candidate[2], -(candidate[1] - candidate[0]))


def _collapse(text: str, group: list[Candidate], priority: dict[str, int]) -> Finding:
    """One finding for overlapping candidates: the winner's (the first of the lowest rank), over the
    span of its category's."""
    winner = group[0]
    if len(group) == 1:
        return _found(text, winner)
    best = _rank(winner, priority)
    for candidate in group:
        rank = _rank(candidate, priority)
        if rank < best:
            winner, best = candidate, rank
    start, end = winner[0], winner[1]
    category = winner[3]
    for candidate in group:
        if candidate[3] == category:
            if candidate[0] < start:
                start = candidate[0]
            if candidate[1] > end:
                end = candidate[1]
    _, _, level, _, citation, rewrite, explanation, rule = winner
    return finding(start, end, text[start:end], level, category, citation, rewrite, explanation, rule)
