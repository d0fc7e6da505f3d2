"""Fixtures of the knowledge-base tests: the shared API client, the real law texts, and the embedding
model loaded once per session with its passage vectors remembered (the same texts are indexed on
SQLite and again on PostgreSQL; the model itself computes every vector once)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from closeloop.assistant.knowledge import embedding
from tests.apps import client
from tests.conftest import shared_data

__all__ = ["client"]

_remembered: dict[str, np.ndarray] = {}


def law(name: str) -> str:
    """One law of ``cn-regulations`` (read from the shared folder, never copied)."""
    found = sorted(shared_data("cn-regulations").glob(f"{name}_*.md"))
    assert found, f"no {name} in {shared_data('cn-regulations')}"
    return found[0].read_text(encoding="utf-8")


def chapter(text: str, title: str) -> str:
    """The law's title line and one chapter (``## 第二章 …`` up to the next chapter)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## ") and title in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join([lines[0], "", *lines[start:end]]) + "\n"


@pytest.fixture(scope="session", autouse=True)
def remembered_passages() -> Iterator[None]:
    real = embedding.passages

    def passages(texts: Sequence[str]) -> embedding.Vectors:
        missing = [text for text in dict.fromkeys(texts) if text not in _remembered]
        if missing:
            for text, vector in zip(missing, real(missing), strict=True):
                _remembered[text] = vector
        return np.stack([_remembered[text] for text in texts]).astype(np.float32)

    patcher = pytest.MonkeyPatch()
    patcher.setattr(embedding, "passages", passages)
    yield
    patcher.undo()
