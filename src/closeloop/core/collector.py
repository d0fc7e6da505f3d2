"""Pausing Python's cyclic garbage collector around work that allocates many short-lived objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pausers = 0
_resume = False  # whether the collector was on when the first of the running pauses began


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block; nested and concurrent pauses are counted.

    Bulk work — an import planning and writing rows, the compliance checker scanning a batch of
    texts — allocates many small objects (dicts, lists, tuples) in bursts. Each burst triggers a
    collection, and every few of them a full one walks every object the process holds: the
    checker's tables, the ORM's, everything loaded. For an import that was a third of its time;
    for a batch scan about a sixth. The work makes no reference cycles, so reference counting
    frees it all the same; the collector resumes (and catches up) when the last pause in the
    process ends, and a collector the application had switched off stays off. The pause is the
    process's: another thread's reference cycles wait for the collector until it resumes — a batch
    of a thousand texts takes tens of milliseconds, an import seconds.
    """
    global _pausers, _resume
    with _lock:
        if _pausers == 0:
            _resume = gc.isenabled()
        _pausers += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0 and _resume:
                gc.enable()
