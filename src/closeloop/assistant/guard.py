"""Every word the assistant shows passes the compliance checker first (AST-3), and the optional LLM
may only rephrase, its output checked again.

A statement with findings is shown rewritten: each risky span is cut from the sayable text (the
packs' advice for absolute terms is to drop them; for efficacy, endorsement or return promises the
claim itself must go) and replaced by an ellipsis, the findings — span, level, category, citation
and the pack's compliant rewrite — travel with the statement so the page shows why, and the
original wording is kept beside it. The check runs on the sayable text again, so nothing risky is
left in it.

The LLM (``CLOSELOOP_LLM_URL``, an OpenAI-compatible ``/v1/chat/completions``) receives only the
already-checked text and is asked to rephrase it; its answer is used only when it passes the
checker with no finding and keeps every number of the grounded text (a rephrasing must not invent
or drop facts). Anything else — no endpoint, a timeout, an error, a risky or unfaithful answer —
keeps the grounded composition, which is complete on its own.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from closeloop.assistant.compliance.matcher import Finding, default_checker
from closeloop.config import settings

log = logging.getLogger("closeloop.assistant")

ELLIPSIS = "…"
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
LLM_TIMEOUT = 20.0


@dataclass
class Checked:
    text: str
    findings: list[Finding] = field(default_factory=list)
    original: str | None = None  # set when the text was rewritten
    rephrased: bool = False

    def compliance(self) -> list[dict[str, Any]]:
        return [
            {
                "span": f.span,
                "level": f.level,
                "category": f.category,
                "citation": f.citation,
                "rewrite": f.rewrite,
            }
            for f in self.findings
        ]


def _cut(text: str, findings: list[Finding]) -> str:
    out: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position:
            continue
        out.append(text[position : finding.start])
        out.append(ELLIPSIS)
        position = finding.end
    out.append(text[position:])
    return re.sub(f"(?:{ELLIPSIS}\\s*)+", ELLIPSIS, "".join(out))


def check(text: str) -> Checked:
    """``text`` as it may be shown: unchanged when clean, else with the risky spans cut out."""
    checker = default_checker()
    findings = checker.check(text)
    if not findings:
        return Checked(text)
    sayable = text
    for _round in range(3):  # cutting can join words into a new risky phrase; cut again
        sayable = _cut(sayable, checker.check(sayable))
        if not checker.check(sayable):
            break
    return Checked(sayable, findings, original=text)


def polish(checked: Checked, lang: str) -> Checked:
    """``checked`` rephrased by the LLM when one is configured and its answer is safe and faithful."""
    url = settings.llm_url
    if not url or not checked.text.strip():
        return checked
    answer = _ask(url, checked.text, lang)
    if answer is None:
        return checked
    if default_checker().check(answer):
        log.info("the LLM's rephrasing has compliance findings; the grounded text is kept")
        return checked
    if sorted(_NUMBER.findall(answer)) != sorted(_NUMBER.findall(checked.text)):
        log.info("the LLM's rephrasing changed the numbers; the grounded text is kept")
        return checked
    return Checked(answer, checked.findings, checked.original or checked.text, rephrased=True)


def _ask(url: str, text: str, lang: str) -> str | None:
    instruction = (
        "请只改写下面这句话的措辞，使其更通顺；不得增加、删除或改变任何事实、数字和名称。只输出改写后的句子。"
        if lang.startswith("zh")
        else "Rephrase the following sentence to read well. Do not add, drop or change any fact, number or "
        "name. Answer with the rephrased sentence only."
    )
    try:
        response = httpx.post(
            url.rstrip("/") + "/v1/chat/completions",
            json={
                "model": "default",
                "temperature": 0,
                "messages": [{"role": "system", "content": instruction}, {"role": "user", "content": text}],
            },
            timeout=LLM_TIMEOUT,
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as error:
        log.warning("the LLM endpoint did not answer (%s); the grounded text is kept", error)
        return None
    answer = str(content).strip()
    return answer or None


def guarded(text: str, lang: str) -> Checked:
    """The one door for shown text: checked, rewritten if needed, optionally polished and re-checked."""
    return polish(check(text), lang)
