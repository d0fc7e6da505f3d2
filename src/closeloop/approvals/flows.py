"""Approval flows as data: checking a definition, keeping flows (versioned, enabled or not), choosing
the flow and the branch for a submission.

A definition is ``{"branches": [...]}``; a branch is ``{"name", "priority", "conditions", "steps",
"cc"}``. Branches are tried by ascending priority and the first whose conditions all hold wins; a
branch without conditions is the default and is tried last. A condition is ``{"field", "op",
"value"}`` on any field of the record's snapshot. A step is ``{"name", "mode", "approvers"}`` with
``mode`` all / any / sequence and ``approvers`` a list of approver specs:

- ``{"kind": "supervisor"}`` — the submitter's direct supervisor (``users.manager_id``);
- ``{"kind": "supervisors", "levels": N}`` — N levels up the reporting line;
- ``{"kind": "role", "role": "director", "within": null | "department" | "region"}`` — holders of a
  role, optionally the nearest in the submitter's department line, or in the submitter's region;
- ``{"kind": "users", "user_ids": [...]}``;
- ``{"kind": "chosen"}`` — chosen by the submitter at submission.

``cc`` is a list of the same specs (except ``chosen``).

The definition, a branch and a step may carry a built-in ``key`` (:mod:`closeloop.approvals.names`):
the name is then shown in the reader's language; the key is kept only while the name is the key's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.approvals import names, subjects
from closeloop.approvals.models import ApprovalFlow, MissingApprover
from closeloop.core.actor import Actor
from closeloop.core.errors import Conflict, FieldProblem, NotFound, ValidationFailed
from closeloop.db.scope import tenant_clause
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import Role, require
from closeloop.org.models import Department, User

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains")
MODES = ("all", "any", "sequence")
KINDS = ("supervisor", "supervisors", "role", "users", "chosen")
WITHIN = (None, "department", "region")
MAX_BRANCHES, MAX_STEPS, MAX_APPROVERS = 20, 10, 20
ASSIGNABLE_ROLES = tuple(role.value for role in Role if role is not Role.PARTNER_USER)


def _spec_problems(spec: Any, where: str, *, cc: bool) -> list[FieldProblem]:
    if not isinstance(spec, Mapping):
        return [FieldProblem(where, "must be an object with a kind")]
    kind = spec.get("kind")
    kinds = tuple(k for k in KINDS if not (cc and k == "chosen"))
    if kind not in kinds:
        return [FieldProblem(f"{where}.kind", f"must be one of {', '.join(kinds)}")]
    extra = set(spec) - {"kind", "levels", "role", "within", "user_ids"}
    if extra:
        return [FieldProblem(where, f"unknown keys: {', '.join(sorted(extra))}")]
    if kind == "supervisors":
        levels = spec.get("levels")
        if not isinstance(levels, int) or isinstance(levels, bool) or not 1 <= levels <= 10:
            return [FieldProblem(f"{where}.levels", "must be a whole number from 1 to 10")]
    if kind == "role":
        if spec.get("role") not in ASSIGNABLE_ROLES:
            return [FieldProblem(f"{where}.role", f"must be one of {', '.join(ASSIGNABLE_ROLES)}")]
        if spec.get("within") not in WITHIN:
            return [FieldProblem(f"{where}.within", "must be department, region or empty")]
    if kind == "users":
        ids = spec.get("user_ids")
        valid = isinstance(ids, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i < 2**63 for i in ids
        )
        if not valid or not ids or len(ids) > MAX_APPROVERS:
            return [FieldProblem(f"{where}.user_ids", f"give 1 to {MAX_APPROVERS} user ids")]
    return []


ORDERING = ("gt", "gte", "lt", "lte")


def _condition_problems(condition: Any, where: str, kinds: Mapping[str, str]) -> list[FieldProblem]:
    if not isinstance(condition, Mapping) or set(condition) - {"field", "op", "value"}:
        return [FieldProblem(where, "must be an object with field, op and value")]
    problems = []
    field = condition.get("field")
    if not isinstance(field, str) or not field.strip():
        problems.append(FieldProblem(f"{where}.field", "name a field of the record"))
    elif kinds and field not in kinds:
        problems.append(FieldProblem(f"{where}.field", f"no field {field}; one of {', '.join(kinds)}", "not_a_field"))
    op = condition.get("op")
    if op not in OPERATORS:
        problems.append(FieldProblem(f"{where}.op", f"must be one of {', '.join(OPERATORS)}"))
    value = condition.get("value")
    if op == "in" and not isinstance(value, list):
        problems.append(FieldProblem(f"{where}.value", "must be a list for 'in'"))
    elif op != "in" and not isinstance(value, str | int | float | bool) and value is not None:
        problems.append(FieldProblem(f"{where}.value", "must be a number, a text or true/false"))
    elif op in OPERATORS and not problems:
        kind = kinds.get(field, "") if isinstance(field, str) else ""
        problems.extend(_value_problems(kind, op, value, f"{where}.value"))
    return problems


def _value_problems(kind: str, op: str, value: Any, where: str) -> list[FieldProblem]:
    """A condition that could never hold is refused when the flow is saved: its branch would be
    skipped in silence (``amount > "abc"`` sent every large claim down the default branch)."""
    if op == "contains":
        if kind in ("number", "date", "id"):
            return [FieldProblem(where, f"'contains' is for text; a {kind} is compared with eq, ne, in or an order",
                                 "not_text")]  # fmt: skip
        return []
    values = value if op == "in" else [value]
    if op in ("eq", "ne") and value is None:
        return []  # "is empty" / "is not empty"
    if kind == "number" or (not kind and op in ORDERING and not all(_is_date(v) for v in values)):
        if not all(_number(v) is not None for v in values):
            return [FieldProblem(where, "must be a number", "not_a_number")]
    elif kind == "date":
        if not all(_is_date(v) for v in values):
            return [FieldProblem(where, "must be a date (YYYY-MM-DD)", "not_a_date")]
    elif kind == "id":
        if op in ORDERING:
            return [FieldProblem(where, "a record is compared with eq, ne or in, not by order", "not_ordered")]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            return [FieldProblem(where, "must be a record id (a whole number)", "not_an_id")]
    elif kind == "text" and op in ORDERING:
        return [FieldProblem(where, "a text is compared with eq, ne, in or contains, not by order", "not_ordered")]
    return []


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_definition(
    definition: Any, *, field_name: str = "definition", field_kinds: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The definition, normalized (branches by priority, the default last), or 422 naming each wrong
    part. ``field_kinds`` (the record type's declared fields) limits the fields a condition may test
    and the values it may compare them with."""
    if not isinstance(definition, Mapping) or set(definition) - {"branches", "key"}:
        raise ValidationFailed.one(field_name, "must be an object with branches")
    branches = definition.get("branches")
    if not isinstance(branches, list) or not 1 <= len(branches) <= MAX_BRANCHES:
        raise ValidationFailed.one(f"{field_name}.branches", f"give 1 to {MAX_BRANCHES} branches")
    problems: list[FieldProblem] = []
    defaults = 0
    for b, branch in enumerate(branches):
        where = f"{field_name}.branches.{b}"
        if not isinstance(branch, Mapping) or set(branch) - {"name", "priority", "conditions", "steps", "cc", "key"}:
            problems.append(FieldProblem(where, "must be an object with name, priority, conditions, steps and cc"))
            continue
        if not isinstance(branch.get("name"), str) or not 1 <= len(branch["name"].strip()) <= 120:
            problems.append(FieldProblem(f"{where}.name", "give the branch a name (up to 120 characters)"))
        priority = branch.get("priority", b)
        if not isinstance(priority, int) or isinstance(priority, bool):
            problems.append(FieldProblem(f"{where}.priority", "must be a whole number"))
        conditions = branch.get("conditions") or []
        if not isinstance(conditions, list):
            problems.append(FieldProblem(f"{where}.conditions", "must be a list"))
            conditions = []
        defaults += not conditions
        for c, condition in enumerate(conditions):
            problems.extend(_condition_problems(condition, f"{where}.conditions.{c}", field_kinds or {}))
        steps = branch.get("steps")
        if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
            problems.append(FieldProblem(f"{where}.steps", f"give 1 to {MAX_STEPS} steps"))
            steps = []
        for s, step in enumerate(steps):
            at = f"{where}.steps.{s}"
            if not isinstance(step, Mapping) or set(step) - {"name", "mode", "approvers", "key"}:
                problems.append(FieldProblem(at, "must be an object with name, mode and approvers"))
                continue
            if step.get("mode", "all") not in MODES:
                problems.append(FieldProblem(f"{at}.mode", f"must be one of {', '.join(MODES)}"))
            approvers = step.get("approvers")
            if not isinstance(approvers, list) or not 1 <= len(approvers) <= MAX_APPROVERS:
                problems.append(FieldProblem(f"{at}.approvers", f"give 1 to {MAX_APPROVERS} approvers"))
                continue
            for a, spec in enumerate(approvers):
                problems.extend(_spec_problems(spec, f"{at}.approvers.{a}", cc=False))
        cc = branch.get("cc") or []
        if not isinstance(cc, list) or len(cc) > MAX_APPROVERS:
            problems.append(FieldProblem(f"{where}.cc", f"give at most {MAX_APPROVERS} entries"))
            cc = []
        for a, spec in enumerate(cc):
            problems.extend(_spec_problems(spec, f"{where}.cc.{a}", cc=True))
    if not problems and defaults == 0:
        problems.append(FieldProblem(f"{field_name}.branches", "add a default branch (one without conditions)"))
    if problems:
        raise ValidationFailed(problems)
    ordered = sorted(
        enumerate(branches), key=lambda item: (not item[1].get("conditions"), item[1].get("priority", item[0]), item[0])
    )
    normalized: dict[str, Any] = {
        "branches": [
            _keyed(
                {
                    "name": branch["name"].strip(),
                    "priority": branch.get("priority", index),
                    "conditions": [dict(c) for c in branch.get("conditions") or []],
                    "steps": [
                        _keyed(
                            {
                                "name": str(step.get("name") or f"{s + 1}")[:120],
                                "mode": step.get("mode", "all"),
                                "approvers": [dict(a) for a in step["approvers"]],
                            },
                            step.get("key"),
                        )
                        for s, step in enumerate(branch["steps"])
                    ],
                    "cc": [dict(a) for a in branch.get("cc") or []],
                },
                branch.get("key"),
            )
            for index, branch in ordered
        ]
    }
    if isinstance(definition.get("key"), str) and definition["key"] in names.BUILTIN_NAMES:
        normalized["key"] = definition["key"]  # the flow's: checked against its name when shown
    return normalized


def _keyed(part: dict[str, Any], key: Any) -> dict[str, Any]:
    """``part`` with its built-in key, while its name is still the key's own."""
    kept = names.builtin_key(key, part["name"])
    return part | {"key": kept} if kept else part


# --- conditions --------------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def holds(condition: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """Whether one condition holds on the snapshot (numbers compare as numbers, the rest as text)."""
    op: str = condition["op"]
    expected = condition.get("value")
    actual = fields.get(condition["field"])
    if op == "in":
        return any(_equal(actual, item) for item in expected or [])
    if op == "contains":
        return actual is not None and str(expected).casefold() in str(actual).casefold()
    if op in ("eq", "ne"):
        return bool(_equal(actual, expected) == (op == "eq"))
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        if actual is None or expected is None:
            return False
        left_text, right_text = str(actual), str(expected)
        return {"gt": left_text > right_text, "gte": left_text >= right_text, "lt": left_text < right_text,
                "lte": left_text <= right_text}[op]  # fmt: skip
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


def _equal(actual: Any, expected: Any) -> bool:
    left, right = _number(actual), _number(expected)
    if left is not None and right is not None:
        return left == right
    if isinstance(expected, bool) or isinstance(actual, bool):
        return actual is expected
    return str(actual) == str(expected) if actual is not None and expected is not None else actual == expected


def choose_branch(definition: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The first branch (by priority, the default last) whose conditions all hold."""
    for branch in definition["branches"]:
        if all(holds(condition, fields) for condition in branch["conditions"]):
            return dict(branch)
    return dict(definition["branches"][-1])


# --- flows -------------------------------------------------------------------------------------------


def field_kinds(record_type: str) -> Mapping[str, str]:
    """The fields a flow for ``record_type`` may test, with their kinds (empty: not declared)."""
    subject = subjects.get(record_type)
    return subject.field_kinds if subject else {}


def _check_settings(session: Session, actor: Actor, values: Mapping[str, Any]) -> None:
    if "record_type" in values and values["record_type"] not in subjects.KNOWN_TYPES:
        known = ", ".join(sorted(subjects.KNOWN_TYPES))
        raise ValidationFailed.one("record_type", f"must be one of {known}")
    if "missing_approver" in values and values["missing_approver"] not in tuple(MissingApprover):
        raise ValidationFailed.one("missing_approver", "must be skip, admin or refuse")
    if "fallback_role" in values and values["fallback_role"] not in ASSIGNABLE_ROLES:
        raise ValidationFailed.one("fallback_role", f"must be one of {', '.join(ASSIGNABLE_ROLES)}")
    for index, department_id in enumerate(values.get("department_ids") or []):
        found = session.scalar(
            select(Department.id).where(
                tenant_clause(actor.organization_id, Department), Department.id == department_id
            )
        )
        if found is None:
            raise ValidationFailed.one(f"department_ids.{index}", f"no department {department_id}", "not_found")


def _check_users(session: Session, actor: Actor, definition: Mapping[str, Any]) -> None:
    for b, branch in enumerate(definition["branches"]):
        specs = [(f"steps.{s}.approvers.{a}", spec) for s, step in enumerate(branch["steps"])
                 for a, spec in enumerate(step["approvers"])]  # fmt: skip
        specs += [(f"cc.{a}", spec) for a, spec in enumerate(branch["cc"])]
        for where, spec in specs:
            for user_id in spec.get("user_ids") or []:
                found = session.scalar(
                    select(User.id).where(tenant_clause(actor.organization_id, User), User.id == user_id)
                )
                if found is None:
                    raise ValidationFailed.one(
                        f"definition.branches.{b}.{where}.user_ids", f"no user {user_id}", "not_found"
                    )


def overlapping(
    session: Session,
    actor: Actor,
    record_type: str,
    department_ids: list[int],
    flow_id: int | None,
    *,
    lock: bool = False,
) -> tuple[int, str, list[int]] | None:
    """Another enabled flow for ``record_type`` that covers the same departments (both none: every
    department), as (id, name, the departments shared), or None."""
    statement = select(ApprovalFlow.id, ApprovalFlow.name, ApprovalFlow.department_ids, ApprovalFlow.is_enabled).where(
        tenant_clause(actor.organization_id, ApprovalFlow),
        ApprovalFlow.record_type == record_type,
        ApprovalFlow.id != (flow_id or 0),
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        # every flow of the kind, enabled or not: two flows switched on at once queue here, and the
        # second sees the first (SQLite's writers are serialized already)
        statement = statement.with_for_update()
    mine = set(department_ids)
    for other_id, name, departments, enabled in session.execute(statement):
        if not enabled:
            continue
        theirs = set(departments or [])
        if (not mine and not theirs) or mine & theirs:
            return other_id, name, sorted(mine & theirs)
    return None


def _check_overlap(
    session: Session, actor: Actor, record_type: str, department_ids: list[int], flow_id: int | None
) -> None:
    """Two enabled flows for the same record type and the same departments (or both for every
    department) would leave one never used, silently: the later is refused, naming the other."""
    found = overlapping(session, actor, record_type, department_ids, flow_id, lock=True)
    if found is not None:
        other_id, name, shared = found
        scope = f"departments {', '.join(map(str, shared))}" if shared else "every department"
        conflict = Conflict(
            f"flow {other_id} ({name}) is already enabled for {record_type} in {scope}; disable it first or "
            "save this one disabled",
            code="overlapping_flow",
            field_name="is_enabled",
        )
        conflict.extra["message_zh"] = (
            f"审批流 {other_id}（{name}）已对同类记录启用，覆盖相同部门：请先停用它，或将本审批流保存为停用。"
        )
        raise conflict


def list_flows(session: Session, actor: Actor, *, record_type: str | None = None) -> list[ApprovalFlow]:
    """The organization's flows (managers up read them: they say who decides; reps do not)."""
    require(actor, "approval_flows:read")
    statement = select(ApprovalFlow).where(tenant_clause(actor.organization_id, ApprovalFlow))
    if record_type:
        statement = statement.where(ApprovalFlow.record_type == record_type)
    return list(session.scalars(statement.order_by(ApprovalFlow.record_type, ApprovalFlow.id)))


def get_flow(session: Session, actor: Actor, flow_id: int) -> ApprovalFlow:
    require(actor, "approval_flows:read")
    flow = session.scalar(
        select(ApprovalFlow).where(tenant_clause(actor.organization_id, ApprovalFlow), ApprovalFlow.id == flow_id)
    )
    if flow is None:
        raise NotFound("approval flow", flow_id)
    return flow


def serialize_flow(flow: ApprovalFlow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "name": flow.name,
        "record_type": flow.record_type,
        "is_enabled": flow.is_enabled,
        "revision": flow.revision,
        "department_ids": list(flow.department_ids or []),
        "missing_approver": flow.missing_approver,
        "fallback_role": flow.fallback_role,
        "skip_submitter": flow.skip_submitter,
        "definition": flow.definition,
        "version": flow.version,
        "updated_at": flow.updated_at.isoformat() if flow.updated_at else None,
    }


def labelled_flow(flow: ApprovalFlow, locale: str) -> dict[str, Any]:
    """The flow as :func:`serialize_flow` has it, with ``labels``: its name and its branches' and
    steps' names in the reader's language (built-in ones translated, the rest as typed) — beside the
    definition, which stays what a client sends back."""
    body = serialize_flow(flow)
    definition = flow.definition or {}
    body["labels"] = {
        "flow": names.flow_label(flow.name, definition, locale),
        "branches": [
            {
                "name": names.shown(branch.get("name"), branch.get("key"), locale),
                "steps": [names.shown(step.get("name"), step.get("key"), locale) for step in branch.get("steps") or []],
            }
            for branch in definition.get("branches") or []
        ],
    }
    return body


def create_flow(session: Session, actor: Actor, values: Mapping[str, Any]) -> ApprovalFlow:
    """Create a flow (sales ops); the definition is checked and normalized."""
    require(actor, "approvals:manage")
    _check_settings(session, actor, values)
    definition = check_definition(values.get("definition"), field_kinds=field_kinds(values.get("record_type", "")))
    _check_users(session, actor, definition)
    if values.get("is_enabled", True):
        _check_overlap(session, actor, values["record_type"], values.get("department_ids") or [], None)
    flow = ApprovalFlow(
        organization_id=actor.organization_id,
        name=values["name"],
        record_type=values["record_type"],
        is_enabled=values.get("is_enabled", True),
        department_ids=list(values.get("department_ids") or []),
        definition=definition,
        missing_approver=values.get("missing_approver") or MissingApprover.ADMIN,
        fallback_role=values.get("fallback_role") or "admin",
        skip_submitter=values.get("skip_submitter", True),
        revision=1,
    )
    session.add(flow)
    session.flush()
    audit.record(
        session, actor, "approval_flow.created", subject_type="approval_flow", subject_id=flow.id,
        changes=audit.diff({}, serialize_flow(flow) | {"version": None, "updated_at": None}),
    )  # fmt: skip
    return flow


def update_flow(
    session: Session, actor: Actor, flow_id: int, values: Mapping[str, Any], *, expected_version: int | None = None
) -> ApprovalFlow:
    """Change a flow; a new definition bumps its revision (running approvals keep their own route)."""
    require(actor, "approvals:manage")
    flow = get_flow(session, actor, flow_id)
    if expected_version is not None and flow.version != expected_version:
        from closeloop.core.errors import PreconditionFailed

        raise PreconditionFailed()
    _check_settings(session, actor, values)
    before = serialize_flow(flow)
    changes = dict(values)
    if "definition" in changes:
        changes["definition"] = check_definition(changes["definition"], field_kinds=field_kinds(flow.record_type))
        if "key" in (flow.definition or {}) and "key" not in changes["definition"]:
            changes["definition"]["key"] = flow.definition["key"]  # the flow's own key, kept across edits
        _check_users(session, actor, changes["definition"])
        if changes["definition"] != flow.definition:
            flow.revision += 1
    was = (flow.is_enabled, set(flow.department_ids or []))
    for name in ("name", "is_enabled", "department_ids", "definition", "missing_approver", "fallback_role",
                 "skip_submitter"):  # fmt: skip
        if name in changes and changes[name] is not None:
            setattr(flow, name, changes[name])
    if flow.is_enabled and was != (True, set(flow.department_ids or [])):
        # only switching on or moving departments can make an overlap: flows that overlapped before
        # the rule existed stay editable (renamed, their branches mended) until one is switched off
        _check_overlap(session, actor, flow.record_type, flow.department_ids or [], flow.id)
    session.flush()
    difference = audit.diff(before, serialize_flow(flow))
    difference.pop("version", None)
    difference.pop("updated_at", None)
    if difference:
        audit.record(
            session, actor, "approval_flow.updated", subject_type="approval_flow", subject_id=flow.id,
            changes=difference,
        )  # fmt: skip
    return flow


def delete_flow(session: Session, actor: Actor, flow_id: int) -> None:
    """Remove a flow; approvals run under it keep their route and snapshot."""
    require(actor, "approvals:manage")
    flow = get_flow(session, actor, flow_id)
    session.delete(flow)
    session.flush()
    audit.record(
        session, actor, "approval_flow.deleted", subject_type="approval_flow", subject_id=flow_id,
        changes={"name": [flow.name, None]},
    )  # fmt: skip


def _department_line(session: Session, organization_id: int, department_id: int | None) -> list[int]:
    """The department and its ancestors, nearest first."""
    line: list[int] = []
    while department_id is not None and department_id not in line and len(line) < 50:
        line.append(department_id)
        department_id = session.scalar(
            select(Department.parent_id).where(
                tenant_clause(organization_id, Department), Department.id == department_id
            )
        )
    return line


def flow_for(session: Session, organization_id: int, record_type: str, submitter: User | None) -> ApprovalFlow | None:
    """The enabled flow for a submission: one scoped to the submitter's nearest department first,
    then one without departments; the lowest id among equals."""
    flows = list(
        session.scalars(
            select(ApprovalFlow)
            .where(
                tenant_clause(organization_id, ApprovalFlow),
                ApprovalFlow.record_type == record_type,
                ApprovalFlow.is_enabled.is_(True),
            )
            .order_by(ApprovalFlow.id)
        )
    )
    line = _department_line(session, organization_id, submitter.department_id if submitter else None)
    for department_id in line:
        for flow in flows:
            if department_id in (flow.department_ids or []):
                return flow
    return next((flow for flow in flows if not flow.department_ids), None)


department_line = _department_line
