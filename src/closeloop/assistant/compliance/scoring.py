"""Scoring the checker against a labelled set (the eval-set format of ``compliance/dev.jsonl``).

Span matches count by character overlap (span boundaries are fuzzy by nature); a prediction is
correct for a category when it overlaps a gold span of that category. Utterance level asks only
whether a message has any violation.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from closeloop.assistant.compliance.matcher import Checker, Finding

#: categories the checker has that the eval set (``compliance/dev.jsonl``) folds into another: the set
#: predates them and labels commercial bribery as its ``other`` (its definition's item (e))
DATASET_CATEGORY = {"commercial_bribery": "other"}


def dataset_category(category: str) -> str:
    """``category`` as the eval set labels it."""
    return DATASET_CATEGORY.get(category, category)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision, "recall": self.recall}


@dataclass
class Score:
    utterance: Counts = field(default_factory=Counts)
    clean_items: int = 0
    clean_flagged: int = 0
    span: Counts = field(default_factory=Counts)
    per_category: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    per_lang: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    matched: int = 0
    category_agree: int = 0
    level_agree: int = 0
    level_within_one: int = 0
    article_agree: int = 0

    def as_dict(self) -> dict[str, Any]:
        matched = self.matched or 1
        return {
            "utterance": self.utterance.as_dict(),
            "clean_false_positive_rate": self.clean_flagged / self.clean_items if self.clean_items else 0.0,
            "span": self.span.as_dict(),
            "per_lang_span": {lang: counts.as_dict() for lang, counts in sorted(self.per_lang.items())},
            "per_category": {name: counts.as_dict() for name, counts in sorted(self.per_category.items())},
            "matched_spans": self.matched,
            "category_accuracy": self.category_agree / matched,
            "level_accuracy": self.level_agree / matched,
            "level_within_one": self.level_within_one / matched,
            "citation_article_agreement": self.article_agree / matched,
        }


def _article(citation: str) -> str:
    match = re.match(r"^(.*?第\d+条)", citation)
    return match.group(1) if match else citation


def _overlaps(finding: Finding, gold: dict[str, Any]) -> bool:
    return bool(finding.start < gold["end"] and gold["start"] < finding.end)


def score(checker: Checker, items: Iterable[dict[str, Any]]) -> Score:
    """Score ``checker`` on labelled items (``text``, ``lang``, ``violations``); a finding's category is
    compared as the set labels it (:data:`DATASET_CATEGORY`)."""
    result = Score()
    for item in items:
        findings = [
            replace(finding, category=dataset_category(finding.category))
            for finding in checker.check(item["text"], lang=item.get("lang"))
        ]
        gold: list[dict[str, Any]] = item["violations"]
        lang = item.get("lang", "zh")
        if gold and findings:
            result.utterance.tp += 1
        elif gold:
            result.utterance.fn += 1
        elif findings:
            result.utterance.fp += 1
        if not gold:
            result.clean_items += 1
            result.clean_flagged += bool(findings)
        for span in gold:
            hits = [finding for finding in findings if _overlaps(finding, span)]
            counts = result.per_category[span["category"]]
            if hits:
                result.span.tp += 1
                result.per_lang[lang].tp += 1
                best = next((hit for hit in hits if hit.category == span["category"]), hits[0])
                result.matched += 1
                result.category_agree += best.category == span["category"]
                result.level_agree += best.level == span["level"]
                result.level_within_one += abs(best.level - span["level"]) <= 1
                result.article_agree += _article(best.citation) == _article(span["citation"])
                if any(hit.category == span["category"] for hit in hits):
                    counts.tp += 1
                else:
                    counts.fn += 1
            else:
                result.span.fn += 1
                result.per_lang[lang].fn += 1
                counts.fn += 1
        for finding in findings:
            overlapping = [span for span in gold if _overlaps(finding, span)]
            if not overlapping:
                result.span.fp += 1
                result.per_lang[lang].fp += 1
            if not any(span["category"] == finding.category for span in overlapping):
                result.per_category[finding.category].fp += 1
    return result
