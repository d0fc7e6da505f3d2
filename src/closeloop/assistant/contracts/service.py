"""Standard templates per organization, and comparing an uploaded contract against one (AST-4).

Who: comparing reads contracts, so it needs ``contracts:read`` (reps, managers, finance, admins —
not partner users); the templates are kept by holders of ``contract_templates:manage``. A template
of another organization is "not found". Nothing about the compared contract is stored: the
comparison is computed from the upload and returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from closeloop.assistant.contracts import clauses
from closeloop.assistant.contracts.models import ContractTemplate
from closeloop.assistant.knowledge import parsing
from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict, NotFound, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require

READ = "contracts:read"
MANAGE = "contract_templates:manage"
#: the formats a contract or template may come in
FORMATS = (".docx", ".pdf", ".txt")


def extract(field: str, filename: str, content: bytes) -> str:
    """The text of an uploaded contract or template; a problem names ``field``."""
    if not filename.lower().endswith(FORMATS):
        raise ValidationFailed.one(field, f"{filename}: use a {', '.join(FORMATS)} file", code="unsupported_type")
    if not content:
        raise ValidationFailed.one(field, f"{filename} is empty", code="empty")
    if len(content) > parsing.MAX_BYTES:
        raise ValidationFailed.one(
            field, f"{filename} is larger than {parsing.MAX_BYTES // (1024 * 1024)} MB", code="too_large"
        )
    try:
        text = parsing.extract(filename, content)
    except ValueError as error:
        raise ValidationFailed.one(field, f"{filename}: {error}", code="unreadable") from error
    if not text.strip():
        raise ValidationFailed.one(field, f"{filename} has no text", code="no_text")
    return text


def list_templates(session: Session, actor: Actor) -> list[ContractTemplate]:
    require(actor, READ)
    return list(
        session.scalars(
            select(ContractTemplate)
            .where(tenant_clause(actor.organization_id, ContractTemplate))
            .order_by(ContractTemplate.name, ContractTemplate.id)
        )
    )


def get_template(session: Session, actor: Actor, template_id: int) -> ContractTemplate:
    require(actor, READ)
    template = session.scalars(
        select(ContractTemplate)
        .where(tenant_clause(actor.organization_id, ContractTemplate))
        .where(ContractTemplate.id == template_id)
    ).one_or_none()
    if template is None:
        raise NotFound("contract template", template_id)
    return template


def add_template(session: Session, actor: Actor, *, name: str, filename: str, content: bytes) -> ContractTemplate:
    require(actor, MANAGE)
    name = name.strip()
    if not name:
        raise ValidationFailed.one("name", "a template needs a name", "required")
    text = extract("file", filename, content)
    if not any(clause.number is not None for clause in clauses.segment(text)):
        # compared clause by clause, a template without numbered clauses would match nothing: every
        # contract would come back as one changed preamble
        raise ValidationFailed.one(
            "file",
            f"{filename}: no numbered clauses found (such as 第一条, 一、, 1. or Article 1); "
            "a template is compared clause by clause, so its clauses must be numbered",
            code="no_clauses",
        )
    template = ContractTemplate(
        organization_id=actor.organization_id,
        name=name[:120],
        filename=filename[:255],
        text=text,
        created_by_id=actor.user_id,
    )
    session.add(template)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"A template named {name!r} exists already", field_name="name") from error
    audit.record(
        session,
        actor,
        "contract_template.created",
        subject_type="contract_template",
        subject_id=template.id,
        changes=audit.diff({}, {"name": template.name, "filename": template.filename}),
    )
    return template


def delete_template(session: Session, actor: Actor, template_id: int) -> None:
    require(actor, MANAGE)
    template = get_template(session, actor, template_id)
    audit.record(
        session,
        actor,
        "contract_template.deleted",
        subject_type="contract_template",
        subject_id=template.id,
        changes=audit.diff({"name": template.name, "filename": template.filename}, {}),
    )
    session.delete(template)
    session.flush()


def template_body(template: ContractTemplate, *, with_clauses: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": template.id,
        "name": template.name,
        "filename": template.filename,
        "created_at": template.created_at.isoformat(),
        "created_by_id": template.created_by_id,
    }
    if with_clauses:
        body["clauses"] = [clause.as_dict() for clause in clauses.segment(template.text)]
    return body


@dataclass
class Result:
    template: ContractTemplate
    filename: str
    comparison: clauses.Comparison

    def as_dict(self) -> dict[str, Any]:
        return {
            "template": template_body(self.template),
            "filename": self.filename,
            **self.comparison.as_dict(),
        }


def compare(session: Session, actor: Actor, template_id: int, *, filename: str, content: bytes) -> Result:
    """The uploaded contract's clauses against the template's: missing, changed, added, with risk."""
    require(actor, READ)
    template = get_template(session, actor, template_id)
    text = extract("file", filename, content)
    return Result(template, filename, clauses.compare(template.text, text))
