"""Types of the prefilter's C scan (``_hsscan.c``)."""

from collections.abc import Sequence

class CompileError(ValueError):
    """``args``: libhs's message and the index of the expression it could not compile (-1: none)."""

class Engine:
    def __init__(self, expressions: Sequence[bytes], flags: Sequence[int], ids: Sequence[int]) -> None: ...
    def scan(self, text: str, /) -> tuple[int, ...]: ...

def version() -> str | None: ...
