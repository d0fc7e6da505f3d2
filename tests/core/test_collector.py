"""The cyclic collector pause: counted across nested and overlapping users, never switched on when
the application had it off."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closeloop.core.collector import cyclic_gc_paused


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


@given(initially=st.booleans(), steps=st.lists(st.booleans(), max_size=30))
def test_off_while_any_pause_runs_then_as_before(initially: bool, steps: list[bool]) -> None:
    (gc.enable if initially else gc.disable)()
    running: list[AbstractContextManager[None]] = []  # pauses begun and not ended, ended in any order the steps choose
    for begin in steps:
        if begin or not running:
            pause = cyclic_gc_paused()
            pause.__enter__()
            running.append(pause)
        else:
            running.pop(len(running) // 2).__exit__(None, None, None)
        assert gc.isenabled() is (initially and not running)
    while running:
        running.pop(0).__exit__(None, None, None)
    assert gc.isenabled() is initially


def test_an_error_inside_ends_the_pause() -> None:
    gc.enable()

    def failing() -> None:
        with cyclic_gc_paused():
            assert not gc.isenabled()
            raise RuntimeError("row 3")

    with pytest.raises(RuntimeError, match="row 3"):
        failing()
    assert gc.isenabled()
