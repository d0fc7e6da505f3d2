"""Change requests (GOV-5, firewall 3): a change to the schema — adding, changing or retiring a
custom field, its picklist included — waits for sign-off before it takes effect.

A request is checked when it is made (a change that could not apply is refused at once, with
the same 422/409 the change itself would give) and shows its impact: how many records hold a
value of the field, how many hold a choice being removed. It applies when people in each of the
required roles (by default a sales VP and an IT director) approved it — different people, none of
them the requester. A rejection needs a reason. Every step is in the audit trail, and an applied
change is undone by a new request that restores what it replaced (which needs sign-off too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, DomainError, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from closeloop.crm import customfields, fieldsecurity, lineage
from closeloop.crm.customfields import DefinitionCreate, DefinitionUpdate
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.audit import service as audit
from closeloop.governance.changes.models import ChangeApproval, ChangeRequest, ChangeStatus
from closeloop.governance.fields import forget_policy
from closeloop.governance.permissions import Role, require
from closeloop.org import service as org_service

#: who signs off a schema change unless the organization says otherwise
DEFAULT_REQUIRED_ROLES = (Role.SALES_VP.value, Role.IT_DIRECTOR.value)

CREATE, UPDATE, DELETE = "custom_field.create", "custom_field.update", "custom_field.delete"
#: a change of one field's row of the field-security matrix (GOV-3: masks are security
#: configuration, signed off like the schema)
FIELD_SECURITY = "field_security.update"


@dataclass(frozen=True)
class ChangeKind:
    """How a kind of change that another module owns is carried out and undone.

    ``apply(session, system_actor, request)`` makes the change as the change process and returns
    the id of what it created or changed; ``rollback(session, actor, applied, reason)`` files the
    request that restores what ``applied`` replaced. Modules above this one (imports, say) register
    their kinds with :func:`register_kind`, so the circuit breaker guards them without knowing them.
    """

    apply: Callable[[Session, Actor, ChangeRequest], int | None]
    rollback: Callable[[Session, Actor, ChangeRequest, str], ChangeRequest]


_KINDS: dict[str, ChangeKind] = {}


def register_kind(kind: str, handler: ChangeKind) -> None:
    _KINDS[kind] = handler


#: (session, organization id, noun, fields) → what reads one of ``fields`` of ``noun``, as impact
#: entries; modules above this one (automation's rules) register theirs
Dependents = Callable[[Session, int, str, frozenset[str]], list[dict[str, Any]]]
_DEPENDENTS: dict[str, Dependents] = {}


def register_dependents(kind: str, finder: Dependents) -> None:
    """Let a module above this one show what of its own reads a field (``impact[kind]``)."""
    _DEPENDENTS[kind] = finder


def file_request(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    payload: dict[str, Any],
    summary: str,
    impact: dict[str, Any],
    reason: str | None,
    target_id: int | None = None,
    before: dict[str, Any] | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """File a request of a registered kind (the caller checked it and measured its impact)."""
    require(actor, "schema:manage")
    if kind not in _KINDS:  # pragma: no cover - a programming error, not a user's
        raise AssertionError(f"change kind {kind} is not registered")
    return _new(
        session,
        actor,
        kind=kind,
        payload=payload,
        summary=summary,
        impact=impact,
        reason=reason,
        target_id=target_id,
        before=before,
        rolls_back_id=rolls_back_id,
    )


def _definition_fields(definition: customfields.Definition) -> dict[str, Any]:
    """A live definition as the body that would create it again (for rollbacks)."""
    body = definition.body()
    keep = set(DefinitionCreate.model_fields)
    return {key: value for key, value in body.items() if key in keep and value is not None}


def _new(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    payload: dict[str, Any],
    summary: str,
    impact: dict[str, Any],
    reason: str | None,
    target_id: int | None = None,
    before: dict[str, Any] | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    request = ChangeRequest(
        organization_id=actor.organization_id,
        kind=kind,
        target_id=target_id,
        payload=audit.json_safe(payload),
        before=audit.json_safe(before) if before is not None else None,
        impact=impact,
        summary=summary[:300],
        reason=(reason or "").strip() or None,
        status=ChangeStatus.PENDING,
        required_roles=list(DEFAULT_REQUIRED_ROLES),
        requested_by_id=actor.user_id,
        rolls_back_id=rolls_back_id,
    )
    session.add(request)
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.created",
        subject_type="change_request",
        subject_id=request.id,
        changes=audit.diff(
            {}, {"kind": kind, "target_id": target_id, "summary": request.summary, "payload": request.payload}
        ),
    )
    return request


def request_create(
    session: Session,
    actor: Actor,
    data: DefinitionCreate,
    *,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to add a custom field; refused (409 naming ``name``) while another request for a field of
    that name on that record type is pending — only one of them could ever be applied."""
    customfields.check_create(session, actor, data)
    pending = session.scalars(
        select(ChangeRequest).where(
            tenant_clause(actor.organization_id, ChangeRequest),
            ChangeRequest.kind == CREATE,
            ChangeRequest.status == ChangeStatus.PENDING.value,
        )
    )
    for other in pending:
        if (other.payload.get("record_type"), other.payload.get("name")) == (data.record_type, data.name):
            raise Conflict(
                f"Change request {other.id} already asks to add the {data.record_type} field '{data.name}'; "
                "approve, reject or withdraw it first",
                code="pending_request",
                field_name="name",
            )
    payload = data.model_dump(mode="json", exclude_unset=True)
    summary = f"Add {data.field_type.value} field {data.name} ({data.label_zh} / {data.label_en}) to {data.record_type}"
    return _new(
        session,
        actor,
        kind=CREATE,
        payload=payload,
        summary=summary,
        impact={"records_with_value": 0, "removed_choices": [], "records_with_removed_choices": 0, "dependents": []},
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


def _impact(session: Session, actor: Actor, definition: customfields.Definition, new_choices: Any) -> dict[str, Any]:
    removed: list[str] = []
    if new_choices is not None and definition.rule.choices:
        kept = {choice["value"] for choice in new_choices or ()}
        removed = [value for value in definition.rule.choices if value not in kept]
    key = customfields.PREFIX + definition.name
    formulas = lineage.downstream(session, actor.organization_id, definition.record_type, key)
    # what reads the field, or a formula of the same record type reading it
    read = frozenset({key, *(f["field"] for f in formulas if f["record_type"] == definition.record_type)})
    others = {
        kind: finder(session, actor.organization_id, definition.record_type, read)
        for kind, finder in _DEPENDENTS.items()
    }
    return {
        "records_with_value": customfields.records_with_value(session, actor.organization_id, definition),
        "removed_choices": removed,
        "records_with_removed_choices": customfields.records_holding(
            session, actor.organization_id, definition, removed
        ),
        # the formula fields reading it, and the dashboards showing it or a formula that reads it
        "dependents": formulas,
        "dashboards": lineage.dashboards_reading(session, actor, definition.record_type, key),
        **others,
    }


def request_update(
    session: Session,
    actor: Actor,
    definition_id: int,
    data: DefinitionUpdate,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to change a custom field (labels, rules, choices, visibility)."""
    row, new_values = customfields.check_update(session, actor, definition_id, data, expected_version=expected_version)
    definition = customfields.detached(row)
    if not new_values:
        raise ValidationFailed.one("body", "changes nothing", "empty")
    before = {name: value for name, value in _definition_fields(definition).items() if name in new_values}
    before.update({name: None for name in new_values if name not in before})
    changed = ", ".join(sorted(new_values))
    return _new(
        session,
        actor,
        kind=UPDATE,
        target_id=definition.id,
        payload=data.model_dump(mode="json", exclude_unset=True),
        before=before,
        summary=f"Change {changed} of {definition.record_type} field {definition.name}",
        impact=_impact(session, actor, definition, new_values.get("choices") if "choices" in new_values else None),
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


def request_delete(
    session: Session,
    actor: Actor,
    definition_id: int,
    *,
    expected_version: int | None = None,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to retire a custom field (its values stay, hidden)."""
    definition = customfields.detached(
        customfields.check_delete(session, actor, definition_id, expected_version=expected_version)
    )
    return _new(
        session,
        actor,
        kind=DELETE,
        target_id=definition.id,
        payload={},
        before=_definition_fields(definition),
        summary=f"Retire {definition.record_type} field {definition.name} ({definition.label_zh})",
        impact=_impact(session, actor, definition, None),
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


def _cell_words(cell: dict[str, bool] | None) -> str:
    if cell is None:
        return "default"
    return "read+edit" if cell["edit"] else "read" if cell["read"] else "hidden"


def request_field_security(
    session: Session,
    actor: Actor,
    noun: str,
    field: str,
    data: fieldsecurity.FieldSecurityChange,
    *,
    reason: str | None = None,
    rolls_back_id: int | None = None,
) -> ChangeRequest:
    """Ask to change who may read and edit one field (its row of the field-security matrix)."""
    new, before = fieldsecurity.check_change(session, actor, noun, field, data)
    described = ", ".join(f"{role} {_cell_words(cell)}" for role, cell in sorted(new.items()))
    return _new(
        session,
        actor,
        kind=FIELD_SECURITY,
        payload={"record_type": noun, "field": field, "roles": new},
        before={"record_type": noun, "field": field, "roles": before},
        summary=f"Field security of {noun}.{field}: {described}",
        impact=fieldsecurity.impact(session, actor, noun, field, new),
        reason=reason,
        rolls_back_id=rolls_back_id,
    )


# --- deciding -------------------------------------------------------------------------------------


def get_request(session: Session, actor: Actor, request_id: int) -> ChangeRequest:
    """A change request of the actor's organization, for anyone who requests or signs off changes."""
    if not (actor.can("schema:manage") or actor.role in DEFAULT_REQUIRED_ROLES):
        raise Forbidden(f"Your role ({actor.role}) neither requests nor signs off schema changes")
    request = session.scalar(visible(actor, ChangeRequest, access=RowAccess.READ).where(ChangeRequest.id == request_id))
    if request is None:
        raise NotFound("change_request", request_id)
    return request


def list_requests(
    session: Session, actor: Actor, *, status: ChangeStatus | None = None, limit: int = 50, after_id: int | None = None
) -> list[ChangeRequest]:
    if not (actor.can("schema:manage") or actor.role in DEFAULT_REQUIRED_ROLES):
        raise Forbidden(f"Your role ({actor.role}) neither requests nor signs off schema changes")
    statement = visible(actor, ChangeRequest, access=RowAccess.READ).order_by(ChangeRequest.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(ChangeRequest.status == status.value)
    if after_id is not None:
        statement = statement.where(ChangeRequest.id < after_id)
    return list(session.scalars(statement))


def approvals_of(session: Session, organization_id: int, request_id: int) -> list[ChangeApproval]:
    return list(
        session.scalars(
            select(ChangeApproval)
            .where(tenant_clause(organization_id, ChangeApproval), ChangeApproval.change_request_id == request_id)
            .order_by(ChangeApproval.id)
        )
    )


def _pending(request: ChangeRequest, expected_version: int | None) -> None:
    if expected_version is not None and request.version != expected_version:
        raise PreconditionFailed()
    if request.status != ChangeStatus.PENDING:
        raise Conflict(f"Change request {request.id} is {request.status}, no longer pending", code="not_pending")


def approve(session: Session, actor: Actor, request_id: int, *, expected_version: int | None = None) -> ChangeRequest:
    """Sign off a request; the sign-off that completes the required roles applies it."""
    request = get_request(session, actor, request_id)
    _pending(request, expected_version)
    if actor.user_id is None:
        raise Forbidden("Only a person signs off a change")
    if actor.user_id == request.requested_by_id:
        raise Forbidden("You cannot approve your own change request")
    if actor.role not in request.required_roles:
        raise Forbidden(
            f"Your role ({actor.role}) does not sign off schema changes (needed: {', '.join(request.required_roles)})"
        )
    approvals = approvals_of(session, actor.organization_id, request.id)
    if any(approval.user_id == actor.user_id for approval in approvals):
        raise Conflict("You approved this change request already", code="already_approved")
    if any(approval.role == actor.role for approval in approvals):
        raise Conflict(
            f"A {actor.role} approved this change request already; it waits for the other roles", code="role_signed"
        )
    session.add(
        ChangeApproval(
            organization_id=actor.organization_id,
            change_request_id=request.id,
            user_id=actor.user_id,
            role=actor.role,
            approved_at=utcnow(),
        )
    )
    request.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.approved",
        subject_type="change_request",
        subject_id=request.id,
        changes={"approved_by": [None, actor.user_id], "role": [None, actor.role]},
    )
    signed = {approval.role for approval in approvals} | {actor.role}
    if set(request.required_roles) <= signed:
        _apply(session, actor, request)
    return request


def _apply(session: Session, actor: Actor, request: ChangeRequest) -> None:
    """Carry out a signed-off request as the change process itself (the audit names the request)."""
    system = org_service.system_actor(
        actor.organization_id, label=f"change request {request.id}", request_id=actor.request_id
    )
    savepoint = session.begin_nested()
    try:
        if request.kind == CREATE:
            definition = customfields.create_definition(
                session, system, DefinitionCreate.model_validate(request.payload)
            )
            request.target_id = definition.id
        elif request.kind == UPDATE:
            assert request.target_id is not None
            customfields.update_definition(
                session, system, request.target_id, DefinitionUpdate.model_validate(request.payload)
            )
        elif request.kind == DELETE:
            assert request.target_id is not None
            customfields.delete_definition(session, system, request.target_id)
        elif request.kind == FIELD_SECURITY:
            payload = request.payload
            fieldsecurity.apply_change(session, system, payload["record_type"], payload["field"], payload["roles"])
        elif request.kind in _KINDS:
            request.target_id = _KINDS[request.kind].apply(session, system, request)
        else:
            raise DomainError(
                f"Changes of kind {request.kind} cannot be applied by this installation", code="unknown_kind"
            )
        savepoint.commit()
    except (DomainError, ValidationError, IntegrityError) as error:
        savepoint.rollback()  # the audit tails go back to where the savepoint began (audit service)
        if isinstance(error, IntegrityError):  # a constraint of the schema as it is now: say so in words
            error = DomainError("It can no longer be applied: it conflicts with the schema as it is now")
        customfields.forget_definitions(session)
        forget_policy(session)
        request.status, request.failure = ChangeStatus.FAILED, str(error)
        request.decided_at = utcnow()
        session.flush()
        audit.record(
            session,
            actor,
            "change_request.failed",
            subject_type="change_request",
            subject_id=request.id,
            changes={"status": [ChangeStatus.PENDING.value, ChangeStatus.FAILED.value], "failure": [None, str(error)]},
        )
        return
    request.status, request.decided_at = ChangeStatus.APPLIED, utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.applied",
        subject_type="change_request",
        subject_id=request.id,
        changes={
            "status": [ChangeStatus.PENDING.value, ChangeStatus.APPLIED.value],
            "target_id": [None, request.target_id],
        },
    )


def reject(
    session: Session, actor: Actor, request_id: int, *, reason: str, expected_version: int | None = None
) -> ChangeRequest:
    """Turn a request down; the reason is required and kept."""
    request = get_request(session, actor, request_id)
    _pending(request, expected_version)
    if actor.role not in request.required_roles:
        raise Forbidden(f"Your role ({actor.role}) does not sign off schema changes")
    if not reason.strip():
        raise ValidationFailed.one("reason", "say why the change is rejected", "required")
    request.status, request.decided_at = ChangeStatus.REJECTED, utcnow()
    request.rejected_by_id, request.rejection_reason = actor.user_id, reason.strip()
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.rejected",
        subject_type="change_request",
        subject_id=request.id,
        changes={"status": [ChangeStatus.PENDING.value, ChangeStatus.REJECTED.value], "reason": [None, reason.strip()]},
    )
    return request


def cancel(session: Session, actor: Actor, request_id: int, *, expected_version: int | None = None) -> ChangeRequest:
    """The requester withdraws a pending request."""
    request = get_request(session, actor, request_id)
    _pending(request, expected_version)
    if actor.user_id != request.requested_by_id:
        raise Forbidden("Only the requester withdraws a change request")
    request.status, request.decided_at = ChangeStatus.CANCELLED, utcnow()
    session.flush()
    audit.record(
        session,
        actor,
        "change_request.cancelled",
        subject_type="change_request",
        subject_id=request.id,
        changes={"status": [ChangeStatus.PENDING.value, ChangeStatus.CANCELLED.value]},
    )
    return request


def request_rollback(session: Session, actor: Actor, request_id: int, *, reason: str | None = None) -> ChangeRequest:
    """Ask to undo an applied change: a new request (signed off like any other) restoring what it replaced."""
    require(actor, "schema:manage")
    applied = get_request(session, actor, request_id)
    if applied.status != ChangeStatus.APPLIED:
        raise Conflict(
            f"Change request {applied.id} is {applied.status}; only an applied change is rolled back",
            code="not_applied",
        )
    earlier = session.scalar(
        visible(actor, ChangeRequest, access=RowAccess.WRITE).where(
            ChangeRequest.rolls_back_id == applied.id,
            ChangeRequest.status.in_([ChangeStatus.PENDING.value, ChangeStatus.APPLIED.value]),
        )
    )
    if earlier is not None:
        raise Conflict(
            f"Change request {earlier.id} already rolls back change request {applied.id} ({earlier.status})",
            code="already_rolled_back",
        )
    why = reason or f"Roll back change request {applied.id}"
    if applied.kind in _KINDS:
        return _KINDS[applied.kind].rollback(session, actor, applied, why)
    if applied.kind == FIELD_SECURITY:
        before = applied.before or {}
        cells = fieldsecurity.FieldSecurityChange.model_validate({"roles": before.get("roles") or {}})
        return request_field_security(
            session, actor, before["record_type"], before["field"], cells, reason=why, rolls_back_id=applied.id
        )
    assert applied.target_id is not None
    if applied.kind == CREATE:
        return request_delete(session, actor, applied.target_id, reason=why, rolls_back_id=applied.id)
    if applied.kind == UPDATE:
        data = DefinitionUpdate.model_validate(applied.before or {})
        return request_update(session, actor, applied.target_id, data, reason=why, rolls_back_id=applied.id)
    return request_create(
        session, actor, DefinitionCreate.model_validate(applied.before or {}), reason=why, rolls_back_id=applied.id
    )


def body(session: Session, request: ChangeRequest) -> dict[str, Any]:
    """A change request as the API shows it, with its sign-offs."""
    approvals = approvals_of(session, request.organization_id, request.id)
    signed = {approval.role for approval in approvals}
    return {
        "id": request.id,
        "kind": request.kind,
        "status": request.status,
        "summary": request.summary,
        "reason": request.reason,
        "target_id": request.target_id,
        "payload": request.payload,
        "before": request.before,
        "impact": request.impact,
        "required_roles": request.required_roles,
        "waiting_for": [role for role in request.required_roles if role not in signed]
        if request.status == ChangeStatus.PENDING
        else [],
        "approvals": [{"user_id": a.user_id, "role": a.role, "approved_at": a.approved_at} for a in approvals],
        "requested_by_id": request.requested_by_id,
        "rejected_by_id": request.rejected_by_id,
        "rejection_reason": request.rejection_reason,
        "failure": request.failure,
        "rolls_back_id": request.rolls_back_id,
        "created_at": request.created_at,
        "decided_at": request.decided_at,
        "version": request.version,
    }


__all__ = [
    "CREATE",
    "DEFAULT_REQUIRED_ROLES",
    "DELETE",
    "FIELD_SECURITY",
    "UPDATE",
    "ChangeKind",
    "approve",
    "body",
    "cancel",
    "file_request",
    "get_request",
    "list_requests",
    "register_dependents",
    "register_kind",
    "reject",
    "request_create",
    "request_delete",
    "request_field_security",
    "request_rollback",
    "request_update",
]
