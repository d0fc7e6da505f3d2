"""Text out of uploaded files: PDF (pypdf), DOCX (python-docx), HTML (selectolax's lexbor engine), Markdown and TXT.

Every format becomes the same plain text, with headings written as Markdown headings (``# …``) so
that one chunker keeps headings and the passages under them together. Parsing happens in the
worker; a file that cannot be read fails with a message naming the file and the reason.
"""

from __future__ import annotations

import io
import re
from pathlib import PurePath

from closeloop.core.errors import ValidationFailed

FORMATS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
}
MAX_BYTES = 20 * 1024 * 1024

_BLOCK_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "tr", "dt", "dd", "caption")


def file_format(filename: str) -> str:
    """The format of an upload, from its name; an unknown extension is a validation error."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FORMATS:
        allowed = ", ".join(sorted(FORMATS))
        raise ValidationFailed.one(
            "file", f"{filename}: unsupported file type {suffix or '(none)'}; use {allowed}", code="unsupported_type"
        )
    return FORMATS[suffix]


def extract(filename: str, content: bytes) -> str:
    """The document's text, headings as Markdown headings. Raises ValueError naming what is wrong."""
    kind = file_format(filename)
    if kind == "pdf":
        return _pdf(content)
    if kind == "docx":
        return _docx(content)
    if kind == "html":
        return _html(_decode(content))
    return _normalize(_decode(content))


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("the file is neither UTF-8 nor GB18030 text")


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u3000", " ")
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _pdf(content: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as error:
        raise ValueError(f"not a readable PDF ({error})") from error
    return _normalize("\n\n".join(pages))


def _docx(content: bytes) -> str:
    import zipfile

    from docx import Document

    try:
        document = Document(io.BytesIO(content))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"not a readable DOCX file ({error})") from error
    lines: list[str] = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = _heading_level(style)
        lines.append(f"{'#' * level} {text}" if level else text)
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                lines.append(" | ".join(cells))
    return _normalize("\n\n".join(lines))


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return min(int(match.group(1)), 6) if match else 0


def _html(markup: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    tree.strip_tags(["script", "style", "noscript", "template", "svg"])
    root = tree.body or tree.root
    if root is None:
        return ""
    blocks: list[str] = []
    for node in root.css(",".join(_BLOCK_TAGS)):
        if _inside_block(node):
            continue
        text = " ".join(node.text(separator=" ").split())
        if not text:
            continue
        if node.tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            blocks.append(f"{'#' * int(node.tag[1])} {text}")
        else:
            blocks.append(text)
    if not blocks:
        blocks = [" ".join(root.text(separator=" ").split())]
    return _normalize("\n\n".join(blocks))


def _inside_block(node: object) -> bool:
    parent = getattr(node, "parent", None)
    while parent is not None:
        if getattr(parent, "tag", None) in _BLOCK_TAGS:
            return True
        parent = getattr(parent, "parent", None)
    return False
