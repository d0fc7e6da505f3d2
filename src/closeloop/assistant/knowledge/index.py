"""The two indexes behind retrieval, on either database.

Full text: the chunk's jieba tokens, space-separated. On SQLite an FTS5 table ``knowledge_fts``
(rowid = chunk id, ranked by BM25); on PostgreSQL the chunk's ``search_vector`` (``to_tsvector``
with the ``simple`` configuration over the same tokens, GIN-indexed), the matches re-scored by BM25.

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


def _ready(scope: Scope) -> list[ColumnElement[bool]]:
    owned = [
        and_(tenant_clause(organization_id, KnowledgeChunk), KnowledgeChunk.collection_id.in_(list(collection_ids)))
        for organization_id, collection_ids in sorted(scope.items())
    ]
    return [owned[0] if len(owned) == 1 else or_(*owned), KnowledgeDocument.status == DocumentStatus.READY]


def fulltext(session: Session, scope: Scope, query: str, limit: int) -> list[int]:
    """Chunk ids of the collections of ``scope`` matching any of the query's tokens, best first."""
    words = query_tokens(query)
    if not words or not scope:
        return []
    joined = select(KnowledgeChunk.id).join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
    if _is_postgres(session):
        return _postgres_bm25(session, scope, words, limit)
    match = " OR ".join(f'"{word}"' for word in words)
    statement = (
        joined.join(_fts, _fts.c.rowid == KnowledgeChunk.id)
        .where(*_ready(scope))
        .where(literal_column(FTS_TABLE).op("MATCH")(match))
        .order_by(func.bm25(literal_column(FTS_TABLE)), KnowledgeChunk.id)
        .limit(limit)
    )
    return [int(chunk_id) for chunk_id in session.scalars(statement)]


#: BM25 parameters (the usual ones; FTS5 uses the same)
K1, B = 1.2, 0.75
#: matching chunks re-scored by BM25 on PostgreSQL (the GIN index finds them, ``ts_rank_cd`` pre-orders)
RESCORED = 1000


def _postgres_bm25(session: Session, scope: Scope, words: list[str], limit: int) -> list[int]:
    """PostgreSQL's ``ts_rank_cd`` has no inverse document frequency, so a question's common words
    (广告, 经营者) outweigh its telling ones; the matching chunks are re-scored with BM25 here, from
    document frequencies counted through the same GIN index (measured in docs/benchmarks.md)."""
    # tokens are \w+ runs (text.tokens), so they need no quoting inside a tsquery
    tsquery = func.to_tsquery(_SIMPLE, " | ".join(words))

    def ready() -> Any:
        return (
            select(func.count())
            .select_from(KnowledgeChunk)
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(*_ready(scope))
        )

    total = session.scalar(ready()) or 0
    lengths = func.array_length(func.string_to_array(KnowledgeChunk.tokens, " "), 1)
    average = float(session.scalar(ready().with_only_columns(func.avg(lengths))) or 1.0)
    frequency = {
        word: session.scalar(ready().where(KnowledgeChunk.search_vector.op("@@")(func.to_tsquery(_SIMPLE, word)))) or 0
        for word in words
    }
    rows = session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.tokens)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(*_ready(scope))
        .where(KnowledgeChunk.search_vector.op("@@")(tsquery))
        .order_by(func.ts_rank_cd(KnowledgeChunk.search_vector, tsquery).desc(), KnowledgeChunk.id)
        .limit(RESCORED)
    ).all()
    idf = {w: math.log(1 + (total - frequency[w] + 0.5) / (frequency[w] + 0.5)) for w in words}
    scored: list[tuple[float, int]] = []
    for chunk_id, tokens in rows:
        terms = tokens.split()
        counts = Counter(terms)
        norm = K1 * (1 - B + B * len(terms) / average)
        score = sum(idf[w] * counts[w] * (K1 + 1) / (counts[w] + norm) for w in words if counts[w])
        scored.append((-score, int(chunk_id)))
    return [chunk_id for _, chunk_id in sorted(scored)[:limit]]


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


def nearest(session: Session, collections: Mapping[int, tuple[int, str]], query: Vectors, limit: int) -> list[int]:
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
