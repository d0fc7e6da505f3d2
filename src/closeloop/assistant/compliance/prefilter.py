"""Which claim patterns, near-miss phrases and negation cues can match a text: one Hyperscan scan.

The matcher's findings come from Python's ``re`` (its spans, groups and leftmost-first alternation
are the packs' semantics). Hyperscan only answers, per text, *which* expressions could match it,
so ``re`` runs only where it can find something. Every answer is a superset of what ``re`` would
find, never a subset, and that rests on three rules:

- Only "plain" texts are scanned: for Chinese, ASCII printable characters, tab, newline, CR, CJK
  ideographs, CJK punctuation and full-width forms (where ``\\d``, ``\\w``, ``\\s`` and ``\\b`` with
  Unicode properties agree with ``re``'s); for English, ASCII only (Hyperscan's ``\\b`` under Unicode
  properties is not supported, and ASCII ``\\w`` agrees with ``re`` only on ASCII text). Any other
  text gets ``None`` — "anything may match" — and the matcher runs every triggered pattern on it.
- A pattern Hyperscan cannot compile exactly (look-arounds) is compiled in prefilter mode, which
  Hyperscan documents as a superset; one it cannot compile at all is never filtered.
- The negation cues are searched in a few characters before a phrase, not in the whole text; at the
  edge of such a slice ``\\b`` and anchors can match where they would not in the whole text, so the
  cue expression is compiled without its ``\\b`` (a superset again), and a cue pattern with other
  anchors is never filtered.

Each text is scanned alone (``HS_FLAG_SINGLEMATCH``: one report per expression that matched),
which measured faster than one scan over joined texts, whose bounded repeats report many ends.

Two engines compile and scan the same expressions. The native one (``_hsscan.c``, built at install)
uses the system's libhs and collects the ids in C; the python-hyperscan binding calls a Python
function per id, which for the checker's short texts cost twice the scan itself. The native engine
is used where it built and a libhs was found (``make install`` adds Debian's libvectorscan5 where
it may); ``CLOSELOOP_HYPERSCAN=binding`` chooses the binding. They find the same (tests/assistant).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from re import _constants, _parser
from typing import Any

from closeloop.assistant.compliance.plain_path import collect as _collect

try:  # the wheel bundles libhs; without it the matcher runs every triggered pattern, as before
    import hyperscan
except ImportError:  # pragma: no cover - exercised only where no wheel exists
    hyperscan = None  # type: ignore[assignment]

try:  # the native scan (setup.py builds it; it opens the system's libhs, if any, at import)
    from closeloop.assistant.compliance import _hsscan
except ImportError:  # pragma: no cover - exercised only where the extension did not build
    _hsscan = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: a text's scan: the ids of the expressions that can match it
Scan = Callable[[str], tuple[int, ...]]

_PLAIN = {
    "zh": re.compile(
        r"[\t\n\r\x20-\x7e\u3000-\u3029\u3030-\u303f\u4e00-\u9fef\uff01-\uff5e\u2018\u2019\u201c\u201d\u2014\u2026\u00b7]*"
    ),
    "en": re.compile(r"[\t\n\r\x20-\x7e]*"),
}
_UNICODE_ESCAPE = re.compile(r"(\\\\)|\\u([0-9a-fA-F]{4})")
_BOUNDARY = re.compile(r"(\\\\)|\\[bB]")
_LOOKAROUND = (_constants.ASSERT, _constants.ASSERT_NOT)
_PYTHON_ONLY = re.compile(r"\{,|\\N\{|\\U[0-9a-fA-F]{8}|\[\[:")


def available() -> bool:
    """Whether Hyperscan is importable here."""
    return hyperscan is not None


def native_available() -> bool:
    """Whether the native scan built and found a libhs here (its version: :func:`engine_in_use`)."""
    return _hsscan is not None and _hsscan.version() is not None


def default_engine() -> str:
    """``"native"`` where it is available and ``CLOSELOOP_HYPERSCAN`` does not say ``binding``; else
    ``"binding"``. Another value is logged and ignored (the checker is right with either)."""
    wanted = os.environ.get("CLOSELOOP_HYPERSCAN", "").strip().lower()
    if wanted not in ("", "native", "binding"):
        log.warning("CLOSELOOP_HYPERSCAN=%r is neither 'native' nor 'binding': ignored", wanted)
    return "native" if wanted != "binding" and native_available() else "binding"


def engine_in_use(engine: str | None = None) -> str:
    """What scans, for the benchmarks and the operator: ``native (libhs 5.4.9)`` or ``python-hyperscan``."""
    if (engine or default_engine()) == "native" and _hsscan is not None:
        return f"native (libhs {(_hsscan.version() or '').strip()})"
    return "python-hyperscan"


def plain(lang: str, text: str) -> bool:
    """Whether ``text`` is one the prefilter scans (see the module's first rule)."""
    return _PLAIN[lang].fullmatch(text) is not None


def alnum_class(lang: str) -> str:
    """A character class of the plain characters ``str.isalnum`` accepts, computed from Python itself."""
    ranges: list[tuple[int, int]] = []
    for low, high in _plain_ranges(lang):
        for code in range(low, high + 1):
            if chr(code).isalnum():
                if ranges and ranges[-1][1] == code - 1:
                    ranges[-1] = (ranges[-1][0], code)
                else:
                    ranges.append((code, code))
    return "[" + "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges) + "]"


def _plain_ranges(lang: str) -> list[tuple[int, int]]:
    parsed = _parser.parse(_PLAIN[lang].pattern)
    (_, (_, _, repeated)) = parsed[0]
    (_, members) = repeated[0]
    out: list[tuple[int, int]] = []
    for op, value in members:
        out.append(value if op == _constants.RANGE else (value, value))
    return out


_CLASS = r"(?:\[(?:\\.|[^\]\\])+\]|\\[dDwWsS]|\.)"
_BOUNDED = re.compile(r"(\\\\)|(" + _CLASS + r")\{([01]),(?:[2-9]|\d\d+)\}")
_EDGE = re.compile(r"^(?:\(\?:" + _CLASS + r"\*\??\)|" + _CLASS + r"\*\??)(?![*+?{])|" + _CLASS + r"\*\??$")
_SINGLE = (_constants.IN, _constants.NOT_LITERAL, _constants.LITERAL, _constants.ANY, _constants.CATEGORY)
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT)


def relaxed(pattern: str, flags: int = 0) -> str:
    """For a non-exact expression, a cheaper one that matches wherever ``pattern`` does (a superset).

    A bounded run of one character class, ``[^，。；！？]{0,12}``, costs Hyperscan far more than an
    unbounded one: ``{0,n}`` becomes ``*`` and ``{1,n}`` becomes ``+``, and such a run at the very
    start or end of the pattern goes (it may match empty, so the rest matches wherever the whole
    does). Whatever the text rewrite gives is checked against the same change made on ``re``'s parse
    tree (never inside a look-around, where widening could narrow the match); if the two differ,
    the pattern is kept as it is.
    """
    candidate = _BOUNDED.sub(lambda m: m.group(1) or m.group(2) + ("*" if m.group(3) == "0" else "+"), pattern)
    candidate = _EDGE.sub("", _EDGE.sub("", candidate))
    if candidate == pattern:
        return pattern
    try:
        same = _shape(_parser.parse(candidate, flags).data, relax=False) == _shape(
            _parser.parse(pattern, flags).data, relax=True, top=True
        )
    except re.error:
        return pattern
    return candidate if same and candidate else pattern


def _shape(items: Any, *, relax: bool, top: bool = False) -> Any:
    """The parse tree as plain tuples; with ``relax``, widened and trimmed as :func:`relaxed` says."""
    out: list[Any] = []
    for op, argument in items:
        if op in _REPEATS:
            low, high, body = argument
            body_items = list(body.data)
            if (
                relax
                and low in (0, 1)
                and high != _constants.MAXREPEAT
                and high > 1
                and len(body_items) == 1
                and body_items[0][0] in _SINGLE
            ):
                high = _constants.MAXREPEAT
            out.append((op, (low, high, _shape(body_items, relax=relax))))
        elif op in (_constants.ASSERT, _constants.ASSERT_NOT):
            out.append((op, (argument[0], _shape(argument[1].data, relax=False))))
        else:
            out.append((op, _plain_shape(argument, relax)))
    if relax and top:
        while len(out) > 1 and _droppable(out[0]):
            out.pop(0)
        while len(out) > 1 and _droppable(out[-1]):
            out.pop()
    return out


def _droppable(item: Any) -> bool:
    """An unbounded run of one character class that may be empty (what the text rewrite drops)."""
    op, argument = item
    return (
        op in _REPEATS
        and argument[0] == 0
        and argument[1] == _constants.MAXREPEAT
        and len(argument[2]) == 1
        and argument[2][0][0] in _SINGLE
    )


def _plain_shape(argument: Any, relax: bool) -> Any:
    if isinstance(argument, _parser.SubPattern):
        return _shape(argument.data, relax=relax)
    if isinstance(argument, tuple | list):
        return tuple(_plain_shape(item, relax) for item in argument)
    return argument


def hs_syntax(pattern: str) -> str:
    """``re``'s ``\\uXXXX`` escapes as PCRE's ``\\x{XXXX}`` (the packs' only syntax the two spell differently)."""
    return _UNICODE_ESCAPE.sub(lambda m: m.group(1) or "\\x{" + m.group(2) + "}", pattern)


def without_boundaries(pattern: str, flags: int) -> str | None:
    """The pattern with ``\\b``/``\\B`` dropped (a superset), or ``None`` when it has other anchors
    or a ``\\b`` inside a character class (a backspace there, not a boundary)."""
    if re.search(r"\[[^\]]*\\b", pattern) or _has(_parser.parse(pattern, flags), _anchor):
        return None
    return _BOUNDARY.sub(lambda m: m.group(1) or "", pattern)


def _anchor(op: object, argument: object) -> bool:
    return op == _constants.AT and argument not in (_constants.AT_BOUNDARY, _constants.AT_NON_BOUNDARY)


def _lookaround(op: object, argument: object) -> bool:
    return op in _LOOKAROUND


def _has(node: object, test: Any) -> bool:
    """Whether the parsed pattern holds a node ``test(op, argument)`` accepts."""
    if isinstance(node, _parser.SubPattern):
        return any(_has(item, test) for item in node)
    if isinstance(node, tuple | list):
        if len(node) == 2 and isinstance(node[0], _constants._NamedIntConstant):
            return bool(test(*node)) or _has(node[1], test)
        return any(_has(item, test) for item in node)
    return False


@dataclass(frozen=True)
class Expression:
    """One expression for the database: ``exact`` ones (literals, trigger words) must compile as they
    are; the others may fall back to Hyperscan's prefilter mode, or to no filtering at all."""

    source: str
    ident: int
    caseless: bool
    exact: bool


class Prefilter:
    """One Hyperscan database per language; :meth:`scan` gives the ids that matched a text
    (``None``: not scanned — not plain, or no database for the language — anything may match).
    ``engine`` is ``"native"`` or ``"binding"`` (see the module; default: :func:`default_engine`)."""

    def __init__(self, expressions: dict[str, list[Expression]], *, engine: str | None = None) -> None:
        self.engine = engine or default_engine()
        if self.engine not in ("native", "binding") or (self.engine == "native" and not native_available()):
            raise ValueError(f"no Hyperscan engine {self.engine!r} here (native available: {native_available()})")
        self._databases: dict[str, Any] = {}
        #: per language, the ids Hyperscan could not take: what they gate runs whatever the scan says
        self.unfiltered: dict[str, set[int]] = {lang: set() for lang in expressions}
        self._local = threading.local()
        if hyperscan is None:
            return
        for lang, wanted in expressions.items():
            unfiltered = self.unfiltered[lang]
            base = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
            if lang == "zh":
                base |= hyperscan.HS_FLAG_UCP
            entries = [self._entry(expression, base) for expression in wanted]
            try:
                if any(entry is None for entry in entries):
                    raise hyperscan.error("a pattern in Python-only syntax")
                database = self._compile([entry for entry in entries if entry is not None])
            except self._errors:  # one expression it cannot take: find which, each alone
                checked = [self._fallback(entry, expression) for entry, expression in zip(entries, wanted, strict=True)]
                for entry, expression in zip(checked, wanted, strict=True):
                    if entry is None and expression.exact:
                        break  # a trigger or cue it cannot take exactly: no database for the language
                    if entry is None:
                        unfiltered.add(expression.ident)
                else:
                    with contextlib.suppress(*self._errors):  # each compiles alone, not all together: none
                        self._databases[lang] = self._compile([entry for entry in checked if entry is not None])
                continue
            self._databases[lang] = database

    @staticmethod
    def _entry(expression: Expression, base: int) -> tuple[bytes, int, int] | None:
        """The expression as Hyperscan takes it: look-arounds in prefilter mode; ``None`` for syntax
        ``re`` reads one way and PCRE another (``{,n}``, ``\\N{…}``, ``\\U…``, ``[[:…:]]``)."""
        if _PYTHON_ONLY.search(expression.source):
            return None
        flags = base | (hyperscan.HS_FLAG_CASELESS if expression.caseless else 0)
        if not expression.exact and _has(_parser.parse(expression.source), _lookaround):
            flags |= hyperscan.HS_FLAG_PREFILTER
        source = (
            expression.source if expression.exact else relaxed(expression.source, re.I if expression.caseless else 0)
        )
        return hs_syntax(source).encode("utf-8"), expression.ident, flags

    def _fallback(self, entry: tuple[bytes, int, int] | None, expression: Expression) -> tuple[bytes, int, int] | None:
        """The entry if it compiles alone, else (not for exact ones) in prefilter mode, else ``None``."""
        if entry is None:
            return None
        attempts = [entry]
        if not expression.exact:  # back-references, atomic groups, possessive repeats: a superset
            attempts.append((entry[0], entry[1], entry[2] | hyperscan.HS_FLAG_PREFILTER))
        return next((attempt for attempt in attempts if self._compiles(attempt)), None)

    @property
    def _errors(self) -> tuple[type[Exception], ...]:
        """What a failed compile raises, with either engine."""
        return (hyperscan.error, _hsscan.CompileError) if _hsscan is not None else (hyperscan.error,)

    def _compile(self, entries: Sequence[tuple[bytes, int, int]]) -> Any:
        if self.engine == "native":
            return _hsscan.Engine(
                [entry[0] for entry in entries], [entry[2] for entry in entries], [entry[1] for entry in entries]
            )
        database = hyperscan.Database()
        database.compile(
            expressions=[entry[0] for entry in entries],
            ids=[entry[1] for entry in entries],
            flags=[entry[2] for entry in entries],
            elements=len(entries),
        )
        return database

    def _compiles(self, entry: tuple[bytes, int, int]) -> bool:
        try:
            self._compile([entry])
        except self._errors:
            return False
        return True

    def covers(self, lang: str) -> bool:
        """Whether texts of ``lang`` are scanned at all."""
        return lang in self._databases

    def scan(self, lang: str, text: str) -> tuple[int, ...] | None:
        """The ids of the expressions that can match ``text``; ``None`` when it was not scanned."""
        database = self._databases.get(lang)
        if database is None or _PLAIN[lang].fullmatch(text) is None:
            return None
        if self.engine == "native":
            found: tuple[int, ...] = database.scan(text)
            return found
        ids: set[int] = set()
        database.scan(text.encode("utf-8"), _collect, 0, ids, self._scratch(lang))
        return tuple(ids)

    def scanners(self) -> dict[str, tuple[Scan, re.Pattern[str]]]:
        """Per language scanned, its scan and the plain-text pattern (for the compiled batch loop in
        :mod:`.plain_path`); a binding's scan holds this thread's scratch space: use it in this thread."""
        if self.engine == "native":  # the engine keeps its own scratch space
            return {lang: (engine.scan, _PLAIN[lang]) for lang, engine in self._databases.items()}
        return {
            lang: (_binding_scan(database, self._scratch(lang)), _PLAIN[lang])
            for lang, database in self._databases.items()
        }

    def _scratch(self, lang: str) -> Any:
        """This thread's scratch space (a scratch serves one scan at a time)."""
        scratches: dict[str, Any] | None = getattr(self._local, "scratches", None)
        if scratches is None:
            scratches = self._local.scratches = {}
        scratch = scratches.get(lang)
        if scratch is None:
            scratch = scratches[lang] = hyperscan.Scratch(self._databases[lang])
        return scratch


def _binding_scan(database: Any, scratch: Any) -> Scan:
    """A scan through python-hyperscan: a Python callback per id (:func:`.plain_path.collect`)."""

    def scan(text: str) -> tuple[int, ...]:
        found: set[int] = set()
        database.scan(text.encode("utf-8"), _collect, 0, found, scratch)
        return tuple(found)

    return scan
