"""Full-text retrieval over the law texts on either database. On PostgreSQL the passages are scored
by BM25 from corpus statistics kept in memory per collection and index key: the ranking must be
exactly BM25 over every passage (what the former per-question counts gave at this size), whether
or not the question's common words are left out of the candidate query, and a document indexed
or deleted must be seen by the next search."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from closeloop.assistant.knowledge import index, service
from closeloop.assistant.knowledge.models import KnowledgeChunk
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from tests.assistant.conftest import chapter, law
from tests.factories import Tenant

QUESTIONS = [
    "医疗器械广告能否保证疗效",
    "广告中能否使用国家级、最高级、最佳等用语",
    "虚假广告的认定",
    "医疗器械说明书和标签应当标明哪些事项",
    "广告经营者 广告发布者 查验 证明文件",
    "Can an advertisement for a medical device promise a cure rate?",
]


def _index(db: Database, tenant: Tenant, collection_id: int, filename: str, content: str) -> int:
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        document_id = service.add_document(
            session, admin, collection_id, filename=filename, content=content.encode()
        ).id
    assert service.index_document(db, tenant.organization_id, document_id) == "ready"
    return document_id


@pytest.fixture
def laws(db: Database, tenant: Tenant) -> int:
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        collection_id = service.create_collection(session, admin, name="法规").id
    _index(db, tenant, collection_id, "广告法.md", chapter(law("advertising_law"), "第二章"))
    _index(db, tenant, collection_id, "医疗器械.md", chapter(law("medical_device_supervision_regulation"), "第五章"))
    return collection_id


def _bm25(db: Database, tenant: Tenant, collection_id: int, question: str, limit: int) -> list[int]:
    """BM25 over every ready passage of the collection, by its definition (K1 = 1.2, B = 0.75)."""
    with db.reading(tenant["admin"].actor) as session:
        rows = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.tokens)
            .where(tenant_clause(tenant.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection_id)
        ).all()
    documents = {chunk_id: tokens.split() for chunk_id, tokens in rows}
    frequency = Counter(term for terms in documents.values() for term in set(terms))
    lengths = [len(terms) for terms in documents.values() if terms]
    average = sum(lengths) / len(lengths)
    words = query_tokens(question)
    scores: dict[int, float] = {}
    for chunk_id, terms in documents.items():
        counts = Counter(terms)
        norm = 1.2 * (1 - 0.75 + 0.75 * len(terms) / average)
        score = sum(
            math.log(1 + (len(documents) - frequency[w] + 0.5) / (frequency[w] + 0.5))
            * counts[w]
            * 2.2
            / (counts[w] + norm)
            for w in words
            if counts[w]
        )
        if score:
            scores[chunk_id] = score
    return sorted(scores, key=lambda chunk_id: (-scores[chunk_id], chunk_id))[:limit]


def _fulltext(db: Database, tenant: Tenant, question: str, k: int = 10) -> list[int]:
    with db.reading(tenant["admin"].actor) as session:
        return [
            p.chunk_id
            for p in service.search(session, tenant["admin"].actor, question, k=k, mode="fulltext", learn=False)
        ]


@pytest.mark.parametrize("candidates", [index.CANDIDATES, 12, 6, 1])
def test_on_postgresql_the_ranking_is_bm25_over_every_passage_with_or_without_common_words(
    db: Database, tenant: Tenant, laws: int, candidates: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``candidates`` bounds the passages the rarest words may match before the common ones are
    left out of the candidate query: the default takes every word here; 12 and 6 leave common words
    out (the bound proves the ranking, or the next word is taken, or too few passages send the
    question to ``ts_rank_cd``); 1 always falls back to ``ts_rank_cd``."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite ranks inside FTS5")
    monkeypatch.setattr(index, "CANDIDATES", candidates)
    admin = tenant["admin"].actor
    with db.reading(admin) as session:
        collections = {laws: (tenant.organization_id, service.get_collection(session, admin, laws).index_key)}
        for question in QUESTIONS:
            for limit in (1, 3, 10):
                found = index.fulltext(session, collections, question, limit)
                assert found == _bm25(db, tenant, laws, question, limit), (question, limit)


def test_the_statistics_are_counted_once_per_index_key_and_a_new_document_is_seen_at_once(
    db: Database, tenant: Tenant, laws: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[int] = []
    count = index._count

    def counting(session: Any, organization_id: int, collection_id: int) -> index.Statistics:
        counted.append(collection_id)
        return count(session, organization_id, collection_id)

    monkeypatch.setattr(index, "_count", counting)
    index.statistics.clear()
    question = "CT-5000 机房承重不低于每平方米八百公斤"
    before = _fulltext(db, tenant, question)
    _fulltext(db, tenant, QUESTIONS[0])
    expected_counts = [laws] if db.dialect == "postgresql" else []
    assert counted == expected_counts  # a warm question asks nothing of the statistics

    added = _index(
        db, tenant, laws, "安装规范.md", "# 安装规范\n\nCT-5000 安装前须确认机房承重不低于每平方米八百公斤。\n"
    )
    hits = _fulltext(db, tenant, question)
    with db.reading(tenant["admin"].actor) as session:
        new = list(session.scalars(select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == added)))
    assert hits[0] in new
    assert hits != before
    assert counted == expected_counts * 2
    if db.dialect == "postgresql":
        assert hits == _bm25(db, tenant, laws, question, 10)

    with db.unit_of_work(tenant["admin"].actor) as session:
        service.delete_document(session, tenant["admin"].actor, laws, added)
    assert _fulltext(db, tenant, question) == before
    assert counted == expected_counts * 3
