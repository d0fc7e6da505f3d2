"""The import page: upload a CSV or XLSX file, map its columns (the importer's suggestions first),
check it with a dry run that reports every bad row, then import it — as background jobs whose
progress the page polls.

The uploaded file is kept (staged) between the steps under the organization's import directory,
named by a random token that only the uploader's session holds; the jobs are the importer's own
(:mod:`closeloop.integrations.importing.jobs`), so the page checks and writes exactly what the
API and the CLI do, and a person sees only the jobs they started.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, NotFound
from closeloop.core.messages import REASONS, TARGET_LABELS, field_message, reason_text
from closeloop.db.session import after_commit
from closeloop.integrations.importing import jobs
from closeloop.integrations.importing.entities import entity_spec
from closeloop.integrations.importing.fields import ENTITY_NAMES
from closeloop.integrations.importing.models import ImportJob, ImportStatus
from closeloop.org.models import User
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import database_of, is_htmx, locale_of, problem_text, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

#: staged uploads older than this are removed when someone uploads again
STAGED_SECONDS = 24 * 3600
#: the largest file the page accepts
MAX_BYTES = 50 * 1024 * 1024
_SESSION_KEY = "import_staged"

ENTITY_LABELS = {
    "accounts": N_("Accounts"),
    "contacts": N_("Contacts"),
    "leads": N_("Leads"),
    "opportunities": N_("Opportunities"),
    "activities": N_("Activities"),
    "products": N_("Products"),
    "product_lines": N_("Product lines"),
    "tickets": N_("Tickets"),
}

STATUS_LABELS = {
    ImportStatus.QUEUED: N_("Waiting to start"),
    ImportStatus.RUNNING: N_("Running"),
    ImportStatus.DONE: N_("Finished"),
    ImportStatus.FAILED: N_("Failed"),
}


def enqueue_import(job_id: int) -> None:
    """Hand the job to the background worker (tests replace this to run the job themselves)."""
    from closeloop.worker import tasks

    tasks.enqueue_import_job(job_id)


def _staged_dir(actor: Actor) -> Path:
    return jobs.imports_dir(actor.organization_id) / "staged"


def _clean_old(directory: Path) -> None:
    cutoff = time.time() - STAGED_SECONDS
    for path in directory.glob("*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
        except OSError:
            continue


def _stage(request: Request, actor: Actor, meta: dict[str, Any], data: bytes) -> str:
    directory = _staged_dir(actor)
    directory.mkdir(parents=True, exist_ok=True)
    _clean_old(directory)
    token = secrets.token_urlsafe(24)
    (directory / f"{token}.bin").write_bytes(data)
    (directory / f"{token}.json").write_bytes(orjson.dumps({**meta, "user_id": actor.user_id}))
    held = [t for t in request.session.get(_SESSION_KEY, []) if isinstance(t, str)][-4:]
    request.session[_SESSION_KEY] = [*held, token]
    return token


def _staged(request: Request, actor: Actor, token: str) -> tuple[dict[str, Any], bytes]:
    """The staged upload ``token`` of this session and person; else *not found*."""
    if token not in request.session.get(_SESSION_KEY, []) or not token.replace("-", "").replace("_", "").isalnum():
        raise NotFound("upload", None)
    directory = _staged_dir(actor)
    try:
        meta = orjson.loads((directory / f"{token}.json").read_bytes())
        data = (directory / f"{token}.bin").read_bytes()
    except FileNotFoundError:
        raise NotFound("upload", None) from None
    if meta.get("user_id") != actor.user_id:
        raise NotFound("upload", None)
    return meta, data


def _unstage(request: Request, actor: Actor, token: str) -> None:
    directory = _staged_dir(actor)
    for suffix in (".bin", ".json"):
        (directory / f"{token}{suffix}").unlink(missing_ok=True)
    request.session[_SESSION_KEY] = [t for t in request.session.get(_SESSION_KEY, []) if t != token]


def _entities(actor: Actor) -> list[tuple[str, str]]:
    allowed = []
    for name in ENTITY_NAMES:
        plural = entity_spec(name).record_type.plural
        if actor.can(f"{plural}:write"):
            allowed.append((name, ENTITY_LABELS.get(name, name)))
    return allowed


def _upload_page(
    request: Request, user: User, actor: Actor, *, error: str | None = None, entity: str = "accounts", status: int = 200
) -> Response:
    with database_of(request).reading(actor) as session:
        recent = jobs.list_import_jobs(session, actor, limit=10)
    context = {
        "user": user,
        "actor": actor,
        "entities": _entities(actor),
        "entity": entity,
        "error": error,
        "recent": recent,
        "entity_labels": ENTITY_LABELS,
        "status_labels": STATUS_LABELS,
    }
    return render(request, "imports/upload.html", context, status_code=status)


@router.get("/import")
def import_page(request: Request) -> Response:
    user, actor = require_user(request)
    return _upload_page(request, user, actor)


def _mapping_context(request: Request, actor: Actor, token: str, meta: dict[str, Any], data: bytes) -> dict[str, Any]:
    with database_of(request).reading(actor) as session:
        preview = jobs.preview_import(
            session,
            actor,
            entity=meta["entity"],
            file_name=meta["file_name"],
            data=data,
            encoding=meta.get("encoding"),
        )
    headers: list[str] = preview["headers"]
    samples = {
        header: [str(row["cells"][i]) for row in preview["rows"][:3] if i < len(row["cells"]) and row["cells"][i]]
        for i, header in enumerate(headers)
    }
    return {"token": token, "preview": preview, "samples": samples, "meta": meta}


@router.post("/import")
async def upload(request: Request) -> Response:
    """Read the uploaded file and show its columns with the suggested mapping."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    gettext = translations(locale_of(request)).gettext
    entity = str(form.get("entity") or "")
    upload_file = form.get("file")
    if entity not in dict(_entities(actor)):
        return _upload_page(request, user, actor, error=gettext("Choose what the file holds."), status=422)
    if not isinstance(upload_file, UploadFile) or not upload_file.filename:
        return _upload_page(request, user, actor, error=gettext("Choose a file to upload."), entity=entity, status=422)
    data = await upload_file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return _upload_page(
            request, user, actor, error=gettext("The file is larger than 50 MB."), entity=entity, status=413
        )
    encoding = str(form.get("encoding") or "") or None
    meta = {"entity": entity, "file_name": upload_file.filename, "encoding": encoding}
    try:
        with database_of(request).reading(actor) as session:
            jobs.preview_import(
                session, actor, entity=entity, file_name=upload_file.filename, data=data, encoding=encoding
            )
    except DomainError as failure:
        if failure.status in (403, 404):
            raise
        message = _unreadable_text(gettext, upload_file.filename, failure, locale_of(request))
        return _upload_page(request, user, actor, error=message, entity=entity, status=422)
    token = _stage(request, actor, meta, data)
    return RedirectResponse(f"/import/{token}/mapping", status_code=303)


_UNDECODABLE = re.compile(r"cannot decode the file as (?P<encoding>[^:]+): line (?P<line>\d+)")


def _unreadable_text(gettext: Callable[[str], str], file_name: str, failure: DomainError, locale: str) -> str:
    """Why an upload cannot be read, in the page's words: a file that is not text in any encoding
    the importer reads names the file, the line, and what the form offers instead — the encoding
    choice above it, or an Excel workbook — not the command line's ``--encoding`` flag. Other
    reasons are the importer's sentence, in Chinese where it has one."""
    undecodable = _UNDECODABLE.search(failure.message)
    if failure.code == "unreadable_file" and undecodable is not None:
        return gettext(
            "%(file)s cannot be read as %(encoding)s text (line %(line)s): it may not be a CSV file at all. "
            "Upload a CSV file saved as UTF-8, UTF-16 or GBK / GB18030 — choose its encoding under "
            '"Text encoding (CSV)" if detecting it fails — or an Excel workbook (.xlsx).'
        ) % {
            "file": file_name,
            "encoding": undecodable["encoding"].replace(" or ", " 或 " if locale.startswith("zh") else " or "),
            "line": undecodable["line"],
        }
    reason = failure.message
    if locale.startswith("zh") and failure.extra.get("message_zh"):
        reason = str(failure.extra["message_zh"])
    return gettext("The file cannot be read: %(reason)s") % {"reason": reason}


def _mapping_page(
    request: Request,
    user: User,
    actor: Actor,
    token: str,
    *,
    chosen: dict[str, str] | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    meta, data = _staged(request, actor, token)
    context = _mapping_context(request, actor, token, meta, data)
    mapping = chosen if chosen is not None else context["preview"]["suggested_mapping"]
    context.update(
        user=user,
        actor=actor,
        mapping=mapping,
        errors=errors or [],
        entity_label=ENTITY_LABELS.get(meta["entity"], meta["entity"]),
        field_labels=TARGET_LABELS,
    )
    return render(request, "imports/mapping.html", context, status_code=status)


@router.get("/import/{token}/mapping")
def mapping_page(request: Request, token: str) -> Response:
    user, actor = require_user(request)
    return _mapping_page(request, user, actor, token)


def _chosen_mapping(form: FormData, headers: list[str]) -> dict[str, str]:
    chosen = {}
    for index, header in enumerate(headers):
        target = str(form.get(f"map-{index}") or "")
        if target:
            chosen[header] = target
    return chosen


def _start_job(
    request: Request, actor: Actor, meta: dict[str, Any], data: bytes, mapping: dict[str, str], *, dry_run: bool
) -> int:
    with database_of(request).unit_of_work(actor) as session:
        job = jobs.create_import_job(
            session,
            actor,
            entity=meta["entity"],
            file_name=meta["file_name"],
            data=data,
            mapping=mapping,
            dry_run=dry_run,
            encoding=meta.get("encoding"),
        )
        job_id = int(job.id)
        after_commit(session, lambda: enqueue_import(job_id))
    return job_id


@router.post("/import/{token}/mapping")
async def run_mapping(request: Request, token: str) -> Response:
    """Start a dry run (the default) or the import itself with the chosen mapping."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    meta, data = _staged(request, actor, token)
    with database_of(request).reading(actor) as session:
        preview = jobs.preview_import(
            session, actor, entity=meta["entity"], file_name=meta["file_name"], data=data, encoding=meta.get("encoding")
        )
    chosen = _chosen_mapping(form, preview["headers"])
    dry_run = form.get("mode") != "commit"
    try:
        job_id = _start_job(request, actor, meta, data, chosen, dry_run=dry_run)
    except DomainError as failure:
        if failure.status in (403, 404):
            raise
        gettext = translations(locale_of(request)).gettext
        errors = [
            f"{gettext(TARGET_LABELS[p.field]) if p.field in TARGET_LABELS else p.field}: {field_message(gettext, p)}"
            for p in failure.problems
        ] or [problem_text(failure, locale_of(request))[0]]
        return _mapping_page(request, user, actor, token, chosen=chosen, errors=errors, status=422)
    if not dry_run:
        _unstage(request, actor, token)
    suffix = f"?upload={token}" if dry_run else ""
    return RedirectResponse(f"/import/jobs/{job_id}{suffix}", status_code=303)


def _job_context(job: ImportJob) -> dict[str, Any]:
    report = job.report or {}
    total = job.total_rows or 0
    processed = min(job.processed_rows or 0, total) if total else 0
    percent = 100 if job.status == ImportStatus.DONE else (int(processed * 100 / total) if total else 0)
    return {
        "job": job,
        "report": report,
        "problems": report.get("problems", []),
        "warnings": report.get("warnings", []),
        "reasons": REASONS,
        "percent": percent,
        "processed": processed,
        "total": total,
        "finished": job.status in (ImportStatus.DONE, ImportStatus.FAILED),
        "status_label": STATUS_LABELS.get(ImportStatus(job.status), str(job.status)),
        "entity_label": ENTITY_LABELS.get(job.entity, job.entity),
        "field_labels": TARGET_LABELS,
    }


@router.get("/import/jobs/{job_id:int}")
def job_page(request: Request, job_id: int, upload: str | None = None) -> Response:
    """A job's progress (polled every second while it runs) and, once done, its report."""
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        job = jobs.get_import_job(session, actor, job_id=job_id)
        context = _job_context(job)
    locale = locale_of(request)
    context["problems"] = [{**p, "reason_text": reason_text(p, locale)} for p in context["problems"][:501]]
    held = upload if upload and upload in request.session.get(_SESSION_KEY, []) else None
    context.update(user=user, actor=actor, upload=held)
    template = "imports/_job.html" if is_htmx(request) else "imports/job.html"
    return render(request, template, context)


@router.post("/import/jobs/{job_id:int}/commit")
async def commit_dry_run(request: Request, job_id: int) -> Response:
    """Import for real what a finished dry run checked: the same file and mapping."""
    _user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    token = str(form.get("upload") or "")
    with database_of(request).reading(actor) as session:
        checked = jobs.get_import_job(session, actor, job_id=job_id)
        mapping = dict(checked.mapping or {})
    meta, data = _staged(request, actor, token)
    if meta.get("entity") != checked.entity or meta.get("file_name") != checked.file_name:
        raise NotFound("upload", None)
    new_id = _start_job(request, actor, meta, data, mapping, dry_run=False)
    _unstage(request, actor, token)
    return RedirectResponse(f"/import/jobs/{new_id}", status_code=303)
