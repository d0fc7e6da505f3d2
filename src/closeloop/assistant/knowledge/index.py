"""The two indexes behind retrieval, on either database.

Full text: the chunk's jieba tokens, space-separated, ranked by BM25 over the searched collections'
ready passages only, from an inverted index of each collection kept in memory per process and
``index_key`` (:class:`TextCache`, one pass over the collection's tokens when its key changes), the
same code on both databases. The databases' own full-text indexes are still written — on SQLite an
FTS5 table ``knowledge_fts`` (rowid = chunk id), on PostgreSQL the chunk's ``search_vector``
(``to_tsvector`` with the ``simple`` configuration over the same tokens, GIN-indexed) — but no
longer read by search: FTS5's ``bm25()`` takes its statistics from the whole table, across
organizations, and PostgreSQL's matches of a question's common words were too many to score per
question at 100,000 passages (docs/benchmarks.md, "Knowledge base at 100,000 passages").

Vectors: each chunk's embedding is stored with it (float32 bytes). Nearest neighbours are found by
an exact inner product over a numpy matrix of the collection's vectors, kept in memory per process
and reloaded when the collection's ``index_key`` changes. sqlite-vec cannot load here (the
interpreter's ``sqlite3`` has no extension loading) and the PostgreSQL server has no pgvector
extension, so both databases use this path (docs/architecture.md, "Knowledge base").
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
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


def _ready(scope: Scope) -> list[ColumnElement[bool]]:
    owned = [
        and_(tenant_clause(organization_id, KnowledgeChunk), KnowledgeChunk.collection_id.in_(list(collection_ids)))
        for organization_id, collection_ids in sorted(scope.items())
    ]
    return [owned[0] if len(owned) == 1 else or_(*owned), KnowledgeDocument.status == DocumentStatus.READY]


def fulltext(session: Session, collections: Collections, query: str, limit: int) -> list[int]:
    """Chunk ids of ``collections`` (id → owning organization and index key) matching any of the
    query's tokens, best first by BM25 over those collections' ready passages only.

    Exact BM25 (K1 1.2, B 0.75, idf ``log(1 + (N − n + ½) / (n + ½))``) from the collections'
    inverted indexes kept in the process (:class:`TextCache`): the corpus statistics — number of
    passages, average length, each word's document frequency — are those of the searched collections
    together, never of the whole table, so one organization's ranking does not move with another's
    passages (FTS5's ``bm25()`` counts over the whole ``knowledge_fts`` table, across tenants, which
    is why SQLite no longer ranks with it), and both databases rank alike. Ties go to the lower id."""
    words = query_tokens(query)
    if not words or not collections:
        return []
    return rank(
        [texts.get(session, owner, cid, key) for cid, (owner, key) in sorted(collections.items())], words, limit
    )


def rank(parts: Sequence[TextIndex], words: Sequence[str], limit: int) -> list[int]:
    """The ids of the best ``limit`` passages of ``parts`` (searched together) for ``words`` by BM25
    over the parts' statistics together, ties to the lower id; passages matching no word left out."""
    total = sum(part.total for part in parts)
    counted = sum(part.counted for part in parts)
    average = sum(part.length for part in parts) / counted if counted else 1.0
    frequency = {w: sum(part.frequency(w) for part in parts) for w in words}
    idf = {w: math.log(1 + (total - frequency[w] + 0.5) / (frequency[w] + 0.5)) for w in words}
    candidates: list[tuple[float, int]] = []
    for part in parts:
        scores: npt.NDArray[np.float64] | None = None
        for word in words:  # in the question's order, so the sums equal BM25's definition bit for bit
            found = part.postings(word)
            if found is None:
                continue
            positions, counts = found
            if scores is None:
                scores = np.zeros(part.total, dtype=np.float64)
            tf = counts.astype(np.float64)
            norm = K1 * (1 - B + B * part.lengths[positions] / average)
            scores[positions] += idf[word] * tf * (K1 + 1) / (tf + norm)
        if scores is None:
            continue
        hit = np.flatnonzero(scores)
        if len(hit) > limit:  # the best ``limit`` and every passage tied with the last of them
            kth = np.partition(scores[hit], len(hit) - limit)[len(hit) - limit]
            hit = hit[scores[hit] >= kth]
        candidates += zip((-scores[hit]).tolist(), part.ids[hit].tolist(), strict=True)
    return [int(chunk_id) for _, chunk_id in sorted(candidates)[:limit]]


#: BM25 parameters (the usual ones; FTS5 uses the same)
K1, B = 1.2, 0.75


class TextIndex:
    """A collection's ready passages as an inverted index: their ids and token counts, and per word
    the positions of the passages holding it with how often (CSR arrays: the passages of word ``t``
    are ``positions[starts[t]:starts[t + 1]]``). About 8 bytes per distinct word of a passage."""

    def __init__(
        self,
        ids: npt.NDArray[np.int64],
        lengths: npt.NDArray[np.int32],
        vocabulary: dict[str, int],
        starts: npt.NDArray[np.int64],
        positions: npt.NDArray[np.int32],
        counts: npt.NDArray[np.int32],
    ) -> None:
        self.ids = ids
        self.lengths = lengths
        self.vocabulary = vocabulary
        self.starts = starts
        self.positions = positions
        self.counts = counts
        self.total = len(ids)
        self.counted = int(np.count_nonzero(lengths))
        self.length = int(lengths.sum(dtype=np.int64))

    def frequency(self, word: str) -> int:
        """The number of passages holding ``word``."""
        term = self.vocabulary.get(word)
        return 0 if term is None else int(self.starts[term + 1] - self.starts[term])

    def postings(self, word: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]] | None:
        term = self.vocabulary.get(word)
        if term is None:
            return None
        start, end = int(self.starts[term]), int(self.starts[term + 1])
        return self.positions[start:end], self.counts[start:end]

    @property
    def nbytes(self) -> int:
        arrays = (self.ids, self.lengths, self.starts, self.positions, self.counts)
        return sum(a.nbytes for a in arrays)


class TextCache:
    """Per-process inverted indexes of collections, keyed by (collection id, index key): the key
    changes whenever the collection's ready passages do, so a warm question asks the database
    nothing for its full text, and a document indexed or deleted is seen by the next question."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, str], TextIndex] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, organization_id: int, collection_id: int, key: str) -> TextIndex:
        with self._lock:
            found = self._items.get((collection_id, key))
            if found is not None:
                self._items.move_to_end((collection_id, key))
                return found
        loaded = _load(session, organization_id, collection_id)
        with self._lock:
            for stale in [k for k in self._items if k[0] == collection_id]:
                del self._items[stale]
            self._items[(collection_id, key)] = loaded
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return loaded

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


texts = TextCache()


def _load(session: Session, organization_id: int, collection_id: int) -> TextIndex:
    """One pass over the collection's ready passages' tokens (those the full-text index holds)."""
    rows = session.execute(
        select(KnowledgeChunk.id, KnowledgeChunk.tokens)
        .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
        .where(*_ready({organization_id: [collection_id]}))
        .order_by(KnowledgeChunk.id)
        .execution_options(yield_per=2000)
    )
    return build((int(chunk_id), tokens) for chunk_id, tokens in rows)


def build(passages: Iterable[tuple[int, str]]) -> TextIndex:
    """The inverted index of passages given as (id, space-separated tokens)."""
    vocabulary: dict[str, int] = {}
    ids, lengths = array("q"), array("i")
    terms, positions, counts = array("i"), array("i"), array("i")
    for position, (chunk_id, tokens) in enumerate(passages):
        words = tokens.split()
        ids.append(chunk_id)
        lengths.append(len(words))
        for word, count in Counter(words).items():
            term = vocabulary.get(word)
            if term is None:
                term = vocabulary[word] = len(vocabulary)
            terms.append(term)
            positions.append(position)
            counts.append(count)
    term_array = np.frombuffer(terms, dtype=np.int32) if terms else np.zeros(0, dtype=np.int32)
    order = np.argsort(term_array, kind="stable")
    starts = np.zeros(len(vocabulary) + 1, dtype=np.int64)
    np.cumsum(np.bincount(term_array, minlength=len(vocabulary)), out=starts[1:])
    return TextIndex(
        np.array(ids, dtype=np.int64),
        np.array(lengths, dtype=np.int32),
        vocabulary,
        starts,
        np.array(positions, dtype=np.int32)[order],
        np.array(counts, dtype=np.int32)[order],
    )


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
