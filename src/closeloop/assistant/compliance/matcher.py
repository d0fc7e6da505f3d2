"""The compliance matcher: Aho-Corasick over the packs' terms plus the packs' claim patterns.

One automaton per language finds every term in one pass over the text (pyahocorasick, a C
extension); the patterns catch the claims no word list can (rates, guarantees, endorsements,
delivery promises). Candidates then pass three filters — the rule's sectors, the near-miss
phrases (``safe``) and a negation right before the phrase in the same clause — and overlapping
candidates collapse into one finding whose category follows :data:`CATEGORY_PRIORITY`.

A short plain text first passes one Hyperscan scan (:mod:`.prefilter`), which says which patterns,
trigger words, cues, near-misses, negations and terms can be in it, and takes the plain path
(:mod:`.plain_path`, compiled by mypyc at install where it can be): the same findings, with ``re``
run only where it can find something. Other texts take the automaton path described above.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from re import _constants, _parser
from types import ModuleType
from typing import Any, Protocol, TypeVar

import ahocorasick

from closeloop.assistant.compliance import plain_path
from closeloop.assistant.compliance.finding import Finding
from closeloop.assistant.compliance.packs import CATEGORY_PRIORITY, Lang, Rule, RuleLibrary, Sector, shipped_library
from closeloop.assistant.compliance.plain_path import CUE as _CUE
from closeloop.assistant.compliance.plain_path import ENGLISH_WORD as _ENGLISH_WORD
from closeloop.assistant.compliance.plain_path import NEGATION as _NEGATION
from closeloop.assistant.compliance.plain_path import SAFE_EACH as _SAFE_EACH
from closeloop.assistant.compliance.plain_path import TERMS as _TERMS
from closeloop.assistant.compliance.plain_path import TRIGGERED as _TRIGGERED
from closeloop.assistant.compliance.plain_path import Candidate as _Candidate
from closeloop.assistant.compliance.plain_path import Meta as _Meta
from closeloop.assistant.compliance.plain_path import PlainPath, lead_time_in_text, promised_days
from closeloop.assistant.compliance.plain_path import lowered_text as _lowered
from closeloop.assistant.compliance.plain_path import overpromise as _overpromise
from closeloop.assistant.compliance.plain_path import trim as _trim
from closeloop.assistant.compliance.plain_path import word_cut as _word_cut
from closeloop.assistant.compliance.prefilter import Expression, Prefilter, alnum_class, available, without_boundaries
from closeloop.core.collector import cyclic_gc_paused

__all__ = ["Checker", "Finding", "default_checker", "lead_time_in_text", "promised_days"]

_V = TypeVar("_V")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_PRIORITY = {category: rank for rank, category in enumerate(CATEGORY_PRIORITY)}


@dataclass(frozen=True)
class _Compiled:
    rule: Rule
    pack: str
    patterns: tuple[re.Pattern[str], ...]


_LANGS: tuple[Lang, ...] = ("zh", "en")
_SECTORS: tuple[Sector, ...] = ("finance", "cosmetics", "health_food", "drug", "medical", "general")


class Checker:
    """Checks texts against a :class:`RuleLibrary`; build once, use from any thread.

    ``prefilter=False`` leaves Hyperscan out: every triggered pattern runs with ``re`` on every
    text that triggered it (the findings are the same; see :mod:`.prefilter`); ``engine`` chooses
    the prefilter's (``"native"`` or ``"binding"``; default: the native one where it is available).
    ``plain_path_module``
    chooses the plain path's implementation (:func:`python_plain_path` for the source when the
    installed one is compiled; tests and benchmarks hold the two side by side).
    """

    def __init__(
        self,
        library: RuleLibrary,
        *,
        prefilter: bool = True,
        plain_path_module: ModuleType | None = None,
        engine: str | None = None,
    ) -> None:
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
            if lang == "zh":  # where an English run can be (mixed): a word of three ASCII letters
                wanted.append(Expression(_WORD.pattern, _ENGLISH_WORD, caseless=False, exact=True))
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
        self._prefilter = Prefilter(expressions, engine=engine) if prefilter and available() else None
        self._safe_subsets: dict[tuple[Lang, tuple[int, ...]], re.Pattern[str]] = {}
        # per language, the plain path's tables (resolved once; looked up once per text)
        module = plain_path if plain_path_module is None else plain_path_module
        self._plain: dict[str, PlainPath] = {}
        self._plain_module = module
        for lang in _LANGS:
            unfiltered = self._prefilter.unfiltered[lang] if self._prefilter is not None else set()
            self._plain[lang] = module.PlainPath(
                chinese=lang == "zh",
                always=self._always[lang],
                cue_sectors=self._cue_sectors[lang],
                unfiltered=unfiltered,
                safe_unfiltered=sorted(ident - _SAFE_EACH for ident in unfiltered if _SAFE_EACH <= ident < _TRIGGERED),
                term_automaton=self._term_automata[lang],
                sector_order=list(self._sector_order),
                owners={
                    ident: (
                        index,
                        pattern,
                        "span" in pattern.groupindex,
                        None if compiled.rule.sectors is None else tuple(compiled.rule.sectors),
                    )
                    for index, compiled in enumerate(self._rules[lang])
                    for ident, pattern in zip(self._pattern_ids[lang][index], compiled.patterns, strict=True)
                },
                meta=[dict(sectors) for sectors in self._meta[lang]],
                flags=[(compiled.rule.negatable, compiled.rule.delivery) for compiled in self._rules[lang]],
                negation=self._negation[lang],
                negation_always=_NEGATION in unfiltered or not self._negation_filtered[lang],
                near_misses=partial(self._near_misses, lang),
                priority=_PRIORITY,
            )

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
        found = self._check_one(text, lang, sector, lead_time_days)
        if mixed(text, lang):
            return with_english_runs(self, [text], [found], sector, [lead_time_days])[0]
        return found

    def _check_one(self, text: str, lang: Lang, sector: Sector | None, lead_time_days: int | None) -> list[Finding]:
        """:meth:`check` in the text's one language."""
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
        with cyclic_gc_paused():  # many short-lived tuples, no cycles (core.collector)
            return self._check_many(texts, lang, sector, lead_time_days)

    def _check_many(
        self,
        texts: Sequence[str],
        lang: Lang | Sequence[Lang | None] | None,
        sector: Sector | None,
        lead_time_days: int | Sequence[int | None] | None,
    ) -> list[list[Finding]]:
        langs = _langs(lang, len(texts))
        leads = _leads(lead_time_days, len(texts))
        results: list[list[Finding]] = [[] for _ in texts]
        groups: dict[Lang, list[int]] = {"zh": [], "en": []}
        scanners = self._prefilter.scanners() if self._prefilter is not None else {}
        module = self._plain_module
        # the short texts the prefilter scans take the plain path in one (compiled) loop; of those,
        # only the Chinese ones where it saw an English word can be mixed
        english: list[tuple[int, Sector]] = []
        rest = module.check_batch(self._plain, scanners, texts, langs, leads, sector, results, _LONG, english)
        for position in rest:
            text = texts[position]
            if len(text) > _LONG:
                results[position] = self._check_one(text, langs[position] or _lang_of(text), sector, leads[position])
            else:
                groups[langs[position] or _lang_of(text)].append(position)
        for group_lang, members in groups.items():
            if members:
                found = self._check_group(group_lang, [texts[p] for p in members], sector, [leads[p] for p in members])
                for position, findings in zip(members, found, strict=True):
                    results[position] = findings
        # a Chinese draft's English words are checked as English too (one batch for them all)
        sectors: dict[int, Sector | None] = dict.fromkeys(rest, sector)
        sectors.update(english)  # their sector, from the scan
        both = sorted(position for position in sectors if mixed(texts[position], langs[position]))
        if both:
            merged = with_english_runs(
                self,
                [texts[p] for p in both],
                [results[p] for p in both],
                sector,
                [leads[p] for p in both],
                [sectors[p] for p in both],
            )
            for position, findings in zip(both, merged, strict=True):
                results[position] = findings
        return results

    def _check_plain(
        self, lang: Lang, text: str, found: tuple[int, ...], sector: Sector | None, lead_time_days: int | None
    ) -> list[Finding]:
        """:meth:`check` for a short text the prefilter scanned: ``found`` are the ids that matched
        (:meth:`.plain_path.PlainPath.check`, compiled by mypyc where the install could)."""
        return self._plain[lang].check(text, found, sector, lead_time_days)

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
        return plain_path.negated(text, start, lang == "zh", self._negation[lang])


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
#: an English run inside a Chinese text: printable ASCII from a letter or digit on, up to where the
#: ASCII ends, holding a word of three letters or more (_WORD) — "guaranteed returns", "100% safe";
#: not "CT" nor "±0.02mm". Two linear searches: one pattern for both backtracks on long runs.
_ASCII_RUN = re.compile(r"[A-Za-z0-9][\x20-\x7e]*")
_WORD = re.compile(r"[A-Za-z]{3}")
_SENTENCE = re.compile(r"[^。！？!?\n]+(?:[。！？!?\n]+|$)")
#: joins lowered texts for the automaton pass (no key contains it; not a word character)
_KEY_SEPARATOR = "\x00"
#: joins texts for a pattern pass (``.`` does not cross it; a match that does is redone per text)
_PATTERN_SEPARATOR = "\n"


class _OneLanguage(Protocol):
    def sector_of(self, text: str, lang: Lang | None = None) -> Sector: ...

    def _check_one(self, text: str, lang: Lang, sector: Sector | None, lead_time_days: int | None) -> list[Finding]: ...


def mixed(text: str, lang: Lang | None) -> bool:
    """Whether ``text`` is Chinese with English words in it (checked in both languages); a text
    without Chinese characters is one language, the one given or English."""
    if not text or (lang or "zh") != "zh" or _CJK.search(text) is None:
        return False
    # every ASCII letter is inside an English run (a run starts at any letter and goes on over the
    # printable ASCII after it), so a run holds a word exactly when the text does
    return _WORD.search(text) is not None


def with_english_runs(
    checker: _OneLanguage,
    texts: list[str],
    found: list[list[Finding]],
    sector: Sector | None,
    leads: list[int | None],
    known: Sequence[Sector | None] | None = None,
) -> list[list[Finding]]:
    """Chinese texts' findings with those of their English runs ("投资这台设备 guaranteed returns，零风险"):
    each run is checked as English in the Chinese text's sector (``known``: each text's, where the
    caller has it), and its findings that overlap none of the text's own join them, at the text's
    offsets, in order."""
    runs = [
        (number, match.start(), match.group(0))
        for number, text in enumerate(texts)
        for match in _ASCII_RUN.finditer(text)
        if _WORD.search(match.group(0))
    ]
    if not runs:
        return found
    sectors = {
        number: sector or (known[number] if known is not None else None) or checker.sector_of(texts[number], "zh")
        for number in {n for n, _, _ in runs}
    }
    merged = [list(findings) for findings in found]
    # a text's own findings are sorted and disjoint: one that overlaps a span is the last to start
    # before its end, and only if it ends after the span's start
    starts = [[finding.start for finding in findings] for findings in found]
    for number, offset, run in runs:
        own, own_starts = found[number], starts[number]
        for finding in checker._check_one(run, "en", sectors[number], leads[number]):
            start, end = finding.start + offset, finding.end + offset
            before = bisect_right(own_starts, end - 1) - 1
            if before >= 0 and own[before].end > start:
                continue
            merged[number].append(
                plain_path.finding(
                    start,
                    end,
                    finding.span,
                    finding.level,
                    finding.category,
                    finding.citation,
                    finding.rewrite,
                    finding.explanation,
                    finding.rule,
                )
            )
    for findings in merged:
        findings.sort(key=lambda f: (f.start, f.end))
    return merged


def _lang_of(text: str) -> Lang:
    return "zh" if _CJK.search(text) else "en"


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


def _merge(text: str, candidates: list[_Candidate]) -> list[Finding]:
    """Collapse overlapping candidates into one finding each (the priority category wins)."""
    return plain_path.merge(text, candidates, _PRIORITY)


def plain_path_implementation(module: ModuleType = plain_path) -> str:
    """``"mypyc"`` when the plain path runs compiled (built at install by ``setup.py``), ``"python"``
    when from its source (no compiler, ``CLOSELOOP_PURE_PYTHON=1``); ``+stale`` when the compiled
    module is older than its source (rebuild: ``make install``)."""
    file = Path(module.__file__ or "")
    if file.suffix == ".py":
        return "python"
    source = file.with_name("plain_path.py")
    # edited after the build; a wheel install writes the two files milliseconds apart in any order
    stale = source.exists() and source.stat().st_mtime > file.stat().st_mtime + 1
    return "mypyc+stale" if stale else "mypyc"


@cache
def python_plain_path() -> ModuleType:
    """The plain path's source as a module of its own — :mod:`.plain_path` itself when that is not
    compiled — so tests and benchmarks can run the source beside the compiled module."""
    if plain_path_implementation() == "python":
        return plain_path
    source = Path(plain_path.__file__ or "").with_name("plain_path.py")
    spec = importlib.util.spec_from_file_location(f"{plain_path.__name__}_source", source)
    if spec is None or spec.loader is None:  # pragma: no cover - the source ships beside the module
        raise ImportError(f"no plain path source at {source}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if plain_path_implementation() == "mypyc+stale":
    warnings.warn(
        "closeloop's compiled plain path is older than plain_path.py (run `make install` to rebuild it)",
        RuntimeWarning,
        stacklevel=1,
    )


@cache
def default_checker() -> Checker:
    """A checker over the shipped packs, built once per process."""
    return Checker(shipped_library())
