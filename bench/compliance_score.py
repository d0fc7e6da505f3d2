"""Compliance checker: precision and recall on the labelled dev set, and throughput.

Usage: ``python -m bench.compliance_score [path/to/dev.jsonl]`` (default: the shared data set).
Throughput is measured on the dev texts repeated to about 2 MB, against two baselines run in the
same process over the same terms: a plain ``str.find`` loop and one regex alternation.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import shared_data

from closeloop.assistant.compliance.matcher import default_checker
from closeloop.assistant.compliance.packs import shipped_library
from closeloop.assistant.compliance.scoring import score


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _throughput(texts: list[str], run: Callable[[str], object]) -> float:
    size = sum(len(text.encode("utf-8")) for text in texts)
    started = time.perf_counter()
    for text in texts:
        run(text)
    return size / (time.perf_counter() - started) / 1e6


def main(argv: list[str]) -> None:
    path = Path(argv[1]) if len(argv) > 1 else shared_data("compliance") / "dev.jsonl"
    items = _load(path)
    checker = default_checker()
    result = score(checker, items).as_dict()
    print(json.dumps(result, ensure_ascii=False, indent=1))

    terms = sorted({term for pack in shipped_library().packs for rule in pack.rules for term in rule.terms}, key=len)
    alternation = re.compile("|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.I)
    texts = [item["text"] for item in items]
    repeat = max(1, 2_000_000 // sum(len(text.encode("utf-8")) for text in texts))
    corpus = texts * repeat

    def plain_find(text: str) -> int:
        lowered = text.lower()
        return sum(lowered.find(term.lower()) >= 0 for term in terms)

    automaton = checker._automata  # the term pass alone, to show what Aho-Corasick buys

    def terms_only(text: str) -> int:
        lowered = text.lower()
        return sum(1 for lang in ("zh", "en") for _ in automaton[lang].iter(lowered))

    figures = {
        "checker (terms + patterns + filters)": _throughput(corpus, lambda text: checker.check(text)),
        "aho-corasick term pass": _throughput(corpus, terms_only),
        "baseline: str.find per term": _throughput(corpus, plain_find),
        "baseline: one regex alternation": _throughput(corpus, lambda text: alternation.findall(text)),
    }
    base = figures["baseline: str.find per term"]
    print(f"\nthroughput on {len(corpus)} texts ({len(terms)} terms):")
    for name, mbs in figures.items():
        print(f"  {name:40s} {mbs:7.2f} MB/s  ({mbs / base:5.2f}x str.find)")


if __name__ == "__main__":
    main(sys.argv)
