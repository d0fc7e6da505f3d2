"""Settings pages: the custom fields of each record type, asking for a new one, the field-security
matrix (who reads and edits which field) and the sign-off queue of schema and security changes
(GOV-1, GOV-3, GOV-5) — the same services and checks as the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.core.messages import FIELD_LABELS
from closeloop.crm import changerequests, customfields, fieldsecurity, records
from closeloop.crm.customfields import DefinitionCreate
from closeloop.db.scope import tenant_clause
from closeloop.governance.customfields.models import CustomFieldDefinition
from closeloop.governance.permissions import require
from closeloop.org.models import User
from closeloop.web.i18n import N_, NOUN_LABELS, ROLE_LABELS, translations
from closeloop.web.records import schema_problems
from closeloop.web.routes import FormExpired, csrf_ok, database_of, locale_of, problem_text, render, signed_in_user


def _said(request: Request, error: DomainError) -> str:
    """A refusal as one line in the reader's language (fields by their labels)."""
    message, details = problem_text(error, locale_of(request))
    return "; ".join([message, *(f"{label}: {text}" for label, text in details)])


router = APIRouter(include_in_schema=False)

_EMPTY_FORM = {
    "record_type": "account",
    "name": "",
    "field_type": "text",
    "label_zh": "",
    "label_en": "",
    "choices": "",
    "required": False,
    "reason": "",
    "formula": "",
}


def _fields_context(request: Request, user: User, actor: Actor) -> dict[str, Any]:
    with database_of(request).reading(actor) as session:
        groups = [
            (noun, customfields.readable(session, actor, noun))
            for noun in customfields.customizable_nouns()
            if actor.can(f"{records.record_type_for(noun).plural}:read")
        ]
    return {"user": user, "actor": actor, "groups": groups, "can_manage": actor.can("schema:manage")}


@router.get("/settings/fields")
def fields_page(request: Request) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    user, actor = signed_in
    require(actor, "schema:read")
    return render(request, "fields.html", {**_fields_context(request, user, actor), "form": _EMPTY_FORM, "error": None})


def _choices(text: str) -> list[dict[str, str]] | None:
    """``value|中文|English`` per line (labels default to the value)."""
    choices = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if not parts[0]:
            continue
        value = parts[0]
        label_zh = parts[1] if len(parts) > 1 and parts[1] else value
        label_en = parts[2] if len(parts) > 2 and parts[2] else value
        choices.append({"value": value, "label_zh": label_zh, "label_en": label_en})
    return choices or None


@router.post("/settings/fields")
def request_field(
    request: Request,
    csrf: str = Form(""),
    record_type: str = Form(""),
    name: str = Form(""),
    field_type: str = Form(""),
    label_zh: str = Form(""),
    label_en: str = Form(""),
    choices: str = Form(""),
    required: str = Form(""),
    reason: str = Form(""),
    formula: str = Form(""),
) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    user, actor = signed_in
    form = {
        "record_type": record_type,
        "name": name,
        "field_type": field_type,
        "label_zh": label_zh,
        "label_en": label_en,
        "choices": choices,
        "required": bool(required),
        "reason": reason,
        "formula": formula,
    }

    def again(error: str, status_code: int) -> Response:
        context = _fields_context(request, user, actor)
        return render(request, "fields.html", {**context, "form": form, "error": error}, status_code=status_code)

    if not csrf_ok(request, csrf):
        return again("Your session expired; please try again.", 400)
    try:
        data = DefinitionCreate.model_validate(
            {
                "record_type": record_type,
                "name": name.strip(),
                "field_type": field_type,
                "label_zh": label_zh,
                "label_en": label_en,
                "choices": _choices(choices),
                "required": bool(required),
                "formula": formula.strip() or None,
            }
        )
    except ValidationError as error:
        return again(_said(request, ValidationFailed(schema_problems(error))), 422)
    try:
        with database_of(request).unit_of_work(actor) as session:
            changerequests.request_create(session, actor, data, reason=reason)
    except DomainError as error:
        return again(_said(request, error), error.status)
    return RedirectResponse("/settings/changes", status_code=303)


#: what a custom-field change touches, in the reader's words
CHANGED_PARTS = {
    "label_zh": N_("Chinese label"),
    "label_en": N_("English label"),
    "choices": N_("choices"),
    "required": N_("required"),
    "min_value": N_("lowest value"),
    "max_value": N_("highest value"),
    "max_length": N_("longest text"),
    "pattern": N_("pattern"),
    "default": N_("default value"),
    "position": N_("position"),
    "indexed": N_("search index"),
    "help_zh": N_("Chinese help"),
    "help_en": N_("English help"),
    "formula": N_("formula"),
    "visible_to": N_("visibility"),
}
#: one cell of the field-security matrix
CELL_WORDS = {"default": N_("default"), "edit": N_("reads and edits"), "read": N_("reads"), "hidden": N_("hidden")}


def _cell_word(cell: dict[str, bool] | None) -> str:
    return "default" if cell is None else "edit" if cell.get("edit") else "read" if cell.get("read") else "hidden"


def change_summary(item: dict[str, Any], gettext: Callable[[str], str], locale: str) -> str:
    """A change request's summary in the reader's language, from what it changes (the stored
    summary, written once in English, for kinds this page does not know)."""
    payload: dict[str, Any] = item.get("payload") or {}
    before: dict[str, Any] = item.get("before") or {}
    zh = locale.startswith("zh")
    kind = item.get("kind")
    if kind == changerequests.CREATE:
        noun = gettext(NOUN_LABELS.get(payload.get("record_type", ""), payload.get("record_type", "")))
        label = payload.get("label_zh") if zh else payload.get("label_en")
        return gettext("Add the field “%(label)s” (%(name)s) to %(noun)s") % {
            "label": label or payload.get("name", ""), "name": payload.get("name", ""), "noun": noun,
        }  # fmt: skip
    if kind in (changerequests.UPDATE, changerequests.DELETE):
        target = item.get("target") or {}
        noun_key = target.get("record_type") or before.get("record_type") or ""
        noun = gettext(NOUN_LABELS.get(noun_key, noun_key))
        name = target.get("name") or before.get("name") or ""
        if kind == changerequests.DELETE:
            return gettext("Retire the %(noun)s field %(name)s") % {"noun": noun, "name": name}
        parts = ("、" if zh else ", ").join(gettext(CHANGED_PARTS.get(key, key)) for key in sorted(payload))
        return gettext("Change %(parts)s of the %(noun)s field %(name)s") % {"parts": parts, "noun": noun, "name": name}
    if kind == changerequests.FIELD_SECURITY:
        noun_key, field = payload.get("record_type", ""), payload.get("field", "")
        roles = sorted((payload.get("roles") or {}).items())
        cells = [
            f"{gettext(ROLE_LABELS.get(role, role))} {gettext(CELL_WORDS[_cell_word(cell)])}" for role, cell in roles
        ]
        return gettext("Field security of %(noun)s · %(field)s: %(roles)s") % {
            "noun": gettext(NOUN_LABELS.get(noun_key, noun_key)),
            "field": gettext(FIELD_LABELS.get(field, field)),
            "roles": ("、" if zh else ", ").join(cells),
        }
    return str(item.get("summary") or "")


def _changes_page(
    request: Request, user: User, actor: Actor, error: str | None = None, status_code: int = 200
) -> Response:
    # a role without the queue (a partner) gets the workspace's problem page, not the queue's frame
    with database_of(request).reading(actor) as session:
        found = changerequests.list_requests(session, actor, limit=100)
        bodies = [changerequests.body(session, item) for item in found]
        # the custom fields the requests change, named in the summaries
        wanted = sorted({item["target_id"] for item in bodies if item["target_id"] is not None})
        targets = {
            row.id: {"name": row.name, "record_type": row.record_type}
            for row in session.scalars(
                select(CustomFieldDefinition).where(
                    tenant_clause(actor.organization_id, CustomFieldDefinition, include_deleted=True),
                    CustomFieldDefinition.id.in_(wanted),
                )
            )
        }
    for item in bodies:
        item["target"] = targets.get(item["target_id"]) if item["kind"] != changerequests.FIELD_SECURITY else None
    gettext = translations(locale_of(request)).gettext
    for item in bodies:
        item["summary_shown"] = change_summary(item, gettext, locale_of(request))
    bodies.sort(key=lambda item: (item["status"] != "pending", -item["id"]))
    can_sign = actor.role in changerequests.DEFAULT_REQUIRED_ROLES
    return render(
        request,
        "changes.html",
        {"user": user, "actor": actor, "requests": bodies, "can_sign": can_sign, "error": error},
        status_code=status_code,
    )


@router.get("/settings/changes")
def changes_page(request: Request) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    return _changes_page(request, *signed_in)


@router.post("/settings/changes/{request_id}/{decision}")
def decide(request: Request, request_id: int, decision: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    user, actor = signed_in
    if not csrf_ok(request, csrf):
        return _changes_page(request, user, actor, "Your session expired; please try again.", 400)
    if decision not in ("approve", "reject") or not 1 <= request_id < 2**63:
        return _changes_page(request, user, actor, "No such decision.", 404)
    try:
        with database_of(request).unit_of_work(actor) as session:
            if decision == "approve":
                changerequests.approve(session, actor, request_id)
            else:
                changerequests.reject(session, actor, request_id, reason=reason)
    except DomainError as error:
        return _changes_page(request, user, actor, _said(request, error), error.status)
    return RedirectResponse("/settings/changes", status_code=303)


# --- field security (GOV-3) ------------------------------------------------------------------------


def _security_page(
    request: Request,
    user: User,
    actor: Actor,
    record_type: str | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "error": error,
        "matrix": None,
        "nouns": [],
        "field_labels": FIELD_LABELS,
        "noun_labels": NOUN_LABELS,
    }
    try:
        require(actor, "schema:manage")
        nouns = fieldsecurity.record_types(actor)
        chosen = record_type if record_type in nouns else ("account" if "account" in nouns else nouns[0])
        with database_of(request).reading(actor) as session:
            context |= {"nouns": nouns, "matrix": fieldsecurity.matrix_of(session, actor, chosen)}
    except DomainError as problem:
        context["error"] = problem_text(problem, locale_of(request))[0]
        status_code = problem.status
    return render(request, "security.html", context, status_code=status_code)


@router.get("/settings/security")
def security_page(request: Request, record_type: str | None = None) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    return _security_page(request, *signed_in, record_type)


@router.post("/settings/security")
async def request_security(request: Request) -> Response:
    """One change request per field whose row of checkboxes differs from what holds now."""
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    user, actor = signed_in
    form = await request.form()
    record_type = str(form.get("record_type") or "")
    if not csrf_ok(request, str(form.get("csrf") or "")):
        return _security_page(request, user, actor, record_type, error=_said(request, FormExpired()), status_code=400)
    ticked = {str(key) for key in form}
    reason = str(form.get("reason") or "")
    try:
        with database_of(request).unit_of_work(actor) as session:
            current = fieldsecurity.matrix_of(session, actor, record_type)
            asked = 0
            for item in current["fields"]:
                cells: dict[str, Any] = {}
                for role, now in item["roles"].items():
                    read = f"read:{item['field']}:{role}" in ticked
                    writes = item["editable"] and role in current["writers"]
                    edit = read and writes and f"edit:{item['field']}:{role}" in ticked
                    if (read, edit) != (now["read"], now["edit"]):
                        cells[role] = {"read": read, "edit": edit}
                if cells:
                    change = fieldsecurity.FieldSecurityChange.model_validate({"roles": cells})
                    changerequests.request_field_security(
                        session, actor, record_type, item["field"], change, reason=reason
                    )
                    asked += 1
    except DomainError as error:
        return _security_page(request, user, actor, record_type, error=_said(request, error), status_code=error.status)
    if not asked:
        return _security_page(request, user, actor, record_type, error="Nothing changed.", status_code=422)
    return RedirectResponse("/settings/changes", status_code=303)
