"""Full-text retrieval over the law texts on either database: passages are ranked by BM25 from an
inverted index of each collection kept in memory per collection and index key. The ranking must be
exactly BM25 over every ready passage of the searched collections — their statistics only, never
another organization's (FTS5's ``bm25()`` counted the whole table, across tenants) — a document
indexed or deleted must be seen by the next search, and SQLite and PostgreSQL must agree."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from closeloop.assistant.knowledge import embedding, index, service
from closeloop.assistant.knowledge.models import KnowledgeChunk
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from tests.assistant.conftest import chapter, law
from tests.factories import Tenant
from tests.samples import Api

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


def _bm25(db: Database, tenant: Tenant, collection_ids: list[int], question: str, limit: int) -> list[int]:
    """BM25 over every ready passage of the collections, by its definition (K1 = 1.2, B = 0.75)."""
    with db.reading(tenant["admin"].actor) as session:
        rows = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.tokens)
            .where(tenant_clause(tenant.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id.in_(collection_ids))
        ).all()
    documents = {chunk_id: tokens.split() for chunk_id, tokens in rows}
    return bm25_by_definition(documents, query_tokens(question), limit)


def bm25_by_definition(documents: dict[int, list[str]], words: list[str], limit: int) -> list[int]:
    """The first ``limit`` passages by BM25 as defined (K1 = 1.2, B = 0.75), ties by id: the oracle."""
    frequency = Counter(term for terms in documents.values() for term in set(terms))
    lengths = [len(terms) for terms in documents.values() if terms]
    average = sum(lengths) / len(lengths) if lengths else 1.0
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


def test_the_ranking_is_bm25_over_every_passage_of_the_searched_collections(
    db: Database, tenant: Tenant, laws: int
) -> None:
    admin = tenant["admin"].actor
    with db.reading(admin) as session:
        collections = {laws: (tenant.organization_id, service.get_collection(session, admin, laws).index_key)}
        for question in QUESTIONS:
            for limit in (1, 3, 10, 40):
                found = index.fulltext(session, collections, question, limit)
                assert found == _bm25(db, tenant, [laws], question, limit), (question, limit)


def test_several_collections_are_ranked_by_their_statistics_together(db: Database, tenant: Tenant, laws: int) -> None:
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        second = service.create_collection(session, admin, name="药品").id
    _index(db, tenant, second, "药品管理法.md", chapter(law("drug_administration_law"), "第七章"))
    with db.reading(admin) as session:
        collections = {
            cid: (tenant.organization_id, service.get_collection(session, admin, cid).index_key)
            for cid in (laws, second)
        }
        for question in [*QUESTIONS, "药品广告需要经过哪个部门批准"]:
            found = index.fulltext(session, collections, question, 10)
            assert found == _bm25(db, tenant, [laws, second], question, 10), question
            assert found or question.isascii()


def test_the_statistics_are_counted_once_per_index_key_and_a_new_document_is_seen_at_once(
    db: Database, tenant: Tenant, laws: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[int] = []
    load = index._load

    def counting(session: Any, organization_id: int, collection_id: int) -> index.TextIndex:
        counted.append(collection_id)
        return load(session, organization_id, collection_id)

    monkeypatch.setattr(index, "_load", counting)
    index.texts.clear()
    question = "CT-5000 机房承重不低于每平方米八百公斤"
    before = _fulltext(db, tenant, question)
    _fulltext(db, tenant, QUESTIONS[0])
    assert counted == [laws]  # a warm question asks nothing of the database for its full text

    added = _index(
        db, tenant, laws, "安装规范.md", "# 安装规范\n\nCT-5000 安装前须确认机房承重不低于每平方米八百公斤。\n"
    )
    hits = _fulltext(db, tenant, question)
    with db.reading(tenant["admin"].actor) as session:
        new = list(session.scalars(select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == added)))
    assert hits[0] in new
    assert hits != before
    assert counted == [laws] * 2
    assert hits == _bm25(db, tenant, [laws], question, 10)

    with db.unit_of_work(tenant["admin"].actor) as session:
        service.delete_document(session, tenant["admin"].actor, laws, added)
    assert _fulltext(db, tenant, question) == before
    assert counted == [laws] * 3


#: words of the questions above, for another organization's passages
_SHARED_WORDS = [
    "保证",
    "疗效",
    "广告",
    "最高级",
    "最佳",
    "国家级",
    "虚假",
    "说明书",
    "标签",
    "查验",
    "证明文件",
    "器械",
]


def test_one_organizations_ranking_does_not_move_with_another_organizations_passages(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    laws: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the API, on either database: the same questions in organization A return the same
    passages, ranks and scores before and after organization B indexes 300 passages full of the
    questions' words (FTS5's table-wide ``bm25()`` let them shift A's idf and so A's order)."""
    admin = Api(client, tenant["admin"])

    def answers() -> dict[tuple[str, str], list[tuple[int, float, Any]]]:
        found: dict[tuple[str, str], list[tuple[int, float, Any]]] = {}
        for mode in ("fulltext", "hybrid"):
            for question in QUESTIONS:
                response = admin.request("POST", "/knowledge/search", json={"query": question, "k": 10, "mode": mode})
                assert response.status_code == 200, response.text
                found[question, mode] = [(h["chunk_id"], h["score"], h["ranks"]) for h in response.json()["items"]]
        return found

    before = answers()
    assert all(before[question, "fulltext"] for question in QUESTIONS[:5])

    # the other organization's passages need no model: the test is about their words
    monkeypatch.setattr(
        embedding, "passages", lambda texts: np.tile(np.eye(1, embedding.DIMENSIONS, dtype=np.float32), (len(texts), 1))
    )
    other = other_tenant["admin"].actor
    with db.unit_of_work(other) as session:
        collection_id = service.create_collection(session, other, name="同词").id
    sections = [
        f"## 第{n}节\n\n{' '.join(_SHARED_WORDS[n % 3 :: 1 + n % 4])}。{_SHARED_WORDS[n % len(_SHARED_WORDS)]}。\n"
        for n in range(300)
    ]
    _index(db, other_tenant, collection_id, "同词.md", "# 同词\n\n" + "\n".join(sections))
    with db.reading(other) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(KnowledgeChunk).where(KnowledgeChunk.collection_id == collection_id)
            )
            == 300
        )

    assert answers() == before


_ALPHABET = ["广告", "疗效", "保证", "器械", "a", "b", "c"]
_document = st.lists(st.sampled_from(_ALPHABET), max_size=8).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(
    collections=st.lists(st.lists(_document, max_size=12), min_size=1, max_size=3),
    words=st.lists(st.sampled_from([*_ALPHABET, "absent"]), min_size=1, max_size=4, unique=True),
    limit=st.integers(min_value=1, max_value=10),
)
def test_ranking_equals_bm25_by_its_definition_over_the_collections_together(
    collections: list[list[str]], words: list[str], limit: int
) -> None:
    """The in-memory index and its scoring (no database): any passages, several collections searched
    together (their statistics summed), any question words, repeats and ties included."""
    numbered: list[list[tuple[int, str]]] = []
    next_id = 1
    for texts in collections:
        numbered.append([(next_id + offset, tokens) for offset, tokens in enumerate(texts)])
        next_id += len(texts) + 3
    parts = [index.build(passages) for passages in numbered]

    documents = {chunk_id: tokens.split() for passages in numbered for chunk_id, tokens in passages}
    expected = bm25_by_definition(documents, words, limit)
    assert index.rank(parts, words, limit) == expected
