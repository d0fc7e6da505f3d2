"""``closeloop knowledge add / search / reindex``: fill the knowledge base and try it from a terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from closeloop.assistant.knowledge import service as knowledge
from closeloop.assistant.knowledge.models import KnowledgeCollection, KnowledgeDocument
from closeloop.cli.common import console, database, fail, reports_errors, resolve_actor, resolve_organization
from closeloop.db.scope import tenant_clause
from closeloop.org import service as org_service

knowledge_app = typer.Typer(help="The local knowledge base (collections, documents, search).", no_args_is_help=True)

Org = Annotated[str | None, typer.Option("--org", help="Organization slug, id or name")]


@knowledge_app.command("add")
@reports_errors
def add(
    collection: Annotated[
        str, typer.Argument(help="The collection's name (created, readable by managers only, if new)")
    ],
    files: Annotated[list[Path], typer.Argument(help="PDF, DOCX, Markdown, TXT or HTML files", exists=True)],
    org: Org = None,
) -> None:
    """Upload files into a collection and index them now (the web upload queues them for the worker)."""
    db = database()
    organization = resolve_organization(db, org)
    actor = org_service.system_actor(organization.id, label="cli")
    with db.unit_of_work(actor) as session:
        found = session.scalars(
            select(KnowledgeCollection)
            .where(tenant_clause(organization.id, KnowledgeCollection))
            .where(KnowledgeCollection.name == collection)
        ).one_or_none()
        if found is None:
            found = knowledge.create_collection(session, actor, name=collection)
            console.print(f"created collection {collection!r} (id {found.id}); set who may read it on the web page")
        collection_id = found.id
        document_ids = [
            knowledge.add_document(session, actor, collection_id, filename=path.name, content=path.read_bytes()).id
            for path in files
        ]
    failed = 0
    for path, document_id in zip(files, document_ids, strict=True):
        status = knowledge.index_document(db, organization.id, document_id)
        with db.reading(actor) as session:
            document = knowledge.get_document(session, actor, collection_id, document_id)
            line = f"{path.name}: {status}, {document.chunks_done} passages"
            if document.error:
                line += f" — {document.error}"
        failed += status != "ready"
        console.print(line, highlight=False)
    if failed:
        raise fail(f"{failed} of {len(files)} files could not be indexed")


@knowledge_app.command("search")
@reports_errors
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    org: Org = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Search as this user (its access rules)")] = None,
    k: Annotated[int, typer.Option("-k", help="How many passages", min=1, max=knowledge.MAX_K)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, fulltext or vector")] = "hybrid",
) -> None:
    """Print the best passages for a question, with document, heading, offsets and score."""
    db = database()
    organization = resolve_organization(db, org)
    actor = resolve_actor(db, organization, as_user, label="cli")
    with db.reading(actor) as session:
        passages = knowledge.search(session, actor, query, k=k, mode=mode)
    if not passages:
        console.print("no passage found")
    for rank, passage in enumerate(passages, start=1):
        console.print(
            f"[bold]{rank}. {passage.filename}[/] · {passage.heading} · {passage.start}–{passage.end} · "
            f"score {passage.score:.4f}",
            highlight=False,
        )
        console.print("   " + " ".join(passage.text.split())[:300], highlight=False)


@knowledge_app.command("reindex")
@reports_errors
def reindex(
    org: Org = None,
    collection: Annotated[str | None, typer.Option(help="Only this collection (by name)")] = None,
) -> None:
    """Index every document again (after an upgrade of the embedding model or the segmenter)."""
    db = database()
    organization = resolve_organization(db, org)
    actor = org_service.system_actor(organization.id, label="cli")
    with db.reading(actor) as session:
        statement = (
            select(KnowledgeDocument.id, KnowledgeDocument.filename)
            .join(KnowledgeCollection, KnowledgeCollection.id == KnowledgeDocument.collection_id)
            .where(tenant_clause(organization.id, KnowledgeDocument))
            .order_by(KnowledgeDocument.id)
        )
        if collection:
            statement = statement.where(KnowledgeCollection.name == collection)
        documents = session.execute(statement).all()
    for document_id, filename in documents:
        console.print(f"{filename}: {knowledge.index_document(db, organization.id, document_id)}", highlight=False)
    console.print(f"{len(documents)} documents re-indexed")
