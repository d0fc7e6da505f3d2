"""The migration that makes a collection's copies of the same bytes unique resolves the duplicates an
older database may hold: the oldest copy is kept, later live copies are marked failed (their
passages removed, their bytes kept), failed copies are left alone; then ``alembic check`` is clean."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from closeloop.assistant.knowledge import service
from closeloop.db.engine import normalize_url
from closeloop.db.migrate import check, downgrade, upgrade
from closeloop.db.security import APP_ROLE
from closeloop.db.session import connect
from closeloop.org import service as org_service
from tests.db.test_migrations import fresh_url  # noqa: F401 - the fixture
from tests.factories import make_tenant

BEFORE = "5a8c2e1f1420"
_COPY = (
    "INSERT INTO knowledge_documents (organization_id, collection_id, filename, file_format, size, sha256, "
    "content, status, chunks_total, chunks_done, uploaded_at) SELECT organization_id, collection_id, :name, "
    "file_format, size, sha256, content, :status, 1, 1, uploaded_at FROM knowledge_documents WHERE id = :id"
)


def test_existing_duplicates_keep_the_oldest_and_the_index_holds(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url)
    database = connect(fresh_url, app_role=APP_ROLE)
    tenant = make_tenant(database)
    system = org_service.system_actor(tenant.organization_id)
    with database.unit_of_work(system) as session:
        collection = service.create_collection(session, system, name="手册")
        first = service.add_document(session, system, collection.id, filename="a.md", content=b"# A\n\ntext\n").id
        other = service.add_document(session, system, collection.id, filename="b.md", content=b"# B\n\nmore\n").id
    database.dispose()
    downgrade(fresh_url, BEFORE)

    owner = create_engine(normalize_url(fresh_url))
    with owner.begin() as connection:  # what a race could leave before the index existed
        later = [
            connection.execute(
                text(_COPY + " RETURNING id"), {"name": name, "status": status, "id": first}
            ).scalar_one()
            for name, status in [("a-copy.md", "ready"), ("a-failed.md", "failed"), ("a-again.md", "queued")]
        ]
        connection.execute(
            text(
                "INSERT INTO knowledge_chunks (organization_id, collection_id, document_id, ordinal, heading, text, "
                "start, \"end\", tokens, embedding) SELECT organization_id, collection_id, id, 0, '', 'text', 0, 4, "
                "'text', :vector FROM knowledge_documents WHERE id = :id"
            ),
            {"id": later[0], "vector": b"\x00" * 8},
        )
        key_before = connection.execute(
            text("SELECT index_key FROM knowledge_collections WHERE id = :id"), {"id": collection.id}
        ).scalar_one()
    upgrade(fresh_url)
    check(fresh_url)

    with owner.connect() as connection:
        rows = {
            row.id: (row.status, row.error)
            for row in connection.execute(text("SELECT id, status, error FROM knowledge_documents ORDER BY id"))
        }
        chunks = connection.execute(
            text("SELECT count(*) FROM knowledge_chunks WHERE document_id = :id"), {"id": later[0]}
        ).scalar_one()
        key_after = connection.execute(
            text("SELECT index_key FROM knowledge_collections WHERE id = :id"), {"id": collection.id}
        ).scalar_one()
    owner.dispose()
    assert key_after != key_before  # running processes rebuild their in-memory indexes
    assert rows[first] == ("queued", None)
    assert rows[other] == ("queued", None)
    for marked in (later[0], later[2]):
        status, error = rows[marked]
        assert status == "failed"
        assert error.startswith(f"duplicate of document {first} ")
    assert rows[later[1]] == ("failed", None)
    assert chunks == 0

    database = connect(fresh_url, app_role=APP_ROLE)
    try:
        with (
            pytest.raises(service.DuplicateDocument) as refusal,
            database.unit_of_work(system) as session,
        ):  # and the rule holds from now on
            service.add_document(session, system, collection.id, filename="a-4.md", content=b"# A\n\ntext\n")
        assert refusal.value.extra["existing_document"]["id"] == first
    finally:
        database.dispose()
