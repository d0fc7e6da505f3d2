"""Visit briefs (AST-3, first part): what a rep should know before visiting an account, assembled
from the CRM records the rep may see and the knowledge passages they may read, every statement
with its citation (the record and fields, or the document and passage it comes from).

Without an LLM the brief is a grounded composition: each statement is written from one record's
visible fields by a fixed sentence per kind, in the reader's language. Records come through
``records.read_one`` / ``read_page`` — the scope door and the field masks — so a masked amount is
simply not in the brief, and a record outside the caller's row scope never appears. Passages come
from :func:`knowledge.service.search`, within the caller's collection access. Every statement then
passes the compliance checker (:mod:`closeloop.assistant.guard`): a risky span is cut from what is
shown, and the findings with their citation and compliant rewrite travel with the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from closeloop.assistant import guard
from closeloop.assistant.knowledge import service as knowledge
from closeloop.assistant.knowledge.text import query_tokens, tokens
from closeloop.core.actor import Actor
from closeloop.core.money import written
from closeloop.crm import records
from closeloop.crm.accounts.service import ACCOUNTS
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.crm.contacts.service import CONTACTS
from closeloop.crm.enums import (
    ActivityKind,
    DecisionRole,
    LeadSource,
    LeadStatus,
    OrderStatus,
    Stage,
    TicketPriority,
    TicketStatus,
)
from closeloop.crm.leads.service import LEADS
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.orders.service import ORDERS
from closeloop.crm.tickets.service import TICKETS
from closeloop.integrations.importing.labels import display_label
from closeloop.quality.similar import similar_accounts

LEAD_SECTIONS = ("lead", "said", "similar", "knowledge", "next_step")
SECTIONS = ("account", "decision_chain", "opportunities", "tickets", "orders", "interactions", "knowledge")
_TEXT = {
    "zh_CN": {
        "account": "{name}：行业 {industry}，{place}。",
        "contact": "{name}（{title}）— {role}。",
        "opportunity": "商机「{name}」处于 {stage} 阶段{amount}{close}。",
        "amount": "，金额 {value}",
        "close": "，预计 {value} 成交",
        "ticket": "未关闭工单「{subject}」，优先级 {priority}，状态 {status}，{opened} 开单。",
        "order": "订单 {number}：{date} 下单{total}，状态 {status}。",
        "total": "，金额 {value}",
        "activity": "{date} {kind}：{subject}{outcome}。",
        "outcome": "，结果：{value}",
        "passage": "{heading}：{text}",
        "unknown": "未填",
        "locale": "zh_CN",
        "lead": "线索 {name}（{title}）来自 {company}，来源 {source}，状态 {status}。",
        "said": "线索留言：{text}",
        "similar": "相似客户「{name}」（{city}）{won}。",
        "won": "已有赢单",
        "not_won": "尚无赢单",
        "next_similar": "下一步：联系线索前先查看相似客户「{name}」的记录，转化时合并到该客户。",
        "next_call": "下一步：{reach}联系线索，确认需求后决定转化或取消资格。",
        "reach_by": "通过 {value} ",
        "reach": "联系方式：{value}。",
    },
    "en": {
        "account": "{name}: industry {industry}, {place}.",
        "contact": "{name} ({title}) — {role}.",
        "opportunity": "Opportunity “{name}” is at stage {stage}{amount}{close}.",
        "amount": ", amount {value}",
        "close": ", expected to close {value}",
        "ticket": "Open ticket “{subject}”, priority {priority}, status {status}, opened {opened}.",
        "order": "Order {number}: placed {date}{total}, status {status}.",
        "total": ", total {value}",
        "activity": "{date} {kind}: {subject}{outcome}.",
        "outcome": ", outcome: {value}",
        "passage": "{heading}: {text}",
        "unknown": "not set",
        "locale": "en",
        "lead": "Lead {name} ({title}) from {company}, source {source}, status {status}.",
        "said": "What the lead said: {text}",
        "similar": "Similar account “{name}” ({city}) {won}.",
        "won": "has won deals",
        "not_won": "no won deal yet",
        "next_similar": "Next step: read the similar account “{name}” before calling; merge into it on conversion.",
        "next_call": "Next step: contact the lead {reach}to qualify, then convert or disqualify.",
        "reach_by": "by {value} ",
        "reach": "Reach them at {value}.",
    },
}


@dataclass
class Statement:
    text: str
    citations: list[dict[str, Any]]
    #: what the reps' verdicts are about (``knowledge:<chunk id>``, ``<record type>:<id>``)
    key: str = ""
    compliance: list[dict[str, Any]] = field(default_factory=list)
    original: str | None = None
    rephrased: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": self.citations,
            "key": self.key,
            "compliance": self.compliance,
            "original": self.original,
            "rephrased": self.rephrased,
        }

    def guarded(self, lang: str) -> Statement:
        """This statement as it may be shown: checked, rewritten when risky, optionally polished."""
        if not self.key and self.citations:
            first = self.citations[0]
            self.key = (
                f"knowledge:{first['chunk_id']}" if first["type"] == "knowledge" else f"{first['type']}:{first['id']}"
            )
        checked = guard.guarded(self.text, lang)
        self.text, self.compliance = checked.text, checked.compliance()
        self.original, self.rephrased = checked.original, checked.rephrased
        return self


@dataclass
class Brief:
    account_id: int
    title: str
    sections: dict[str, list[Statement]] = field(default_factory=dict)
    #: what the knowledge section was retrieved for (the request the verdicts on it answer)
    query: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "title": self.title,
            "query": self.query,
            "sections": [
                {"key": key, "statements": [s.as_dict() for s in statements]}
                for key, statements in self.sections.items()
            ],
        }


def _cite(noun: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {"type": noun, "id": record["id"], "fields": [f for f in fields if record.get(f) not in (None, "")]}


def _value(record: dict[str, Any], name: str, words: dict[str, str]) -> str:
    value = record.get(name)
    return words["unknown"] if value in (None, "") else str(value)


def _label(record: dict[str, Any], name: str, enum: type[StrEnum], words: dict[str, str]) -> str:
    """A picklist value in the reader's language (决策者 / Decision maker, not ``decision_maker``)."""
    value = record.get(name)
    return words["unknown"] if value in (None, "") else display_label(enum, value, words["locale"])


def _day(value: Any) -> str:
    return str(value)[:10] if value else ""


def _page(session: Session, actor: Actor, record_type: records.RecordType[Any], params: dict[str, str]) -> list[Any]:
    if not actor.can(f"{record_type.plural}:read"):
        return []
    return list(records.read_page(session, actor, record_type, params).items)


def account_brief(session: Session, actor: Actor, account_id: int, *, passages: int = 3) -> Brief:
    """The visit brief of one account the actor may see (404 otherwise)."""
    words = _TEXT["en" if actor.locale.startswith("en") else "zh_CN"]
    account = records.read_one(session, actor, ACCOUNTS, account_id)
    brief = Brief(account_id, str(account.get("name") or account_id))
    place = " ".join(str(account[f]) for f in ("province", "city") if account.get(f)) or words["unknown"]
    brief.sections["account"] = [
        Statement(
            words["account"].format(name=account.get("name"), industry=_value(account, "industry", words), place=place),
            [_cite("account", account, ["name", "industry", "province", "city"])],
        )
    ]
    by_account = {"account_id": str(account_id)}
    contacts = _page(session, actor, CONTACTS, {**by_account, "limit": "100", "sort": "name"})
    brief.sections["decision_chain"] = [
        Statement(
            words["contact"].format(
                name=c.get("name"),
                title=_value(c, "title", words),
                role=_label(c, "decision_role", DecisionRole, words),
            ),
            [_cite("contact", c, ["name", "title", "decision_role"])],
        )
        for c in contacts
        if c.get("decision_role")
    ]
    opportunities = _page(session, actor, OPPORTUNITIES, {**by_account, "limit": "100", "sort": "-opened_at"})
    open_opportunities = [o for o in opportunities if o.get("stage") not in ("won", "lost")]
    brief.sections["opportunities"] = [
        Statement(
            words["opportunity"].format(
                name=o.get("name"),
                stage=_label(o, "stage", Stage, words),
                amount=words["amount"].format(value=written(o["amount"], o.get("currency")))
                if o.get("amount") is not None
                else "",
                close=words["close"].format(value=o["expected_close_date"]) if o.get("expected_close_date") else "",
            ),
            [_cite("opportunity", o, ["name", "stage", "amount", "expected_close_date"])],
        )
        for o in open_opportunities
    ]
    tickets = _page(session, actor, TICKETS, {**by_account, "limit": "100", "sort": "-opened_at"})
    open_tickets = [t for t in tickets if t.get("status") not in ("resolved", "closed")]
    brief.sections["tickets"] = [
        Statement(
            words["ticket"].format(
                subject=t.get("subject"),
                priority=_label(t, "priority", TicketPriority, words),
                status=_label(t, "status", TicketStatus, words),
                opened=_day(t.get("opened_at")),
            ),
            [_cite("ticket", t, ["subject", "priority", "status", "opened_at"])],
        )
        for t in open_tickets
    ]
    orders = _page(session, actor, ORDERS, {**by_account, "limit": "5", "sort": "-ordered_at"})
    brief.sections["orders"] = [
        Statement(
            words["order"].format(
                number=o.get("number"),
                date=_day(o.get("ordered_at")),
                total=words["total"].format(value=written(o["total"], o.get("currency")))
                if o.get("total") is not None
                else "",
                status=_label(o, "status", OrderStatus, words),
            ),
            [_cite("order", o, ["number", "ordered_at", "total", "status"])],
        )
        for o in orders
    ]
    activities = _page(session, actor, ACTIVITIES, {**by_account, "limit": "5", "sort": "-occurred_at"})
    brief.sections["interactions"] = [
        Statement(
            words["activity"].format(
                date=_day(a.get("occurred_at")),
                kind=_label(a, "kind", ActivityKind, words),
                subject=_value(a, "subject", words),
                outcome=words["outcome"].format(value=a["outcome"]) if a.get("outcome") else "",
            ),
            [_cite("activity", a, ["occurred_at", "kind", "subject", "outcome"])],
        )
        for a in activities
    ]
    brief.sections["knowledge"] = []
    if actor.can(knowledge.READ) and passages:
        # what the visit is about: the open deals and tickets, else the account's industry
        topics = [str(o.get("name")) for o in open_opportunities[:3]] + [
            str(t.get("subject")) for t in open_tickets[:2]
        ]
        query = " ".join(topics) or str(account.get("industry") or account.get("name"))
        brief.query = query
        brief.sections["knowledge"] = _passages(session, actor, query, passages, words)
    lang = "en" if actor.locale.startswith("en") else "zh_CN"
    for statements in brief.sections.values():
        for statement in statements:
            statement.guarded(lang)
    return brief


#: a citation's quote of its passage is cut to this many characters
CITATION_QUOTE_CHARS = 60


def passage_citation(passage: knowledge.Passage, query: str = "") -> dict[str, Any]:
    """How a statement cites a knowledge passage: the reader's name for it (document title ›
    heading, article), a short quote (its sentence nearest ``query``) and the link to it in its
    document; the document, heading and character span stay as data."""
    return {
        "type": "knowledge",
        "document_id": passage.document_id,
        "filename": passage.filename,
        "chunk_id": passage.chunk_id,
        "heading": passage.heading,
        "label": passage.label,
        "quote": best_sentences(passage.text, query, 1, limit=CITATION_QUOTE_CHARS),
        "link": passage.link,
        "start": passage.start,
        "end": passage.end,
    }


#: a quoted passage is cut to its sentences nearest the query, at most this many characters
QUOTE_CHARS = 240
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]?|[^.\n]+(?:\.(?=\s)|\.$|$)")


def sentences(text: str) -> list[str]:
    """The text's sentences (Chinese and English punctuation), each once, in order."""
    found = [s.strip() for s in _SENTENCE.findall(" ".join(text.split())) if len(s.strip()) > 1]
    return list(dict.fromkeys(found))


def is_cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def best_sentences(text: str, query: str, count: int = 2, *, limit: int | None = None) -> str:
    """The ``count`` sentences of ``text`` sharing the most words with ``query``, in their order (each
    once); with ``limit``, cut to that many characters at most (an ellipsis marks the cut)."""
    wanted = set(query_tokens(query))
    found = sentences(text)
    if not found:
        quoted = " ".join(text.split())
    else:
        scored = sorted(range(len(found)), key=lambda i: (-len(wanted & set(tokens(found[i]))), i))[:count]
        quoted = "".join(found[i] if is_cjk(found[i]) else found[i] + " " for i in sorted(scored)).strip()
    if limit is not None and len(quoted) > limit:
        quoted = quoted[: limit - 1].rstrip() + "…"
    return quoted


def _passages(session: Session, actor: Actor, query: str, k: int, words: dict[str, str]) -> list[Statement]:
    """The passages answering ``query``, each quoted by its sentences nearest the query (a whole law
    article of 800 characters told the rep nothing about the account); the citation keeps the
    passage's span, so the whole text is one click away."""
    if not actor.can(knowledge.READ) or not k or not query.strip():
        return []
    return [
        Statement(
            words["passage"].format(
                heading=passage.heading or passage.filename,
                text=best_sentences(passage.text, query, limit=QUOTE_CHARS),
            ),
            [passage_citation(passage, query)],
        )
        for passage in knowledge.search(session, actor, query, k=k)
    ]


def lead_brief(session: Session, actor: Actor, lead_id: int, *, passages: int = 3) -> Brief:
    """The brief of one lead the actor may see (404 otherwise): who it is and what it said, the
    similar accounts the actor may see (the leads inbox's check, row scope respected) and whether
    they were won, knowledge passages the actor may read, and a suggested next step. Fields come
    through the field masks: a masked field is in no statement. Every statement is guarded."""
    lang = "en" if actor.locale.startswith("en") else "zh_CN"
    words = _TEXT[lang]
    lead = records.read_one(session, actor, LEADS, lead_id)
    company = str(lead.get("company") or lead.get("name") or lead_id)
    brief = Brief(lead_id, company)
    brief.sections["lead"] = [
        Statement(
            words["lead"].format(
                name=_value(lead, "name", words),
                title=_value(lead, "title", words),
                company=_value(lead, "company", words),
                source=_label(lead, "source", LeadSource, words),
                status=_label(lead, "status", LeadStatus, words),
            ),
            [_cite("lead", lead, ["name", "title", "company", "source", "status"])],
        )
    ]
    reach = [str(lead[f]) for f in ("mobile", "phone", "email") if lead.get(f)]
    if reach:
        brief.sections["lead"].append(
            Statement(
                words["reach"].format(value=" / ".join(reach)), [_cite("lead", lead, ["mobile", "phone", "email"])]
            )
        )
    said = " ".join(str(lead.get("notes") or "").split())
    brief.sections["said"] = (
        [Statement(words["said"].format(text=said), [_cite("lead", lead, ["notes"])])] if said else []
    )
    similar = similar_accounts(session, actor, lead.get("company") or lead.get("name"), limit=3)
    brief.sections["similar"] = []
    won_name: str | None = None
    for account in similar:
        won = bool(
            _page(session, actor, OPPORTUNITIES, {"account_id": str(account["id"]), "stage": "won", "limit": "1"})
        )
        if won and won_name is None:
            won_name = str(account["name"])
        brief.sections["similar"].append(
            Statement(
                words["similar"].format(
                    name=account["name"],
                    city=account.get("city") or words["unknown"],
                    won=words["won" if won else "not_won"],
                ),
                [_cite("account", account, ["name", "city"])],
            )
        )
    brief.query = " ".join(str(lead[f]) for f in ("company", "industry", "notes") if lead.get(f))[:200]
    brief.sections["knowledge"] = _passages(session, actor, brief.query, passages, words)
    first = won_name or (str(similar[0]["name"]) if similar else None)
    if first is not None:
        step = Statement(words["next_similar"].format(name=first), [_cite("lead", lead, ["company"])])
    else:
        step = Statement(
            words["next_call"].format(reach=words["reach_by"].format(value=reach[0]) if reach else ""),
            [_cite("lead", lead, ["mobile", "phone", "email"])],
        )
    brief.sections["next_step"] = [step]
    for statements in brief.sections.values():
        for statement in statements:
            statement.guarded(lang)
    return brief
