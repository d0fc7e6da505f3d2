"""Suggested talk tracks for an objection and competitor battlecards (AST-3), grounded and checked.

Talk tracks come from the knowledge passages that best answer the objection (hybrid retrieval,
within the caller's collection access, ranked with the reps' verdicts): each track is the
passage's sentences that share the most words with the objection, cited to the document and
passage. A battlecard gathers what the organization knows about one competitor: the knowledge
passages that name it and the logged activities (calls, visits, notes) that mention it — through
the caller's row scope and field masks. Every statement passes the compliance checker
(:mod:`closeloop.assistant.guard`) before it is shown: competitor notes are where disparaging
claims hide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from closeloop.assistant.briefs import Statement, passage_citation
from closeloop.assistant.knowledge import service as knowledge
from closeloop.assistant.knowledge.text import query_tokens, tokens
from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.governance.permissions import require

MAX_TRACKS = 10
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]?|[^.\n]+(?:\.(?=\s)|\.$|$)")
_WORDS = {
    "zh_CN": {"track": "可以这样回应：{text}", "note": "{date} {kind}：{text}"},
    "en": {"track": "You could answer: {text}", "note": "{date} {kind}: {text}"},
}


def _lang(actor: Actor) -> str:
    return "en" if actor.locale.startswith("en") else "zh_CN"


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(" ".join(text.split())) if s.strip() and len(s.strip()) > 1]


def _best_sentences(text: str, query: str, count: int = 2) -> str:
    """The ``count`` sentences of ``text`` sharing the most words with ``query``, in their order."""
    wanted = set(query_tokens(query))
    sentences = _sentences(text)
    if not sentences:
        return " ".join(text.split())
    scored = sorted(range(len(sentences)), key=lambda i: (-len(wanted & set(tokens(sentences[i]))), i))[:count]
    return "".join(sentences[i] if _is_cjk(sentences[i]) else sentences[i] + " " for i in sorted(scored)).strip()


def _is_cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


@dataclass
class Suggestions:
    kind: str  # talk_track or battlecard
    query: str
    sections: dict[str, list[Statement]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "query": self.query,
            "sections": [
                {"key": key, "statements": [s.as_dict() for s in statements]}
                for key, statements in self.sections.items()
            ],
        }


def talk_tracks(session: Session, actor: Actor, objection: str, *, k: int = 3) -> Suggestions:
    """Up to ``k`` talk tracks answering ``objection``, each cited to its passage and checked."""
    require(actor, knowledge.READ)
    objection = objection.strip()
    if not objection:
        raise ValidationFailed.one("objection", "say what the customer objected", "required")
    if not 1 <= k <= MAX_TRACKS:
        raise ValidationFailed.one("k", f"k must be between 1 and {MAX_TRACKS}")
    lang = _lang(actor)
    result = Suggestions("talk_track", objection, {"tracks": []})
    for passage in knowledge.search(session, actor, objection, k=k):
        text = _WORDS[lang]["track"].format(text=_best_sentences(passage.text, objection))
        statement = Statement(text, [passage_citation(passage)], key=f"knowledge:{passage.chunk_id}")
        result.sections["tracks"].append(statement.guarded(lang))
    return result


def battlecard(session: Session, actor: Actor, competitor: str, *, k: int = 5) -> Suggestions:
    """What the organization knows about ``competitor``: passages naming it and activity notes
    mentioning it, each cited and checked."""
    competitor = competitor.strip()
    if not competitor:
        raise ValidationFailed.one("competitor", "name the competitor", "required")
    if not 1 <= k <= MAX_TRACKS:
        raise ValidationFailed.one("k", f"k must be between 1 and {MAX_TRACKS}")
    lang = _lang(actor)
    result = Suggestions("battlecard", competitor, {"knowledge": [], "field_notes": []})
    name = competitor.lower()
    if actor.can(knowledge.READ):
        query = f"{competitor} 竞品 对比 优势 劣势 competitor comparison"
        for passage in knowledge.search(session, actor, query, k=knowledge.MAX_K):
            if name not in passage.text.lower():
                continue
            sentences = [s for s in _sentences(passage.text) if name in s.lower()] or _sentences(passage.text)
            text = (" " if not _is_cjk(passage.text) else "").join(sentences[:3])
            statement = Statement(text, [passage_citation(passage)], key=f"knowledge:{passage.chunk_id}")
            result.sections["knowledge"].append(statement.guarded(lang))
            if len(result.sections["knowledge"]) >= k:
                break
    if actor.can(f"{ACTIVITIES.plural}:read"):
        page = records.read_page(session, actor, ACTIVITIES, {"q": competitor, "limit": str(k), "sort": "-occurred_at"})
        for activity in page.items:
            fields = [f for f in ("subject", "outcome", "notes") if activity.get(f)]
            said = [str(activity[f]) for f in fields if name in str(activity[f]).lower()] or [
                str(activity[f]) for f in fields
            ]
            text = _WORDS[lang]["note"].format(
                date=str(activity.get("occurred_at") or "")[:10], kind=activity.get("kind"), text="；".join(said)
            )
            cite = {"type": "activity", "id": activity["id"], "fields": fields}
            result.sections["field_notes"].append(Statement(text, [cite]).guarded(lang))
    return result
