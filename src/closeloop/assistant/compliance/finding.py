"""What the compliance checker reports: one :class:`Finding` per risky phrase.

Its own module so that the plain path (:mod:`.plain_path`, compiled by mypyc when it can be) and
the matcher share the class without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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
