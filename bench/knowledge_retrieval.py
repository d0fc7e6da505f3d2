"""Retrieval quality and speed of the knowledge base on the real law texts (``cn-regulations``).

All seven laws are uploaded into one collection of a fresh SQLite database (or PostgreSQL with
``--url``) and indexed as the worker does. A hand-made question set — Chinese questions a rep
might ask and English ones, each with the one article that answers it — is searched three ways:
full text only, vectors only and hybrid (reciprocal-rank fusion), plus a plain ``LIKE`` scan as the
baseline (chunks ranked by how many of the query's words they contain). Reported: hit@5 and MRR@10
per method, query latency p50/p95 as ratios against the LIKE scan, and indexing throughput against
a plain insert of the same chunks without any index.

    nice -n 10 .venv/bin/python -m bench.knowledge_retrieval [--url postgresql://…]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import or_, select
from tests.conftest import shared_data

from closeloop.assistant.knowledge import service
from closeloop.assistant.knowledge.chunking import chunk_text
from closeloop.assistant.knowledge.models import KnowledgeChunk
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.core.actor import Actor
from closeloop.db.migrate import upgrade
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database, connect
from closeloop.org import service as org_service

#: (question, law file prefix, article) — the article that answers the question
QUESTIONS: list[tuple[str, str, str]] = [
    ("医疗器械广告能否保证疗效或者说明治愈率", "advertising_law", "第十六条"),
    ("广告里能不能用国家级、最高级、最佳这样的词", "advertising_law", "第九条"),
    ("保健食品广告不得含有哪些内容", "advertising_law", "第十八条"),
    ("招商广告承诺投资回报有什么限制", "advertising_law", "第二十五条"),
    ("广告代言人推荐自己没有使用过的商品", "advertising_law", "第三十八条"),
    ("互联网弹出广告必须能一键关闭", "advertising_law", "第四十四条"),
    ("编造传播虚假信息损害竞争对手的商业信誉", "anti_unfair_competition_law", "第十一条"),
    ("给采购人员回扣属于商业贿赂吗", "anti_unfair_competition_law", "第七条"),
    ("擅自使用他人有一定影响的商品名称包装装潢", "anti_unfair_competition_law", "第六条"),
    ("侵犯商业秘密的行为有哪些", "anti_unfair_competition_law", "第九条"),
    ("网购商品七日无理由退货", "consumer_rights_protection_law", "第二十五条"),
    ("经营者欺诈消费者要赔偿购买价款的三倍", "consumer_rights_protection_law", "第五十五条"),
    ("医疗器械广告的内容应当以注册证书为准", "medical_device_supervision_regulation", "第六十条"),
    ("医疗器械不良事件监测制度", "medical_device_supervision_regulation", "第六十一条"),
    ("药品广告需要经过哪个部门批准", "drug_administration_law", "第八十九条"),
    ("假药劣药的认定", "drug_administration_law", "第九十八条"),
    ("化妆品功效宣称需要科学依据", "cosmetics_supervision_regulation", "第二十二条"),
    ("合理使用作品不需要许可也不付报酬的情形", "copyright_law", "第二十四条"),
    ("Can a medical device advertisement guarantee efficacy or state a cure rate?", "advertising_law", "第十六条"),
    ("May an ad use superlatives such as 'the best' or 'national level'?", "advertising_law", "第九条"),
    ("Spreading false information that damages a competitor's reputation", "anti_unfair_competition_law", "第十一条"),
    ("Bribing a buyer's staff to win a deal", "anti_unfair_competition_law", "第七条"),
    (
        "Returning goods bought online within seven days without a reason",
        "consumer_rights_protection_law",
        "第二十五条",
    ),
    ("Who approves a drug advertisement before it is published?", "drug_administration_law", "第八十九条"),
]


def _laws() -> list[Path]:
    return sorted(p for p in shared_data("cn-regulations").glob("*_*.md"))


def _setup(url: str) -> tuple[Database, Actor]:
    upgrade(url)
    database = connect(url)
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(session, name="Bench", slug=f"bench-{time.time_ns()}")
    return database, org_service.system_actor(organization.id, label="bench")


def _index(database: Database, actor: Actor) -> tuple[int, float, dict[int, str]]:
    with database.unit_of_work(actor) as session:
        collection_id = service.create_collection(session, actor, name=f"法规 {time.time_ns()}").id
        ids = {
            service.add_document(session, actor, collection_id, filename=p.name, content=p.read_bytes()).id: p.name
            for p in _laws()
        }
    started = time.perf_counter()
    for document_id in ids:
        assert service.index_document(database, actor.organization_id, document_id) == "ready"
    return collection_id, time.perf_counter() - started, ids


def _baseline_insert(database: Database, actor: Actor, collection_id: int) -> tuple[int, float]:
    """Parse, chunk and insert the same chunks with no tokens, vectors or full-text entries (then remove them)."""
    started = time.perf_counter()
    count = 0
    with database.unit_of_work(actor) as session:
        document = service.add_document(session, actor, collection_id, filename="baseline.md", content=b"x")
        for path in _laws():
            for ordinal, chunk in enumerate(chunk_text(path.read_text(encoding="utf-8"))):
                session.add(
                    KnowledgeChunk(
                        organization_id=actor.organization_id,
                        collection_id=collection_id,
                        document_id=document.id,
                        ordinal=ordinal,
                        heading=chunk.heading,
                        text=chunk.text,
                        start=chunk.start,
                        end=chunk.end,
                        tokens="",
                        embedding=b"",
                    )
                )
                count += 1
        session.flush()
        elapsed = time.perf_counter() - started
        session.rollback()
    return count, elapsed


def _like(database: Database, actor: Actor, collection_id: int, query: str, k: int) -> list[int]:
    words = query_tokens(query)
    with database.reading(actor) as session:
        rows = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.heading, KnowledgeChunk.text)
            .where(tenant_clause(actor.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection_id)
            .where(or_(*[KnowledgeChunk.text.like(f"%{w}%") for w in words]))
        ).all()
    scored = sorted(rows, key=lambda r: (-sum(w in (r.heading + r.text).lower() for w in words), r.id))
    return [r.id for r in scored[:k]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--reuse", metavar="ORG:COLLECTION", help="query a collection an earlier run indexed (no indexing figures)"
    )
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/knowledge.db"
    if args.reuse:
        organization_id, collection_id = (int(part) for part in args.reuse.split(":"))
        database, actor = connect(url), org_service.system_actor(organization_id, label="bench")
        with database.reading(actor) as session:
            documents = {d.id: d.filename for d in service.list_documents(session, actor, collection_id)}
        seconds = 0.0
    else:
        database, actor = _setup(url)
        collection_id, seconds, documents = _index(database, actor)
    with database.reading(actor) as session:
        chunks = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.document_id, KnowledgeChunk.heading, KnowledgeChunk.text)
            .where(tenant_clause(actor.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection_id)
        ).all()
    label = {row.id: (documents[row.document_id], row.heading.rsplit(" › ", 1)[-1]) for row in chunks}
    characters = sum(len(row.text) for row in chunks)
    print(f"database: {database.dialect}; {len(documents)} laws, {len(chunks)} chunks, {characters:,} characters")
    if seconds:
        baseline_count, baseline_seconds = _baseline_insert(database, actor, collection_id)
        print(
            f"indexing: {seconds:.1f} s ({len(chunks) / seconds:.1f} chunks/s); plain insert of the same "
            f"{baseline_count} chunks: {baseline_seconds:.2f} s → indexing costs {seconds / baseline_seconds:,.0f}× "
            "the plain insert (the embedding model is nearly all of it)"
        )

    def method(mode: str) -> Callable[[str], list[int]]:
        def run(query: str) -> list[int]:
            with database.reading(actor) as session:
                return [p.chunk_id for p in service.search(session, actor, query, k=10, mode=mode)]

        return run

    methods: dict[str, Callable[[str], list[int]]] = {
        "LIKE scan": lambda q: _like(database, actor, collection_id, q, 10),
        "full text": method("fulltext"),
        "vector": method("vector"),
        "hybrid": method("hybrid"),
    }
    for run in methods.values():  # warm: model loaded, vectors cached, jieba's dictionary read
        run(QUESTIONS[0][0])
    latencies: dict[str, list[float]] = {}
    print(f"\n{len(QUESTIONS)} questions ({sum(q[0].isascii() for q in QUESTIONS)} English)")
    print(f"{'method':<10} {'hit@5':>6} {'MRR@10':>7} {'zh hit@5':>9} {'en hit@5':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for name, run in methods.items():
        hits: list[bool] = []
        reciprocal: list[float] = []
        english: list[bool] = []
        times: list[float] = []
        for question, law, article in QUESTIONS:
            started = time.perf_counter()
            found = run(question)
            times.append((time.perf_counter() - started) * 1000)
            ranks = [
                i for i, cid in enumerate(found, start=1) if label[cid][0].startswith(law) and label[cid][1] == article
            ]
            rank = ranks[0] if ranks else None
            hits.append(rank is not None and rank <= 5)
            reciprocal.append(1 / rank if rank else 0.0)
            english.append(question.isascii())
        latencies[name] = times
        zh = [h for h, e in zip(hits, english, strict=True) if not e]
        en = [h for h, e in zip(hits, english, strict=True) if e]
        p95 = statistics.quantiles(times, n=20)[18]
        print(
            f"{name:<10} {sum(hits) / len(hits):>6.2f} {statistics.mean(reciprocal):>7.3f} "
            f"{sum(zh) / len(zh):>9.2f} {sum(en) / len(en):>9.2f} {statistics.median(times):>8.1f} {p95:>8.1f}"
        )
    base = statistics.median(latencies["LIKE scan"])
    print(
        "\nquery latency (p50) as a ratio to the LIKE scan: "
        + ", ".join(
            f"{name} {statistics.median(times) / base:.2f}×" for name, times in latencies.items() if name != "LIKE scan"
        )
    )


if __name__ == "__main__":
    main()
