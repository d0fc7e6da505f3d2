"""The knowledge base through the API, over real law texts: upload → queued → indexed with progress →
retrieved in Chinese and English; collection access and tenancy hold; delete removes passages.
Also: nothing leaves the machine while embedding and searching."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.api.routers import knowledge as knowledge_router
from closeloop.assistant.knowledge import service
from closeloop.db.session import Database
from tests.assistant.conftest import chapter, law
from tests.factories import Tenant
from tests.samples import Api, assert_problem

Body = dict[str, Any]


def _search(api: Api, query: str, **extra: Any) -> list[Body]:
    response = api.request("POST", "/knowledge/search", json={"query": query, **extra})
    assert response.status_code == 200, response.text
    items: list[Body] = response.json()["items"]
    return items


def _upload(client: TestClient, api: Api, collection_id: int, name: str, content: bytes) -> Body:
    response = client.post(
        f"/api/v1/knowledge/collections/{collection_id}/documents",
        files={"file": (name, content, "application/octet-stream")},
        headers=api.headers(),
    )
    assert response.status_code == 202, response.text
    body: Body = response.json()
    return body


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    handed: list[tuple[int, int]] = []
    monkeypatch.setattr(knowledge_router, "enqueue_indexing", lambda org, doc: handed.append((org, doc)))
    return handed


def test_laws_uploaded_are_indexed_and_retrieved_within_access_rules(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, queued: list[tuple[int, int]]
) -> None:
    admin, rep, cfo = (Api(client, tenant[key]) for key in ("admin", "rep", "cfo"))
    response = admin.request(
        "POST",
        "/knowledge/collections",
        json={"name": "法规", "description": "广告与医疗器械", "access": [{"kind": "role", "value": "rep"}]},
    )
    assert response.status_code == 201, response.text
    laws = response.json()["id"]
    private = admin.request("POST", "/knowledge/collections", json={"name": "价格底线"}).json()["id"]

    ad_law = chapter(law("advertising_law"), "第二章").encode()
    device = chapter(law("medical_device_supervision_regulation"), "第五章").encode()
    documents = [
        _upload(client, admin, laws, "广告法.md", ad_law),
        _upload(client, admin, laws, "医疗器械监督管理条例.md", device),
        _upload(client, admin, private, "floor.html", b"<h1>Price floor</h1><p>CT-5000 floor price is 1.2M.</p>"),
    ]
    assert [d["status"] for d in documents] == ["queued"] * 3
    assert queued == [(tenant.organization_id, d["id"]) for d in documents]
    for organization_id, document_id in queued:  # as the worker runs them
        assert service.index_document(db, organization_id, document_id) == "ready"
    progress = admin.request("GET", f"/knowledge/collections/{laws}/documents/{documents[0]['id']}").json()
    assert progress["status"] == "ready"
    assert progress["progress"]["done"] == progress["progress"]["total"] > 15

    # the article a rep must know before promising anything about a device
    hits = _search(rep, "医疗器械广告能否保证疗效", k=5)
    assert hits[0]["heading"].endswith("第十六条"), [h["heading"] for h in hits]
    assert hits[0]["document"]["filename"] == "广告法.md"
    assert ad_law.decode()[hits[0]["start"] : hits[0]["end"]] == hits[0]["text"]
    english = _search(rep, "Can an advertisement for a medical device promise a cure rate?", k=3)
    assert any(h["heading"].endswith("第十六条") for h in english), [h["heading"] for h in english]
    # the rep's role may read the laws, not the price floor; the admin (a knowledge manager) reads both
    assert {h["document"]["collection_id"] for h in _search(rep, "CT-5000 floor price", k=10)} == {laws}
    assert _search(admin, "CT-5000 floor price", k=1)[0]["document"]["filename"] == "floor.html"
    assert_problem(rep.request("POST", "/knowledge/search", json={"query": "底价", "collection_ids": [private]}), 404)
    assert_problem(rep.request("GET", f"/knowledge/collections/{private}"), 404)
    assert [c["id"] for c in rep.request("GET", "/knowledge/collections").json()["items"]] == [laws]
    # the CFO reads knowledge, but no rule names the role; another organization sees nothing at all
    assert _search(cfo, "医疗器械广告") == []
    assert _search(Api(client, other_tenant["admin"]), "医疗器械广告") == []
    assert_problem(Api(client, other_tenant["admin"]).request("GET", f"/knowledge/collections/{laws}"), 404)
    # a rep cannot upload; a user rule lets one named CFO read the laws
    assert_problem(
        client.post(
            f"/api/v1/knowledge/collections/{laws}/documents",
            files={"file": ("x.txt", b"x", "text/plain")},
            headers=rep.headers(),
        ),
        403,
    )
    access = [{"kind": "role", "value": "rep"}, {"kind": "user", "value": str(tenant["cfo"].user_id)}]
    assert admin.request("PATCH", f"/knowledge/collections/{laws}", json={"access": access}).status_code == 200
    assert _search(cfo, "医疗器械广告", k=1)[0]["document"]["collection_id"] == laws
    bad = admin.request("PATCH", f"/knowledge/collections/{laws}", json={"access": [{"kind": "role", "value": "x"}]})
    assert_problem(bad, 422, field="access.0.value")

    # deleting a document takes its passages out of both indexes at once
    response = admin.request("DELETE", f"/knowledge/collections/{laws}/documents/{documents[0]['id']}")
    assert response.status_code == 204
    assert all(h["document"]["filename"] != "广告法.md" for h in _search(rep, "医疗器械广告 保证疗效", k=10))


def test_an_unreadable_upload_fails_with_its_reason_and_leaves_no_passage(
    client: TestClient, db: Database, tenant: Tenant, queued: list[tuple[int, int]]
) -> None:
    admin = Api(client, tenant["admin"])
    collection = admin.request("POST", "/knowledge/collections", json={"name": "合同"}).json()["id"]
    assert_problem(
        client.post(
            f"/api/v1/knowledge/collections/{collection}/documents",
            files={"file": ("deck.pptx", b"PK", "application/octet-stream")},
            headers=admin.headers(),
        ),
        422,
        field="file",
    )
    document = _upload(client, admin, collection, "scan.pdf", b"%PDF-1.4 truncated")
    assert service.index_document(db, tenant.organization_id, document["id"]) == "failed"
    body = admin.request("GET", f"/knowledge/collections/{collection}/documents/{document['id']}").json()
    assert body["status"] == "failed"
    assert body["error"].startswith("scan.pdf: not a readable PDF")
    assert _search(admin, "PDF") == []


@pytest.fixture
def network_closed(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every socket connection to anything but this machine fails (and is recorded)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError(f"network closed by the test: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def test_embedding_and_search_send_nothing_outside(
    client: TestClient, db: Database, tenant: Tenant, queued: list[tuple[int, int]], network_closed: list[Any]
) -> None:
    with pytest.raises(OSError, match="network closed"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    network_closed.clear()
    admin = Api(client, tenant["admin"])
    collection = admin.request("POST", "/knowledge/collections", json={"name": "竞争"}).json()["id"]
    text = chapter(law("anti_unfair_competition_law"), "第二章")
    document = _upload(client, admin, collection, "反不正当竞争法.md", text.encode())
    # no other test indexes this chapter: the model computes its vectors now, with the network closed
    assert service.index_document(db, tenant.organization_id, document["id"]) == "ready"
    hits = _search(admin, "诋毁竞争对手的商业信誉", k=3)
    assert any("第十一条" in h["heading"] or "第十二条" in h["heading"] for h in hits), [h["heading"] for h in hits]
    assert network_closed == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_the_model_embeds_in_a_process_without_any_network() -> None:
    """The model's own code (C, under ctypes) in a network namespace with no interface up."""
    script = (
        "import socket\n"
        "from closeloop.assistant.knowledge import embedding\n"
        "try:\n"
        "    socket.create_connection(('203.0.113.7', 443), timeout=1)\n"
        "    raise SystemExit('the network is open')\n"
        "except OSError:\n"
        "    pass\n"
        "q = embedding.query('医疗器械广告')\n"
        "p = embedding.passages(['医疗器械广告不得含有表示功效的断言', 'The weather is fine'])\n"
        "s = p @ q\n"
        "assert s[0] > s[1], s\n"
        "print('embedded offline', s.round(3).tolist())\n"
    )
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0 and "unshare failed" in result.stderr:
        pytest.skip(f"no network namespace here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert "embedded offline" in result.stdout


def test_an_upload_is_indexed_by_the_huey_worker_task(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real hand-over: the upload's commit enqueues the Huey task, which the consumer runs (here
    Huey's immediate mode runs it in-process against the test database)."""
    from closeloop.worker import tasks
    from closeloop.worker.queue import huey

    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    monkeypatch.setattr(huey, "immediate", True)
    admin = Api(client, tenant["admin"])
    collection = admin.request("POST", "/knowledge/collections", json={"name": "Service"}).json()["id"]
    manual = b"# Service levels\n\nArticle 1 An engineer is on site within 48 hours of a fault report.\n"
    document = _upload(client, admin, collection, "sla.md", manual)
    body = admin.request("GET", f"/knowledge/collections/{collection}/documents/{document['id']}").json()
    assert body["status"] == "ready"
    assert body["progress"] == {"done": 1, "total": 1}
    assert _search(admin, "how fast does an engineer arrive after a fault?", k=1)[0]["heading"] == (
        "Service levels › Article 1"
    )


def test_the_same_file_twice_in_a_collection_is_refused_naming_the_first(
    client: TestClient, db: Database, tenant: Tenant, queued: list[tuple[int, int]]
) -> None:
    """Identical bytes (same sha256) again in one collection would double every passage in search,
    talk tracks and battlecards: 409 naming the document that holds them; another collection, or a
    retry after a failed indexing, is fine."""
    admin = Api(client, tenant["admin"])
    first = admin.request("POST", "/knowledge/collections", json={"name": "产品手册"}).json()["id"]
    second = admin.request("POST", "/knowledge/collections", json={"name": "竞品"}).json()["id"]
    content = "# 产品手册\n\n环锯外径 7.5mm，可重复灭菌 200 次。\n".encode()
    kept = _upload(client, admin, first, "手册.md", content)
    again = client.post(
        f"/api/v1/knowledge/collections/{first}/documents",
        files={"file": ("手册-副本.md", content, "application/octet-stream")},
        headers=admin.headers(),
    )
    problem = assert_problem(again, 409, field="file", code="duplicate")
    assert "手册.md" in problem["detail"]
    assert problem["existing_document"] == {"id": kept["id"], "filename": "手册.md"}
    listed = admin.request("GET", f"/knowledge/collections/{first}/documents").json()
    assert [d["filename"] for d in listed["items"]] == ["手册.md"]
    _upload(client, admin, second, "手册.md", content)  # another collection may hold it
    broken = _upload(client, admin, second, "scan.pdf", b"%PDF-1.4 truncated")
    assert service.index_document(db, tenant.organization_id, broken["id"]) == "failed"
    _upload(client, admin, second, "scan.pdf", b"%PDF-1.4 truncated")  # a failed copy does not block a retry
