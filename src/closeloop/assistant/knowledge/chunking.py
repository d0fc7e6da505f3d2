"""Passages that keep headings and articles together.

A chunk never crosses a heading: Markdown headings (``#`` … ``######``) open a new section and the
chunk carries the heading path (``广告法 › 第二章 广告内容准则``). Inside a section a legal article
(``第十六条 …`` or ``Article 16``) starts a new chunk and keeps its paragraphs — the items
(一)(二)… of an article stay with it. Paragraphs are gathered up to ``max_chars``; one article
longer than that is cut at paragraph boundaries, each part repeating the article's label in its
heading. Offsets are character offsets into the document's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_ARTICLE = re.compile(r"^\s*(第[一二三四五六七八九十百千零〇两\d]+条|Article\s+\d+[A-Za-z]?)[\s　.:：]")
_CHAPTER = re.compile(r"^\s*第[一二三四五六七八九十百千零〇\d]+[章节编](?:\s|$)")
SEPARATOR = " › "


@dataclass(frozen=True, slots=True)
class Chunk:
    heading: str
    text: str
    start: int
    end: int


@dataclass
class _Paragraph:
    text: str
    start: int
    end: int


def chunk_text(text: str, *, max_chars: int = 800) -> list[Chunk]:
    """Split ``text`` into passages (see the module's description)."""
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    pending: list[_Paragraph] = []
    article = ""

    def flush() -> None:
        nonlocal pending
        if pending:
            heading = SEPARATOR.join([title for _, title in path] + ([article] if article else []))
            chunks.extend(_pack(pending, heading, max_chars, text))
        pending = []

    for paragraph in _paragraphs(text):
        line = paragraph.text
        if line.startswith("<!--"):
            continue
        heading = _HEADING.match(line)
        chapter = None if heading else _CHAPTER.match(line)
        if heading or chapter:
            flush()
            article = ""
            level = len(heading.group(1)) if heading else 7
            title = heading.group(2).strip() if heading else line.strip()
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            continue
        found = _ARTICLE.match(line)
        if found:
            flush()
            article = found.group(1)
        pending.append(paragraph)
    flush()
    return chunks


def _paragraphs(text: str) -> list[_Paragraph]:
    """The text's paragraphs: lines up to a blank line — and a line that opens a heading, a chapter
    or an article starts one of its own, so a plain-text file that writes its articles on
    consecutive lines ("第一条 …" / "第二条 …", no blank line between) still splits at each."""
    found: list[_Paragraph] = []
    for match in re.finditer(r"[^\n]+(?:\n(?!\s*\n)[^\n]+)*", text):
        position = match.start()
        lines = match.group(0).split("\n")
        group_start = position
        group: list[str] = []
        for line in lines:
            if group and _opens_part(group[-1], line):
                _add(found, "\n".join(group), group_start)
                group, group_start = [], position
            group.append(line)
            position += len(line) + 1
        _add(found, "\n".join(group), group_start)
    return found


#: what ends a line that a new article may follow (a sentence or clause is over, or a bracket closed)
_LINE_DONE = re.compile(r"[。；：！？.;:!?)）」』】]\s*$")
#: a line this short without such an ending is a title ("产品手册"), not a sentence wrapped mid-way
_TITLE_LINE = 30


def _opens_part(previous: str, line: str) -> bool:
    """Whether ``line`` opens a part of its own inside a paragraph: a heading always; a chapter or an
    article only after a line that is over — one that ends a sentence or clause, or is short, or is
    a heading itself — so a hard-wrapped sentence ("…违反本法" / "第九条规定的…", "as set out in" /
    "Article 12 of the agreement") is not cut at a reference to an article."""
    if _HEADING.match(line):
        return True
    if not (_CHAPTER.match(line) or _ARTICLE.match(line)):
        return False
    done = previous.strip()
    return (
        not done
        or bool(_LINE_DONE.search(done))
        or len(done) <= _TITLE_LINE
        or bool(_HEADING.match(done) or _CHAPTER.match(done))
    )


def _add(found: list[_Paragraph], body: str, at: int) -> None:
    stripped = body.strip()
    if stripped:
        offset = at + (len(body) - len(body.lstrip()))
        found.append(_Paragraph(stripped, offset, offset + len(stripped)))


def _pack(paragraphs: list[_Paragraph], heading: str, max_chars: int, source: str) -> list[Chunk]:
    """Gather paragraphs into chunks of at most ``max_chars`` (a longer paragraph is cut in pieces)."""
    pieces: list[_Paragraph] = []
    for paragraph in paragraphs:
        if len(paragraph.text) <= max_chars:
            pieces.append(paragraph)
            continue
        for offset in range(0, len(paragraph.text), max_chars):
            part = paragraph.text[offset : offset + max_chars]
            pieces.append(_Paragraph(part, paragraph.start + offset, paragraph.start + offset + len(part)))
    chunks: list[Chunk] = []
    group: list[_Paragraph] = []
    size = 0
    for piece in pieces:
        if group and size + len(piece.text) > max_chars:
            chunks.append(_chunk(group, heading, source))
            group, size = [], 0
        group.append(piece)
        size += len(piece.text) + 1
    if group:
        chunks.append(_chunk(group, heading, source))
    return chunks


def _chunk(group: list[_Paragraph], heading: str, source: str) -> Chunk:
    start, end = group[0].start, group[-1].end
    return Chunk(heading, source[start:end], start, end)
