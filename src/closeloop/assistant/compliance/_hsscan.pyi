"""Types of the prefilter's C scan (``_hsscan.c``)."""

from collections.abc import Sequence

class CompileError(ValueError):
    """``args``: libhs's message and the index of the expression it could not compile (-1: none)."""

class Engine:
    """A block database of UTF-8 expressions (each compiled with ``HS_FLAG_SINGLEMATCH``); ``scan``
    gives the distinct ids of those that match, in the order libhs first reported them."""

    def __init__(self, expressions: Sequence[bytes], flags: Sequence[int], ids: Sequence[int]) -> None: ...
    def scan(self, text: str, /) -> tuple[int, ...]: ...

def version() -> str | None: ...
