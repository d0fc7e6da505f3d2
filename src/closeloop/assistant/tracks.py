"""Suggested talk tracks for an objection and competitor battlecards (AST-3), grounded and checked.

Talk tracks come from the knowledge passages that best answer the objection (hybrid retrieval,
within the caller's collection access, ranked with the reps' verdicts): each track is the
passage's sentences that share the most words with the objection, cited to the document and
passage. A battlecard gathers what the organization knows about one competitor: the knowledge
passages that name it and the logged activities (calls, visits, notes) that mention it — through
the caller's row scope and field masks. Every statement passes the compliance checker
(:mod:`closeloop.assistant.guard`) before it is shown: competitor notes are where disparaging
claims hide.

A competitor goes by several names: a card headed "竞品 迈瑞（Mindray）" names it twice, and a rep
may ask for "Mindray" where the card only says 迈瑞. The names asked for are resolved against the
competitor cards — their headings and the aliases they give in brackets, then, when no card names
it, by meaning (the multilingual embedding of the name against each card's name, taken only when
it is both close and clearly closer than any other card's) — and the card's passages and the field
notes are searched under every resolved name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from closeloop.assistant.briefs import Statement, best_sentences, is_cjk, passage_citation, sentences
from closeloop.assistant.knowledge import embedding
from closeloop.assistant.knowledge import service as knowledge
from closeloop.assistant.knowledge.chunking import SEPARATOR
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


#: an article's own title after its label names a competitor's card ("第二条 竞品 迈瑞（Mindray）…")
_COMPETITOR_ARTICLE = re.compile(
    r"^\s*(?:第[一二三四五六七八九十百千零〇两\d]+条|Article\s+\d+[A-Za-z]?)[\s　.:：]*"
    r"(?:竞品|竞争对手|competitors?\b|vs\.?\s)",
    re.I,
)
#: punctuation: a line with none, short and first in its document, is the document's title
_PUNCTUATION = re.compile(r"[，。；：！？、,.;:!?]")
_TITLE_CHARS = 30


def _about_a_competitor(passage: knowledge.Passage) -> bool:
    """Whether the passage is a competitor's card: its heading says so, or it is an article whose own
    title does (an article titled on its line, "第二条 竞品 迈瑞 …", has the heading 第二条). A
    sentence that merely mentions a rival ("客户说对手更便宜时，…") is an answer, not a card."""
    return bool(_COMPETITOR_HEADING.search(passage.heading or "") or _COMPETITOR_ARTICLE.match(passage.text))


def _a_title(passage: knowledge.Passage) -> bool:
    """Whether the passage is only its document's title: the first passage, one short line without
    any punctuation ("产品手册 Shared"); quoted as a track it would say "可以这样回应：产品手册"."""
    text = passage.text.strip()
    return passage.start == 0 and "\n" not in text and len(text) <= _TITLE_CHARS and not _PUNCTUATION.search(text)


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


#: a bracketed alias in a card's heading: 迈瑞（Mindray）, Mindray (迈瑞)
_ALIAS = re.compile(r"[（(]([^（）()]{1,60})[）)]")
_NAME_NOISE = re.compile(r"竞品|竞争对手|对手|competitors?|[:：·|—–]", re.I)
#: what separates two names in a heading ("Philips / 飞利浦", "迈瑞 vs 我们")
_NAME_BREAK = re.compile(r"[/、,，;；]|\bvs\.?(?=\s|$)|\bversus\b|对比|相比", re.I)
#: the seller itself, on the other side of a "vs"
_OURSELVES = frozenset({"us", "we", "our", "ours", "我们", "我司", "我方", "本公司"})
#: a name matched by meaning must be at least this close to the card's name (cosine of the
#: multilingual-e5 embeddings: 迈瑞 / Mindray 0.81, unrelated company names 0.75–0.80) ...
MEANING_FLOOR = 0.80
#: ... and this much closer than to any other card's name
MEANING_MARGIN = 0.015


def competitor_names(heading: str) -> list[str]:
    """The names a competitor card's heading (its last part) gives: "竞品 迈瑞（Mindray）" →
    ``["迈瑞", "Mindray"]``; "Competitor: Philips / 飞利浦" → ``["Philips", "飞利浦"]``."""
    last = heading.split(SEPARATOR)[-1]
    parts = [_ALIAS.sub(" ", last), *_ALIAS.findall(last)]
    pieces = [piece for part in parts for piece in _NAME_BREAK.split(part)]
    found = [" ".join(_NAME_NOISE.sub(" ", piece).split()).strip("-– ") for piece in pieces]
    return [name for name in dict.fromkeys(found) if name and name.casefold() not in _OURSELVES]


def _by_meaning(asked: str, cards: dict[str, list[str]]) -> list[str]:
    """The names of the one card whose name means ``asked`` (another script, another language), or none."""
    labels = [(heading, name) for heading, names in cards.items() for name in names]
    if not labels:
        return []
    closeness = embedding.passages([name for _, name in labels]) @ embedding.query(asked)
    best: dict[str, float] = {}
    for (heading, _), value in zip(labels, closeness, strict=True):
        best[heading] = max(best.get(heading, -1.0), float(value))
    ranked = sorted(best.items(), key=lambda item: -item[1])
    heading, value = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else -1.0
    if value < MEANING_FLOOR or value - runner_up < MEANING_MARGIN:
        return []
    return cards[heading]


@dataclass
class Suggestions:
    kind: str  # talk_track or battlecard
    query: str
    sections: dict[str, list[Statement]] = field(default_factory=dict)
    #: a battlecard's competitor under every name it was found by (the name asked first)
    names: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "query": self.query,
            "names": self.names,
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
        if _about_a_competitor(passage) or _a_title(passage):
            # a competitor's card answers "why them", not the customer's objection: quoting its
            # strengths ("迈瑞的价格低于我们") to a customer who finds us expensive argues their case;
            # and a document's title line answers nothing
            continue
        quoted = best_sentences(passage.text, objection)
        if quoted in seen:  # the same words from two passages (a copied card) are one track
            continue
        seen.add(quoted)
        text = _lead_in(quoted, actor)
        statement = Statement(text, [passage_citation(passage, objection)], key=f"knowledge:{passage.chunk_id}")
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
    result = Suggestions("battlecard", competitor, {"knowledge": [], "field_notes": []}, [competitor])
    seen: set[str] = set()
    if actor.can(knowledge.READ):
        query = f"{competitor} 竞品 对比 优势 劣势 competitor comparison"
        passages = knowledge.search(session, actor, query, k=knowledge.MAX_K)
        result.names = _resolved(competitor, passages)
        names = [name.lower() for name in result.names]

        def names_it(text: str) -> bool:
            return any(name in text.lower() for name in names)

        for passage in passages:
            if not names_it(passage.text) and not names_it(passage.heading.split(SEPARATOR)[-1]):
                continue
            # each sentence once: a card whose heading repeats its first sentence said it twice
            found = [s for s in sentences(passage.text) if names_it(s)] or sentences(passage.text)
            found = [s for s in found if s not in seen][:3]
            if not found:
                continue
            seen.update(found)
            text = (" " if not is_cjk(passage.text) else "").join(found)
            statement = Statement(text, [passage_citation(passage, competitor)], key=f"knowledge:{passage.chunk_id}")
            result.sections["knowledge"].append(statement.guarded(lang))
            if len(result.sections["knowledge"]) >= k:
                break
    if actor.can(f"{ACTIVITIES.plural}:read"):
        names = [name.lower() for name in result.names]
        activities: dict[int, dict[str, Any]] = {}
        for name in result.names:  # the notes under each of the competitor's names, newest first
            page = records.read_page(session, actor, ACTIVITIES, {"q": name, "limit": str(k), "sort": "-occurred_at"})
            activities.update({item["id"]: item for item in page.items if item["id"] not in activities})
        newest = sorted(activities.values(), key=lambda a: (str(a.get("occurred_at") or ""), a["id"]), reverse=True)
        for activity in newest[:k]:
            fields = [f for f in ("subject", "outcome", "notes") if activity.get(f)]
            said = [str(activity[f]) for f in fields if any(n in str(activity[f]).lower() for n in names)] or [
                str(activity[f]) for f in fields
            ]
            text = _WORDS[lang]["note"].format(
                date=str(activity.get("occurred_at") or "")[:10], kind=activity.get("kind"), text="；".join(said)
            )
            cite = {"type": "activity", "id": activity["id"], "fields": fields}
            result.sections["field_notes"].append(Statement(text, [cite]).guarded(lang))
    return result


def _resolved(asked: str, passages: list[knowledge.Passage]) -> list[str]:
    """``asked`` and the other names of the competitor it names: those of a competitor card whose
    heading gives ``asked`` as a name (or alias), else of the one card whose name means it."""
    cards = {
        passage.heading: competitor_names(passage.heading)
        for passage in passages
        if _COMPETITOR_HEADING.search(passage.heading.split(SEPARATOR)[-1])
    }
    cards = {heading: names for heading, names in cards.items() if names}
    wanted = asked.casefold()
    literal = [name for names in cards.values() if any(n.casefold() == wanted for n in names) for name in names]
    others = literal or (_by_meaning(asked, cards) if not any(wanted in h.casefold() for h in cards) else [])
    return list(dict.fromkeys([asked, *others]))
