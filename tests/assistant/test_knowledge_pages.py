"""The knowledge pages: a manager creates a collection for reps and uploads a law, indexing shows its
progress, and a rep's search shows the answering article with the query's words highlighted."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from closeloop.assistant.knowledge import service
from closeloop.db.session import Database
from closeloop.web import knowledge as knowledge_pages
from tests.assistant.conftest import chapter, law
from tests.factories import Tenant
from tests.web.test_settings_pages import browser, csrf_of


def test_a_manager_uploads_a_law_and_a_rep_finds_the_article_highlighted(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(knowledge_pages, "enqueue_indexing", lambda org, doc: queued.append((org, doc)))
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/knowledge")
    assert page.status_code == 200
    assert "知识库" in page.text
    created = admin.post(
        "/knowledge/collections",
        data={"csrf": csrf_of(page.text), "name": "广告法规", "description": "", "role": ["rep"]},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    collection = admin.get(location)
    assert 'value="rep" checked' in collection.text
    uploaded = admin.post(
        f"{location}/documents",
        data={"csrf": csrf_of(collection.text)},
        files={"file": ("广告法.md", chapter(law("advertising_law"), "第二章").encode(), "text/markdown")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    [(organization_id, document_id)] = queued
    row = admin.get(f"{location}/documents/{document_id}")
    assert 'data-status="queued"' in row.text
    assert 'hx-trigger="every 1s"' in row.text  # the row polls until indexing ends
    assert service.index_document(db, organization_id, document_id) == "ready"
    row = admin.get(f"{location}/documents/{document_id}")
    assert 'data-status="ready"' in row.text
    assert "hx-trigger" not in row.text

    rep = browser(client, db, tenant["rep"], locale="en")
    found = rep.get("/knowledge", params={"q": "医疗器械广告能否保证疗效"})
    assert found.status_code == 200
    first = found.text.split('class="passage"', 2)[1]
    assert "第十六条" in first
    assert "<mark>医疗器械</mark>" in first
    assert "Knowledge base" in found.text
    # cited as a reader names it, linked to the passage; offsets and score only as data
    link = re.search(r'<a href="(/knowledge/passages/\d+)">([^<]+)</a>', first)
    assert link is not None
    assert link.group(2) == "中华人民共和国广告法 › 第二章 广告内容准则 › 第十六条"
    assert "characters" not in found.text
    assert "score" not in first.split(">", 1)[1]  # data-score on the item, no figure in the text
    assert re.search(r'data-start="\d+" data-end="\d+" data-score="0\.\d{4}"', first)
    opened = rep.get(link.group(1))
    assert opened.status_code == 200
    assert f"<h1>{link.group(2)}</h1>" in opened.text
    assert '<mark id="passage">' in opened.text
    assert "第十六条" in opened.text.split('<mark id="passage">', 1)[1].split("</mark>", 1)[0]
    assert "From 广告法.md" in opened.text
    # the CFO's role is not granted: the collection is not there for them
    cfo = browser(client, db, tenant["cfo"], locale="en")
    assert "广告法规" not in cfo.get("/knowledge").text
    assert cfo.get(location).status_code == 404
    assert cfo.get(link.group(1)).status_code == 404


def test_upload_refusals_come_back_beside_the_file_input_in_the_readers_language(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tester's .exe led to "出错了" with a raw English sentence and only 返回首页; now the collection
    page comes back with the reason beside the file input, naming the file and the accepted types."""
    queued: list[tuple[int, int]] = []
    monkeypatch.setattr(knowledge_pages, "enqueue_indexing", lambda org, doc: queued.append((org, doc)))
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/knowledge")
    created = admin.post(
        "/knowledge/collections",
        data={"csrf": csrf_of(page.text), "name": "产品资料", "description": ""},
        follow_redirects=False,
    )
    location = created.headers["location"]
    token = csrf_of(admin.get(location).text)
    refused = admin.post(
        f"{location}/documents",
        data={"csrf": token},
        files={"file": ("bad.exe", b"MZ\x90\x00", "application/x-msdownload")},
    )
    assert refused.status_code == 422
    assert "出错了" not in refused.text
    assert 'id="upload-error"' in refused.text
    assert (
        "无法添加 bad.exe：不支持这种文件类型。可以上传的类型：.docx, .htm, .html, .markdown, .md, .pdf" in refused.text
    )
    assert "unsupported file type" not in refused.text
    assert 'type="file" name="file"' in refused.text  # the form is there to try again

    manual = "# 产品手册\n\n环锯外径 7.5mm。\n".encode()
    first = admin.post(
        f"{location}/documents", data={"csrf": token}, files={"file": ("手册.md", manual, "text/markdown")}
    )
    assert first.status_code == 200
    twice = admin.post(
        f"{location}/documents", data={"csrf": token}, files={"file": ("副本.md", manual, "text/markdown")}
    )
    assert twice.status_code == 409
    assert "副本.md 与本资料库中已有的 手册.md 内容完全相同" in twice.text

    broken = admin.post(
        f"{location}/documents",
        data={"csrf": token},
        files={"file": ("方案.docx", b"not a zip", "application/octet-stream")},
    )
    assert broken.status_code == 200
    organization_id, document_id = queued[-1]
    assert service.index_document(db, organization_id, document_id) == "failed"
    row = admin.get(f"{location}/documents/{document_id}")
    assert "方案.docx：不是可以读取的 DOCX 文件（" in row.text
    assert "not a readable DOCX file" not in row.text
    admin.get("/language/en")
    assert "方案.docx: not a readable DOCX file (" in admin.get(location).text
