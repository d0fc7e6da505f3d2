"""Rules written in plain Chinese or English → the structured rule (trigger, conditions, actions),
and the structured rule → plain words for confirmation.

``parse_rule`` never raises on text: what it cannot read comes back as :class:`ParseProblem` items
with the character span, and ``rule`` is then ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from closeloop.automation.language.parser import ParseProblem, detect_language, parse_tokens
from closeloop.automation.language.readback import read_back

MAX_TEXT = 2_000


@dataclass(slots=True)
class ParsedRule:
    rule: dict[str, Any] | None
    readback: str
    lang: str
    problems: list[ParseProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rule is not None


def parse_rule(text: str, lang: str | None = None) -> ParsedRule:
    """Parse one rule sentence; ``lang`` ("zh" / "en") is detected from the text when ``None``."""
    language = lang if lang in ("zh", "en") else detect_language(text)
    if len(text) > MAX_TEXT:
        problem = ParseProblem(
            MAX_TEXT,
            len(text),
            text[MAX_TEXT : MAX_TEXT + 40],
            f"A rule is at most {MAX_TEXT} characters",
            f"规则最长 {MAX_TEXT} 个字符",
        )
        return ParsedRule(None, "", language, [problem])
    rule, problems = parse_tokens(text, language)
    if rule is None:
        return ParsedRule(None, "", language, problems)
    return ParsedRule(rule, read_back(rule, language), language, [])


__all__ = ["ParseProblem", "ParsedRule", "parse_rule", "read_back"]
