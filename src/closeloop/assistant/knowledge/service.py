"""Collections, access rules, uploads, indexing and retrieval — the one door to the knowledge base.

Who reads what (STYLE.md, "For the assistants": the assistant is a conduit for the caller's own
permissions): holders of ``knowledge:manage`` read and manage every collection of their
organization; anyone else needs ``knowledge:read`` *and* a rule of the collection naming their role
or themselves. A collection without rules is read by its managers only. Every query goes through
the scope door (``tenant_clause``), so another organization's collections are never seen, and
retrieval searches only the collections the caller may read.

Partner access: a knowledge manager of the seller may share a collection with one of its partner
organizations (a dealer or service provider whose ``partner_of_id`` is the seller) — a ``partner``
rule naming the partner organization. Users of that partner organization holding ``knowledge:read``
then read and search that collection (never the seller's other collections, never what was shared
with another partner); they manage nothing in it. Sharing and unsharing are audited, and the rules
are read on every request, so an unshare takes effect at once. On PostgreSQL the row-level security
wall lets a partner's session read exactly the shared collections' rows (the migration
``2026-11-28-0940``).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from closeloop.assistant.knowledge import embedding, index, parsing
from closeloop.assistant.knowledge.chunking import SEPARATOR, chunk_text
from closeloop.assistant.knowledge.models import (
    AccessKind,
    DocumentStatus,
    KnowledgeAccessRule,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
)
from closeloop.assistant.knowledge.text import tokens
from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import Role, require
from closeloop.org import service as org_service
from closeloop.org.models import Organization, OrganizationKind, User

log = logging.getLogger("closeloop.knowledge")

READ = "knowledge:read"
MANAGE = "knowledge:manage"
#: chunks embedded and committed together; each batch moves the document's progress
BATCH = 16
MAX_K = 50


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    value: str


#: the partner organizations a collection may be shared with
SHAREABLE_KINDS = (OrganizationKind.DEALER.value, OrganizationKind.SERVICE_PROVIDER.value)


# ---------------------------------------------------------------- collections and rules


def _new_key() -> str:
    return uuid.uuid4().hex


def _rules_of(session: Session, actor: Actor, collection_ids: Sequence[int]) -> dict[int, list[RuleSpec]]:
    found: dict[int, list[RuleSpec]] = {cid: [] for cid in collection_ids}
    if not collection_ids:
        return found
    rows = session.execute(
        select(KnowledgeAccessRule.collection_id, KnowledgeAccessRule.kind, KnowledgeAccessRule.value)
        .where(tenant_clause(actor.organization_id, KnowledgeAccessRule))
        .where(KnowledgeAccessRule.collection_id.in_(list(collection_ids)))
        .order_by(KnowledgeAccessRule.kind, KnowledgeAccessRule.value)
    )
    for collection_id, kind, value in rows:
        found[collection_id].append(RuleSpec(kind, value))
    return found


def may_read(actor: Actor, rules: Sequence[RuleSpec]) -> bool:
    """Whether ``actor`` may read a collection with ``rules`` (of its own organization)."""
    if actor.can(MANAGE):
        return True
    if not actor.can(READ):
        return False
    for rule in rules:
        if rule.kind == AccessKind.ROLE and rule.value == actor.role:
            return True
        if rule.kind == AccessKind.USER and actor.user_id is not None and rule.value == str(actor.user_id):
            return True
    return False


def seller_of(session: Session, actor: Actor) -> int | None:
    """The seller organization the actor's organization is a partner of (``None`` for a seller)."""
    return session.scalar(select(Organization.partner_of_id).where(Organization.id == actor.organization_id))


def _shared_with(session: Session, actor: Actor, *, collection_id: int | None = None) -> list[KnowledgeCollection]:
    """The seller's collections shared with the actor's (partner) organization, by name."""
    seller = seller_of(session, actor)
    if seller is None:
        return []
    shares = (
        select(KnowledgeAccessRule.collection_id)
        .where(tenant_clause(seller, KnowledgeAccessRule))
        .where(KnowledgeAccessRule.kind == AccessKind.PARTNER, KnowledgeAccessRule.value == str(actor.organization_id))
    )
    statement = (
        select(KnowledgeCollection)
        .where(tenant_clause(seller, KnowledgeCollection))
        .where(KnowledgeCollection.id.in_(shares))
        .order_by(KnowledgeCollection.name, KnowledgeCollection.id)
    )
    if collection_id is not None:
        statement = statement.where(KnowledgeCollection.id == collection_id)
    return list(session.scalars(statement))


def readable_collections(session: Session, actor: Actor) -> list[KnowledgeCollection]:
    """The collections of the actor's organization that it may read, by name, then (for a partner
    organization's users) those its seller shared with it."""
    require(actor, READ)
    collections = list(
        session.scalars(
            select(KnowledgeCollection)
            .where(tenant_clause(actor.organization_id, KnowledgeCollection))
            .order_by(KnowledgeCollection.name, KnowledgeCollection.id)
        )
    )
    rules = _rules_of(session, actor, [c.id for c in collections])
    return [c for c in collections if may_read(actor, rules[c.id])] + _shared_with(session, actor)


def _own_collection(session: Session, actor: Actor, collection_id: int) -> KnowledgeCollection:
    """One collection of the actor's own organization that it may read."""
    require(actor, READ)
    collection = session.scalars(
        select(KnowledgeCollection)
        .where(tenant_clause(actor.organization_id, KnowledgeCollection))
        .where(KnowledgeCollection.id == collection_id)
    ).one_or_none()
    if collection is None or not may_read(actor, _rules_of(session, actor, [collection_id])[collection_id]):
        raise NotFound("knowledge collection", collection_id)
    return collection


def get_collection(session: Session, actor: Actor, collection_id: int) -> KnowledgeCollection:
    """One collection the actor may read — its organization's, or one shared with its partner
    organization (one it may not read is "not found", like another tenant's)."""
    try:
        return _own_collection(session, actor, collection_id)
    except NotFound:
        shared = _shared_with(session, actor, collection_id=collection_id)
        if not shared:
            raise
        return shared[0]


def readable_chunk(session: Session, actor: Actor, chunk_id: int) -> bool:
    """Whether the actor may see passage ``chunk_id``: one of a collection of its organization it may
    read, or of a collection its seller shared with its (partner) organization."""
    collections = readable_collections(session, actor)
    if not collections:
        return False
    owners = sorted({collection.organization_id for collection in collections})
    found = session.scalar(
        select(KnowledgeChunk.id)
        .where(or_(*(tenant_clause(owner, KnowledgeChunk) for owner in owners)))
        .where(KnowledgeChunk.id == chunk_id)
        .where(KnowledgeChunk.collection_id.in_([collection.id for collection in collections]))
    )
    return found is not None


def is_shared_with_actor(actor: Actor, collection: KnowledgeCollection) -> bool:
    """Whether ``collection`` is read by ``actor`` through a share (it belongs to the seller)."""
    return collection.organization_id != actor.organization_id


def _validate_rules(session: Session, actor: Actor, rules: Sequence[RuleSpec]) -> list[RuleSpec]:
    problems: list[FieldProblem] = []
    roles = {role.value for role in Role}
    clean: list[RuleSpec] = []
    for position, rule in enumerate(rules):
        field = f"access.{position}"
        if rule.kind == AccessKind.ROLE:
            if rule.value not in roles:
                problems.append(FieldProblem(f"{field}.value", f"unknown role {rule.value!r}"))
                continue
        elif rule.kind == AccessKind.USER:
            user_id = int(rule.value) if rule.value.isdigit() else None
            exists = user_id is not None and session.scalar(
                select(User.id).where(tenant_clause(actor.organization_id, User)).where(User.id == user_id)
            )
            if not exists:
                problems.append(FieldProblem(f"{field}.value", f"no user {rule.value} in your organization"))
                continue
        else:
            problems.append(FieldProblem(f"{field}.kind", f"kind must be role or user, not {rule.kind!r}"))
            continue
        if rule not in clean:
            clean.append(rule)
    if problems:
        raise ValidationFailed(problems)
    return clean


def _write_rules(session: Session, actor: Actor, collection: KnowledgeCollection, rules: Sequence[RuleSpec]) -> None:
    """Replace the collection's role and user rules (its partner shares are kept: see :func:`share`)."""
    session.execute(
        delete(KnowledgeAccessRule)
        .where(tenant_clause(actor.organization_id, KnowledgeAccessRule))
        .where(KnowledgeAccessRule.collection_id == collection.id)
        .where(KnowledgeAccessRule.kind != AccessKind.PARTNER)
    )
    for rule in rules:
        session.add(
            KnowledgeAccessRule(
                organization_id=actor.organization_id, collection_id=collection.id, kind=rule.kind, value=rule.value
            )
        )
    session.flush()


def create_collection(
    session: Session, actor: Actor, *, name: str, description: str = "", rules: Sequence[RuleSpec] = ()
) -> KnowledgeCollection:
    require(actor, MANAGE)
    name = name.strip()
    if not name:
        raise ValidationFailed.one("name", "a collection needs a name", "required")
    clean = _validate_rules(session, actor, rules)
    collection = KnowledgeCollection(
        organization_id=actor.organization_id,
        name=name,
        description=description,
        index_key=_new_key(),
        created_by_id=actor.user_id,
    )
    session.add(collection)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"A collection named {name!r} exists already", field_name="name") from error
    _write_rules(session, actor, collection, clean)
    audit.record(
        session,
        actor,
        "knowledge_collection.created",
        subject_type="knowledge_collection",
        subject_id=collection.id,
        changes=audit.diff({}, {"name": name, "description": description, "access": _rules_json(clean)}),
    )
    return collection


def update_collection(
    session: Session,
    actor: Actor,
    collection_id: int,
    *,
    name: str | None = None,
    description: str | None = None,
    rules: Sequence[RuleSpec] | None = None,
) -> KnowledgeCollection:
    require(actor, MANAGE)
    collection = _own_collection(session, actor, collection_id)
    before = {"name": collection.name, "description": collection.description}
    after = dict(before)
    if name is not None:
        if not name.strip():
            raise ValidationFailed.one("name", "a collection needs a name", "required")
        collection.name = after["name"] = name.strip()
    if description is not None:
        collection.description = after["description"] = description
    changes_before: dict[str, Any] = dict(before)
    changes_after: dict[str, Any] = dict(after)
    if rules is not None:
        clean = _validate_rules(session, actor, rules)
        changes_before["access"] = _rules_json(_seller_rules(_rules_of(session, actor, [collection.id])[collection.id]))
        changes_after["access"] = _rules_json(clean)
        _write_rules(session, actor, collection, clean)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"A collection named {name!r} exists already", field_name="name") from error
    audit.record(
        session,
        actor,
        "knowledge_collection.updated",
        subject_type="knowledge_collection",
        subject_id=collection.id,
        changes=audit.diff(changes_before, changes_after),
    )
    return collection


def delete_collection(session: Session, actor: Actor, collection_id: int) -> None:
    require(actor, MANAGE)
    collection = _own_collection(session, actor, collection_id)
    chunk_ids = list(
        session.scalars(
            select(KnowledgeChunk.id)
            .where(tenant_clause(actor.organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.collection_id == collection.id)
        )
    )
    index.forget(session, chunk_ids)
    for model in (KnowledgeChunk, KnowledgeDocument, KnowledgeAccessRule):
        session.execute(
            delete(model).where(tenant_clause(actor.organization_id, model)).where(model.collection_id == collection.id)
        )
    audit.record(
        session,
        actor,
        "knowledge_collection.deleted",
        subject_type="knowledge_collection",
        subject_id=collection.id,
        changes=audit.diff({"name": collection.name}, {}),
    )
    session.delete(collection)
    session.flush()


def _rules_json(rules: Sequence[RuleSpec]) -> list[dict[str, str]]:
    return [{"kind": rule.kind, "value": rule.value} for rule in rules]


def _seller_rules(rules: Sequence[RuleSpec]) -> list[RuleSpec]:
    return [rule for rule in rules if rule.kind != AccessKind.PARTNER]


def collection_body(session: Session, actor: Actor, collection: KnowledgeCollection) -> dict[str, Any]:
    counts = session.execute(
        select(KnowledgeDocument.status, func.count())
        .where(tenant_clause(collection.organization_id, KnowledgeDocument))
        .where(KnowledgeDocument.collection_id == collection.id)
        .group_by(KnowledgeDocument.status)
    ).all()
    shared = is_shared_with_actor(actor, collection)
    body: dict[str, Any] = {
        "id": collection.id,
        "name": collection.name,
        "description": collection.description,
        "created_at": collection.created_at.isoformat(),
        "documents": {status: int(count) for status, count in counts},
        "shared_with_you": shared,
    }
    if actor.can(MANAGE) and not shared:
        rules = _rules_of(session, actor, [collection.id])[collection.id]
        body["access"] = _rules_json(_seller_rules(rules))
        body["partners"] = [
            {"id": partner.id, "name": partner.name, "kind": str(partner.kind)}
            for partner in _partners_named(session, actor, [r.value for r in rules if r.kind == AccessKind.PARTNER])
        ]
    return body


# ---------------------------------------------------------------- partner shares


def partner_organizations(session: Session, actor: Actor) -> list[Organization]:
    """The partner organizations (dealers, service providers) of the actor's organization, by name."""
    require(actor, MANAGE)
    return list(
        session.scalars(
            select(Organization)
            .where(Organization.partner_of_id == actor.organization_id)
            .where(Organization.kind.in_(SHAREABLE_KINDS))
            .order_by(Organization.name, Organization.id)
        )
    )


def _partners_named(session: Session, actor: Actor, values: Sequence[str]) -> list[Organization]:
    ids = [int(value) for value in values if value.isdigit()]
    if not ids:
        return []
    return [partner for partner in partner_organizations(session, actor) if partner.id in ids]


def _partner(session: Session, actor: Actor, partner_id: int) -> Organization:
    found = [partner for partner in partner_organizations(session, actor) if partner.id == partner_id]
    if not found:
        raise ValidationFailed.one(
            "organization_id", f"no dealer or service provider {partner_id} works with your organization"
        )
    return found[0]


def share(session: Session, actor: Actor, collection_id: int, partner_id: int) -> Organization:
    """Let the users of partner organization ``partner_id`` read the collection (audited)."""
    require(actor, MANAGE)
    collection = _own_collection(session, actor, collection_id)
    partner = _partner(session, actor, partner_id)
    rules = _rules_of(session, actor, [collection.id])[collection.id]
    if RuleSpec(AccessKind.PARTNER, str(partner.id)) in rules:
        return partner
    session.add(
        KnowledgeAccessRule(
            organization_id=actor.organization_id,
            collection_id=collection.id,
            kind=AccessKind.PARTNER,
            value=str(partner.id),
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        "knowledge_collection.shared",
        subject_type="knowledge_collection",
        subject_id=collection.id,
        changes=audit.diff({}, {"partner_id": partner.id, "partner": partner.name}),
    )
    return partner


def unshare(session: Session, actor: Actor, collection_id: int, partner_id: int) -> None:
    """Stop sharing the collection with partner organization ``partner_id`` (audited; from the next
    request on its users no longer read it). Unsharing what is not shared is "not found"."""
    require(actor, MANAGE)
    collection = _own_collection(session, actor, collection_id)
    removed = session.execute(
        delete(KnowledgeAccessRule)
        .where(tenant_clause(actor.organization_id, KnowledgeAccessRule))
        .where(KnowledgeAccessRule.collection_id == collection.id)
        .where(KnowledgeAccessRule.kind == AccessKind.PARTNER, KnowledgeAccessRule.value == str(partner_id))
    )
    if not getattr(removed, "rowcount", 0):
        raise NotFound("knowledge share", partner_id)
    audit.record(
        session,
        actor,
        "knowledge_collection.unshared",
        subject_type="knowledge_collection",
        subject_id=collection.id,
        changes=audit.diff({"partner_id": partner_id}, {}),
    )
    session.flush()


# ---------------------------------------------------------------- documents


def add_document(
    session: Session, actor: Actor, collection_id: int, *, filename: str, content: bytes
) -> KnowledgeDocument:
    """Store an upload, queued for indexing (the caller enqueues :func:`index_document` after commit)."""
    require(actor, MANAGE)
    collection = _own_collection(session, actor, collection_id)
    file_format = parsing.file_format(filename)
    if not content:
        raise ValidationFailed.one("file", f"{filename} is empty", code="empty")
    if len(content) > parsing.MAX_BYTES:
        raise ValidationFailed.one(
            "file", f"{filename} is larger than {parsing.MAX_BYTES // (1024 * 1024)} MB", code="too_large"
        )
    digest = hashlib.sha256(content).hexdigest()
    _refuse_duplicate(session, actor, collection.id, filename, digest)
    document = KnowledgeDocument(
        organization_id=actor.organization_id,
        collection_id=collection.id,
        filename=filename[:255],
        file_format=file_format,
        size=len(content),
        sha256=digest,
        content=content,
        status=DocumentStatus.QUEUED,
        uploaded_by_id=actor.user_id,
    )
    collection_id = collection.id
    try:
        with session.begin_nested():  # (it flushes what came before, outside the savepoint)
            session.add(document)
            session.flush()
    except IntegrityError as error:
        # another upload of the same bytes passed the check at the same moment and was stored
        # first: the unique index refused this one; answer as the check would have
        _refuse_duplicate(session, actor, collection_id, filename, digest)
        raise DuplicateDocument(filename, None) from error
    audit.record(
        session,
        actor,
        "knowledge_document.uploaded",
        subject_type="knowledge_document",
        subject_id=document.id,
        changes=audit.diff({}, {"collection_id": collection.id, "filename": filename, "size": len(content)}),
    )
    return document


class DuplicateDocument(Conflict):
    """The same bytes are already in the collection (search, talk tracks and battlecards would
    return every passage twice); the problem names the document that holds them."""

    def __init__(self, filename: str, existing: KnowledgeDocument | None) -> None:
        if existing is None:  # stored by an upload not yet visible to this one
            message = f"{filename}: the same content is already in this collection; delete that one first to replace it"
        else:
            message = (
                f"{filename}: the same content is already in this collection as {existing.filename} "
                f"(document {existing.id}); delete that one first to replace it"
            )
        super().__init__(message, code="duplicate", field_name="file")
        if existing is not None:
            self.extra = {"existing_document": {"id": existing.id, "filename": existing.filename}}


def _live_copy(
    session: Session, organization_id: int, collection_id: int, digest: str, *, other_than: int | None = None
) -> KnowledgeDocument | None:
    """The oldest document of the collection holding these bytes whose indexing has not failed."""
    statement = (
        select(KnowledgeDocument)
        .where(tenant_clause(organization_id, KnowledgeDocument))
        .where(KnowledgeDocument.collection_id == collection_id)
        .where(KnowledgeDocument.sha256 == digest)
        .where(KnowledgeDocument.status != DocumentStatus.FAILED)
        .order_by(KnowledgeDocument.id)
        .limit(1)
    )
    if other_than is not None:
        statement = statement.where(KnowledgeDocument.id != other_than)
    return session.scalars(statement).first()


def _refuse_duplicate(session: Session, actor: Actor, collection_id: int, filename: str, digest: str) -> None:
    """Refuse content the collection already holds; a copy whose indexing failed does not count
    (uploading the same bytes again is how a transient failure is retried). The unique index
    ``uq_knowledge_documents_content`` holds the same rule against two uploads at once."""
    existing = _live_copy(session, actor.organization_id, collection_id, digest)
    if existing is not None:
        raise DuplicateDocument(filename, existing)


def list_documents(session: Session, actor: Actor, collection_id: int) -> list[KnowledgeDocument]:
    collection = get_collection(session, actor, collection_id)
    return list(
        session.scalars(
            select(KnowledgeDocument)
            .where(tenant_clause(collection.organization_id, KnowledgeDocument))
            .where(KnowledgeDocument.collection_id == collection.id)
            .order_by(KnowledgeDocument.id.desc())
        )
    )


def get_document(
    session: Session, actor: Actor, collection_id: int, document_id: int, *, own: bool = False
) -> KnowledgeDocument:
    collection = (_own_collection if own else get_collection)(session, actor, collection_id)
    document = session.scalars(
        select(KnowledgeDocument)
        .where(tenant_clause(collection.organization_id, KnowledgeDocument))
        .where(KnowledgeDocument.collection_id == collection.id, KnowledgeDocument.id == document_id)
    ).one_or_none()
    if document is None:
        raise NotFound("knowledge document", document_id)
    return document


def delete_document(session: Session, actor: Actor, collection_id: int, document_id: int) -> None:
    require(actor, MANAGE)
    document = get_document(session, actor, collection_id, document_id, own=True)
    _drop_chunks(session, actor.organization_id, document.id)
    audit.record(
        session,
        actor,
        "knowledge_document.deleted",
        subject_type="knowledge_document",
        subject_id=document.id,
        changes=audit.diff({"filename": document.filename, "collection_id": document.collection_id}, {}),
    )
    session.delete(document)
    _touch_collection(session, actor.organization_id, collection_id)
    session.flush()


def document_body(document: KnowledgeDocument) -> dict[str, Any]:
    return {
        "id": document.id,
        "collection_id": document.collection_id,
        "filename": document.filename,
        "format": document.file_format,
        "size": document.size,
        "sha256": document.sha256,
        "status": document.status,
        "progress": {"done": document.chunks_done, "total": document.chunks_total},
        "error": document.error,
        "uploaded_at": document.uploaded_at.isoformat(),
        "indexed_at": document.indexed_at.isoformat() if document.indexed_at else None,
    }


def _drop_chunks(session: Session, organization_id: int, document_id: int) -> None:
    chunk_ids = list(
        session.scalars(
            select(KnowledgeChunk.id)
            .where(tenant_clause(organization_id, KnowledgeChunk))
            .where(KnowledgeChunk.document_id == document_id)
        )
    )
    index.forget(session, chunk_ids)
    session.execute(
        delete(KnowledgeChunk)
        .where(tenant_clause(organization_id, KnowledgeChunk))
        .where(KnowledgeChunk.document_id == document_id)
    )


def _touch_collection(session: Session, organization_id: int, collection_id: int) -> None:
    session.execute(
        update(KnowledgeCollection)
        .where(tenant_clause(organization_id, KnowledgeCollection))
        .where(KnowledgeCollection.id == collection_id)
        .values(index_key=_new_key())
    )


# ---------------------------------------------------------------- indexing (the worker)


def index_document(database: Database, organization_id: int, document_id: int) -> str:
    """Parse, chunk, segment and embed one queued document; progress is committed batch by batch.

    A document that cannot be parsed ends ``failed`` with the reason and no chunk of it remains
    (nothing half-indexed is ever searched: only ``ready`` documents are). Returns the final status.
    """
    actor = org_service.system_actor(organization_id, label="knowledge indexer")
    with database.unit_of_work(actor) as session:
        document = _document_for_indexing(session, organization_id, document_id)
        if document is None:
            return "missing"
        filename, content, collection_id = document.filename, document.content, document.collection_id
        if document.status == DocumentStatus.FAILED:
            # a failed copy indexed again (``closeloop knowledge reindex``) while the same bytes were
            # uploaded since: the later upload holds them; this copy stays failed (the unique index
            # would refuse a second live copy)
            kept = _live_copy(session, organization_id, collection_id, document.sha256, other_than=document_id)
            if kept is not None:
                document.error = f"{filename}: duplicate of document {kept.id} ({kept.filename}); delete it"
                return DocumentStatus.FAILED
        _drop_chunks(session, organization_id, document_id)
        document.status, document.error, document.chunks_done = DocumentStatus.INDEXING, None, 0
    try:
        text = parsing.extract(filename, content)
        chunks = chunk_text(text)
        if not chunks:
            raise ValueError("no text found in the file")
    except (ValueError, ValidationFailed) as error:
        with database.unit_of_work(actor) as session:
            _fail(session, organization_id, document_id, f"{filename}: {error}")
        return DocumentStatus.FAILED
    with database.unit_of_work(actor) as session:
        document = _document_for_indexing(session, organization_id, document_id)
        if document is None:
            return "missing"
        document.text, document.chunks_total = text, len(chunks)
    try:
        for start in range(0, len(chunks), BATCH):
            batch = chunks[start : start + BATCH]
            vectors = embedding.passages([_embedded_text(c.heading, c.text) for c in batch])
            with database.unit_of_work(actor) as session:
                rows = [
                    KnowledgeChunk(
                        organization_id=organization_id,
                        collection_id=collection_id,
                        document_id=document_id,
                        ordinal=start + offset,
                        heading=chunk.heading,
                        text=chunk.text,
                        start=chunk.start,
                        end=chunk.end,
                        tokens=" ".join(tokens(f"{chunk.heading}\n{chunk.text}")),
                        embedding=embedding.to_bytes(vectors[offset]),
                    )
                    for offset, chunk in enumerate(batch)
                ]
                index.add(session, rows)
                session.execute(
                    update(KnowledgeDocument)
                    .where(tenant_clause(organization_id, KnowledgeDocument))
                    .where(KnowledgeDocument.id == document_id)
                    .values(chunks_done=start + len(batch))
                )
    except Exception as error:
        log.exception("indexing knowledge document %s failed", document_id)
        with database.unit_of_work(actor) as session:
            _fail(session, organization_id, document_id, f"{filename}: indexing failed ({error})")
        return DocumentStatus.FAILED
    with database.unit_of_work(actor) as session:
        document = _document_for_indexing(session, organization_id, document_id)
        if document is None:
            return "missing"
        document.status, document.indexed_at = DocumentStatus.READY, utcnow()
        _touch_collection(session, organization_id, collection_id)
        audit.record(
            session,
            actor,
            "knowledge_document.indexed",
            subject_type="knowledge_document",
            subject_id=document_id,
            changes=audit.diff({}, {"chunks": len(chunks), "status": DocumentStatus.READY}),
        )
    return DocumentStatus.READY


def _embedded_text(heading: str, text: str) -> str:
    return f"{heading}\n{text}" if heading else text


def _document_for_indexing(session: Session, organization_id: int, document_id: int) -> KnowledgeDocument | None:
    return session.scalars(
        select(KnowledgeDocument)
        .where(tenant_clause(organization_id, KnowledgeDocument))
        .where(KnowledgeDocument.id == document_id)
    ).one_or_none()


def _fail(session: Session, organization_id: int, document_id: int, message: str) -> None:
    _drop_chunks(session, organization_id, document_id)
    session.execute(
        update(KnowledgeDocument)
        .where(tenant_clause(organization_id, KnowledgeDocument))
        .where(KnowledgeDocument.id == document_id)
        .values(status=DocumentStatus.FAILED, error=message[:2000], chunks_done=0)
    )


# ---------------------------------------------------------------- retrieval


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: int
    filename: str
    collection_id: int
    heading: str
    text: str
    start: int
    end: int
    score: float
    fulltext_rank: int | None
    vector_rank: int | None

    @property
    def label(self) -> str:
        """How a reader names the passage: the document's title › the heading path, with the
        article (``广告法 › 第二章 广告内容准则 › 第九条``); the file's name stands for the title
        when the heading path does not start with one."""
        title = self.filename.rsplit(".", 1)[0] if "." in self.filename else self.filename
        if not self.heading:
            return title
        if SEPARATOR in self.heading or self.heading.startswith(title):
            return self.heading
        return f"{title}{SEPARATOR}{self.heading}"

    @property
    def link(self) -> str:
        """The page showing the passage in its document."""
        return f"/knowledge/passages/{self.chunk_id}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "document": {"id": self.document_id, "filename": self.filename, "collection_id": self.collection_id},
            "heading": self.heading,
            "label": self.label,
            "link": self.link,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 6),
            "ranks": {"fulltext": self.fulltext_rank, "vector": self.vector_rank},
        }


MODES = ("hybrid", "fulltext", "vector")
#: reciprocal-rank fusion constant (Cormack et al. 2009)
RRF_K = 60


def search(
    session: Session,
    actor: Actor,
    query: str,
    *,
    collection_ids: Sequence[int] | None = None,
    k: int = 5,
    mode: str = "hybrid",
    learn: bool = True,
) -> list[Passage]:
    """The ``k`` best passages for ``query`` among the collections the actor may read (all of them,
    or those of ``collection_ids`` — each must be readable), fused by reciprocal rank and moved by
    the reps' verdicts on them for similar requests (``learn=False``: the plain fusion)."""
    query = query.strip()
    if not query:
        raise ValidationFailed.one("query", "say what to look for", "required")
    if not 1 <= k <= MAX_K:
        raise ValidationFailed.one("k", f"k must be between 1 and {MAX_K}")
    if mode not in MODES:
        raise ValidationFailed.one("mode", f"mode must be one of {', '.join(MODES)}")
    if collection_ids:
        collections = [get_collection(session, actor, cid) for cid in dict.fromkeys(collection_ids)]
    else:
        collections = readable_collections(session, actor)
    if not collections:
        return []
    depth = max(k * 4, 40)
    fulltext: list[int] = []
    vector: list[int] = []
    keys = {c.id: (c.organization_id, c.index_key) for c in collections}
    owners = sorted({c.organization_id for c in collections})
    if mode in ("hybrid", "fulltext"):
        fulltext = index.fulltext(session, keys, query, depth)
    if mode in ("hybrid", "vector"):
        vector = index.nearest(session, keys, embedding.query(query), depth)
    scores: dict[int, float] = {}
    for ranking in (fulltext, vector):
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    if learn:
        # use is training (AST-5): the reps' verdicts on these passages for similar requests
        from closeloop.assistant.feedback.service import adjustments

        for chunk_id, change in adjustments(session, actor.organization_id, query, list(scores)).items():
            scores[chunk_id] += change
    best = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    if not best:
        return []
    rows = {
        row.id: row
        for row in session.execute(
            select(*_passage_columns())
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(or_(*(tenant_clause(owner, KnowledgeChunk) for owner in owners)))
            .where(KnowledgeChunk.id.in_(best))
            .where(KnowledgeChunk.collection_id.in_([c.id for c in collections]))
        )
    }
    fulltext_rank = {cid: rank for rank, cid in enumerate(fulltext, start=1)}
    vector_rank = {cid: rank for rank, cid in enumerate(vector, start=1)}
    return [
        Passage(
            chunk_id=cid,
            document_id=rows[cid].document_id,
            filename=rows[cid].filename,
            collection_id=rows[cid].collection_id,
            heading=rows[cid].heading,
            text=rows[cid].text,
            start=rows[cid].start,
            end=rows[cid].end,
            score=scores[cid],
            fulltext_rank=fulltext_rank.get(cid),
            vector_rank=vector_rank.get(cid),
        )
        for cid in best
        if cid in rows
    ]


def _passage_columns() -> tuple[Any, ...]:
    """What a :class:`Passage` is built from: the chunk and its document's file name."""
    return (
        KnowledgeChunk.id,
        KnowledgeChunk.document_id,
        KnowledgeChunk.collection_id,
        KnowledgeChunk.heading,
        KnowledgeChunk.text,
        KnowledgeChunk.start,
        KnowledgeChunk.end,
        KnowledgeDocument.filename,
    )


#: characters of the document shown on each side of a passage on its page
CONTEXT_CHARS = 400


def get_passage(session: Session, actor: Actor, chunk_id: int) -> tuple[Passage, str, str]:
    """Passage ``chunk_id`` of a collection the actor may read (else not found, like another
    tenant's), with the document's text just before and after it."""
    require(actor, READ)
    collections = readable_collections(session, actor)
    owners = sorted({collection.organization_id for collection in collections})
    row = (
        session.execute(
            select(*_passage_columns(), KnowledgeDocument.text.label("document_text"))
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(or_(*(tenant_clause(owner, KnowledgeChunk) for owner in owners)))
            .where(KnowledgeChunk.id == chunk_id)
            .where(KnowledgeChunk.collection_id.in_([c.id for c in collections]))
        ).first()
        if collections
        else None
    )
    if row is None:
        raise NotFound("knowledge passage", chunk_id)
    passage = Passage(
        chunk_id=row.id,
        document_id=row.document_id,
        filename=row.filename,
        collection_id=row.collection_id,
        heading=row.heading,
        text=row.text,
        start=row.start,
        end=row.end,
        score=0.0,
        fulltext_rank=None,
        vector_rank=None,
    )
    document = row.document_text or ""
    return passage, document[max(0, row.start - CONTEXT_CHARS) : row.start], document[row.end : row.end + CONTEXT_CHARS]
