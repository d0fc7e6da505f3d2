"""The two indexes behind retrieval, on either database.

Full text: the chunk's jieba tokens, space-separated. On SQLite an FTS5 table ``knowledge_fts``
(rowid = chunk id, ranked by BM25); on PostgreSQL the chunk's ``search_vector`` (``to_tsvector``
with the ``simple`` configuration over the same tokens, GIN-indexed), the matches of the question's
rarer words scored by BM25 in Python from corpus statistics kept in memory per collection and
``index_key`` (:class:`StatisticsCache`).

Vectors: each chunk's embedding is stored with it (float32 bytes). Nearest neighbours are found by
an exact inner product over a numpy matrix of the collection's vectors, kept in memory per process
and reloaded when the collection's ``index_key`` changes. sqlite-vec cannot load here (the
interpreter's ``sqlite3`` has no extension loading) and the PostgreSQL server has no pgvector
extension, so both databases use this path (docs/architecture.md, "Knowledge base").
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, and_, column, delete, func, literal_column, or_, select, table
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnClause

from closeloop.assistant.knowledge.embedding import Vectors, from_bytes
from closeloop.assistant.knowledge.models import DocumentStatus, KnowledgeChunk, KnowledgeDocument
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.db.scope import tenant_clause

FTS_TABLE = "knowledge_fts"
_fts = table(FTS_TABLE, column("rowid"), column("tokens"))
_SIMPLE: ColumnClause[Any] = literal_column("'simple'::regconfig")


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def add(session: Session, chunks: Sequence[KnowledgeChunk]) -> None:
    """Insert chunks and their full-text entries (in the session's transaction)."""
    postgres = _is_postgres(session)
    for chunk in chunks:
        if postgres:
            chunk.search_vector = func.to_tsvector(_SIMPLE, chunk.tokens)
        session.add(chunk)
    session.flush()
    if not postgres and chunks:
        session.execute(_fts.insert(), [{"rowid": chunk.id, "tokens": chunk.tokens} for chunk in chunks])


def forget(session: Session, chunk_ids: Sequence[int]) -> None:
    """Remove the full-text entries of chunks about to be deleted (SQLite; PostgreSQL keeps them in the row)."""
    if chunk_ids and not _is_postgres(session):
        for start in range(0, len(chunk_ids), 500):
            session.execute(delete(_fts).where(_fts.c.rowid.in_(list(chunk_ids[start : start + 500]))))


#: which collections to search, by the organization that owns them (a partner organization also
#: searches the collections its seller shared with it)
Scope = Mapping[int, Sequence[int]]
#: the collections to search: id → (owning organization, index key)
Collections = Mapping[int, tuple[int, str]]


def _scope(collections: Collections) -> dict[int, list[int]]:
    scope: dict[int, list[int]] = {}
    for collection_id, (owner, _key) in sorted(collections.items()):
        scope.setdefault(owner, []).append(collection_id)
    return scope


def _ready(scope: Scope) -> list[ColumnElement[bool]]:
    owned = [
        and_(tenant_clause(organization_id, KnowledgeChunk), KnowledgeChunk.collection_id.in_(list(collection_ids)))
        for organization_id, collection_ids in sorted(scope.items())
    ]
    return [owned[0] if len(owned) == 1 else or_(*owned), KnowledgeDocument.status == DocumentStatus.READY]


def fulltext(session: Session, collections: Collections, query: str, limit: int) -> list[int]:
    """Chunk ids of ``collections`` (id → owning organization and index key) matching any of the
    query's tokens, best first."""
    words = query_tokens(query)
    if not words or not collections:
        return []
    scope = _scope(collections)
    if _is_postgres(session):
        return _postgres_bm25(session, collections, words, limit)
    match = " OR ".join(f'"{word}"' for word in words)
    statement = (
        select(KnowledgeChunk.id)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .join(_fts, _fts.c.rowid == KnowledgeChunk.id)
        .where(*_ready(scope))
        .where(literal_column(FTS_TABLE).op("MATCH")(match))
        .order_by(func.bm25(literal_column(FTS_TABLE)), KnowledgeChunk.id)
        .limit(limit)
    )
    return [int(chunk_id) for chunk_id in session.scalars(statement)]


#: BM25 parameters (the usual ones; FTS5 uses the same)
K1, B = 1.2, 0.75
#: matches re-scored by BM25 on PostgreSQL in one go: the question's rarest words are matched first,
#: as many as keep their document frequencies' sum within this bound
CANDIDATES = 5000
#: when that bound cannot prove the best ``limit``, the matches of all the question's words are
#: pre-ordered by ``ts_rank_cd`` and this many scored as well (the former way)
RESCORED = 1000


class Statistics:
    """What BM25 needs of a collection's ready passages: their number, the number of those with
    tokens and their tokens' total (for the average length), and each token's document frequency."""

    def __init__(self, total: int, counted: int, length: int, frequency: dict[str, int]) -> None:
        self.total = total
        self.counted = counted
        self.length = length
        self.frequency = frequency

    @classmethod
    def of_words(cls, parts: Sequence[Statistics], words: Sequence[str]) -> Statistics:
        """The statistics of several collections together, with the document frequencies of
        ``words`` only (a question's: merging whole vocabularies would cost each question their size)."""
        if len(parts) == 1:
            return parts[0]
        frequency = {w: sum(part.frequency.get(w, 0) for part in parts) for w in words}
        return cls(sum(p.total for p in parts), sum(p.counted for p in parts), sum(p.length for p in parts), frequency)

    @property
    def average(self) -> float:
        return self.length / self.counted if self.counted else 1.0


class StatisticsCache:
    """Per-process corpus statistics of collections, keyed by (collection id, index key): the key
    changes whenever the collection's ready passages do, so a warm question asks nothing of them."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, str], Statistics] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, organization_id: int, collection_id: int, key: str) -> Statistics:
        with self._lock:
            found = self._items.get((collection_id, key))
            if found is not None:
                self._items.move_to_end((collection_id, key))
                return found
        statistics = _count(session, organization_id, collection_id)
        with self._lock:
            for stale in [k for k in self._items if k[0] == collection_id]:
                del self._items[stale]
            self._items[(collection_id, key)] = statistics
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return statistics

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


statistics = StatisticsCache()


def _count(session: Session, organization_id: int, collection_id: int) -> Statistics:
    """One pass over the collection's ready passages' tokens (the same tokens the ``tsvector`` holds)."""
    total = counted = length = 0
    frequency: Counter[str] = Counter()
    rows = session.execute(
        select(KnowledgeChunk.tokens)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(*_ready({organization_id: [collection_id]}))
        .execution_options(yield_per=2000)
    )
    for (tokens,) in rows:
        terms = tokens.split()
        total += 1
        if terms:
            counted += 1
            length += len(terms)
            frequency.update(set(terms))
    return Statistics(total, counted, length, dict(frequency))


def _postgres_bm25(session: Session, collections: Collections, words: list[str], limit: int) -> list[int]:
    """PostgreSQL's ``ts_rank_cd`` has no inverse document frequency, so a question's common words
    (广告, 经营者) outweigh its telling ones: the matches are scored by BM25 here, from the corpus
    statistics kept per collection and index key (measured in docs/benchmarks.md).

    The exact best ``limit`` without matching every common word: the question's words are taken
    rarest first while their document frequencies sum to at most :data:`CANDIDATES`, and all their
    matches are scored (through the GIN index, no ordering in the database). A passage matching
    none of them scores less than the sum of the left-out words' ``idf × (K1 + 1)``; once the
    ``limit``-th score reaches that bound the ranking is exact, otherwise the next word is added.
    When the budget runs out first, all words' matches are pre-ordered by ``ts_rank_cd`` and the
    first :data:`RESCORED` scored too (the former way, slow on a large collection): the answer is
    then the best of both sets, never worse than the former one."""
    corpus = Statistics.of_words(
        [statistics.get(session, owner, cid, key) for cid, (owner, key) in sorted(collections.items())], words
    )
    frequency = {w: corpus.frequency.get(w, 0) for w in words}
    idf = {w: math.log(1 + (corpus.total - frequency[w] + 0.5) / (frequency[w] + 0.5)) for w in words}
    present = sorted((w for w in words if frequency[w]), key=lambda w: (frequency[w], w))
    if not present:
        return []
    average = corpus.average

    def score(tokens: str) -> float:
        terms = tokens.split()
        counts = Counter(terms)
        norm = K1 * (1 - B + B * len(terms) / average)
        return sum(idf[w] * counts[w] * (K1 + 1) / (counts[w] + norm) for w in words if counts[w])

    def best(scores: dict[int, float]) -> list[tuple[float, int]]:
        return sorted((-value, chunk_id) for chunk_id, value in scores.items())[:limit]

    scope = _scope(collections)
    scores: dict[int, float] = {}
    budget = 0
    for taken, word in enumerate(present, start=1):
        budget += frequency[word]
        if budget > CANDIDATES:
            break
        for chunk_id, tokens in _matches(session, scope, word):
            if chunk_id not in scores:
                scores[chunk_id] = score(tokens)
        top = best(scores)
        left_out = sum(idf[w] * (K1 + 1) for w in present[taken:])
        if taken == len(present) or (len(top) == limit and -top[-1][0] >= left_out):
            return [chunk_id for _, chunk_id in top]
    tsquery = func.to_tsquery(_SIMPLE, " | ".join(present))
    rows = session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.tokens)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(*_ready(scope))
        .where(KnowledgeChunk.search_vector.op("@@")(tsquery))
        .order_by(func.ts_rank_cd(KnowledgeChunk.search_vector, tsquery).desc(), KnowledgeChunk.id)
        .limit(RESCORED)
    ).all()
    for chunk_id, tokens in rows:
        if chunk_id not in scores:
            scores[int(chunk_id)] = score(tokens)
    return [chunk_id for _, chunk_id in best(scores)]


def _matches(session: Session, scope: Scope, word: str) -> list[tuple[int, str]]:
    """Ids and tokens of the scope's ready passages holding ``word`` (through the GIN index)."""
    # tokens are \w+ runs (text.tokens), so they need no quoting inside a tsquery
    tsquery = func.to_tsquery(_SIMPLE, word)
    rows = session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.tokens)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(*_ready(scope))
        .where(KnowledgeChunk.search_vector.op("@@")(tsquery))
    )
    return [(int(chunk_id), tokens) for chunk_id, tokens in rows]


class _Matrix:
    def __init__(self, ids: npt.NDArray[np.int64], vectors: Vectors) -> None:
        self.ids = ids
        self.vectors = vectors


class VectorCache:
    """Per-process matrices of collections' vectors, keyed by (collection id, index key)."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, str], _Matrix] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, organization_id: int, collection_id: int, key: str) -> _Matrix:
        with self._lock:
            found = self._items.get((collection_id, key))
            if found is not None:
                self._items.move_to_end((collection_id, key))
                return found
        rows = session.execute(
            select(KnowledgeChunk.id, KnowledgeChunk.embedding)
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(*_ready({organization_id: [collection_id]}))
            .order_by(KnowledgeChunk.id)
        ).all()
        matrix = _Matrix(np.array([row[0] for row in rows], dtype=np.int64), from_bytes([row[1] for row in rows]))
        with self._lock:
            for stale in [k for k in self._items if k[0] == collection_id]:
                del self._items[stale]
            self._items[(collection_id, key)] = matrix
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return matrix

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


vectors = VectorCache()


def nearest(session: Session, collections: Collections, query: Vectors, limit: int) -> list[int]:
    """Chunk ids of the collections (id → owning organization and index key) nearest to ``query``
    by cosine, best first."""
    matrices = [vectors.get(session, owner, cid, key) for cid, (owner, key) in collections.items()]
    matrices = [m for m in matrices if len(m.ids)]
    if not matrices:
        return []
    ids = np.concatenate([m.ids for m in matrices])
    scores = np.concatenate([m.vectors @ query for m in matrices])
    limit = min(limit, len(ids))
    top = np.argpartition(-scores, limit - 1)[:limit]
    ordered = top[np.argsort(-scores[top], kind="stable")]
    return [int(ids[i]) for i in ordered]
