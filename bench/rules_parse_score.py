"""Plain-language rule parser (AUTO-2): its score on the labelled set and its speed.

    python bench/rules_parse_score.py [--data PATH/TO/rules] [--repeat 200]

Score: for every item of ``rules/dev.jsonl``, the parse is compared with the label the way
``closeloop.automation.language.evaluation`` does (with the alternatives the labels accept);
reported as exact matches and per-field agreement (trigger, conditions, actions; a "reject" item
agrees when the parser refuses it and names a span).

Speed: parsing every sentence against ``json.loads`` of its expected structure (the cheapest way to
obtain the same dict), both in this process, ``--repeat`` rounds each; the ratio is
parse time ÷ json.loads time (how many json.loads one parse costs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.conftest import shared_data  # noqa: E402

from closeloop.automation.definition import validate  # noqa: E402
from closeloop.automation.language import parse_rule  # noqa: E402
from closeloop.automation.language.evaluation import agreement  # noqa: E402
from closeloop.automation.metrics import METRIC_NAMES  # noqa: E402
from closeloop.core.errors import ValidationFailed  # noqa: E402


def storable(rule: dict[str, Any]) -> bool:
    """Whether the engine accepts the parsed rule as it stands (a parse the engine refuses to store —
    as forecast deviation was until the bookings forecast existed — does not count as working).
    Webhook hosts and team names are the organization's own, so they are taken as allowed here."""
    hosts = frozenset(str(a.get("target", "")).split("/")[2].lower() for a in rule["actions"]
                      if a.get("type") == "webhook" and str(a.get("target", "")).count("/") >= 2)  # fmt: skip
    teams = frozenset(str(a.get("target", ""))[5:].lower() for a in rule["actions"]
                      if str(a.get("target", "")).startswith("team:"))  # fmt: skip
    try:
        validate(rule, metrics=METRIC_NAMES, allowed_hosts=hosts, teams=teams)
    except ValidationFailed:
        return False
    return True


def score(items: list[dict[str, Any]]) -> dict[str, Any]:
    fields = {"trigger": 0, "conditions": 0, "actions": 0}
    exact = 0
    strict = 0
    stored = 0
    rejects = {"expected": 0, "refused": 0}
    misses: list[str] = []
    for item in items:
        result = parse_rule(item["text"])
        if item["expected"] == "reject":
            rejects["expected"] += 1
            if result.rule is None and result.problems:
                rejects["refused"] += 1
                exact += 1
                strict += 1
                for name in fields:
                    fields[name] += 1
            else:
                misses.append(item["id"])
            continue
        if result.rule is None:
            misses.append(item["id"])
            continue
        found = agreement(result.rule, item["expected"])
        stored += found.exact and storable(result.rule)
        fields["trigger"] += found.trigger
        fields["conditions"] += found.conditions
        fields["actions"] += found.actions
        if found.exact:
            exact += 1
            strict += result.rule == item["expected"]
        else:
            misses.append(item["id"])
    return {
        "items": len(items),
        "exact": exact,
        "strict": strict,
        "stored": stored,
        "fields": fields,
        "rejects": rejects,
        "misses": misses,
    }


def speed(items: list[dict[str, Any]], repeat: int) -> tuple[float, float]:
    texts = [item["text"] for item in items]
    encoded = [json.dumps(item["expected"], ensure_ascii=False) for item in items]
    parse_times: list[float] = []
    json_times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            parse_rule(text)
        parse_times.append((time.perf_counter() - started) / len(texts))
        started = time.perf_counter()
        for document in encoded:
            json.loads(document)
        json_times.append((time.perf_counter() - started) / len(texts))
    return statistics.median(parse_times), statistics.median(json_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="folder holding dev.jsonl (default: shared data)")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    folder = args.data or shared_data("rules")
    items = [json.loads(line) for line in (folder / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line]
    result = score(items)
    n = result["items"]
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"items: {n} ({sum(i['lang'] == 'zh' for i in items)} zh, {sum(i['lang'] == 'en' for i in items)} en)")
    print(f"exact match: {result['exact']}/{n} = {100 * result['exact'] / n:.1f}%")
    print(f"  identical to the label, no alternatives: {result['strict']}/{n} = {100 * result['strict'] / n:.1f}%")
    accepted = n - result["rejects"]["expected"]
    print(f"  exact and accepted by the engine: {result['stored']}/{accepted} of the rules to accept")
    for name, agreed in result["fields"].items():
        print(f"  {name:<10} agreement: {agreed}/{n} = {100 * agreed / n:.1f}%")
    rejects = result["rejects"]
    print(f"  rejects refused: {rejects['refused']}/{rejects['expected']}")
    if result["misses"]:
        print("misses: " + ", ".join(result["misses"]))
    per_parse, per_json = speed(items, args.repeat)
    print(f"parse: {per_parse * 1e6:.0f} µs per sentence (median of {args.repeat} rounds)")
    print(f"json.loads of the expected structure: {per_json * 1e6:.1f} µs")
    print(f"ratio parse / json.loads: {per_parse / per_json:.0f}x  ({1 / per_parse:,.0f} sentences/s)")


if __name__ == "__main__":
    main()
