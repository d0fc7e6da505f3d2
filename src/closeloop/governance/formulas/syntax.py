"""The formula language's syntax: a Lark grammar, the syntax tree, and its normalized rendering.

Parsing is LALR (linear time, no backtracking) and never evaluates anything. Keywords and function
names are case-insensitive; field names are not. Full-width parentheses and commas (（ ） ，), which a
Chinese input method produces, are read as their ASCII counterparts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from closeloop.governance.formulas.errors import FormulaError, Span

#: the longest formula accepted, in characters
MAX_LENGTH = 4000
#: the deepest nesting accepted (parentheses, operators and calls inside one another)
MAX_DEPTH = 64

GRAMMAR = r"""
?start: expr

?expr: or_expr
?or_expr: and_expr | or_expr OR and_expr -> logical
?and_expr: not_expr | and_expr AND not_expr -> logical
?not_expr: comparison | NOT not_expr -> negation
?comparison: concat
    | concat COMP_OP concat -> compare
    | concat IS NULL -> is_null
    | concat IS NOT NULL -> is_null
    | concat IN _LPAR expr (_COMMA expr)* _RPAR -> in_list
    | concat NOT IN _LPAR expr (_COMMA expr)* _RPAR -> in_list
?concat: sum | concat AMP sum -> binary
?sum: product | sum PLUS product -> binary | sum MINUS product -> binary
?product: unary | product MUL_OP unary -> binary
?unary: atom | MINUS unary -> negation
?atom: NUMBER -> number
    | STRING -> string
    | TRUE -> boolean
    | FALSE -> boolean
    | NULL -> null
    | path
    | call
    | _LPAR expr _RPAR
path: NAME (_DOT NAME)*
call: NAME _LPAR [arguments] [WHERE expr] _RPAR
arguments: expr (_COMMA expr)*

OR: "or"i
AND: "and"i
NOT: "not"i
IS: "is"i
IN: "in"i
NULL: "null"i
TRUE: "true"i
FALSE: "false"i
WHERE: "where"i
COMP_OP: "<=" | ">=" | "!=" | "<>" | "==" | "=" | "<" | ">"
AMP: "&"
MINUS: "-"
PLUS: "+"
MUL_OP: "*" | "/"
_LPAR: "(" | "\uff08"
_RPAR: ")" | "\uff09"
_COMMA: "," | "\uff0c"
_DOT: "."
NAME: /[^\W\d]\w*/i
NUMBER: /(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%ignore /\s+/
"""


# --- the syntax tree ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    span: Span


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: float


@dataclass(frozen=True, slots=True)
class String(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Boolean(Node):
    value: bool


@dataclass(frozen=True, slots=True)
class Null(Node):
    pass


@dataclass(frozen=True, slots=True)
class Ref(Node):
    """A field (``amount``), or a field of related records (``orders.amount``), or a relation (``orders``)."""

    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Negate(Node):
    """``-x`` (op ``-``) or ``NOT x`` (op ``NOT``)."""

    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    """``+ - * / &`` and ``AND``/``OR``; ``op_span`` is where the operator is (errors point at it)."""

    op: str
    left: Node
    right: Node
    op_span: Span


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # one of = != < <= > >=
    left: Node
    right: Node
    op_span: Span


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    operand: Node
    negated: bool


@dataclass(frozen=True, slots=True)
class InList(Node):
    operand: Node
    options: tuple[Node, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``NAME(arguments [WHERE condition])``; ``name`` is upper-cased."""

    name: str
    arguments: tuple[Node, ...]
    where: Node | None
    name_span: Span


# --- parsing --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # the basic lexer reserves keywords everywhere (the contextual one would read a misplaced NOT as a name)
    return Lark(GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=True)


_EXPECTED_WORDS = {
    "NUMBER": "a number",
    "STRING": 'a text in quotes ("…")',
    "NAME": "a field or function name",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "_COMMA": "','",
    "COMP_OP": "a comparison",
    "NULL": "NULL",
    "WHERE": "WHERE",
}
_OPERATOR_TERMINALS = {"PLUS", "MINUS", "MUL_OP", "AMP", "AND", "OR", "COMP_OP", "IS", "IN", "WHERE"}


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the formula"
    if token.type == "STRING":
        return f"the text {token.value}"
    return f"'{token.value}'"


def _syntax_error(text: str, error: UnexpectedInput) -> FormulaError:
    position = error.pos_in_stream if error.pos_in_stream is not None else len(text)
    if isinstance(error, UnexpectedCharacters):
        character = text[position] if position < len(text) else ""
        if character in "\"'":
            message = "this text has no closing quote"
        elif character in "“”‘’":
            message = f"use straight quotes (\" or ') around texts, not {character}"
        else:
            message = f"unexpected character {character!r}"
        return FormulaError(message, Span.at(text, position, position + 1))
    if isinstance(error, UnexpectedToken):
        token = error.token
        ended = token.type == "$END"
        start = len(text) if ended or token.start_pos is None else token.start_pos
        end = token.end_pos if token.end_pos is not None and not ended else start
        expected = set(error.expected)
        message = "the formula ends too early" if ended else f"unexpected {_describe(token)}"
        if expected & {"NUMBER", "NAME", "STRING"}:
            message += "; expected a value (a number, a text, a field or a function)"
        elif expected <= {"_RPAR", "_COMMA"}:
            message += "; expected ',' or ')'" if "_COMMA" in expected else "; expected ')'"
        elif token.type == "COMP_OP" and "COMP_OP" not in expected:
            message += "; comparisons cannot be chained (write a < b AND b < c)"
        elif expected & _OPERATOR_TERMINALS or "$END" in expected:
            message += "; expected an operator or the end of the formula"
        return FormulaError(message, Span.at(text, start, end))
    if isinstance(error, UnexpectedEOF):
        return FormulaError("the formula ends too early", Span.at(text, len(text)))
    return FormulaError("the formula cannot be read", Span.at(text, 0))  # pragma: no cover - lark's other errors


def _span(text: str, tree: Tree[Any]) -> Span:
    meta = tree.meta
    if getattr(meta, "empty", True):
        return Span.at(text, 0)
    return Span(meta.start_pos, meta.end_pos, meta.line, meta.column)


def _token_span(token: Token) -> Span:
    start = token.start_pos or 0
    return Span(start, token.end_pos or start, token.line or 1, token.column or 1)


def _depth(tree: Tree[Any]) -> tuple[int, Tree[Any]]:
    """The nesting depth of a parse tree and its deepest subtree (without recursion)."""
    deepest, deepest_tree = 0, tree
    stack: list[tuple[Tree[Any], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest, deepest_tree = depth, node
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest, deepest_tree


_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


def _unquote(text: str, token: Token) -> str:
    raw = str(token.value)[1:-1]
    base = (token.start_pos or 0) + 1
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = raw[index + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            index += 2
        elif escape == "u" and _HEX4.fullmatch(raw[index + 2 : index + 6]):
            out.append(chr(int(raw[index + 2 : index + 6], 16)))
            index += 6
        else:
            raise FormulaError(
                f'unknown escape \\{escape} in a text (use \\", \\\\, \\n, \\t or \\uXXXX)',
                Span.at(text, base + index, base + index + 2),
            )
    value = "".join(out)
    if "\x00" in value:
        raise FormulaError("a text cannot contain the NUL character", _token_span(token))
    return value


def _token(item: Tree[Any] | Token | None) -> Token:
    if not isinstance(item, Token):  # pragma: no cover - the grammar puts tokens here
        raise TypeError(f"expected a token, got {item!r}")
    return item


def _tree(item: Tree[Any] | Token | None) -> Tree[Any]:
    if not isinstance(item, Tree):  # pragma: no cover - the grammar puts rules here
        raise TypeError(f"expected a rule, got {item!r}")
    return item


class _Builder:
    """Turns Lark's parse tree into the syntax tree above (recursively: the depth is capped first)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def build(self, tree: Tree[Any]) -> Node:
        kind = str(tree.data)
        span = _span(self.text, tree)
        children: list[Any] = list(tree.children)
        if kind == "number":
            token = _token(children[0])
            value = float(token.value)
            if not math.isfinite(value):
                raise FormulaError("this number is too large", _token_span(token))
            return Number(span, value)
        if kind == "string":
            return String(span, _unquote(self.text, _token(children[0])))
        if kind == "boolean":
            return Boolean(span, _token(children[0]).type == "TRUE")
        if kind == "null":
            return Null(span)
        if kind == "path":
            return Ref(span, tuple(str(_token(child).value) for child in children))
        if kind == "negation":
            op = "NOT" if _token(children[0]).type == "NOT" else "-"
            return Negate(span, op, self.build(_tree(children[1])))
        if kind in {"binary", "logical"}:
            left, operator, right = _tree(children[0]), _token(children[1]), _tree(children[2])
            op = str(operator.value).upper() if kind == "logical" else str(operator.value)
            return Binary(span, op, self.build(left), self.build(right), _token_span(operator))
        if kind == "compare":
            left, operator, right = _tree(children[0]), _token(children[1]), _tree(children[2])
            op = {"==": "=", "<>": "!="}.get(str(operator.value), str(operator.value))
            return Compare(span, op, self.build(left), self.build(right), _token_span(operator))
        if kind == "call":
            name, arguments, where = _token(children[0]), children[1], children[3]
            built = tuple(self.build(_tree(a)) for a in arguments.children) if arguments is not None else ()
            return Call(
                span,
                str(name.value).upper(),
                built,
                self.build(_tree(where)) if where is not None else None,
                _token_span(name),
            )
        negated = any(isinstance(child, Token) and child.type == "NOT" for child in children)
        values = [self.build(child) for child in children if isinstance(child, Tree)]
        if kind == "is_null":
            return IsNull(span, values[0], negated)
        if kind == "in_list":
            return InList(span, values[0], tuple(values[1:]), negated)
        raise FormulaError("the formula cannot be read", span)  # pragma: no cover - the grammar's rules are all above


def parse(text: str) -> Node:
    """The syntax tree of ``text``, or :class:`FormulaError` saying where it goes wrong."""
    return _parse_cached(text)


@lru_cache(maxsize=512)
def _parse_cached(text: str) -> Node:
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"a formula has at most {MAX_LENGTH} characters", Span.at(text, MAX_LENGTH))
    if not text.strip():
        raise FormulaError("the formula is empty", Span.at(text, 0))
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(text, error) from None
    if not isinstance(tree, Tree):  # pragma: no cover - ?start always yields a tree
        raise FormulaError("the formula cannot be read", Span.at(text, 0))
    depth, deepest = _depth(tree)
    if depth > MAX_DEPTH:
        raise FormulaError(f"the formula nests more than {MAX_DEPTH} levels deep", _span(text, deepest))
    return _Builder(text).build(tree)


# --- rendering ------------------------------------------------------------------------------------

# binding strength: a child binding less tightly than its place requires gets parentheses
_OR, _AND, _NOT, _COMPARE, _CONCAT, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 10)
_BINARY_LEVEL = {"OR": _OR, "AND": _AND, "&": _CONCAT, "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT}


def _level(node: Node) -> int:
    if isinstance(node, Binary):
        return _BINARY_LEVEL[node.op]
    if isinstance(node, Negate):
        return _NOT if node.op == "NOT" else _UNARY
    if isinstance(node, Compare | IsNull | InList):
        return _COMPARE
    return _ATOM


def render_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def render_string(value: str) -> str:
    out = ['"']
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def render(node: Node) -> str:
    """The normalized text of a formula: upper-case keywords and functions, one space around
    operators, only the parentheses that matter. Parsing it again gives the same tree."""
    return _render(node, 0)


def _wrapped(node: Node, minimum: int) -> str:
    text = _render(node, minimum)
    return f"({text})" if _level(node) < minimum else text


def _render(node: Node, minimum: int) -> str:
    if isinstance(node, Number):
        return render_number(node.value)
    if isinstance(node, String):
        return render_string(node.value)
    if isinstance(node, Boolean):
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, Null):
        return "NULL"
    if isinstance(node, Ref):
        return node.dotted
    if isinstance(node, Negate):
        if node.op == "NOT":
            return f"NOT {_wrapped(node.operand, _NOT)}"
        return f"-{_wrapped(node.operand, _UNARY)}"
    if isinstance(node, Binary):
        level = _BINARY_LEVEL[node.op]
        return f"{_wrapped(node.left, level)} {node.op} {_wrapped(node.right, level + 1)}"
    if isinstance(node, Compare):
        return f"{_wrapped(node.left, _CONCAT)} {node.op} {_wrapped(node.right, _CONCAT)}"
    if isinstance(node, IsNull):
        return f"{_wrapped(node.operand, _CONCAT)} IS {'NOT ' if node.negated else ''}NULL"
    if isinstance(node, InList):
        options = ", ".join(_render(option, 0) for option in node.options)
        return f"{_wrapped(node.operand, _CONCAT)} {'NOT ' if node.negated else ''}IN ({options})"
    if isinstance(node, Call):
        inner = ", ".join(_render(argument, 0) for argument in node.arguments)
        if node.where is not None:
            inner = f"{inner} WHERE {_render(node.where, 0)}"
        return f"{node.name}({inner})"
    raise TypeError(f"not a formula node: {node!r}")  # pragma: no cover


def normalize(text: str) -> str:
    """``render(parse(text))``."""
    return render(parse(text))


__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Binary",
    "Boolean",
    "Call",
    "Compare",
    "InList",
    "IsNull",
    "Negate",
    "Node",
    "Null",
    "Number",
    "Ref",
    "String",
    "normalize",
    "parse",
    "render",
]
