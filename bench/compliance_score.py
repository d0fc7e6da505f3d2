"""Compliance checker: precision and recall on the labelled dev set, and throughput.

Usage: ``python -m bench.compliance_score [path/to/dev.jsonl]`` (default: the shared data set).
Throughput is measured on two corpora, against baselines run in the same process over the same
terms: a plain ``str.find`` loop and one regex alternation, each per message and — the fair
baseline for the checker's batch API — the alternation over the messages joined. MB/s by wall
clock and by this process's CPU time (the machine is shared).

- ``dev``: the dev texts repeated to about 2 MB (shuffled) — hit-dense: 55 % are violations and
  nearly every text holds a trigger word.
- ``helpdesk``: customer-helpdesk turns from ``../shared/data/stc3-dialogues`` (NTCIR-14 STC-3,
  Weibo complaints and the operators' replies, Chinese and their English translations), 8,000
  turns (shuffled, seed 6), about 1.3 MB — a realistic mix where nearly every text is clean.

Each corpus also runs the checker without Hyperscan (``Checker(prefilter=False)``), the checker
with the plain path's pure-Python source when the installed one is compiled by mypyc (which one is
installed, and which scan the prefilter uses, is printed first), the checker scanning through the
python-hyperscan binding when the native scan is in use, and the matcher as it was before the prefilter
(``tests/assistant/reference_matcher.py``), so before and after are measured back to back.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.assistant.reference_matcher import Checker as ReferenceChecker
from tests.conftest import shared_data

from closeloop.assistant.compliance.matcher import (
    Checker,
    default_checker,
    plain_path_implementation,
    python_plain_path,
)
from closeloop.assistant.compliance.packs import shipped_library
from closeloop.assistant.compliance.prefilter import engine_in_use, native_available
from closeloop.assistant.compliance.scoring import score


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _throughput(texts: list[str], run: Callable[[list[str]], object]) -> tuple[float, float]:
    """MB/s of ``run`` over ``texts`` by wall clock and by CPU time (best of two runs)."""
    size = sum(len(text.encode("utf-8")) for text in texts)
    best = (0.0, 0.0)
    for _ in range(2):
        started, cpu = time.perf_counter(), time.process_time()
        run(texts)
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        best = max(best, (size / wall / 1e6, size / max(used, 1e-9) / 1e6))
    return best


def _each(check: Callable[[str], object]) -> Callable[[list[str]], object]:
    return lambda texts: [check(text) for text in texts]


BATCH = 1000


def helpdesk_texts(limit: int = 8000) -> list[str]:
    """Customer-helpdesk turns (STC-3, zh and en), shuffled: mostly clean text."""
    turns: list[str] = []
    for name in ("train_data_cn.json", "train_data_en.json"):
        dialogues = json.loads((shared_data("stc3-dialogues") / name).read_text(encoding="utf-8"))
        for dialogue in dialogues:
            for turn in dialogue["turns"]:
                said = turn["utterances"]
                turns.append(" ".join(said) if isinstance(said, list) else said)
    random.Random(6).shuffle(turns)
    return turns[:limit]


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
    dev = texts * repeat
    random.Random(6).shuffle(dev)
    without = Checker(shipped_library(), prefilter=False)
    implementation = plain_path_implementation()
    print(f"\nplain path: {implementation}; prefilter scan: {engine_in_use()}")
    source = Checker(shipped_library(), plain_path_module=python_plain_path()) if implementation != "python" else None
    binding = Checker(shipped_library(), engine="binding") if native_available() else None
    reference = ReferenceChecker(shipped_library())

    def plain_find(text: str) -> int:
        lowered = text.lower()
        return sum(lowered.find(term.lower()) >= 0 for term in terms)

    automaton = reference._automata  # the term pass alone, to show what Aho-Corasick buys

    def terms_only(text: str) -> int:
        lowered = text.lower()
        return sum(1 for lang in ("zh", "en") for _ in automaton[lang].iter(lowered))

    def batched(engine: Any) -> Callable[[list[str]], object]:
        return lambda texts: [engine.check_many(texts[start : start + BATCH]) for start in range(0, len(texts), BATCH)]

    def alternation_joined(texts: list[str]) -> object:
        return [alternation.findall("\n".join(texts[start : start + BATCH])) for start in range(0, len(texts), BATCH)]

    for name, corpus in (("dev", dev), ("helpdesk", helpdesk_texts())):
        sample = corpus[:BATCH]
        found = batched(checker)(sample)
        assert found == [[checker.check(text) for text in sample]], "batch ≠ per message"
        assert _plain(found) == _plain(batched(reference)(sample)), "findings ≠ the previous matcher's"
        figures = {
            f"checker, check_many (batches of {BATCH}), {implementation}": _throughput(corpus, batched(checker)),
            "checker, check per message": _throughput(corpus, _each(checker.check)),
        }
        if source is not None:
            assert batched(source)(sample) == found, "the plain path's source ≠ its compiled module"
            figures["checker, check_many, plain path from source"] = _throughput(corpus, batched(source))
        if binding is not None:
            assert batched(binding)(sample) == found, "the python-hyperscan scan ≠ the native one"
            figures["checker, check_many, python-hyperscan scan"] = _throughput(corpus, batched(binding))
        figures |= {
            "checker without Hyperscan, check_many": _throughput(corpus, batched(without)),
            "previous matcher, check_many": _throughput(corpus, batched(reference)),
            "aho-corasick term pass per message": _throughput(corpus, _each(terms_only)),
            "baseline: str.find per term": _throughput(corpus, _each(plain_find)),
            "baseline: regex alternation per message": _throughput(corpus, _each(alternation.findall)),
            f"baseline: regex alternation, {BATCH} joined": _throughput(corpus, alternation_joined),
        }
        base = figures["baseline: regex alternation per message"]
        joined = figures[f"baseline: regex alternation, {BATCH} joined"]
        size = sum(len(text.encode("utf-8")) for text in corpus)
        print(f"\n{name}: throughput on {len(corpus)} texts, {size / 1e6:.2f} MB ({len(terms)} terms; MB/s wall, CPU):")
        for label, (mbs, cpu_mbs) in figures.items():
            print(
                f"  {label:52s} {mbs:7.2f} MB/s  cpu {cpu_mbs:7.2f} MB/s  "
                f"(cpu {cpu_mbs / base[1]:5.2f}x alternation per message, {cpu_mbs / joined[1]:5.2f}x joined)"
            )
    print(f"\nload average: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


def _plain(batches: object) -> object:
    """Findings as dicts (the previous matcher has its own ``Finding`` class)."""
    assert isinstance(batches, list)
    return [[[finding.as_dict() for finding in findings] for findings in batch] for batch in batches]


if __name__ == "__main__":
    main(sys.argv)
