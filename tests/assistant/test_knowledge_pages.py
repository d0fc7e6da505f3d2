"""The knowledge pages: a manager creates a collection for reps and uploads a law, indexing shows its
progress, and a rep's search shows the answering article with the query's words highlighted."""

from __future__ import annotations

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
    # the CFO's role is not granted: the collection is not there for them
    cfo = browser(client, db, tenant["cfo"], locale="en")
    assert "广告法规" not in cfo.get("/knowledge").text
    assert cfo.get(location).status_code == 404
