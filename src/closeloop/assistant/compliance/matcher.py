"""The compliance matcher: Aho-Corasick over the packs' terms plus the packs' claim patterns.

One automaton per language finds every term in one pass over the text (pyahocorasick, a C
extension); the patterns catch the claims no word list can (rates, guarantees, endorsements,
delivery promises). Candidates then pass three filters — the rule's sectors, the near-miss
phrases (``safe``) and a negation right before the phrase in the same clause — and overlapping
candidates collapse into one finding whose category follows :data:`CATEGORY_PRIORITY`.

A short plain text first passes one Hyperscan scan (:mod:`.prefilter`), which says which patterns,
trigger words, cues, near-misses, negations and terms can be in it, and takes the plain path
(:meth:`Checker._check_plain`): the same findings, with ``re`` run only where it can find
something. Other texts take the automaton path described above.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from re import _constants, _parser
from typing import Any, TypeVar

import ahocorasick

from closeloop.assistant.compliance.packs import CATEGORY_PRIORITY, Lang, Rule, RuleLibrary, Sector, shipped_library
from closeloop.assistant.compliance.prefilter import Expression, Prefilter, alnum_class, available, without_boundaries

_V = TypeVar("_V")
#: everything up to the last clause end (greedy, then back to it)
_LAST_CLAUSE_END = re.compile(r".*[，。；！？,;!?.\n]", re.DOTALL)
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


_new_object = object.__new__
_set_attribute = object.__setattr__


def _finding(
    start: int, end: int, span: str, level: int, category: str, citation: str, rewrite: str, explanation: str, rule: str
) -> Finding:
    """``Finding(start, end, …)`` built without the frozen ``__init__``'s nine ``object.__setattr__``
    calls (half the cost of a finding on the dev texts): the same fields in the same ``__dict__``, so
    equality, hashing, ``repr`` and ``as_dict`` are a constructed one's (tests/assistant)."""
    finding: Finding = _new_object(Finding)
    _set_attribute(
        finding,
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
    return finding


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


_LANGS: tuple[Lang, ...] = ("zh", "en")
_SECTORS: tuple[Sector, ...] = ("finance", "cosmetics", "health_food", "drug", "medical", "general")
#: a candidate finding: start, end, level, category, citation, rewrite, explanation, rule
_Candidate = tuple[int, int, int, str, str, str, str, str]
#: what a rule says in one sector: level, category, citation, rewrite, explanation, rule
_Meta = tuple[int, str, str, str, str, str]
#: Hyperscan ids beside the claim patterns' (0, 1, …): near-miss phrases, negation cues, any term,
#: a rule's trigger words (+ rule index) and one sector cue each (+ cue number)
_SAFE, _NEGATION, _TERMS, _TRIGGERED, _CUE = 1_000_000, 1_000_001, 1_000_002, 2_000_000, 3_000_000
#: one id per near-miss phrase (+ its place in common.yaml's list), between _TERMS and _TRIGGERED
_SAFE_EACH = 1_500_000


class Checker:
    """Checks texts against a :class:`RuleLibrary`; build once, use from any thread.

    ``prefilter=False`` leaves Hyperscan out: every triggered pattern runs with ``re`` on every
    text that triggered it (the findings are the same; see :mod:`.prefilter`).
    """

    def __init__(self, library: RuleLibrary, *, prefilter: bool = True) -> None:
        self.library = library
        self._rules: dict[Lang, list[_Compiled]] = {"zh": [], "en": []}
        self._automata: dict[Lang, Any] = {}
        self._always: dict[Lang, tuple[int, ...]] = {}
        # one automaton per language finds terms, pattern triggers and sector cues in one pass;
        # a key's payload is (length, term rules, triggered rules, sectors)
        keys: dict[Lang, dict[str, tuple[list[int], list[int], list[Sector]]]] = {"zh": {}, "en": {}}
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
        if any(_KEY_SEPARATOR in key for lang_keys in keys.values() for key in lang_keys):
            raise ValueError(f"a term or cue contains the separator {_KEY_SEPARATOR!r}")
        self._joinable: dict[Lang, list[tuple[bool, ...]]] = {
            lang: [tuple(_joinable(pattern) for pattern in compiled.patterns) for compiled in self._rules[lang]]
            for lang in ("zh", "en")
        }
        common = library.common
        self._safe = {lang: re.compile("|".join(f"(?:{p})" for p in ps), re.I) for lang, ps in common.safe.items()}
        self._negation = {lang: re.compile(pattern, re.I) for lang, pattern in common.negation.items()}
        # what each rule says in each sector, resolved once (category, level, citation, texts)
        self._meta: dict[Lang, list[dict[Sector, _Meta | None]]] = {
            lang: [{sector: self._resolve(compiled, sector) for sector in _SECTORS} for compiled in self._rules[lang]]
            for lang in ("zh", "en")
        }
        # the plain path (see :mod:`.prefilter`): one Hyperscan scan per text says which claim patterns,
        # trigger words, sector cues, near-miss phrases, negation cues and terms can be in it
        self._pattern_ids: dict[Lang, list[tuple[int, ...]]] = {"zh": [], "en": []}
        self._cue_sectors: dict[Lang, dict[int, tuple[Sector, ...]]] = {"zh": {}, "en": {}}
        self._term_automata: dict[Lang, Any] = {}
        self._negation_filtered: dict[Lang, bool] = {}
        expressions: dict[str, list[Expression]] = {"zh": [], "en": []}
        for lang in _LANGS:
            wanted = expressions[lang]
            for index, compiled in enumerate(self._rules[lang]):
                ids = tuple(range(len(wanted), len(wanted) + len(compiled.patterns)))
                wanted.extend(
                    Expression(pattern.pattern, ident, bool(pattern.flags & re.I), exact=False)
                    for ident, pattern in zip(ids, compiled.patterns, strict=True)
                )
                self._pattern_ids[lang].append(ids)
                if compiled.rule.triggers:
                    words = "|".join(re.escape(word.lower()) for word in compiled.rule.triggers)
                    wanted.append(Expression(words, _TRIGGERED + index, caseless=True, exact=True))
            wanted.extend(
                Expression(p, _SAFE_EACH + number, caseless=True, exact=False)
                for number, p in enumerate(common.safe.get(lang, ()))
            )
            relaxed = without_boundaries(self._negation[lang].pattern, self._negation[lang].flags)
            self._negation_filtered[lang] = relaxed is not None
            if relaxed is not None:
                wanted.append(Expression(relaxed, _NEGATION, caseless=True, exact=False))
                if lang == "zh":  # a bare 不/没/无/非/别 right before a phrase negates it too (_negated)
                    wanted.append(Expression("[不没无非别]", _NEGATION, caseless=False, exact=False))
            terms = [key for key, (term_rules, _, _) in keys[lang].items() if term_rules]
            if terms:
                wanted.append(Expression("|".join(re.escape(key) for key in terms), _TERMS, caseless=True, exact=False))
            # a cue starting with an ASCII character counts only after a non-alphanumeric one (_scan)
            before = f"(?:^|[^{alnum_class(lang)[1:-1]}])"
            for key, (_, _, sectors) in keys[lang].items():
                if sectors:
                    ident = _CUE + len(self._cue_sectors[lang])
                    self._cue_sectors[lang][ident] = tuple(sectors)
                    source = (before if key[0].isascii() else "") + re.escape(key)
                    wanted.append(Expression(source, ident, caseless=True, exact=True))
            automaton = ahocorasick.Automaton()
            for key, (term_rules, _, _) in keys[lang].items():
                if term_rules:
                    automaton.add_word(key, (len(key), tuple(term_rules)))
            automaton.make_automaton()
            self._term_automata[lang] = automaton
        self._prefilter = Prefilter(expressions) if prefilter and available() else None
        #: per language, what the plain path needs beside the above, looked up once per text
        self._unfiltered: dict[Lang, set[int]] = {
            lang: self._prefilter.unfiltered[lang] if self._prefilter is not None else set() for lang in _LANGS
        }
        self._safe_unfiltered: dict[Lang, list[int]] = {
            lang: sorted(ident - _SAFE_EACH for ident in self._unfiltered[lang] if _SAFE_EACH <= ident < _TRIGGERED)
            for lang in _LANGS
        }
        self._safe_subsets: dict[tuple[Lang, tuple[int, ...]], re.Pattern[str]] = {}
        self._negation_always: dict[Lang, bool] = {
            lang: _NEGATION in self._unfiltered[lang] or not self._negation_filtered[lang] for lang in _LANGS
        }
        self._rule_flags: dict[Lang, list[tuple[bool, bool]]] = {
            lang: [(compiled.rule.negatable, compiled.rule.delivery) for compiled in self._rules[lang]]
            for lang in _LANGS
        }
        #: each pattern id's rule index, pattern, whether it has a ``span`` group, and the rule's sectors
        self._pattern_owner: dict[Lang, dict[int, tuple[int, re.Pattern[str], bool, list[Sector] | None]]] = {
            lang: {
                ident: (index, pattern, "span" in pattern.groupindex, compiled.rule.sectors)
                for index, compiled in enumerate(self._rules[lang])
                for ident, pattern in zip(self._pattern_ids[lang][index], compiled.patterns, strict=True)
            }
            for lang in _LANGS
        }

    def _resolve(self, compiled: _Compiled, sector: Sector) -> _Meta | None:
        """What the rule says in ``sector`` (``None``: it does not apply there)."""
        rule = compiled.rule
        if rule.sectors is not None and sector not in rule.sectors:
            return None
        override = rule.by_sector.get(sector)
        category = (override.category if override and override.category else None) or rule.category
        level = (override.level if override and override.level else None) or rule.level
        key = (override.citation if override and override.citation else None) or rule.citation
        citation = self.library.citation(key)
        label = citation.label if citation else ""
        rewrite = (override.rewrite if override and override.rewrite else None) or rule.rewrite
        explanation = (override.explanation if override and override.explanation else None) or rule.explanation
        return level, category, label, rewrite, explanation, f"{compiled.pack}/{rule.id}"

    def sector_of(self, text: str, lang: Lang | None = None) -> Sector:
        """The sector the message is about: the one with most distinct cue words (ties: common.yaml order)."""
        lang = lang or _lang_of(text)
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
        return hits, triggered, self._sector_from(cues)

    def _sector_from(self, cues: dict[str, set[str]] | None) -> Sector:
        """The sector with most distinct cue words (ties: common.yaml order); ``general`` without any."""
        if not cues:
            return "general"
        best = max(len(found) for found in cues.values())
        return next(name for name in self._sector_order if len(cues.get(name, ())) == best)

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
        lang = lang or _lang_of(text)
        if len(text) <= _LONG:
            found = self._prefilter.scan(lang, text) if self._prefilter is not None else None
            if found is not None:
                return self._check_plain(lang, text, found, sector, lead_time_days)
            return self._check_group(lang, [text], sector, [lead_time_days])[0]
        hits, triggered, detected = self._scan(_lowered(text), lang)
        sector = sector or detected
        rules = self._rules[lang]
        matches: list[tuple[int, int, int]] = []
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
                        matches.append((index, *_span_of(pattern, match)))
        return self._assemble(text, lang, sector, hits, matches, lead_time_days)

    def check_many(
        self,
        texts: Sequence[str],
        *,
        lang: Lang | Sequence[Lang | None] | None = None,
        sector: Sector | None = None,
        lead_time_days: int | Sequence[int | None] | None = None,
    ) -> list[list[Finding]]:
        """The findings of each of ``texts``, in order — exactly what :meth:`check` gives for each.

        Built for many short texts (a scan over logged activities, a JSONL file): the texts of one
        language are joined and pass the automaton once, and each triggered rule's patterns run once
        over the joined texts that triggered it; only texts with hits pay for the candidates. A
        pattern with look-arounds or anchors (which could see past a text's end) and any text longer
        than a sentence window (:data:`_LONG`) take the per-text path. ``lang`` and
        ``lead_time_days`` may be one value for all texts or one per text.
        """
        langs = _langs(lang, len(texts))
        leads = _leads(lead_time_days, len(texts))
        results: list[list[Finding]] = [[] for _ in texts]
        groups: dict[Lang, list[int]] = {"zh": [], "en": []}
        scan = self._prefilter.scanner() if self._prefilter is not None else None
        check_plain = self._check_plain
        for position, text in enumerate(texts):
            if not text:
                continue
            if len(text) > _LONG:
                results[position] = self.check(
                    text, lang=langs[position], sector=sector, lead_time_days=leads[position]
                )
                continue
            text_lang = langs[position] or _lang_of(text)
            scanned = scan(text_lang, text) if scan is not None else None
            if scanned is not None:
                results[position] = check_plain(text_lang, text, scanned, sector, leads[position])
            else:
                groups[text_lang].append(position)
        for group_lang, members in groups.items():
            if members:
                found = self._check_group(group_lang, [texts[p] for p in members], sector, [leads[p] for p in members])
                for position, findings in zip(members, found, strict=True):
                    results[position] = findings
        return results

    def _check_plain(
        self, lang: Lang, text: str, found: set[int], sector: Sector | None, lead_time_days: int | None
    ) -> list[Finding]:
        """:meth:`check` for a short text the prefilter scanned: ``found`` are the ids that matched.

        The same steps as the automaton path and :meth:`_assemble`, with Hyperscan's answers: the
        rules whose trigger words are in the text, the sector from the distinct cues found, the term
        automaton only when a term can be there, each triggered rule's patterns only where they can
        match, and the near-miss and negation searches only when the scan saw one. (One function, with
        each table looked up once: on short texts the calls and lookups are most of the cost.)
        """
        unfiltered = self._unfiltered[lang]
        # one pass over the ids: claim patterns that can match, fired rules, cue counts per sector
        candidates: list[int] = []
        fired: set[int] = set(self._always[lang])
        counts: dict[Sector, int] = {}
        near_misses: list[int] = []
        cue_sectors = self._cue_sectors[lang]
        for ident in found:
            if ident < _SAFE:
                candidates.append(ident)
            elif ident >= _CUE:
                for cue_sector in cue_sectors[ident]:
                    counts[cue_sector] = counts.get(cue_sector, 0) + 1
            elif ident >= _TRIGGERED:
                fired.add(ident - _TRIGGERED)
            elif ident >= _SAFE_EACH:
                near_misses.append(ident - _SAFE_EACH)
        if unfiltered:
            near_misses.extend(number for number in self._safe_unfiltered[lang] if number not in near_misses)
            candidates = list(set(candidates).union(ident for ident in unfiltered if ident < _SAFE))
        spans: list[tuple[int, int, int]] = []
        if _TERMS in found or _TERMS in unfiltered:
            lowered = _lowered(text)
            for end_index, (length, term_rules) in self._term_automata[lang].iter(lowered):
                start, end = end_index - length + 1, end_index + 1
                if not (lowered[start].isascii() and _word_cut(lowered, start, end)):
                    for index in term_rules:
                        spans.append((start, end, index))
        if not spans and not fired:
            return []
        text_sector: Sector
        if sector is not None:
            text_sector = sector
        elif not counts:
            text_sector = "general"
        elif len(counts) == 1:
            (text_sector,) = counts
        else:
            best = max(counts.values())
            text_sector = next(name for name in self._sector_order if counts.get(name, 0) == best)
        # pattern ids run in rule order, then in each rule's pattern order (the automaton path's
        # order); their spans, trimmed, follow the term hits
        if candidates:
            owners = self._pattern_owner[lang]
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
                        start, end = _trim(text, start, end)
                    if end > start:
                        spans.append((start, end, index))
        if not spans:
            return []
        # the filters in order (as in _assemble): the rule's sectors, the near-miss phrases, a
        # negation, the lead time
        # the near-miss phrases the scan saw, as one alternation in common.yaml's order: a phrase that
        # cannot match anywhere in the text never wins at any position, so its spans are the same
        safe = _SafeSpans(self._near_misses(lang, near_misses), text) if near_misses else None
        negation = _NEGATION in found or self._negation_always[lang]
        meta = self._meta[lang]
        flags = self._rule_flags[lang]
        kept: list[_Candidate] = []
        for start, end, index in spans:
            said = meta[index][text_sector]
            if said is None or (safe is not None and safe.covers(start, end)):
                continue
            negatable, delivery = flags[index]
            if negation and negatable and self._negated(text, start, lang):
                continue
            if not delivery:
                kept.append((start, end, *said))
            elif (overpromised := _overpromise(text, start, end, said, lead_time_days)) is not None:
                kept.append(overpromised)
        return _merge(text, kept)

    def _check_group(
        self, lang: Lang, texts: list[str], sector: Sector | None, leads: list[int | None]
    ) -> list[list[Finding]]:
        """:meth:`check_many` for short texts of one language."""
        count = len(texts)
        lowered = [_lowered(text) for text in texts]
        # the separator is a character no key contains and no word character: a key cannot match
        # across it, and the word-boundary tests see it as they see a text's ends
        joined = _KEY_SEPARATOR.join(lowered)
        starts = _starts(lowered, len(_KEY_SEPARATOR))
        hits: list[list[tuple[int, int, int]]] = [[] for _ in range(count)]
        triggered: list[dict[int, list[int]]] = [{index: [-1] for index in self._always[lang]} for _ in range(count)]
        cues: list[dict[str, set[str]] | None] = [None] * count
        member = 0
        for end_index, (length, term_rules, trigger_rules, sectors) in self._automata[lang].iter(joined):
            start, end = end_index - length + 1, end_index + 1
            while member + 1 < count and starts[member + 1] <= end_index:  # ends only grow
                member += 1
            offset = starts[member]
            if term_rules and not (joined[start].isascii() and _word_cut(joined, start, end)):
                hits[member].extend((start - offset, end - offset, index) for index in term_rules)
            for index in trigger_rules:
                triggered[member].setdefault(index, []).append(start - offset)
            if sectors and not (joined[start].isascii() and start > 0 and joined[start - 1].isalnum()):
                found = cues[member]
                if found is None:
                    found = cues[member] = {}
                for cue_sector in sectors:
                    found.setdefault(cue_sector, set()).add(joined[start:end])
        sectors_of = [sector or self._sector_from(found) for found in cues]
        rules = self._rules[lang]
        matches: list[list[tuple[int, int, int]]] = [[] for _ in range(count)]
        for index in sorted({index for fired in triggered for index in fired}):
            compiled = rules[index]
            allowed = compiled.rule.sectors
            chosen = [
                m for m in range(count) if index in triggered[m] and (allowed is None or sectors_of[m] in allowed)
            ]
            if not chosen:
                continue
            for pattern, joinable in zip(compiled.patterns, self._joinable[lang][index], strict=True):
                if joinable and len(chosen) > 1:
                    self._run_joined(pattern, index, [texts[m] for m in chosen], chosen, matches)
                else:
                    for m in chosen:
                        matches[m].extend((index, *_span_of(pattern, match)) for match in pattern.finditer(texts[m]))
        return [
            self._assemble(texts[m], lang, sectors_of[m], hits[m], matches[m], leads[m])
            if hits[m] or matches[m]
            else []
            for m in range(count)
        ]

    @staticmethod
    def _run_joined(
        pattern: re.Pattern[str],
        index: int,
        texts: list[str],
        members: list[int],
        matches: list[list[tuple[int, int, int]]],
    ) -> None:
        """One pattern over the joined ``texts``; a match that runs across a separator sends the
        texts it touched back to one run each, so every text gets exactly its own matches."""
        joined = _PATTERN_SEPARATOR.join(texts)
        starts = _starts(texts, len(_PATTERN_SEPARATOR))
        found: list[list[tuple[int, int, int]]] = [[] for _ in texts]
        redo: set[int] = set()
        for match in pattern.finditer(joined):
            low, high = match.span()
            first = bisect_right(starts, low) - 1
            last = bisect_right(starts, high - 1) - 1 if high > low else first
            if last != first or high > starts[first] + len(texts[first]):
                redo.update(range(first, max(last, first + 1) + 1))
                continue
            start, end = _span_of(pattern, match)
            offset = starts[first]
            found[first].append((index, start - offset, end - offset) if start >= 0 else (index, start, end))
        for position in redo:
            if position < len(texts):
                found[position] = [(index, *_span_of(pattern, match)) for match in pattern.finditer(texts[position])]
        for position, member in enumerate(members):
            matches[member].extend(found[position])

    def _assemble(
        self,
        text: str,
        lang: Lang,
        sector: Sector,
        hits: list[tuple[int, int, int]],
        matches: list[tuple[int, int, int]],
        lead_time_days: int | None,
    ) -> list[Finding]:
        """The findings of one text from its term hits and pattern matches (rule, start, end), in order
        (the automaton path; :meth:`_check_plain` does the same with the prefilter's answers)."""
        safe: _SafeSpans | None = _SafeSpans(self._safe[lang], text)
        negation = True
        spans = hits
        for index, raw_start, raw_end in matches:
            start, end = _trim(text, raw_start, raw_end)
            if end > start:
                spans.append((start, end, index))
        candidates: list[_Candidate] = []
        rules = self._rules[lang]
        meta = self._meta[lang]
        # the filters in order: the rule's sectors, the near-miss phrases, a negation, the lead time
        for start, end, index in spans:
            said = meta[index][sector]
            if said is None or (safe is not None and safe.covers(start, end)):
                continue
            rule = rules[index].rule
            if negation and rule.negatable and self._negated(text, start, lang):
                continue
            if not rule.delivery:
                candidates.append((start, end, *said))
            elif (overpromised := _overpromise(text, start, end, said, lead_time_days)) is not None:
                candidates.append(overpromised)
        return _merge(text, candidates)

    def _near_misses(self, lang: Lang, numbers: list[int]) -> re.Pattern[str]:
        """The alternation of these near-miss phrases (their numbers in common.yaml's list), compiled once
        per set of phrases (a bounded table of patterns, like ``re``'s own cache; nothing per text)."""
        key = tuple(sorted(numbers)) if len(numbers) > 1 else tuple(numbers)
        pattern = self._safe_subsets.get((lang, key))
        if pattern is None:
            phrases = self.library.common.safe[lang]
            pattern = re.compile("|".join(f"(?:{phrases[number]})" for number in key), re.I)
            if len(self._safe_subsets) >= 4096:
                self._safe_subsets.clear()
            self._safe_subsets[(lang, key)] = pattern
        return pattern

    def _negated(self, text: str, start: int, lang: Lang) -> bool:
        window = text[max(0, start - (12 if lang == "zh" else 30)) : start]
        clause = _LAST_CLAUSE_END.match(window)  # the prefix after the window's last clause end
        prefix = window[clause.end() :] if clause else window
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
#: joins lowered texts for the automaton pass (no key contains it; not a word character)
_KEY_SEPARATOR = "\x00"
#: joins texts for a pattern pass (``.`` does not cross it; a match that does is redone per text)
_PATTERN_SEPARATOR = "\n"


def _lang_of(text: str) -> Lang:
    return "zh" if _CJK.search(text) else "en"


def _lowered(text: str) -> str:
    """The text lower-cased character by character, so positions stay those of ``text``."""
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(char.lower() if len(char.lower()) == 1 else char for char in text)
    return lowered


def _starts(texts: Sequence[str], separator: int) -> list[int]:
    """Where each text starts in the texts joined by a separator ``separator`` characters long."""
    starts: list[int] = []
    position = 0
    for text in texts:
        starts.append(position)
        position += len(text) + separator
    return starts


def _span_of(pattern: re.Pattern[str], match: re.Match[str]) -> tuple[int, int]:
    return match.span("span") if "span" in pattern.groupindex else match.span()


def _langs(value: Lang | Sequence[Lang | None] | None, count: int) -> list[Lang | None]:
    if value is None or isinstance(value, str):
        return [value] * count
    return _one_each(list(value), count)


def _leads(value: int | Sequence[int | None] | None, count: int) -> list[int | None]:
    if value is None or isinstance(value, int):
        return [value] * count
    return _one_each(list(value), count)


def _one_each(values: list[_V], count: int) -> list[_V]:
    if len(values) != count:
        raise ValueError(f"expected {count} values, one per text, not {len(values)}")
    return values


_BOUNDARIES = {_constants.AT_BOUNDARY, _constants.AT_NON_BOUNDARY}


def _joinable(pattern: re.Pattern[str]) -> bool:
    """Whether the pattern's matches over joined texts are each text's own: no look-around and no
    anchor but word boundaries (``\\b`` sees the separator as it sees a text's end)."""

    def clean(node: object) -> bool:
        if isinstance(node, _parser.SubPattern):
            return all(clean(item) for item in node)
        if isinstance(node, tuple | list):
            if len(node) == 2 and isinstance(node[0], _constants._NamedIntConstant):
                op, argument = node
                if op in (_constants.ASSERT, _constants.ASSERT_NOT, _constants.GROUPREF, _constants.GROUPREF_EXISTS):
                    return False
                if op == _constants.AT:
                    return argument in _BOUNDARIES
                return clean(argument)
            return all(clean(item) for item in node)
        return True

    return clean(_parser.parse(pattern.pattern, pattern.flags))


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


#: what a span loses at its start (besides white space) and at its end
_TRIM_START = frozenset("，。；！？,;:、")
_TRIM_END = _TRIM_START | {"."}


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start].isspace() or text[start] in _TRIM_START):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in _TRIM_END):
        end -= 1
    return start, end


def _rank(candidate: _Candidate) -> tuple[int, int, int]:
    return (_PRIORITY.get(candidate[3], len(_PRIORITY)), -candidate[2], -(candidate[1] - candidate[0]))


def _overpromise(
    text: str, start: int, end: int, said: tuple[Any, ...], lead_time_days: int | None
) -> tuple[Any, ...] | None:
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


def _merge(text: str, candidates: list[_Candidate]) -> list[Finding]:
    """Collapse overlapping candidates into one finding each (the priority category wins)."""
    if len(candidates) <= 1:  # the common case: nothing to sort or collapse
        return [_finding(c[0], c[1], text[c[0] : c[1]], *c[2:]) for c in candidates]
    if len(candidates) == 2:  # the next most common (a term inside a claim): the same steps, unrolled
        first, second = candidates
        if second[0] < first[0] or (second[0] == first[0] and second[1] > first[1]):
            first, second = second, first
        if second[0] < first[1]:
            return [_collapse(text, [first, second])]
        return [
            _finding(first[0], first[1], text[first[0] : first[1]], *first[2:]),
            _finding(second[0], second[1], text[second[0] : second[1]], *second[2:]),
        ]
    candidates.sort(key=_position)
    merged: list[Finding] = []
    group: list[_Candidate] = []
    group_end = -1
    for candidate in candidates:
        if group and candidate[0] < group_end:
            group.append(candidate)
            if candidate[1] > group_end:
                group_end = candidate[1]
        else:
            if group:
                merged.append(_collapse(text, group))
            group = [candidate]
            group_end = candidate[1]
    merged.append(_collapse(text, group))
    return merged


def _position(candidate: _Candidate) -> tuple[int, int]:
    return candidate[0], -candidate[1]


def _collapse(text: str, group: list[_Candidate]) -> Finding:
    """One finding for overlapping candidates: the winner's, over the span of its category's."""
    winner = group[0] if len(group) == 1 else min(group, key=_rank)
    start, end = winner[0], winner[1]
    if len(group) > 1:
        category = winner[3]
        for candidate in group:
            if candidate[3] == category:
                if candidate[0] < start:
                    start = candidate[0]
                if candidate[1] > end:
                    end = candidate[1]
    return _finding(start, end, text[start:end], *winner[2:])


@cache
def default_checker() -> Checker:
    """A checker over the shipped packs, built once per process."""
    return Checker(shipped_library())
