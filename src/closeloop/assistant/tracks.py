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

from closeloop.assistant.briefs import Statement, best_sentences, is_cjk, passage_citation, sentences
from closeloop.assistant.knowledge import service as knowledge
from closeloop.core.actor import Actor
from closeloop.core.errors import ValidationFailed
from closeloop.crm import records
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.governance.permissions import require

MAX_TRACKS = 10
_WORDS = {
    "zh_CN": {"track": "可以这样回应：{text}", "note": "{date} {kind}：{text}"},
    "en": {"track": "You could answer: {text}", "note": "{date} {kind}: {text}"},
}


#: headings of competitor cards (battlecard material, never a talk track)
_COMPETITOR_HEADING = re.compile(r"竞品|竞争对手|对手|competitor|\bvs\.?\b|\bversus\b", re.I)


def _lang(actor: Actor) -> str:
    return "en" if actor.locale.startswith("en") else "zh_CN"


def _lead_in(quoted: str, actor: Actor) -> str:
    """The track's lead-in in the language of what it quotes (a Chinese passage is not introduced
    with "You could answer:"); a quote in neither script takes the reader's language."""
    if is_cjk(quoted):
        return _WORDS["zh_CN"]["track"].format(text=quoted)
    if re.search(r"[A-Za-z]", quoted):
        return _WORDS["en"]["track"].format(text=quoted)
    return _WORDS[_lang(actor)]["track"].format(text=quoted)


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
    seen: set[str] = set()
    for passage in knowledge.search(session, actor, objection, k=k):
        if _COMPETITOR_HEADING.search(passage.heading or ""):
            # a competitor's card answers "why them", not the customer's objection: quoting its
            # strengths ("迈瑞的价格低于我们") to a customer who finds us expensive argues their case
            continue
        quoted = best_sentences(passage.text, objection)
        if quoted in seen:  # the same words from two passages (a copied card) are one track
            continue
        seen.add(quoted)
        text = _lead_in(quoted, actor)
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
    seen: set[str] = set()
    if actor.can(knowledge.READ):
        query = f"{competitor} 竞品 对比 优势 劣势 competitor comparison"
        for passage in knowledge.search(session, actor, query, k=knowledge.MAX_K):
            if name not in passage.text.lower():
                continue
            # each sentence once: a card whose heading repeats its first sentence said it twice
            found = [s for s in sentences(passage.text) if name in s.lower()] or sentences(passage.text)
            found = [s for s in found if s not in seen][:3]
            if not found:
                continue
            seen.update(found)
            text = (" " if not is_cjk(passage.text) else "").join(found)
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
