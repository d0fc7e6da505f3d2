"""Knowledge-base pages (AST-1): the collections you may read and a search over them with the
query's words highlighted; a collection's documents with upload and indexing progress (knowledge
managers) — the same service and access rules as the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from markupsafe import Markup, escape
from starlette.responses import RedirectResponse, Response

from closeloop.assistant import briefs
from closeloop.assistant.knowledge import parsing
from closeloop.assistant.knowledge import service as knowledge
from closeloop.assistant.knowledge.text import query_tokens
from closeloop.core.errors import Conflict, NotFound, ValidationFailed
from closeloop.core.messages import FIELD_LABELS
from closeloop.db.session import after_commit
from closeloop.governance.permissions import Role
from closeloop.web.i18n import N_, ROLE_LABELS, translations
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user
from closeloop.web.upload_errors import failure_text, refusal_text

router = APIRouter(include_in_schema=False)

STATUS_LABELS = {
    "queued": N_("Queued"),
    "indexing": N_("Indexing"),
    "ready": N_("Ready"),
    "failed": N_("Failed"),
}
SECTION_LABELS = {
    "account": N_("Account"),
    "decision_chain": N_("Decision chain"),
    "opportunities": N_("Open opportunities"),
    "tickets": N_("Open service tickets"),
    "orders": N_("Recent orders"),
    "interactions": N_("Last interactions"),
    "knowledge": N_("From the knowledge base"),
}
RECORD_LINKS = {"account": "/accounts/{id}", "contact": "/contacts/{id}", "opportunity": "/opportunities/{id}"}
MODE_LABELS = {"hybrid": N_("Hybrid"), "fulltext": N_("Full text"), "vector": N_("Meaning")}


def enqueue_indexing(organization_id: int, document_id: int) -> None:
    """Hand the document to the background worker (called once its row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_knowledge_document(organization_id, document_id)


def highlight(text: str, words: list[str]) -> Markup:
    """``text`` escaped, with every occurrence of the query's words in ``<mark>`` (longest words first)."""
    lowered = text.lower()
    marked = [False] * len(text)
    for word in sorted(set(words), key=len, reverse=True):
        start = lowered.find(word)
        while start >= 0 and word:
            for i in range(start, start + len(word)):
                marked[i] = True
            start = lowered.find(word, start + len(word))
    out: list[str] = []
    position = 0
    while position < len(text):
        end = position
        while end < len(text) and marked[end] == marked[position]:
            end += 1
        piece = str(escape(text[position:end]))
        out.append(f"<mark>{piece}</mark>" if marked[position] else piece)
        position = end
    return Markup("".join(out))  # noqa: S704 - every piece was escaped above


def _int(value: str, name: str) -> int:
    if not value.isdecimal() or not 1 <= int(value) < 2**63:
        raise NotFound(name, value)
    return int(value)


@router.get("/knowledge")
def knowledge_page(request: Request, q: str = "", mode: str = "hybrid") -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        collections = [
            knowledge.collection_body(session, actor, c) for c in knowledge.readable_collections(session, actor)
        ]
        passages = knowledge.search(session, actor, q, k=8, mode=mode) if q.strip() else []
    words = query_tokens(q) if q.strip() else []
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "collections": collections,
        "query": q,
        "mode": mode if mode in MODE_LABELS else "hybrid",
        "mode_labels": MODE_LABELS,
        "passages": [(p, highlight(p.text, words)) for p in passages],
        "names": {c["id"]: c["name"] for c in collections},
        "can_manage": actor.can(knowledge.MANAGE),
        "roles": [role.value for role in Role],
        "role_labels": ROLE_LABELS,
    }
    return render(request, "knowledge/index.html", context)


@router.post("/knowledge/collections")
async def create_collection(request: Request) -> Response:
    _user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    name, description = str(form.get("name") or ""), str(form.get("description") or "")
    rules = [knowledge.RuleSpec("role", str(role)) for role in form.getlist("role")]
    with database_of(request).unit_of_work(actor) as session:
        collection = knowledge.create_collection(session, actor, name=name, description=description, rules=rules)
        collection_id = collection.id
    return RedirectResponse(f"/knowledge/collections/{collection_id}", status_code=303)


@router.post("/knowledge/collections/{collection_id}/access")
async def set_access(request: Request, collection_id: str) -> Response:
    _user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    roles = [str(value) for value in form.getlist("role")]
    rules = [knowledge.RuleSpec("role", role) for role in roles]
    cid = _int(collection_id, "knowledge collection")
    with database_of(request).unit_of_work(actor) as session:
        knowledge.update_collection(session, actor, cid, rules=rules)
    return RedirectResponse(f"/knowledge/collections/{cid}", status_code=303)


@router.post("/knowledge/collections/{collection_id}/partners")
async def share_with_partner(request: Request, collection_id: str) -> Response:
    _user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    cid = _int(collection_id, "knowledge collection")
    partner = str(form.get("organization_id") or "")
    with database_of(request).unit_of_work(actor) as session:
        knowledge.share(session, actor, cid, int(partner) if partner.isdecimal() else 0)
    return RedirectResponse(f"/knowledge/collections/{cid}", status_code=303)


@router.post("/knowledge/collections/{collection_id}/partners/{organization_id}/delete")
def unshare_with_partner(request: Request, collection_id: str, organization_id: str, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    cid = _int(collection_id, "knowledge collection")
    with database_of(request).unit_of_work(actor) as session:
        knowledge.unshare(session, actor, cid, _int(organization_id, "knowledge share"))
    return RedirectResponse(f"/knowledge/collections/{cid}", status_code=303)


def _documents(request: Request, documents: list[Any]) -> list[dict[str, Any]]:
    """The documents' bodies, a failed one's reason in the reader's language."""
    gettext = translations(locale_of(request)).gettext
    bodies = [knowledge.document_body(d) for d in documents]
    for body in bodies:
        body["error"] = failure_text(gettext, body["filename"], body["error"])
    return bodies


@router.get("/knowledge/collections/{collection_id}")
def collection_page(request: Request, collection_id: str) -> Response:
    user, actor = require_user(request)
    return _collection_page(request, user, actor, _int(collection_id, "knowledge collection"))


def _collection_page(
    request: Request, user: Any, actor: Any, cid: int, *, upload_error: str | None = None, status_code: int = 200
) -> Response:
    with database_of(request).reading(actor) as session:
        collection = knowledge.get_collection(session, actor, cid)
        body = knowledge.collection_body(session, actor, collection)
        documents = _documents(request, knowledge.list_documents(session, actor, cid))
        manages = actor.can(knowledge.MANAGE) and not body["shared_with_you"]
        shared_ids = {partner["id"] for partner in body.get("partners", [])}
        partners = (
            [p for p in knowledge.partner_organizations(session, actor) if p.id not in shared_ids] if manages else []
        )
    granted = {rule["value"] for rule in body.get("access", []) if rule["kind"] == "role"}
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "collection": body,
        "documents": documents,
        "status_labels": STATUS_LABELS,
        "can_manage": manages,
        "partners": [{"id": p.id, "name": p.name} for p in partners],
        "roles": [role.value for role in Role],
        "granted": granted,
        "role_labels": ROLE_LABELS,
        "formats": ", ".join(sorted(parsing.FORMATS)),
        "upload_error": upload_error,
    }
    return render(request, "knowledge/collection.html", context, status_code=status_code)


@router.post("/knowledge/collections/{collection_id}/documents")
def upload(
    request: Request,
    collection_id: str,
    csrf: str = Form(""),
    file: UploadFile = File(...),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    cid = _int(collection_id, "knowledge collection")
    content = file.file.read(parsing.MAX_BYTES + 1)
    filename = file.filename or "upload.txt"
    try:
        with database_of(request).unit_of_work(actor) as session:
            document = knowledge.add_document(session, actor, cid, filename=filename, content=content)
            document_id, organization_id = document.id, actor.organization_id
            after_commit(session, lambda: enqueue_indexing(organization_id, document_id))
    except (ValidationFailed, Conflict) as error:
        # the collection page again, the reason beside the file input (not the dead-end error page)
        gettext = translations(locale_of(request)).gettext
        message = refusal_text(gettext, error, filename, parsing.FORMATS)
        return _collection_page(request, user, actor, cid, upload_error=message, status_code=error.status)
    return RedirectResponse(f"/knowledge/collections/{cid}", status_code=303)


@router.get("/knowledge/collections/{collection_id}/documents/{document_id}")
def document_progress(request: Request, collection_id: str, document_id: str) -> Response:
    """One document's row, polled by the page every second while it is queued or indexing."""
    _user, actor = require_user(request)
    cid = _int(collection_id, "knowledge collection")
    with database_of(request).reading(actor) as session:
        document = knowledge.get_document(session, actor, cid, _int(document_id, "knowledge document"))
        [body] = _documents(request, [document])
    context = {
        "actor": actor,
        "document": body,
        "status_labels": STATUS_LABELS,
        "can_manage": actor.can(knowledge.MANAGE),
    }
    return render(request, "knowledge/document.html", {**context, "collection": {"id": cid}})


@router.post("/knowledge/collections/{collection_id}/documents/{document_id}/delete")
def delete_document(request: Request, collection_id: str, document_id: str, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    cid = _int(collection_id, "knowledge collection")
    with database_of(request).unit_of_work(actor) as session:
        knowledge.delete_document(session, actor, cid, _int(document_id, "knowledge document"))
    return RedirectResponse(f"/knowledge/collections/{cid}", status_code=303)


@router.get("/knowledge/passages/{chunk_id}")
def passage_page(request: Request, chunk_id: str) -> Response:
    """One passage in its document (a citation's link): its name, the passage marked, the text around it."""
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        passage, before, after = knowledge.get_passage(session, actor, _int(chunk_id, "knowledge passage"))
        collection = knowledge.get_collection(session, actor, passage.collection_id)
        collection_name = collection.name
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "passage": passage,
        "before": before,
        "after": after,
        "collection": {"id": passage.collection_id, "name": collection_name},
    }
    return render(request, "knowledge/passage.html", context)


@router.get("/accounts/{account_id}/brief")
def brief_page(request: Request, account_id: str) -> Response:
    """The visit brief of an account: every statement with its citation (record, or document and passage)."""
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        brief = briefs.account_brief(session, actor, _int(account_id, "account"))
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "brief": brief,
        "section_labels": SECTION_LABELS,
        "record_links": RECORD_LINKS,
        "field_labels": FIELD_LABELS,
        "verdict_source": "brief",
        "verdict_query": brief.query,
    }
    return render(request, "knowledge/brief.html", context)
