"""Contract comparison (AST-4), the pure part: clauses out of a contract's text, clause types by
keyword, the alignment of a contract's clauses with the standard template's, and a word-level diff.

Segmentation reads the numbering people write in contracts: Chinese ``第X条`` (Chinese or Arabic
numerals) and ``一、`` headings, English ``Article 3`` / ``Section 3`` / ``Clause 3`` and top-level
``3.`` / ``3`` numbers followed by a title (``3.1`` sub-clauses stay inside their clause). Chapter
lines (``第一章``) are dropped; text before the first clause is the preamble.

Alignment, in order: the same number and title; the same title under another number (a moved or
renumbered clause); the most similar text (difflib over words, at least :data:`MOVED_SIMILARITY`);
and two untitled clauses under the same number that share at least :data:`SAME_NUMBER_SIMILARITY`
of their words. What is left is missing (only in the template) or added (only in the contract).

The diff is over words — jieba's segmentation for Chinese (so a changed 30 → 90 days reads as one
replaced word, not as scattered characters), Latin words, numbers and punctuation otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from importlib import resources
from typing import Any

import yaml

from closeloop.assistant.knowledge.text import words

MOVED_SIMILARITY = 0.5
SAME_NUMBER_SIMILARITY = 0.25

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUM = "零〇一二两三四五六七八九十百千"

_ARTICLE = re.compile(rf"^第\s*([{_CN_NUM}]+|\d+)\s*条[\s:：.、]*(.*)$")
_CN_ORDINAL = re.compile(rf"^([{_CN_NUM}]+)\s*、\s*(.*)$")
_CHAPTER = re.compile(rf"^第\s*([{_CN_NUM}]+|\d+)\s*[章节编]")
_EN_WORD = re.compile(r"^(?:article|section|clause)\s+(\d+)\s*[.:\-–—]?\s*(.*)$", re.IGNORECASE)
_EN_NUMBER = re.compile(r"^(\d{1,3})(?:\.|\))?\s+(\S.*)$")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SENTENCE_MARK = re.compile(r"[。；;，,：:！？!?]")


def chinese_number(text: str) -> int:
    """``十二`` → 12, ``一百零五`` → 105, ``23`` → 23."""
    if text.isdigit():
        return int(text)
    total, digit = 0, 0
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            total += (digit or 1) * _CN_UNITS[char]
            digit = 0
    return total + digit


# ---------------------------------------------------------------- clause types


#: (type, keywords) — a clause's type is the one whose keywords its title names, else the one its
#: text names most often; lower-cased matching, Chinese and English
CLAUSE_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "liability_cap",
        (
            "责任限额",
            "责任上限",
            "赔偿上限",
            "赔偿总额",
            "最高赔偿",
            "责任限制",
            "间接损失",
            "limitation of liability",
            "liability cap",
            "aggregate liability",
            "total liability",
            "indirect damages",
            "consequential damages",
        ),
    ),
    (
        "penalties",
        (
            "违约金",
            "违约责任",
            "滞纳金",
            "罚款",
            "罚金",
            "赔偿金",
            "liquidated damages",
            "penalty",
            "penalties",
            "late fee",
            "late payment charge",
        ),
    ),
    (
        "payment",
        (
            "付款",
            "支付",
            "价款",
            "货款",
            "结算",
            "发票",
            "账期",
            "合同金额",
            "payment",
            "payable",
            "invoice",
            "fees",
            "price",
        ),
    ),
    (
        "ip",
        (
            "知识产权",
            "专利",
            "著作权",
            "版权",
            "商标",
            "技术成果",
            "intellectual property",
            "patent",
            "copyright",
            "trademark",
            "license",
            "licence",
        ),
    ),
    (
        "warranty",
        (
            "质量保证",
            "质保",
            "保修",
            "保证期",
            "warranty",
            "warranties",
            "warrants",
            "guarantee period",
        ),
    ),
    (
        "confidentiality",
        ("保密", "商业秘密", "机密", "confidential", "confidentiality", "non-disclosure", "trade secret"),
    ),
    (
        "termination",
        ("解除", "终止", "期限届满", "提前终止", "termination", "terminate", "expiry", "expiration"),
    ),
    (
        "jurisdiction",
        (
            "管辖",
            "争议解决",
            "争议",
            "仲裁",
            "法院",
            "适用法律",
            "jurisdiction",
            "governing law",
            "arbitration",
            "court",
            "dispute",
        ),
    ),
    # after jurisdiction: an "exclusive jurisdiction" title is about the venue
    (
        "exclusivity",
        ("独家", "排他", "专营", "竞业", "exclusive", "exclusivity", "exclusively", "non-compete", "sole distributor"),
    ),
)
TYPES = (*tuple(name for name, _keywords in CLAUSE_TYPES), "other")
#: the kinds of change a clause can undergo (``risk.yaml`` explains them)
CHANGE_KINDS = ("missing", "added", "changed", "figures")


def _load_risk() -> dict[str, dict[str, int]]:
    """The risk table (``risk.yaml``, shipped in the package): type → kind of change → 1 … 3.
    Every type and every kind must be there, each level 1, 2 or 3."""
    raw = yaml.safe_load(resources.files(__package__).joinpath("risk.yaml").read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or set(raw) != set(TYPES):
        raise ValueError(f"risk.yaml must name exactly the clause types {', '.join(TYPES)}")
    table: dict[str, dict[str, int]] = {}
    for kind, row in raw.items():
        if not isinstance(row, dict) or set(row) != set(CHANGE_KINDS):
            raise ValueError(f"risk.yaml: {kind} must give {', '.join(CHANGE_KINDS)}")
        if any(level not in (1, 2, 3) for level in row.values()):
            raise ValueError(f"risk.yaml: {kind}'s levels must be 1, 2 or 3")
        table[str(kind)] = {str(change): int(level) for change, level in row.items()}
    return table


#: type → kind of change → risk: 3 high, 2 medium, 1 low
RISK = _load_risk()

#: a figure: Arabic digits (with decimals, a percent sign), or Chinese numerals before a unit
_FIGURE = re.compile(r"\d+(?:[.,]\d+)*\s*%?|[零〇一二两三四五六七八九十百千万]+(?=[个日天周月年倍次元%％人台套件])")


def figures(text: str) -> list[str]:
    """The figures of ``text`` in a comparable form (``三十日`` and ``30 days`` both give ``30``)."""
    found = []
    for match in _FIGURE.finditer(text):
        value = match.group().replace(" ", "").replace(",", "")
        percent = value.endswith("%")
        value = value.rstrip("%")
        number = value if value[0].isdigit() else str(chinese_number(value))
        found.append(number + ("%" if percent else ""))
    return sorted(found)


def change_risk(clause_type: str, change: str) -> int:
    """The risk of a ``change`` (missing, added, changed, figures) to a clause of ``clause_type``."""
    return RISK[clause_type][change]


def clause_type(title: str, text: str) -> str:
    """The clause's type by its title's keywords, else by the keywords most frequent in its text."""
    title_l, text_l = title.lower(), text.lower()
    for name, keywords in CLAUSE_TYPES:
        if title_l and any(keyword in title_l for keyword in keywords):
            return name
    counts = {name: sum(text_l.count(keyword) for keyword in keywords) for name, keywords in CLAUSE_TYPES}
    best = max(counts.values())
    # a titled clause whose title names no type takes one from its text only when the text insists
    if best == 0 or (title_l and best < 2):
        return "other"
    return next(name for name, _ in CLAUSE_TYPES if counts[name] == best)


# ---------------------------------------------------------------- segmentation


@dataclass
class Clause:
    number: int | None  # None for the preamble
    label: str  # the clause's numbering as written: 第三条, 三、, Article 3, 3.
    title: str
    text: str  # the body, without the numbering and title
    start: int  # character offsets into the contract's text
    end: int
    kind: str = "other"

    @property
    def key(self) -> str:
        return _normal(self.title)

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "label": self.label,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "type": self.kind,
        }


def _normal(text: str) -> str:
    return re.sub(r"[\s\W_]+", "", text.lower())


#: the numbering styles, outermost first: a contract's clauses are numbered in the first style it
#: uses, and the later styles inside them (一、 under 第X条, 1. under Article 1) are sub-items
STYLES = ("article", "section", "ordinal", "number")


def _heading(line: str, style: str | None = None) -> tuple[str, int, str, str, str] | None:
    """(style, number, label, title, rest of the line) when ``line`` opens a clause (of ``style``)."""
    stripped = line.strip().lstrip("#").strip().replace("\u3000", " ")
    stripped = re.sub(r"^[*_]+|[*_]+$", "", stripped).strip()
    match = _ARTICLE.match(stripped)
    if match and style in (None, "article"):
        number, rest = chinese_number(match.group(1)), match.group(2).strip()
        label = stripped[: match.start(2)].strip(" :：.、")
        return ("article", number, label, *_split_title(rest))
    match = _EN_WORD.match(stripped)
    if match and style in (None, "section"):
        return ("section", int(match.group(1)), stripped[: match.start(2)].strip(), *_split_title(match.group(2)))
    match = _CN_ORDINAL.match(stripped)
    if match and style in (None, "ordinal"):
        title, body = _split_title(match.group(2).strip())
        return "ordinal", chinese_number(match.group(1)), f"{match.group(1)}、", title, body
    match = _EN_NUMBER.match(stripped)
    if match and style in (None, "number") and _looks_like_title(match.group(2)):
        title, body = _split_title(match.group(2).strip())
        return "number", int(match.group(1)), f"{match.group(1)}.", title, body
    return None


def _style(text: str) -> str | None:
    found = {heading[0] for line in text.splitlines() if (heading := _heading(line)) is not None}
    return next((style for style in STYLES if style in found), None)


def _looks_like_title(rest: str) -> bool:
    """``1. Payment Terms`` or ``1. Payment. The buyer pays…`` opens a clause; ``1 year`` does not."""
    first = rest.split(".")[0].split(":")[0].strip()
    return bool(first) and first[0].isupper() and len(first) <= 60


def _split_title(rest: str) -> tuple[str, str]:
    """A heading's title and whatever body follows it on the same line.

    ``付款方式`` and ``【付款方式】甲方应…`` and ``付款方式：甲方应…`` and ``Payment Terms. The buyer…`` give a
    title; a line that reads as a sentence (``甲方应于…。``) is body without a title.
    """
    rest = rest.strip()
    bracket = re.match(r"^[【\[(（]([^】\])）]{1,30})[】\])）]\s*(.*)$", rest)
    if bracket:
        return bracket.group(1).strip(), bracket.group(2).strip()
    if not rest:
        return "", ""
    english = re.match(r"^([A-Z][A-Za-z ,&'/-]{1,60}?)(?:\.|:)\s+(.+)$", rest)
    if english:
        return english.group(1).strip(), english.group(2).strip()
    colon = re.match(r"^([^\s:：。；，,]{1,12})[:：]\s*(.+)$", rest)
    if colon and _CJK.search(colon.group(1)):  # 标的：设备名称… (a title, a full-width colon, the body)
        return colon.group(1), colon.group(2).strip()
    spaced = re.match(r"^(\S{1,20})\s+(.+)$", rest)
    if spaced and _CJK.search(spaced.group(1)) and not _SENTENCE_MARK.search(spaced.group(1)):
        return spaced.group(1), spaced.group(2).strip()
    if len(rest) <= 30 and not _SENTENCE_MARK.search(rest.rstrip("。.")) and not rest.endswith(("。", ".")):
        return rest, ""
    return "", rest


def segment(text: str) -> list[Clause]:
    """The contract's clauses in order, the preamble (number None) first when there is one."""
    clauses: list[Clause] = []
    preamble: list[str] = []
    current: Clause | None = None
    body: list[str] = []
    position = 0
    style = _style(text)

    def close(end: int) -> None:
        if current is not None:
            current.text = "\n".join(line for line in body if line).strip()
            current.end = end
            current.kind = clause_type(current.title, current.text)
            clauses.append(current)

    for line in text.splitlines(keepends=True):
        start, position = position, position + len(line)
        content = line.strip()
        if _CHAPTER.match(content.lstrip("#").strip()):
            continue
        heading = _heading(content, style) if content and style else None
        if heading is not None:
            close(start)
            _style_of, number, label, title, rest = heading
            current = Clause(number, label, title, "", start, position)
            body = [rest] if rest else []
        elif current is None:
            if content:
                preamble.append(content.lstrip("#").strip())
        else:
            body.append(content)
    close(position)
    if preamble:
        first = clauses[0].start if clauses else position
        text_of = "\n".join(preamble)
        clauses.insert(0, Clause(None, "", "", text_of, 0, first, "other"))
    return clauses


# ---------------------------------------------------------------- diff and alignment


def diff(old: str, new: str) -> list[dict[str, str]]:
    """Word-level diff of ``old`` → ``new``: ``{op: equal|delete|insert, text}`` pieces in order."""
    a, b = words(old), words(new)
    pieces: list[dict[str, str]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            pieces.append({"op": "equal", "text": "".join(a[i1:i2])})
            continue
        if op in ("delete", "replace"):
            pieces.append({"op": "delete", "text": "".join(a[i1:i2])})
        if op in ("insert", "replace"):
            pieces.append({"op": "insert", "text": "".join(b[j1:j2])})
    return pieces


def similarity(old: str, new: str) -> float:
    """How much of two texts' words agree in order (difflib's ratio over words, 0–1)."""
    a = [w for w in words(old) if w.strip()]
    b = [w for w in words(new) if w.strip()]
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


@dataclass
class Change:
    status: str  # unchanged, changed, missing, added
    template: Clause | None
    contract: Clause | None
    similarity: float
    matched_by: str  # number_title, title, text, number, "" (missing / added)
    risk: int
    kind: str
    pieces: list[dict[str, str]] = field(default_factory=list)

    @property
    def moved(self) -> bool:
        return (
            self.template is not None
            and self.contract is not None
            and self.template.number is not None
            and self.template.number != self.contract.number
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "type": self.kind,
            "risk": self.risk,
            "matched_by": self.matched_by or None,
            "moved": self.moved,
            "similarity": round(self.similarity, 3),
            "template": self.template.as_dict() if self.template else None,
            "contract": self.contract.as_dict() if self.contract else None,
            "diff": self.pieces,
        }


@dataclass
class Comparison:
    changes: list[Change]

    @property
    def risk(self) -> int:
        return max((c.risk for c in self.changes), default=0)

    def counts(self) -> dict[str, int]:
        found = {"unchanged": 0, "changed": 0, "missing": 0, "added": 0}
        for change in self.changes:
            found[change.status] += 1
        return found

    def as_dict(self) -> dict[str, Any]:
        return {"risk": self.risk, "counts": self.counts(), "clauses": [c.as_dict() for c in self.changes]}


def _full(clause: Clause) -> str:
    return f"{clause.title}\n{clause.text}" if clause.title else clause.text


def compare(template_text: str, contract_text: str) -> Comparison:
    """The contract's clauses against the template's: paired, missing and added, with risk levels."""
    template, contract = segment(template_text), segment(contract_text)
    pairs: dict[int, tuple[int, str, float]] = {}  # template index -> (contract index, how, similarity)
    taken: set[int] = set()

    def pair(t: int, c: int, how: str) -> None:
        pairs[t] = (c, how, similarity(_full(template[t]), _full(contract[c])))
        taken.add(c)

    # the preambles go together
    if template and contract and template[0].number is None and contract[0].number is None:
        pair(0, 0, "number_title")
    for t, clause in enumerate(template):
        if t in pairs or not clause.key:
            continue
        for c, other in enumerate(contract):
            if c not in taken and other.key == clause.key and other.number == clause.number:
                pair(t, c, "number_title")
                break
    for t, clause in enumerate(template):
        if t in pairs or not clause.key:
            continue
        same = [c for c, other in enumerate(contract) if c not in taken and other.key == clause.key]
        if len(same) == 1:
            pair(t, same[0], "title")
    scored = sorted(
        (
            (similarity(_full(clause), _full(other)), t, c)
            for t, clause in enumerate(template)
            if t not in pairs
            for c, other in enumerate(contract)
            if c not in taken
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    for score, t, c in scored:
        if t in pairs or c in taken:
            continue
        same_number = template[t].number is not None and template[t].number == contract[c].number
        if score >= MOVED_SIMILARITY:
            pair(t, c, "text")
        elif same_number and score >= SAME_NUMBER_SIMILARITY and not (template[t].key and contract[c].key):
            pair(t, c, "number")

    changes: list[Change] = []
    by_contract: dict[int, Change] = {}
    for t, clause in enumerate(template):
        if t not in pairs:
            changes.append(Change("missing", clause, None, 0.0, "", change_risk(clause.kind, "missing"), clause.kind))
            continue
        c, how, score = pairs[t]
        other = contract[c]
        kind = clause.kind if clause.kind != "other" else other.kind
        if _normal(_full(clause)) == _normal(_full(other)):
            change = Change("unchanged", clause, other, 1.0, how, 0, kind)
        else:
            pieces = diff(_full(clause), _full(other))
            # only spacing or punctuation changed: low whatever the type
            wording = any(p["op"] != "equal" and _normal(p["text"]) for p in pieces)
            figured = figures(_full(clause)) != figures(_full(other))
            risk = change_risk(kind, "figures" if figured else "changed") if wording else 1
            change = Change("changed", clause, other, score, how, risk, kind, pieces)
        by_contract[c] = change
    # the result follows the contract's order, with each missing clause after its template neighbour
    ordered: list[Change] = []
    placed_missing: set[int] = set()
    template_index = {id(clause): t for t, clause in enumerate(template)}
    for c, other in enumerate(contract):
        change = by_contract.get(c) or Change(
            "added", None, other, 0.0, "", change_risk(other.kind, "added"), other.kind
        )
        if change.template is not None:
            t = template_index[id(change.template)]
            for earlier in range(t):
                if earlier not in pairs and earlier not in placed_missing:
                    ordered.append(next(ch for ch in changes if ch.template is template[earlier]))
                    placed_missing.add(earlier)
        ordered.append(change)
    for t in range(len(template)):
        if t not in pairs and t not in placed_missing:
            ordered.append(next(ch for ch in changes if ch.template is template[t]))
    return Comparison(ordered)
