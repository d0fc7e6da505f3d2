"""Imports (as background jobs) and exports (as file downloads).

Exports live under ``/exports/{entity}``, not ``/{entity}/export``, which would collide with
``/{entity}/{id}``.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from starlette.responses import Response, StreamingResponse

from closeloop.api.deps import CurrentActor, DatabaseDep, Multipart, commit, json_response, open_query
from closeloop.core.clock import utcnow
from closeloop.core.errors import UnknownParameters, ValidationFailed
from closeloop.db.session import after_commit
from closeloop.integrations import exporting
from closeloop.integrations.exporting import ExportFormat
from closeloop.integrations.importing import jobs
from closeloop.integrations.importing.fields import ENTITY_NAMES

router = APIRouter()

JobId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The import job's id")]
EntityForm = Annotated[str, Form(description=f"What the file holds: {', '.join(ENTITY_NAMES)}")]
OptionalText = Annotated[str | None, Form()]


def enqueue_import(job_id: int) -> None:
    """Hand the job to the background worker (called once the job's row is committed)."""
    from closeloop.worker import tasks

    tasks.enqueue_import_job(job_id)


def _mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed.one("mapping", 'must be a JSON object such as {"客户名称": "name"}') from None
    if not isinstance(parsed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
        raise ValidationFailed.one("mapping", "must map column names to field names (strings)")
    return parsed


@router.post(
    "/imports",
    tags=["imports"],
    status_code=202,
    operation_id="start_import",
    response_class=Response,
    summary="Upload a CSV or XLSX file and queue its import",
    description="Multipart: `file`, `entity`, optional `mapping` (JSON object column → field; default: the "
    "suggested mapping) or `mapping_name` (a saved mapping, see `/import-mappings`), `dry_run`, `encoding`, "
    "`sheet`. Answers 202 with the queued job; poll "
    "`GET /imports/{id}` for progress and the report. An unreadable file or unusable mapping is a 422 "
    "at once, and nothing is stored. Any other body (JSON) is refused with 415 `unsupported_media_type`.",
)
def start_import(
    database: DatabaseDep,
    actor: CurrentActor,
    _multipart: Multipart,
    file: Annotated[UploadFile, File(description="The CSV (UTF-8, GBK, UTF-16) or XLSX file")],
    entity: EntityForm,
    mapping: OptionalText = None,
    dry_run: Annotated[bool, Form()] = False,
    encoding: OptionalText = None,
    sheet: OptionalText = None,
    mapping_name: OptionalText = None,
) -> Response:
    with database.writing(actor) as session:
        data = file.file.read()
        job = jobs.create_import_job(
            session,
            actor,
            entity=entity,
            file_name=file.filename or "upload",
            data=data,
            mapping=_mapping(mapping),
            dry_run=dry_run,
            encoding=encoding or None,
            sheet=sheet or None,
            mapping_name=(mapping_name or "").strip() or None,
        )
        job_id = job.id
        after_commit(session, lambda: enqueue_import(job_id))
        body = jobs.job_body(job)
        commit(session)
        return json_response(body, status_code=202, headers={"Location": f"/api/v1/imports/{job_id}"})


@router.post(
    "/imports/preview",
    tags=["imports"],
    operation_id="preview_import",
    response_class=Response,
    summary="Headers, suggested mapping, fields and first rows of a file (nothing is stored)",
    description="Multipart: `file`, `entity`, optional `encoding` and `sheet`. Any other body (JSON) is refused "
    "with 415 `unsupported_media_type`.",
)
def preview_import(
    database: DatabaseDep,
    actor: CurrentActor,
    _multipart: Multipart,
    file: Annotated[UploadFile, File()],
    entity: EntityForm,
    encoding: OptionalText = None,
    sheet: OptionalText = None,
) -> Response:
    data = file.file.read()
    with database.reading(actor) as session:
        preview = jobs.preview_import(
            session,
            actor,
            entity=entity,
            file_name=file.filename or "upload",
            data=data,
            encoding=encoding or None,
            sheet=sheet or None,
        )
    return json_response(preview)


@router.get(
    "/imports", tags=["imports"], operation_id="list_imports", response_class=Response, summary="Recent imports"
)
def list_imports(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        return json_response({"items": [jobs.job_body(job) for job in jobs.list_import_jobs(session, actor)]})


@router.get(
    "/imports/{job_id}",
    tags=["imports"],
    operation_id="get_import",
    response_class=Response,
    summary="An import job: status, progress and report",
)
def get_import(database: DatabaseDep, actor: CurrentActor, job_id: JobId) -> Response:
    with database.reading(actor) as session:
        return json_response(jobs.job_body(jobs.get_import_job(session, actor, job_id=job_id)))


@router.get(
    "/exports/{entity}",
    tags=["exports"],
    operation_id="export_records",
    response_class=Response,
    summary="Download records as CSV or XLSX",
    description="The records you may see, filtered as the list endpoint filters them (`field=value`, "
    "`field__op=value`, `q`, `sort`), with masked fields left out and formula-like text neutralized.",
)
@open_query  # the filters are the list's, refused by the same check when unknown
def export_records(
    request: Request,
    actor: CurrentActor,
    database: DatabaseDep,
    entity: Annotated[str, Path(description="accounts, contacts, leads, opportunities, …")],
    format: Annotated[ExportFormat, Query(description="csv or xlsx")] = ExportFormat.CSV,
) -> Response:
    record_type = exporting.exportable(entity)
    params = {k: v for k, v in request.query_params.items() if k not in ("format", "limit", "cursor")}
    with database.reading(actor) as session:
        try:
            exporting.check_export(session, actor, record_type, params)
        except UnknownParameters as error:
            raise error.accepting("format") from None
    name = exporting.export_file_name(entity, format, utcnow().date())
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format is ExportFormat.XLSX:
        import tempfile

        spooled = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by the response
        with database.reading(actor) as session:
            exporting.write_xlsx(session, actor, record_type, params, spooled)
        spooled.seek(0)

        def chunks() -> Any:
            try:
                while chunk := spooled.read(1 << 16):
                    yield chunk
            finally:
                spooled.close()

        return StreamingResponse(chunks(), media_type=exporting.MEDIA_TYPES[format], headers=headers)

    def csv_chunks() -> Any:
        with database.reading(actor) as session:
            yield from exporting.iter_csv(session, actor, record_type, params)

    return StreamingResponse(csv_chunks(), media_type=exporting.MEDIA_TYPES[format], headers=headers)
