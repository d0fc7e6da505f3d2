"""Assistant pages beyond the knowledge base: contract comparison against the standard templates
(AST-4), talk tracks and battlecards with adopt / reject on every suggestion (AST-3, AST-5), and the
weekly adoption report — the same services and permissions as the API."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from closeloop.assistant import tracks
from closeloop.assistant.contracts import clauses
from closeloop.assistant.contracts import service as contracts
from closeloop.assistant.feedback import service as feedback
from closeloop.assistant.knowledge import parsing
from closeloop.assistant.workflows import service as workflows
from closeloop.core.errors import Conflict, NotFound, ValidationFailed
from closeloop.core.messages import FIELD_LABELS
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user
from closeloop.web.upload_errors import refusal_text

router = APIRouter(include_in_schema=False)

CLAUSE_TYPE_LABELS = {
    "payment": N_("Payment terms"),
    "liability_cap": N_("Liability cap"),
    "penalties": N_("Penalties"),
    "ip": N_("Intellectual property"),
    "warranty": N_("Warranty"),
    "exclusivity": N_("Exclusivity"),
    "termination": N_("Termination"),
    "jurisdiction": N_("Jurisdiction"),
    "confidentiality": N_("Confidentiality"),
    "other": N_("Other"),
}
STATUS_LABELS = {
    "unchanged": N_("Unchanged"),
    "changed": N_("Changed"),
    "missing": N_("Missing"),
    "added": N_("Added"),
}
RISK_LABELS = {0: N_("No risk"), 1: N_("Low risk"), 2: N_("Medium risk"), 3: N_("High risk")}
MATCH_LABELS = {
    "number_title": N_("same number and title"),
    "title": N_("same title, moved"),
    "text": N_("similar text, moved or renamed"),
    "number": N_("same number"),
}


def _int(value: str, name: str) -> int:
    if not value.isdecimal() or not 1 <= int(value) < 2**63:
        raise NotFound(name, value)
    return int(value)


def _page(request: Request, extra: dict[str, Any] | None = None, *, status_code: int = 200) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        templates = [contracts.template_body(t) for t in contracts.list_templates(session, actor)]
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "templates": templates,
        "can_manage": actor.can(contracts.MANAGE),
        "formats": ", ".join(contracts.FORMATS),
        "type_labels": CLAUSE_TYPE_LABELS,
        "status_labels": STATUS_LABELS,
        "risk_labels": RISK_LABELS,
        "match_labels": MATCH_LABELS,
        "result": None,
        **(extra or {}),
    }
    return render(request, "assistant/contracts.html", context, status_code=status_code)


@router.get("/assistant/contracts")
def contracts_page(request: Request) -> Response:
    return _page(request)


def _refusal(request: Request, error: ValidationFailed | Conflict, filename: str) -> str:
    """Why an upload was refused, in the reader's language, naming the file and the accepted types."""
    gettext = translations(locale_of(request)).gettext
    if error.problems and error.problems[0].field == "name":
        if error.problems[0].code == "required":
            return gettext("Give the template a name.")
        return gettext("A template with this name exists already.")
    return refusal_text(gettext, error, filename, contracts.FORMATS)


@router.post("/assistant/contracts/templates")
def upload_template(
    request: Request, csrf: str = Form(""), name: str = Form(""), file: UploadFile = File(...)
) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    content = file.file.read(parsing.MAX_BYTES + 1)
    filename = file.filename or "template.txt"
    try:
        with database_of(request).unit_of_work(actor) as session:
            contracts.add_template(session, actor, name=name, filename=filename, content=content)
    except (ValidationFailed, Conflict) as error:
        extra = {"template_error": _refusal(request, error, filename), "template_name": name}
        return _page(request, extra, status_code=error.status)
    return RedirectResponse("/assistant/contracts", status_code=303)


@router.post("/assistant/contracts/templates/{template_id}/delete")
def delete_template(request: Request, template_id: str, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        contracts.delete_template(session, actor, _int(template_id, "contract template"))
    return RedirectResponse("/assistant/contracts", status_code=303)


@router.post("/assistant/contracts/compare")
def compare(
    request: Request, csrf: str = Form(""), template_id: str = Form(""), file: UploadFile = File(...)
) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    content = file.file.read(parsing.MAX_BYTES + 1)
    filename = file.filename or "contract.txt"
    chosen = _int(template_id, "contract template")
    try:
        with database_of(request).reading(actor) as session:
            result = contracts.compare(session, actor, chosen, filename=filename, content=content)
            body = result.as_dict()
    except ValidationFailed as error:
        # the form again with the template still chosen and the reason beside the file input
        extra = {"compare_error": _refusal(request, error, filename), "selected": chosen}
        return _page(request, extra, status_code=error.status)
    return _page(request, {"result": body, "selected": body["template"]["id"], "types": clauses.TYPES})


# ---------------------------------------------------------------- talk tracks, battlecards, verdicts

SUGGESTION_SECTIONS = {
    "tracks": N_("Suggested talk tracks"),
    "knowledge": N_("From the knowledge base"),
    "field_notes": N_("From the field notes"),
}


@router.get("/assistant/coach")
def coach_page(request: Request, objection: str = "", competitor: str = "") -> Response:
    """Talk tracks for an objection and a competitor's battlecard, each suggestion with its verdict form."""
    user, actor = require_user(request)
    result = None
    with database_of(request).reading(actor) as session:
        if objection.strip():
            result = tracks.talk_tracks(session, actor, objection)
        elif competitor.strip():
            result = tracks.battlecard(session, actor, competitor)
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "objection": objection,
        "competitor": competitor,
        "result": result,
        "section_labels": SUGGESTION_SECTIONS,
        "record_links": {
            "account": "/accounts/{id}",
            "contact": "/contacts/{id}",
            "opportunity": "/opportunities/{id}",
        },
        "field_labels": FIELD_LABELS,
        "verdict_source": result.kind if result else "",
        "verdict_query": result.query if result else "",
    }
    return render(request, "assistant/coach.html", context)


@router.post("/assistant/verdicts")
async def record_verdict(request: Request) -> Response:
    """An adopt / reject from a suggestion's form (HTMX): answers the line that replaces the form."""
    user, actor = require_user(request)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    verdict = str(form.get("verdict") or "")
    with database_of(request).unit_of_work(actor) as session:
        feedback.record_verdict(
            session,
            actor,
            source=str(form.get("source") or ""),
            key=str(form.get("key") or ""),
            query=str(form.get("query") or ""),
            verdict=verdict,
            reason=str(form.get("reason") or ""),
        )
    return render(request, "assistant/verdict.html", {"user": user, "actor": actor, "verdict": verdict})


@router.get("/assistant/adoption")
def adoption_page(request: Request, week: str = "") -> Response:
    """This week's (or a chosen week's) adoption per rep and team, the rejection reasons, and the
    reports the Monday task kept."""
    user, actor = require_user(request)
    try:
        day = date.fromisoformat(week) if week else None
    except ValueError:
        day = None
    with database_of(request).reading(actor) as session:
        current = feedback.report(session, actor, day)
        kept = [{"week_start": r.week_start.isoformat(), **r.body} for r in feedback.stored_reports(session, actor)]
    context: dict[str, Any] = {"user": user, "actor": actor, "report": current, "kept": kept}
    return render(request, "assistant/adoption.html", context)


# ---------------------------------------------------------------- workflows


@router.get("/assistant/workflows")
def workflows_page(request: Request) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        items = [workflows.workflow_body(w) for w in workflows.list_workflows(session, actor)]
        runs = workflows.recent_runs(session, actor)
        names = {w["id"]: w["name"] for w in items}
        run_rows = [
            {
                "workflow": names.get(r.workflow_id, r.workflow_id),
                "status": r.status,
                "subject": f"{r.subject_type} #{r.subject_id}",
                "ran_at": r.ran_at.isoformat()[:16],
            }
            for r in runs
        ]
    context: dict[str, Any] = {
        "user": user,
        "actor": actor,
        "workflows": items,
        "runs": run_rows,
        "examples": workflows.EXAMPLES,
        "can_manage": actor.can(workflows.MANAGE),
    }
    return render(request, "assistant/workflows.html", context)


@router.post("/assistant/workflows/examples/{example}")
def add_example(request: Request, example: str, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    spec = workflows.EXAMPLES.get(example)
    if spec is None:
        raise NotFound("workflow example", example)
    with database_of(request).unit_of_work(actor) as session:
        workflows.create_workflow(
            session, actor, name=spec["name"], event_type=spec["event_type"], definition=spec["definition"]
        )
    return RedirectResponse("/assistant/workflows", status_code=303)


@router.post("/assistant/workflows/{workflow_id}/enabled")
def toggle(request: Request, workflow_id: str, csrf: str = Form(""), enabled: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        workflows.set_enabled(session, actor, _int(workflow_id, "assistant workflow"), enabled == "true")
    return RedirectResponse("/assistant/workflows", status_code=303)
