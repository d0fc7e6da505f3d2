"""Import jobs: the API stores an uploaded file and queues a job; a worker runs it.

The job's progress (``processed_rows`` of ``total_rows``) is committed in small transactions of
its own while rows are planned; the data is written in one transaction, which also marks the job
done with its report — so a job is *done* exactly when its rows are in. A job that cannot run
(unreadable file, unusable mapping, a failure while writing) ends *failed* with the reason, and
nothing of its data is stored.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core.actor import Actor, ActorKind
from closeloop.core.clock import utcnow
from closeloop.core.errors import DomainError, NotFound, ValidationFailed
from closeloop.crm.records import jsonable
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.fields import FieldPolicy, policy_of
from closeloop.governance.permissions import require
from closeloop.integrations.importing.custom import as_import_fields, custom_fields_for
from closeloop.integrations.importing.engine import Importer
from closeloop.integrations.importing.entities import entity_spec
from closeloop.integrations.importing.fields import check_mapping, fields_of, suggest_mapping
from closeloop.integrations.importing.labels import chinese_label
from closeloop.integrations.importing.mappings import find_mapping
from closeloop.integrations.importing.models import ImportJob, ImportMapping, ImportStatus
from closeloop.integrations.importing.readers import SourceTable, read_table
from closeloop.org import service as org_service
from closeloop.org.models import User

log = logging.getLogger("closeloop.imports")

#: seconds between two progress commits of a running job
PROGRESS_SECONDS = 0.5
PREVIEW_ROWS = 10


def imports_dir(organization_id: int) -> Path:
    return settings.var_dir / "imports" / str(organization_id)


def _safe_name(file_name: str) -> str:
    name = Path(file_name.replace("\\", "/")).name
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "upload"
    return name[-120:]


def _check_entity(actor: Actor, entity: str) -> None:
    spec = entity_spec(entity)
    require(actor, "imports:run")
    require(actor, f"{spec.record_type.plural}:write")


def preview_import(
    session: Session,
    actor: Actor,
    *,
    entity: str,
    file_name: str,
    data: bytes,
    encoding: str | None = None,
    sheet: str | None = None,
) -> dict[str, Any]:
    """What a file looks like to an import: its headers, the suggested mapping, the fields the
    entity takes (required ones marked; custom fields last) and the first rows — for the mapping page."""
    _check_entity(actor, entity)
    table = read_table(data, name=file_name, encoding=encoding, sheet=sheet)
    extra = as_import_fields(custom_fields_for(session, actor, entity))
    # a field the actor's role may not read or may not edit is neither offered nor suggested
    matrix = policy_of(session, actor)
    noun = entity_spec(entity).noun
    closed = matrix.masked(actor.role, noun) | matrix.read_only(actor.role, noun)
    mapping, left_out = suggest_writable(matrix, actor, entity, table.headers, extra)
    fields = [
        {
            "name": f.name,
            "kind": f.kind.value,
            "required": f.required,
            "choices": [
                {"code": member.value, "label_zh": chinese_label(f.choices, member.value)} for member in f.choices
            ]
            if f.choices
            else None,
            "aliases": list(f.aliases),
        }
        for f in fields_of(entity, extra)
        if f.name not in closed and f"{f.name}_id" not in closed
    ]
    mapped = set(mapping.values())
    return {
        "entity": entity,
        "file_name": file_name,
        "format": table.format,
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "sheet": table.sheet,
        "headers": table.headers,
        "total_rows": len(table.rows),
        "suggested_mapping": mapping,
        "unmapped_headers": [h for h in table.headers if h not in mapping],
        "left_out": left_out,
        "missing_required": [f["name"] for f in fields if f["required"] and f["name"] not in mapped],
        "fields": fields,
        "rows": [
            {"row": row.number, "cells": [jsonable(cell) for cell in row.cells]} for row in table.rows[:PREVIEW_ROWS]
        ],
    }


#: why a column the suggestion would map is left out, by the field's state for the actor's role
LEFT_OUT_REASONS = {
    "masked": "your role may not read this field",
    "read_only": "your role may not edit this field",
}


def suggest_writable(
    matrix: FieldPolicy, actor: Actor, entity: str, headers: list[str], extra: Any = ()
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The suggested mapping less the fields the actor's role may not read or edit (a manager's
    ``credit_line``), and those columns as ``{"column", "field", "reason", "message"}`` — what the
    mapping page, the API without a mapping and the job's report all say, instead of a job failing
    on a column nobody chose."""
    noun = entity_spec(entity).noun
    masked = matrix.masked(actor.role, noun)
    read_only = matrix.read_only(actor.role, noun)
    mapping: dict[str, str] = {}
    left_out: list[dict[str, str]] = []
    for header, name in suggest_mapping(headers, entity, extra).items():
        state = next(
            (reason for reason, closed in (("masked", masked), ("read_only", read_only))
             if name in closed or f"{name}_id" in closed),
            None,
        )  # fmt: skip
        if state is None:
            mapping[header] = name
        else:
            left_out.append({"column": header, "field": name, "reason": state, "message": LEFT_OUT_REASONS[state]})
    return mapping, left_out


def create_import_job(
    session: Session,
    actor: Actor,
    *,
    entity: str,
    file_name: str,
    data: bytes,
    mapping: Mapping[str, str] | None = None,
    dry_run: bool = False,
    encoding: str | None = None,
    sheet: str | None = None,
    mapping_name: str | None = None,
) -> ImportJob:
    """Store an uploaded file and queue its import. The file must be readable and the mapping (a
    saved one named ``mapping_name``, or ``mapping``, or else the suggested mapping) usable, or
    nothing is stored and the error says why."""
    _check_entity(actor, entity)
    saved = _saved_mapping(session, actor, entity, mapping_name, mapping)
    table = read_table(data, name=file_name, encoding=encoding, sheet=sheet)
    extra = as_import_fields(custom_fields_for(session, actor, entity))
    if saved is not None:
        mapping = saved.columns
    if mapping is not None:
        chosen = dict(mapping)
    else:  # the suggestion, without the fields the importer may not write (said in the report)
        chosen, _left_out = suggest_writable(policy_of(session, actor), actor, entity, table.headers, extra)
    check_mapping(table.headers, entity, chosen, extra)
    directory = imports_dir(actor.organization_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}-{_safe_name(file_name)}"
    path.write_bytes(data)
    job = ImportJob(
        organization_id=actor.organization_id,
        user_id=actor.user_id,
        entity=entity,
        file_name=file_name[:255],
        stored_path=str(path),
        mapping=chosen,
        mapping_id=saved.id if saved is not None else None,
        encoding=encoding,
        sheet=sheet,
        dry_run=dry_run,
        status=ImportStatus.QUEUED,
        total_rows=len(table.rows),
        processed_rows=0,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor,
        "import_job.created",
        subject_type="import_job",
        subject_id=job.id,
        changes=audit.diff(
            {}, {"entity": entity, "file_name": job.file_name, "dry_run": dry_run, "total_rows": job.total_rows}
        ),
    )
    return job


def _saved_mapping(
    session: Session, actor: Actor, entity: str, name: str | None, mapping: Mapping[str, str] | None
) -> ImportMapping | None:
    if name is None:
        return None
    if mapping is not None:
        raise ValidationFailed.one("mapping_name", "give either a mapping or the name of a saved one, not both")
    saved = find_mapping(session, actor, name)
    if saved.entity != entity:
        raise ValidationFailed.one("mapping_name", f"'{name}' maps {saved.entity}, not {entity}")
    return saved


def _own_jobs(actor: Actor) -> Select[ImportJob]:
    """The jobs ``actor`` started: a job's report quotes the rows of its file, which another
    importer (with another row scope or field mask) may not be allowed to read."""
    statement = visible(actor, ImportJob, access=RowAccess.READ)
    if actor.kind is ActorKind.SYSTEM:
        return statement
    return statement.where(ImportJob.user_id == actor.user_id)


def get_import_job(session: Session, actor: Actor, *, job_id: int) -> ImportJob:
    """A job the actor started; else *not found*."""
    require(actor, "imports:run")
    job = session.scalar(_own_jobs(actor).where(ImportJob.id == job_id))
    if job is None:
        raise NotFound("import job", job_id)
    return job


def list_import_jobs(session: Session, actor: Actor, *, limit: int = 50) -> list[ImportJob]:
    require(actor, "imports:run")
    return list(session.scalars(_own_jobs(actor).order_by(ImportJob.id.desc()).limit(limit)))


def job_body(job: ImportJob) -> dict[str, Any]:
    """The job as the API shows it."""
    return {
        "id": job.id,
        "entity": job.entity,
        "file_name": job.file_name,
        "mapping": job.mapping,
        "mapping_id": job.mapping_id,
        "dry_run": job.dry_run,
        "status": job.status,
        "progress": {"processed_rows": job.processed_rows, "total_rows": job.total_rows},
        "report": job.report,
        "error": job.error,
        "user_id": job.user_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


# --- running ----------------------------------------------------------------------------------


def _actor_for(database: Database, job: ImportJob) -> Actor:
    """The actor who started the job, with today's permissions and row scope."""
    if job.user_id is None:
        return org_service.system_actor(job.organization_id, label="import")
    with database.reading(None, system=True) as session:
        user = session.get(User, job.user_id)
        if user is None or not user.is_active:
            raise DomainError("The user who started this import is no longer active", code="user_inactive")
        return org_service.actor_for(session, user)


def _set(database: Database, actor: Actor, job_id: int, **values: Any) -> None:
    with database.unit_of_work(actor) as session:
        session.execute(
            update(ImportJob)
            .where(tenant_clause(actor.organization_id, ImportJob), ImportJob.id == job_id)
            .values(updated_at=utcnow(), **values)
        )


def process_import_job(database: Database, job_id: int) -> ImportStatus | None:
    """Run a queued job to *done* or *failed*; a job that is not queued is left alone (a retry of
    a job that already ran). Returns the final status, or ``None`` when there was nothing to run."""
    with database.unit_of_work(None, system=True) as session:
        job = session.scalar(select(ImportJob).where(ImportJob.id == job_id).with_for_update())
        if job is None or job.status != ImportStatus.QUEUED:
            return None
        job.status, job.started_at = ImportStatus.RUNNING, utcnow()
        session.flush()
        session.expunge(job)
    actor = org_service.system_actor(job.organization_id, label="import")
    try:
        actor = _actor_for(database, job).with_request(f"import-job-{job.id}")
        return _run(database, actor, job)
    except DomainError as error:
        _set(database, actor, job_id, status=ImportStatus.FAILED, error=str(error), finished_at=utcnow())
        return ImportStatus.FAILED
    except Exception as error:
        log.exception("import job %s failed", job_id)
        _set(
            database,
            actor,
            job_id,
            status=ImportStatus.FAILED,
            error=f"internal error ({type(error).__name__}); nothing was imported",
            finished_at=utcnow(),
        )
        return ImportStatus.FAILED
    finally:
        # the upload has served its purpose (the job runs once); do not keep customers' files around
        Path(job.stored_path).unlink(missing_ok=True)


def _run(database: Database, actor: Actor, job: ImportJob) -> ImportStatus:
    table: SourceTable = read_table(Path(job.stored_path), name=job.file_name, encoding=job.encoding, sheet=job.sheet)
    with database.reading(actor) as session:
        custom_fields = custom_fields_for(session, actor, job.entity)
        field_policy = policy_of(session, actor)
    importer = Importer(
        actor,
        job.entity,
        table,
        job.mapping,
        dry_run=job.dry_run,
        custom_fields=custom_fields,
        field_policy=field_policy,
    )
    _set(database, actor, job.id, total_rows=len(table.rows), processed_rows=0)
    last = [time.monotonic()]

    def progress(processed: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            _set(database, actor, job.id, processed_rows=processed)

    report = importer.plan(lambda: database.reading(actor), progress)
    # columns the suggestion would have mapped to a field the importer may not write, and that
    # were not mapped: the report says which and why (the same list the mapping page shows)
    _mapping, suggested_out = suggest_writable(
        field_policy, actor, job.entity, table.headers, as_import_fields(custom_fields)
    )
    left_out = [item for item in suggested_out if item["column"] not in (job.mapping or {})]
    if job.dry_run:
        _set(
            database,
            actor,
            job.id,
            status=ImportStatus.DONE,
            processed_rows=len(table.rows),
            report={**report.as_dict(), "left_out": left_out},
            finished_at=utcnow(),
        )
        return ImportStatus.DONE
    with database.unit_of_work(actor) as session:
        importer.apply(session)
        session.execute(
            update(ImportJob)
            .where(tenant_clause(actor.organization_id, ImportJob), ImportJob.id == job.id)
            .values(
                status=ImportStatus.DONE,
                processed_rows=len(table.rows),
                report={**importer.report.as_dict(), "left_out": left_out},
                finished_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    return ImportStatus.DONE
