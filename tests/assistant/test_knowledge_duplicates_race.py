"""Two uploads of the same bytes to one collection at the same moment: one is stored, the other gets
the same 409 the service's check gives, and the unique index ``uq_knowledge_documents_content``
holds the rule even when both uploads passed the check (the race the check alone could lose)."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.api.routers import knowledge as knowledge_router
from closeloop.assistant.knowledge import service
from closeloop.assistant.knowledge.models import DocumentStatus, KnowledgeDocument
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.org import service as org_service
from tests.concurrency import at_once
from tests.conftest import Backend
from tests.factories import Tenant
from tests.samples import Api, assert_problem

pytestmark = pytest.mark.committing

CONTENT = "# 报价规则\n\n折扣超过 15% 需要总监审批。\n".encode()


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knowledge_router, "enqueue_indexing", lambda organization_id, document_id: None)


def _live_copies(db: Database, organization_id: int, collection_id: int) -> int:
    with db.reading(None, system=True) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(KnowledgeDocument)
                .where(tenant_clause(organization_id, KnowledgeDocument))
                .where(KnowledgeDocument.collection_id == collection_id)
                .where(KnowledgeDocument.status != DocumentStatus.FAILED)
            )
            or 0
        )


def _upload(test_client: TestClient, headers: dict[str, str], collection_id: int, name: str) -> Any:
    return test_client.post(
        f"/api/v1/knowledge/collections/{collection_id}/documents",
        files={"file": (name, CONTENT, "text/markdown")},
        headers=headers,
    )


def test_two_uploads_at_once_store_one_and_refuse_the_other(client: TestClient, tenant: Tenant, db: Database) -> None:
    admin = Api(client, tenant["admin"])
    collection = admin.request("POST", "/knowledge/collections", json={"name": "报价"}).json()["id"]
    for round_number in range(3):
        if round_number:  # start each round from an empty collection
            for document in admin.request("GET", f"/knowledge/collections/{collection}/documents").json()["items"]:
                admin.request("DELETE", f"/knowledge/collections/{collection}/documents/{document['id']}")
        answers = at_once(
            client.app,
            [
                partial(_upload, headers=tenant["admin"].headers, collection_id=collection, name=f"规则-{n}.md")
                for n in range(2)
            ],
        )
        assert sorted(answer.status_code for answer in answers) == [202, 409], [a.text for a in answers]
        refused = next(answer for answer in answers if answer.status_code == 409)
        problem = assert_problem(refused, 409, field="file", code="duplicate")
        assert "the same content is already in this collection" in problem["detail"]
        assert _live_copies(db, tenant.organization_id, collection) == 1


def _collection(db: Database, organization_id: int, name: str) -> int:
    with db.unit_of_work(None, system=True) as session:
        return service.create_collection(session, org_service.system_actor(organization_id), name=name).id


def _store(db: Database, organization_id: int, collection_id: int, name: str) -> int | service.DuplicateDocument:
    system = org_service.system_actor(organization_id)
    try:
        with db.unit_of_work(system) as session:
            return service.add_document(session, system, collection_id, filename=name, content=CONTENT).id
    except service.DuplicateDocument as error:
        return error


def _assert_refused_naming(refusal: object, kept_id: int, kept_name: str) -> None:
    assert isinstance(refusal, service.DuplicateDocument), refusal
    assert (refusal.status, refusal.code, refusal.problems[0].field) == (409, "duplicate", "file")
    assert refusal.extra == {"existing_document": {"id": kept_id, "filename": kept_name}}


def test_a_copy_that_passed_the_check_is_refused_by_the_index(
    tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each upload's check is made blind (as if it had looked before the other stored): the index
    refuses the second copy, and the upload answers the check's own refusal, naming the first."""
    collection_id = _collection(db, tenant.organization_id, "竞品")
    real_live_copy = service._live_copy
    blind = [False]

    def looked_too_early(*args: Any, **kwargs: Any) -> KnowledgeDocument | None:
        if blind[0]:
            blind[0] = False
            return None
        return real_live_copy(*args, **kwargs)

    monkeypatch.setattr(service, "_live_copy", looked_too_early)
    blind[0] = True
    kept = _store(db, tenant.organization_id, collection_id, "甲.md")
    assert isinstance(kept, int)
    blind[0] = True
    _assert_refused_naming(_store(db, tenant.organization_id, collection_id, "乙.md"), kept, "甲.md")
    assert _live_copies(db, tenant.organization_id, collection_id) == 1


def test_two_sessions_that_both_looked_first_store_one_copy(
    backend: Backend, tenant: Tenant, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: two transactions both run the check before either inserts (a barrier holds them
    there); the second insert waits on the index until the first commits, then is refused.
    (SQLite's writers take the write lock when they begin, so there the second check runs after the
    first commit and refuses by itself: the API test above covers it.)"""
    if backend.name != "postgres":
        pytest.skip("SQLite serializes writers from BEGIN IMMEDIATE: two checks cannot interleave")
    collection_id = _collection(db, tenant.organization_id, "价格")
    real_live_copy = service._live_copy
    first_looks: set[int] = set()
    both_looked = threading.Barrier(2)

    def held_after_looking(*args: Any, **kwargs: Any) -> KnowledgeDocument | None:
        found = real_live_copy(*args, **kwargs)
        if threading.get_ident() not in first_looks:  # each upload's check, before its insert
            first_looks.add(threading.get_ident())
            both_looked.wait(timeout=30)
        return found

    monkeypatch.setattr(service, "_live_copy", held_after_looking)
    outcomes: dict[str, int | service.DuplicateDocument] = {}

    def upload(name: str) -> None:
        outcomes[name] = _store(db, tenant.organization_id, collection_id, name)

    threads = [threading.Thread(target=upload, args=(name,)) for name in ("甲.md", "乙.md")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    kept = [(name, outcome) for name, outcome in outcomes.items() if isinstance(outcome, int)]
    refused = [outcome for outcome in outcomes.values() if not isinstance(outcome, int)]
    assert len(kept) == 1, outcomes
    assert len(refused) == 1, outcomes
    _assert_refused_naming(refused[0], kept[0][1], kept[0][0])
    assert _live_copies(db, tenant.organization_id, collection_id) == 1


def test_reindexing_a_failed_copy_leaves_it_failed_when_the_bytes_were_uploaded_again(
    tenant: Tenant, db: Database
) -> None:
    """``closeloop knowledge reindex`` takes every document, failed ones too: a failed copy whose
    bytes a later upload holds stays failed, naming that upload (a second live copy is refused)."""
    collection_id = _collection(db, tenant.organization_id, "重建")
    failed = _store(db, tenant.organization_id, collection_id, "旧.md")
    assert isinstance(failed, int)
    with db.unit_of_work(None, system=True) as session:
        service._fail(session, tenant.organization_id, failed, "旧.md: the parser crashed")
    again = _store(db, tenant.organization_id, collection_id, "新.md")
    assert isinstance(again, int)

    assert service.index_document(db, tenant.organization_id, failed) == DocumentStatus.FAILED
    with db.reading(None, system=True) as session:
        document = session.get(KnowledgeDocument, failed)
        assert document is not None
        assert document.status == DocumentStatus.FAILED
        assert f"duplicate of document {again}" in (document.error or "")
    assert _live_copies(db, tenant.organization_id, collection_id) == 1
