"""The knowledge base (AST-1): collections and their access rules, documents, hybrid search.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated

from fastapi import APIRouter, Body, File, Path, UploadFile
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, Multipart, commit, json_response
from closeloop.assistant import briefs
from closeloop.assistant.knowledge import parsing
from closeloop.assistant.knowledge import service as knowledge
from closeloop.crm.schemas import Schema
from closeloop.db.session import after_commit

router = APIRouter()

CollectionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The collection's id")]
DocumentId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The document's id")]


class AccessRule(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, Field(max_length=10, description="`role` or `user`")]
    value: Annotated[str, Field(min_length=1, max_length=40, description="The role's name, or the user's id")]


class CollectionIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)]
    description: Annotated[str, Field(max_length=4000)] = ""
    access: Annotated[list[AccessRule], Field(default_factory=list, max_length=200)]


class CollectionPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    access: Annotated[list[AccessRule], Field(max_length=200)] | None = None


class SearchIn(Schema):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(min_length=1, max_length=2000)]
    collection_ids: Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=100)] | None = None
    k: Annotated[int, Field(ge=1, le=knowledge.MAX_K)] = 5
    mode: Annotated[str, Field(max_length=10, description="hybrid (default), fulltext or vector")] = "hybrid"


def _rules(rules: list[AccessRule] | None) -> list[knowledge.RuleSpec] | None:
    return None if rules is None else [knowledge.RuleSpec(rule.kind, rule.value) for rule in rules]


def enqueue_indexing(organization_id: int, document_id: int) -> None:
    """Hand the document to the background worker (called once its row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_knowledge_document(organization_id, document_id)


@router.get(
    "/knowledge/collections",
    tags=["knowledge"],
    operation_id="list_knowledge_collections",
    response_class=Response,
    summary="The knowledge collections you may read",
)
def list_collections(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [knowledge.collection_body(session, actor, c) for c in knowledge.readable_collections(session, actor)]
    return json_response({"items": items})


@router.post(
    "/knowledge/collections",
    tags=["knowledge"],
    status_code=201,
    operation_id="create_knowledge_collection",
    response_class=Response,
    summary="Create a collection with its access rules (knowledge managers)",
    description="`access`: who besides the knowledge managers may read it — `{kind: role, value: rep}` or "
    "`{kind: user, value: <user id>}`. Without rules only the managers read it.",
)
def create_collection(database: DatabaseDep, actor: CurrentActor, body: Annotated[CollectionIn, Body()]) -> Response:
    with database.writing(actor) as session:
        collection = knowledge.create_collection(
            session, actor, name=body.name, description=body.description, rules=_rules(body.access) or []
        )
        payload = knowledge.collection_body(session, actor, collection)
        commit(session)
    return json_response(
        payload, status_code=201, headers={"Location": f"/api/v1/knowledge/collections/{payload['id']}"}
    )


@router.get(
    "/knowledge/collections/{collection_id}",
    tags=["knowledge"],
    operation_id="get_knowledge_collection",
    response_class=Response,
    summary="One collection (404 when you may not read it)",
)
def get_collection(database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId) -> Response:
    with database.reading(actor) as session:
        return json_response(
            knowledge.collection_body(session, actor, knowledge.get_collection(session, actor, collection_id))
        )


@router.patch(
    "/knowledge/collections/{collection_id}",
    tags=["knowledge"],
    operation_id="update_knowledge_collection",
    response_class=Response,
    summary="Rename a collection, change its description or replace its access rules (knowledge managers)",
)
def update_collection(
    database: DatabaseDep,
    actor: CurrentActor,
    collection_id: CollectionId,
    body: Annotated[CollectionPatch, Body()],
) -> Response:
    with database.writing(actor) as session:
        collection = knowledge.update_collection(
            session, actor, collection_id, name=body.name, description=body.description, rules=_rules(body.access)
        )
        payload = knowledge.collection_body(session, actor, collection)
        commit(session)
    return json_response(payload)


@router.delete(
    "/knowledge/collections/{collection_id}",
    tags=["knowledge"],
    status_code=204,
    operation_id="delete_knowledge_collection",
    response_class=Response,
    summary="Delete a collection with its documents and index (knowledge managers)",
)
def delete_collection(database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId) -> Response:
    with database.writing(actor) as session:
        knowledge.delete_collection(session, actor, collection_id)
        commit(session)
    return Response(status_code=204)


PartnerId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The partner organization's id")]


@router.get(
    "/knowledge/partners",
    tags=["knowledge"],
    operation_id="list_knowledge_partners",
    response_class=Response,
    summary="The partner organizations (dealers, service providers) collections can be shared with",
)
def list_partners(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        partners = knowledge.partner_organizations(session, actor)
        items = [{"id": p.id, "name": p.name, "kind": str(p.kind)} for p in partners]
    return json_response({"items": items})


@router.put(
    "/knowledge/collections/{collection_id}/partners/{organization_id}",
    tags=["knowledge"],
    operation_id="share_knowledge_collection",
    response_class=Response,
    summary="Share a collection with a partner organization (knowledge managers; audited)",
    description="The partner's users who hold knowledge:read then read, search and get answers from this "
    "collection, and from no other of yours. Sharing again changes nothing.",
)
def share_collection(
    database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId, organization_id: PartnerId
) -> Response:
    with database.writing(actor) as session:
        knowledge.share(session, actor, collection_id, organization_id)
        payload = knowledge.collection_body(session, actor, knowledge.get_collection(session, actor, collection_id))
        commit(session)
    return json_response(payload)


@router.delete(
    "/knowledge/collections/{collection_id}/partners/{organization_id}",
    tags=["knowledge"],
    status_code=204,
    operation_id="unshare_knowledge_collection",
    response_class=Response,
    summary="Stop sharing a collection with a partner organization (knowledge managers; audited, at once)",
)
def unshare_collection(
    database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId, organization_id: PartnerId
) -> Response:
    with database.writing(actor) as session:
        knowledge.unshare(session, actor, collection_id, organization_id)
        commit(session)
    return Response(status_code=204)


@router.get(
    "/knowledge/collections/{collection_id}/documents",
    tags=["knowledge"],
    operation_id="list_knowledge_documents",
    response_class=Response,
    summary="The collection's documents with their indexing status and progress",
)
def list_documents(database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId) -> Response:
    with database.reading(actor) as session:
        items = [knowledge.document_body(d) for d in knowledge.list_documents(session, actor, collection_id)]
    return json_response({"items": items})


@router.post(
    "/knowledge/collections/{collection_id}/documents",
    tags=["knowledge"],
    status_code=202,
    operation_id="upload_knowledge_document",
    response_class=Response,
    summary="Upload a PDF, DOCX, Markdown, TXT or HTML file and queue its indexing (knowledge managers)",
    description="Multipart field `file`. Answers 202 with the queued document; poll "
    "`GET …/documents/{id}` for `status` (queued, indexing, ready, failed) and `progress`. Any other body "
    "(JSON) is refused with 415 `unsupported_media_type`.",
)
def upload_document(
    database: DatabaseDep,
    actor: CurrentActor,
    collection_id: CollectionId,
    _multipart: Multipart,
    file: Annotated[UploadFile, File(description="The document")],
) -> Response:
    content = file.file.read(parsing.MAX_BYTES + 1)
    with database.writing(actor) as session:
        document = knowledge.add_document(
            session, actor, collection_id, filename=file.filename or "upload.txt", content=content
        )
        document_id, organization_id = document.id, actor.organization_id
        after_commit(session, lambda: enqueue_indexing(organization_id, document_id))
        payload = knowledge.document_body(document)
        commit(session)
    location = f"/api/v1/knowledge/collections/{collection_id}/documents/{document_id}"
    return json_response(payload, status_code=202, headers={"Location": location})


@router.get(
    "/knowledge/collections/{collection_id}/documents/{document_id}",
    tags=["knowledge"],
    operation_id="get_knowledge_document",
    response_class=Response,
    summary="A document: indexing status, progress and error",
)
def get_document(
    database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId, document_id: DocumentId
) -> Response:
    with database.reading(actor) as session:
        return json_response(
            knowledge.document_body(knowledge.get_document(session, actor, collection_id, document_id))
        )


@router.delete(
    "/knowledge/collections/{collection_id}/documents/{document_id}",
    tags=["knowledge"],
    status_code=204,
    operation_id="delete_knowledge_document",
    response_class=Response,
    summary="Delete a document and its passages from the index (knowledge managers)",
)
def delete_document(
    database: DatabaseDep, actor: CurrentActor, collection_id: CollectionId, document_id: DocumentId
) -> Response:
    with database.writing(actor) as session:
        knowledge.delete_document(session, actor, collection_id, document_id)
        commit(session)
    return Response(status_code=204)


@router.post(
    "/knowledge/search",
    tags=["knowledge"],
    operation_id="search_knowledge",
    response_class=Response,
    summary="The passages that best answer a question, from the collections you may read",
    description="Full text (jieba-segmented) and vector (multilingual-e5-small) rankings fused by reciprocal "
    "rank; `mode` picks one of them alone. Each passage names its document, heading, `label` (document "
    "title › heading, with the article), `link` (its page), character offsets into the document's text, and score.",
)
def search(database: DatabaseDep, actor: CurrentActor, body: Annotated[SearchIn, Body()]) -> Response:
    with database.reading(actor) as session:
        passages = knowledge.search(
            session, actor, body.query, collection_ids=body.collection_ids, k=body.k, mode=body.mode
        )
    return json_response({"query": body.query, "items": [p.as_dict() for p in passages]})


@router.get(
    "/knowledge/passages/{chunk_id}",
    tags=["knowledge"],
    operation_id="get_knowledge_passage",
    response_class=Response,
    summary="One passage (a citation's chunk_id) with the document's text around it",
    description="The passage as search answers it (`label`: document title › heading, with the article; "
    "`link`: its page; `start`/`end`: character offsets into the document's text), with `before` and "
    "`after`: up to 400 characters of the document on each side. Only from a collection you may read.",
)
def get_passage(
    database: DatabaseDep,
    actor: CurrentActor,
    chunk_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The passage's chunk_id")],
) -> Response:
    with database.reading(actor) as session:
        passage, before, after = knowledge.get_passage(session, actor, chunk_id)
    body = passage.as_dict()
    body.pop("score")
    body.pop("ranks")
    return json_response(body | {"before": before, "after": after})


@router.get(
    "/assistant/briefs/accounts/{account_id}",
    tags=["assistant"],
    operation_id="get_account_brief",
    response_class=Response,
    summary="A visit brief of an account: CRM facts and knowledge passages, each with its citation",
    description="Sections: account, decision_chain, opportunities (open), tickets (open), orders (last 5), "
    "interactions (last 5), knowledge (passages for the open deals and tickets). Built from what you may "
    "see: your row scope, field masks and collection access apply.",
)
def account_brief(
    database: DatabaseDep,
    actor: CurrentActor,
    account_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The account's id")],
) -> Response:
    with database.reading(actor) as session:
        return json_response(briefs.account_brief(session, actor, account_id).as_dict())
