"""Parsing each upload format and chunking that keeps headings and articles together."""

from __future__ import annotations

import io

import pytest
from docx import Document
from hypothesis import given
from hypothesis import strategies as st

from closeloop.assistant.knowledge.chunking import SEPARATOR, chunk_text
from closeloop.assistant.knowledge.parsing import extract, file_format
from closeloop.core.errors import ValidationFailed
from tests.assistant.conftest import law


def test_each_article_of_a_law_is_one_passage_under_its_chapter() -> None:
    text = law("advertising_law")
    chunks = chunk_text(text)
    article = next(c for c in chunks if c.heading.endswith("第十六条"))
    assert article.heading == SEPARATOR.join(["中华人民共和国广告法", "第二章 广告内容准则", "第十六条"])
    # the items (一)…(五) and the following paragraphs stay with their article, nothing of the next
    assert "（五）法律、行政法规规定禁止的其他内容" in article.text
    assert "第十七条" not in article.text
    assert text[article.start : article.end] == article.text
    articles = [c.heading.rsplit(SEPARATOR, 1)[-1] for c in chunks if "条" in c.heading.rsplit(SEPARATOR, 1)[-1]]
    # every one of the law's 74 articles starts a passage; one longer than 800 characters is in two parts
    assert len(set(articles)) == 74
    assert all(len(c.text) <= 800 for c in chunks)
    repeated = [a for a in set(articles) if articles.count(a) > 1]
    for name in repeated:
        parts = [i for i, a in enumerate(articles) if a == name]
        assert parts == list(range(parts[0], parts[0] + len(parts))), "the parts of an article are consecutive"


def test_long_sections_are_cut_at_paragraphs_and_keep_their_heading() -> None:
    text = "# Returns\n\n" + "\n\n".join(f"Paragraph {i}: " + "word " * 60 for i in range(8)) + "\n"
    chunks = chunk_text(text, max_chars=800)
    assert len(chunks) > 1
    assert {c.heading for c in chunks} == {"Returns"}
    assert all(len(c.text) <= 800 for c in chunks)
    assert all(c.text.startswith("Paragraph") for c in chunks)


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="ab 广告\n", min_size=1, max_size=120),
            st.sampled_from(["# 标题", "## Section", "第三条 内容", "Article 4 text", "第二章 总则"]),
        ),
        max_size=30,
    )
)
def test_chunks_are_ordered_slices_of_the_text(parts: list[str]) -> None:
    text = "\n\n".join(parts)
    chunks = chunk_text(text, max_chars=50)
    position = 0
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.start >= position
        position = chunk.end


def _docx() -> bytes:
    document = Document()
    document.add_heading("Warranty terms", level=1)
    document.add_paragraph("Article 1 The warranty lasts 24 months from installation.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Model"
    table.rows[0].cells[1].text = "CT-5000"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pdf(line: str) -> bytes:
    """A one-page PDF with one line of Helvetica text (objects and cross-reference written out)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


@pytest.mark.parametrize(
    ("filename", "content", "heading", "passage"),
    [
        ("terms.docx", _docx(), "Warranty terms", "warranty lasts 24 months"),
        ("terms.pdf", _pdf("Article 7 Delivery within 30 days of payment."), "", "Delivery within 30 days"),
        (
            "faq.html",
            "<html><head><style>p{}</style><script>x()</script></head><body><h2>退货</h2>"
            "<p>七日内<b>无理由</b>退货。</p><ul><li>保留发票</li></ul></body></html>".encode(),
            "退货",
            "七日内 无理由 退货",
        ),
        ("notes.md", "# 产品\n\n## 保修\n\n整机保修两年。\n".encode(), "产品 › 保修", "整机保修两年"),
        ("notes.txt", "售后电话 400-000-0000\r\n".encode("gb18030"), "", "售后电话"),
    ],
)
def test_every_format_is_parsed_into_headed_passages(filename: str, content: bytes, heading: str, passage: str) -> None:
    chunks = chunk_text(extract(filename, content))
    assert any(c.heading.startswith(heading) and passage in c.text for c in chunks), chunks
    assert "x()" not in " ".join(c.text for c in chunks)


def test_unsupported_and_unreadable_files_are_named() -> None:
    with pytest.raises(ValidationFailed, match=r"slides\.pptx: unsupported file type \.pptx"):
        file_format("slides.pptx")
    with pytest.raises(ValueError, match="not a readable PDF"):
        extract("broken.pdf", b"%PDF-1.4 nothing else")


def test_articles_on_consecutive_lines_each_open_a_passage() -> None:
    """A plain-text manual writes its articles on consecutive lines, with no blank line between: each
    article is still a passage of its own, headed by its label, and offsets stay the text's."""
    lines = [
        "产品手册",
        "第一条 产品介绍 总拥有成本更低。",
        "第二条 竞品 迈瑞的价格更低。",
        "  其售后网点更多。",
        "Article 3 Terms apply.",
    ]
    text = "\n".join(lines)
    chunks = chunk_text(text)
    assert [c.heading for c in chunks] == ["", "第一条", "第二条", "Article 3"]
    assert [c.text for c in chunks] == [
        "产品手册",
        "第一条 产品介绍 总拥有成本更低。",
        "第二条 竞品 迈瑞的价格更低。\n  其售后网点更多。",
        "Article 3 Terms apply.",
    ]
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_a_hard_wrapped_reference_to_an_article_does_not_cut_the_sentence() -> None:
    """Text from a PDF is wrapped mid-sentence: a line that starts with "第九条 …" or "Article 12 …" after
    an unfinished line is the sentence going on, not an article (reviewer, twelfth session)."""
    text = "\n".join(
        [
            "第三条 广告不得含有虚假或者引人误解的内容，不得欺骗、误导消费者，有违反本法以及其他相关法律的",
            "第九条 规定的情形的，由市场监督管理部门责令停止发布。",
            "The supplier shall deliver the goods within the lead time as set out in the order and in",
            "Article 12 of the supply agreement, unless agreed otherwise.",
        ]
    )
    chunks = chunk_text(text)
    assert [c.heading for c in chunks] == ["第三条"]
    assert chunks[0].text == text
