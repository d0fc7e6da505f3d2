"""The compliance matcher: Aho-Corasick over the packs' terms plus the packs' claim patterns.

One automaton per language finds every term in one pass over the text (pyahocorasick, a C
extension); the patterns catch the claims no word list can (rates, guarantees, endorsements,
delivery promises). Candidates then pass three filters — the rule's sectors, the near-miss
phrases (``safe``) and a negation right before the phrase in the same clause — and overlapping
candidates collapse into one finding whose category follows :data:`CATEGORY_PRIORITY`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import ahocorasick

from closeloop.assistant.compliance.packs import CATEGORY_PRIORITY, Lang, Rule, RuleLibrary, Sector, shipped_library

_CLAUSE_END = re.compile(r"[，。；！？,;!?.\n]")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_PRIORITY = {category: rank for rank, category in enumerate(CATEGORY_PRIORITY)}
_NUMERALS = {
    "零": 0,
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_EN_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "twelve": 12, "a": 1, "an": 1,
}  # fmt: skip
_NUM = r"(\d+|[一二两三四五六七八九十]+|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"
_UNIT_DAYS = {"天": 1, "日": 1, "工作日": 1, "个工作日": 1, "周": 7, "星期": 7, "个星期": 7, "个月": 30, "月": 30}
_EN_UNIT_DAYS = {
    "day": 1,
    "days": 1,
    "business days": 1,
    "working days": 1,
    "week": 7,
    "weeks": 7,
    "month": 30,
    "months": 30,
}
_LEAD_ZH = re.compile(
    r"(?:交期|周期|排期|工期|报关|一般|正常|通常|标准|需要|要)[^，。；！？]{0,10}?" + _NUM
    + r"(?:\s*(?:到|至|-|~)\s*" + _NUM + r")?\s*(个工作日|工作日|天|周|个星期|星期|个月)"
)  # fmt: skip
_LEAD_EN = re.compile(
    r"(?:lead time|takes|normally|usually|typically|standard)[^.;!?]{0,25}?\b" + _NUM
    + r"(?:\s*(?:to|-)\s*" + _NUM + r")?\s*(business days|working days|days|day|weeks|week|months|month)\b",
    re.IGNORECASE,
)  # fmt: skip
_PROMISE_ZH: tuple[tuple[re.Pattern[str], int | None], ...] = (
    (re.compile(r"今天|今晚|当天|马上|立刻"), 0),
    (re.compile(r"明天|明早|明晚"), 1),
    (re.compile(r"大后天"), 3),
    (re.compile(r"后天"), 2),
    (re.compile(r"下周|下星期|下礼拜"), 7),
    (re.compile(r"本周|这周|周[一二三四五六日天]"), 5),
    (re.compile(r"下个?月"), 30),
)
_PROMISE_EN: tuple[tuple[re.Pattern[str], int | None], ...] = (
    (re.compile(r"\b(?:today|tonight|this (?:afternoon|morning|evening))\b", re.I), 0),
    (re.compile(r"\btomorrow\b", re.I), 1),
    (re.compile(r"\b(?:by|on) (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|\bthis week\b", re.I), 5),
    (re.compile(r"\bnext week\b", re.I), 7),
    (re.compile(r"\bnext month\b", re.I), 30),
)


@dataclass(frozen=True)
class Finding:
    """One risky phrase: where it is, how serious, why, and what to say instead."""

    start: int
    end: int
    span: str
    level: int
    category: str
    citation: str
    rewrite: str
    explanation: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    pack: str
    patterns: tuple[re.Pattern[str], ...]


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text.lower() in _EN_NUMBERS:
        return _EN_NUMBERS[text.lower()]
    if all(char in _NUMERALS for char in text):
        if text.startswith("十"):
            return 10 + (_NUMERALS[text[1]] if len(text) > 1 else 0)
        if len(text) == 3 and text[1] == "十":
            return _NUMERALS[text[0]] * 10 + _NUMERALS[text[2]]
        if len(text) == 2 and text[1] == "十":
            return _NUMERALS[text[0]] * 10
        return _NUMERALS[text[0]] if len(text) == 1 else None
    return None


def lead_time_in_text(text: str) -> int | None:
    """The shortest lead time the message states (``正常七到十天`` → 7, "six weeks" → 42), in days."""
    found: list[int] = []
    for match in _LEAD_ZH.finditer(text):
        low = _number(match.group(1))
        if low is not None:
            found.append(low * _UNIT_DAYS[match.group(3)])
    for match in _LEAD_EN.finditer(text):
        low = _number(match.group(1))
        if low is not None:
            found.append(low * _EN_UNIT_DAYS[match.group(3).lower()])
    return min(found) if found else None


def promised_days(span: str) -> int | None:
    """How many days from now a promise names (``明天`` → 1, "by Monday" → 5, ``三天出样`` → 3)."""
    for pattern, days in (*_PROMISE_ZH, *_PROMISE_EN):
        if pattern.search(span):
            return days
    counted = re.search(_NUM + r"\s*(天|周|个月|days?|weeks?|months?)", span, re.IGNORECASE)
    if counted:
        amount = _number(counted.group(1))
        unit = counted.group(2).lower()
        if amount is not None:
            return amount * (_UNIT_DAYS.get(unit) or _EN_UNIT_DAYS.get(unit, 1))
    if re.search(r"\d+\s*[号日]", span):
        return 14
    return None


class Checker:
    """Checks texts against a :class:`RuleLibrary`; build once, use from any thread."""

    def __init__(self, library: RuleLibrary) -> None:
        self.library = library
        self._rules: dict[Lang, list[_Compiled]] = {"zh": [], "en": []}
        self._automata: dict[Lang, Any] = {}
        self._always: dict[Lang, tuple[int, ...]] = {}
        # one automaton per language finds terms, pattern triggers and sector cues in one pass;
        # a key's payload is (length, term rules, triggered rules, sectors)
        keys: dict[Lang, dict[str, tuple[list[int], list[int], list[str]]]] = {"zh": {}, "en": {}}
        for pack in library.packs:
            flags = re.IGNORECASE if pack.lang == "en" else 0
            for rule in pack.rules:
                compiled = _Compiled(rule, pack.pack, tuple(re.compile(p, flags) for p in rule.patterns))
                index = len(self._rules[pack.lang])
                self._rules[pack.lang].append(compiled)
                for term in rule.terms:
                    keys[pack.lang].setdefault(term.lower(), ([], [], []))[0].append(index)
                for trigger in rule.triggers:
                    keys[pack.lang].setdefault(trigger.lower(), ([], [], []))[1].append(index)
        self._sector_order: list[Sector] = list(library.common.sectors)
        for lang in ("zh", "en"):
            for sector, cues in library.common.sectors.items():
                for cue in cues:
                    keys[lang].setdefault(cue.lower(), ([], [], []))[2].append(sector)
            self._always[lang] = tuple(
                index
                for index, compiled in enumerate(self._rules[lang])
                if compiled.patterns and not compiled.rule.triggers
            )
            automaton = ahocorasick.Automaton()
            for key, (term_rules, trigger_rules, sectors) in keys[lang].items():
                automaton.add_word(key, (len(key), tuple(term_rules), tuple(trigger_rules), tuple(sectors)))
            automaton.make_automaton()
            self._automata[lang] = automaton
        common = library.common
        self._safe = {lang: re.compile("|".join(f"(?:{p})" for p in ps), re.I) for lang, ps in common.safe.items()}
        self._negation = {lang: re.compile(pattern, re.I) for lang, pattern in common.negation.items()}

    def sector_of(self, text: str, lang: Lang | None = None) -> Sector:
        """The sector the message is about: the one with most distinct cue words (ties: common.yaml order)."""
        lang = lang or ("zh" if _CJK.search(text) else "en")
        return self._scan(text.lower(), lang)[2]

    def _scan(self, lowered: str, lang: Lang) -> tuple[list[tuple[int, int, int]], dict[int, list[int]], Sector]:
        """One Aho-Corasick pass: term hits (start, end, rule), where each rule was triggered, the sector."""
        hits: list[tuple[int, int, int]] = []
        triggered: dict[int, list[int]] = {index: [-1] for index in self._always[lang]}
        cues: dict[str, set[str]] = {}
        for end_index, (length, term_rules, trigger_rules, sectors) in self._automata[lang].iter(lowered):
            start, end = end_index - length + 1, end_index + 1
            whole_word = not (lowered[start].isascii() and _word_cut(lowered, start, end))
            if term_rules and whole_word:
                hits.extend((start, end, index) for index in term_rules)
            for index in trigger_rules:
                triggered.setdefault(index, []).append(start)
            if sectors and not (lowered[start].isascii() and start > 0 and lowered[start - 1].isalnum()):
                for cue_sector in sectors:
                    cues.setdefault(cue_sector, set()).add(lowered[start:end])
        sector: Sector = "general"
        if cues:
            best = max(len(found) for found in cues.values())
            sector = next(name for name in self._sector_order if len(cues.get(name, ())) == best)
        return hits, triggered, sector

    def check(
        self,
        text: str,
        *,
        lang: Lang | None = None,
        sector: Sector | None = None,
        lead_time_days: int | None = None,
    ) -> list[Finding]:
        """Every finding in ``text``, sorted by position. ``lead_time_days`` is the product's lead time."""
        if not text:
            return []
        lang = lang or ("zh" if _CJK.search(text) else "en")
        lowered = text.lower()
        if len(lowered) != len(text):
            lowered = "".join(char.lower() if len(char.lower()) == 1 else char for char in text)
        hits, triggered, detected = self._scan(lowered, lang)
        sector = sector or detected
        safe = _SafeSpans(self._safe[lang], text)
        candidates: list[Finding] = []
        rules = self._rules[lang]
        for start, end, index in hits:
            finding = self._candidate(rules[index], text, start, end, lang, sector, safe, lead_time_days)
            if finding is not None:
                candidates.append(finding)
        sentences = _sentences(text) if len(text) > _LONG else [(0, len(text))]
        for index in sorted(triggered):
            compiled = rules[index]
            if compiled.rule.sectors is not None and sector not in compiled.rule.sectors:
                continue
            # a claim sits in one sentence: run the patterns only where the rule's trigger words are
            positions = triggered[index]
            windows = (
                sentences if positions[0] < 0 else [w for w in sentences if any(w[0] <= p < w[1] for p in positions)]
            )
            for low, high in windows:
                for pattern in compiled.patterns:
                    for match in pattern.finditer(text, low, high):
                        start, end = match.span("span") if "span" in pattern.groupindex else match.span()
                        start, end = _trim(text, start, end)
                        if end > start:
                            finding = self._candidate(compiled, text, start, end, lang, sector, safe, lead_time_days)
                            if finding is not None:
                                candidates.append(finding)
        return _merge(text, candidates)

    def _candidate(
        self,
        compiled: _Compiled,
        text: str,
        start: int,
        end: int,
        lang: Lang,
        sector: Sector,
        safe: _SafeSpans,
        lead_time_days: int | None,
    ) -> Finding | None:
        rule = compiled.rule
        if rule.sectors is not None and sector not in rule.sectors:
            return None
        if safe.covers(start, end):
            return None
        if rule.negatable and self._negated(text, start, lang):
            return None
        explanation = rule.explanation
        if rule.delivery:
            promised = promised_days(text[start:end])
            lead = lead_time_days if lead_time_days is not None else lead_time_in_text(text)
            if promised is None or (lead is not None and promised >= lead):
                return None
            if lead is not None:
                explanation = f"{explanation} (lead time {lead} d, promised {promised} d)"
        override = rule.by_sector.get(sector)
        category = (override.category if override and override.category else None) or rule.category
        level = (override.level if override and override.level else None) or rule.level
        key = (override.citation if override and override.citation else None) or rule.citation
        citation = self.library.citation(key)
        return Finding(
            start=start,
            end=end,
            span=text[start:end],
            level=level,
            category=category,
            citation=citation.label if citation else "",
            rewrite=rule.rewrite,
            explanation=explanation,
            rule=f"{compiled.pack}/{rule.id}",
        )

    def _negated(self, text: str, start: int, lang: Lang) -> bool:
        window = text[max(0, start - (12 if lang == "zh" else 30)) : start]
        cut = max((match.end() for match in _CLAUSE_END.finditer(window)), default=0)
        prefix = window[cut:]
        if lang == "zh" and prefix[-1:] in {"不", "没", "无", "非", "别"}:
            return True
        return bool(self._negation[lang].search(prefix))


class _SafeSpans:
    """The near-miss phrases of one text, found only once a candidate needs them."""

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._pattern, self._text = pattern, text
        self._spans: list[tuple[int, int]] | None = None

    def covers(self, start: int, end: int) -> bool:
        if self._spans is None:
            self._spans = [match.span() for match in self._pattern.finditer(self._text)]
        return any(low <= start and end <= high for low, high in self._spans)


_LONG = 400
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?\n]+|$)")


def _sentences(text: str) -> list[tuple[int, int]]:
    """Sentence windows of a long text (a claim never spans a sentence end)."""
    return [match.span() for match in _SENTENCE.finditer(text)] or [(0, len(text))]


def _word_cut(text: str, start: int, end: int) -> bool:
    """Whether an ASCII term match cuts a word (``best`` inside ``bestseller``)."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return (text[start].isalnum() and before.isascii() and before.isalnum()) or (
        text[end - 1].isalnum() and after.isascii() and after.isalnum()
    )


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start].isspace() or text[start] in "，。；！？,;:、"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "，。；！？,;:、."):
        end -= 1
    return start, end


def _rank(finding: Finding) -> tuple[int, int, int]:
    return (_PRIORITY.get(finding.category, len(_PRIORITY)), -finding.level, -(finding.end - finding.start))


def _merge(text: str, candidates: list[Finding]) -> list[Finding]:
    """Collapse overlapping candidates into one finding each (the priority category wins)."""
    candidates.sort(key=lambda finding: (finding.start, -finding.end))
    groups: list[list[Finding]] = []
    group_end = -1
    for finding in candidates:
        if groups and finding.start < group_end:
            groups[-1].append(finding)
            group_end = max(group_end, finding.end)
        else:
            groups.append([finding])
            group_end = finding.end
    merged: list[Finding] = []
    for group in groups:
        winner = min(group, key=_rank)
        start = min(f.start for f in group if f.category == winner.category)
        end = max(f.end for f in group if f.category == winner.category)
        merged.append(
            Finding(start, end, text[start:end], winner.level, winner.category, winner.citation, winner.rewrite,
                    winner.explanation, winner.rule)
        )  # fmt: skip
    return merged


@cache
def default_checker() -> Checker:
    """A checker over the shipped packs, built once per process."""
    return Checker(shipped_library())
