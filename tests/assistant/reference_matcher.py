"""The compliance matcher as it was before the Hyperscan prefilter (session 7), kept unchanged as
the reference the tests and ``bench/compliance_score.py`` hold the current matcher to: the same
findings (spans, levels, categories, citations, rewrites, order) for any text. Only the matching
itself (``Checker``, ``_rank``, ``_merge``) is kept here; the constants and helpers the new matcher
did not change are imported from it rather than copied. Do not edit it to follow the product; a
change of the packs' semantics belongs in both, on purpose.

The original module docstring follows.

The compliance matcher: Aho-Corasick over the packs' terms plus the packs' claim patterns.

One automaton per language finds every term in one pass over the text (pyahocorasick, a C
extension); the patterns catch the claims no word list can (rates, guarantees, endorsements,
delivery promises). Candidates then pass three filters — the rule's sectors, the near-miss
phrases (``safe``) and a negation right before the phrase in the same clause — and overlapping
candidates collapse into one finding whose category follows :data:`CATEGORY_PRIORITY`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

import ahocorasick

from closeloop.assistant.compliance.matcher import (  # the parts the new matcher did not change
    _KEY_SEPARATOR,
    _LONG,
    _PATTERN_SEPARATOR,
    _PRIORITY,
    Finding,
    _Compiled,
    _joinable,
    _lang_of,
    _langs,
    _leads,
    _SafeSpans,
    _sentences,
    _span_of,
    _starts,
    lead_time_in_text,
    mixed,
    promised_days,
    with_english_runs,
)
from closeloop.assistant.compliance.packs import Lang, RuleLibrary, Sector, shipped_library
from closeloop.assistant.compliance.plain_path import lowered_text as _lowered
from closeloop.assistant.compliance.plain_path import trim as _trim
from closeloop.assistant.compliance.plain_path import word_cut as _word_cut

_V = TypeVar("_V")
_CLAUSE_END = re.compile(r"[，。；！？,;!?.\n]")


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
        if any(_KEY_SEPARATOR in key for lang_keys in keys.values() for key in lang_keys):
            raise ValueError(f"a term or cue contains the separator {_KEY_SEPARATOR!r}")
        self._joinable: dict[Lang, list[tuple[bool, ...]]] = {
            lang: [tuple(_joinable(pattern) for pattern in compiled.patterns) for compiled in self._rules[lang]]
            for lang in ("zh", "en")
        }
        common = library.common
        self._safe = {lang: re.compile("|".join(f"(?:{p})" for p in ps), re.I) for lang, ps in common.safe.items()}
        self._negation = {lang: re.compile(pattern, re.I) for lang, pattern in common.negation.items()}

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
        # a Chinese text's English words are checked as English too (twelfth session, in both matchers)
        return with_english_runs(self, [text], [found], sector, [lead_time_days])[0] if mixed(text, lang) else found

    def _check_one(self, text: str, lang: Lang, sector: Sector | None, lead_time_days: int | None) -> list[Finding]:
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
        for position, text in enumerate(texts):
            if not text:
                continue
            if len(text) > _LONG:
                results[position] = self._check_one(text, langs[position] or _lang_of(text), sector, leads[position])
                continue
            groups[langs[position] or _lang_of(text)].append(position)
        for group_lang, members in groups.items():
            if members:
                found = self._check_group(group_lang, [texts[p] for p in members], sector, [leads[p] for p in members])
                for position, findings in zip(members, found, strict=True):
                    results[position] = findings
        both = [position for position, text in enumerate(texts) if mixed(text, langs[position])]
        merged = with_english_runs(
            self, [texts[p] for p in both], [results[p] for p in both], sector, [leads[p] for p in both]
        )
        for position, findings in zip(both, merged, strict=True):
            results[position] = findings
        return results

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
        """The findings of one text from its term hits and pattern matches (rule, start, end), in order."""
        safe = _SafeSpans(self._safe[lang], text)
        candidates: list[Finding] = []
        rules = self._rules[lang]
        for start, end, index in hits:
            finding = self._candidate(rules[index], text, start, end, lang, sector, safe, lead_time_days)
            if finding is not None:
                candidates.append(finding)
        for index, raw_start, raw_end in matches:
            start, end = _trim(text, raw_start, raw_end)
            if end > start:
                finding = self._candidate(rules[index], text, start, end, lang, sector, safe, lead_time_days)
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
        override = rule.by_sector.get(sector)
        explanation = (override.explanation if override and override.explanation else None) or rule.explanation
        if rule.delivery:
            promised = promised_days(text[start:end])
            lead = lead_time_days if lead_time_days is not None else lead_time_in_text(text)
            if promised is None or (lead is not None and promised >= lead):
                return None
            if lead is not None:
                explanation = f"{explanation} (lead time {lead} d, promised {promised} d)"
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
            rewrite=(override.rewrite if override and override.rewrite else None) or rule.rewrite,
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
        if len(group) == 1:  # nothing to collapse: the candidate is the finding
            merged.append(group[0])
            continue
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
