"""Automation pages (issue #4 item 7): the rule list; writing a rule in plain language (parsed,
read back, backtested, then saved and switched on); the decision log with filters; actions waiting
in their undo window with a countdown; review requests — the same services as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from closeloop.automation import explain, webhooks
from closeloop.automation import service as automation
from closeloop.automation.language import parse_rule, read_back
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.web.i18n import N_, NOUN_LABELS, translations
from closeloop.web.quality import record_link, subject_names
from closeloop.web.routes import database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

#: the kinds of record a rule fires on, in words (a rule on forecast deviation is about a rep)
RECORD_LABELS = {**NOUN_LABELS, "user": N_("Rep")}

STATUS_LABELS = {
    "pending": N_("Waiting"),
    "running": N_("Running"),
    "done": N_("Done"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
    "open": N_("Open"),
    "resolved": N_("Answered"),
}


#: an undo window in its largest whole unit: (seconds in the unit, one, several)
UNDO_UNITS = (
    (86400, N_("1 day"), N_("%(count)s days")),
    (3600, N_("1 hour"), N_("%(count)s hours")),
    (60, N_("1 minute"), N_("%(count)s minutes")),
)


def undo_window_text(seconds: int, gettext: Callable[[str], str]) -> str:
    """A rule's undo window as a person reads it: ``3 days`` / ``3 天``, ``90 minutes``, ``30 s``
    (the largest unit it is a whole number of), ``None`` when its actions run at once."""
    if seconds <= 0:
        return gettext("None")
    for size, one, several in UNDO_UNITS:
        if seconds % size == 0:
            count = seconds // size
            return gettext(one) if count == 1 else gettext(several) % {"count": count}
    return gettext("%(count)s s") % {"count": seconds}


def _lang(request: Request) -> str:
    return "en" if locale_of(request) == "en" else "zh"


def _int(value: str | None) -> int | None:
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 1 <= number < 2**63 else None


@router.get("/automation/rules")
def rules_page(request: Request) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        rules = [automation.rule_body(session, actor, rule) for rule in automation.list_rules(session, actor)]
    gettext = translations(locale_of(request)).gettext
    for rule in rules:
        rule["readback"] = read_back(rule["definition"], _lang(request))
        rule["undo_window"] = undo_window_text(int(rule["undo_seconds"] or 0), gettext)
    return render(request, "automation/rules.html", {"user": user, "actor": actor, "rules": rules})


@router.post("/automation/rules/{rule_id}/switch")
def switch_rule(request: Request, rule_id: int, csrf: str = Form(""), enabled: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        automation.set_enabled(session, actor, rule_id, enabled == "1")
    return RedirectResponse("/automation/rules", status_code=303)


@router.get("/automation/rules/new")
def new_rule_page(request: Request) -> Response:
    user, actor = require_user(request)
    return render(request, "automation/new.html", {"user": user, "actor": actor, "text": "", "parsed": None})


@router.post("/automation/rules/try")
def try_rule(request: Request, csrf: str = Form(""), text: str = Form(""), days: str = Form("30")) -> Response:
    """Parse the sentence, read it back, and backtest it (the part of the page under the text box)."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    parsed = parse_rule(text) if text.strip() else None
    context: dict[str, Any] = {
        "user": user, "actor": actor, "text": text, "parsed": parsed, "days": _int(days) or 30,
        "record_labels": RECORD_LABELS,
    }  # fmt: skip
    if parsed is not None and parsed.rule is not None:
        context["definition_json"] = json.dumps(parsed.rule, ensure_ascii=False)
        try:
            with database_of(request).reading(actor) as session:
                tried = automation.backtest(session, actor, parsed.rule, days=context["days"])
            for row in tried.per_record:
                row["link"] = record_link(request, row["record_type"], row["record_id"])
            context["backtest"] = tried
        except ValidationFailed as error:
            context["invalid"] = error.problems
    template = "automation/tried.html" if is_htmx(request) else "automation/new.html"
    return render(request, template, context)


@router.post("/automation/rules")
def save_rule(
    request: Request,
    csrf: str = Form(""),
    text: str = Form(""),
    name: str = Form(""),
    undo_seconds: str = Form("30"),
    enable: str = Form(""),
) -> Response:
    """Save the sentence as a rule: it is parsed again here, so what is stored is what was read back."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    parsed = parse_rule(text)
    if parsed.rule is None:
        return render(
            request,
            "automation/new.html",
            {"user": user, "actor": actor, "text": text, "parsed": parsed},
            status_code=422,
        )
    undo = _int(undo_seconds) if undo_seconds != "0" else 0
    try:
        with database_of(request).unit_of_work(actor) as session:
            automation.create_rule(
                session, actor, name=name.strip() or text.strip()[:60], definition=parsed.rule, text=text,
                lang=parsed.lang, enabled=enable == "1", undo_seconds=30 if undo is None else undo,
            )  # fmt: skip
    except DomainError as error:
        context = {"user": user, "actor": actor, "text": text, "parsed": parsed, "error": error}
        return render(request, "automation/new.html", context, status_code=error.status)
    return RedirectResponse("/automation/rules", status_code=303)


@router.get("/automation/decisions")
def decisions_page(
    request: Request, rule_id: str | None = None, record_type: str | None = None, record_id: str | None = None
) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        found = automation.decisions(
            session, actor, rule_id=_int(rule_id), record_type=record_type or None, record_id=_int(record_id), limit=200
        )
        hidden = automation.mask_checker(session, actor)
        items = [automation.visible_body(session, actor, d, hidden) for d in found]
        names = subject_names(session, actor, {(d["record_type"], d["record_id"]) for d in items})
    lang = _lang(request)
    for item in items:
        _name_record(request, item, names)
        item["actions_shown"] = [_action_line(action, lang) for action in item["actions"] if isinstance(action, dict)]
    filters = {"rule_id": rule_id or "", "record_type": record_type or "", "record_id": record_id or ""}
    context = {
        "user": user, "actor": actor, "decisions": items, "filters": filters, "status_labels": STATUS_LABELS,
        "record_types": RECORD_TYPES, "record_labels": RECORD_LABELS,
    }  # fmt: skip
    return render(request, "automation/decisions.html", context)


#: the kinds of record a decision can be about, for the decision log's filter
RECORD_TYPES = ("account", "opportunity", "lead", "ticket", "order", "activity", "user")


def _name_record(request: Request, item: dict[str, Any], names: dict[tuple[str, int], str]) -> None:
    """The record's name (when the viewer may read it) and its page, beside its kind."""
    key = (item["record_type"], item["record_id"])
    item["record_name"] = names.get(key)
    item["record_link"] = record_link(request, *key)


def _action_line(action: dict[str, Any], lang: str) -> dict[str, Any]:
    """An action in words with its outcome: a failure's error, a task given to the rule's author."""
    result = action.get("result") if isinstance(action.get("result"), dict) else {}
    assert isinstance(result, dict)
    return {
        "label": explain.action_text(action, lang),
        "status": str(action.get("status") or "done"),
        "error": explain.error_text(result.get("error"), lang),
        "fallback": result.get("fallback"),
    }


@router.post("/automation/decisions/{decision_id}/review")
def ask_review(request: Request, decision_id: int, csrf: str = Form(""), reason: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        automation.request_review(session, actor, decision_id, reason=reason)
    return RedirectResponse("/automation/reviews", status_code=303)


def _pending_context(request: Request) -> dict[str, Any]:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        waiting = [automation.pending_body(p) for p in automation.pending_actions(session, actor, status="pending")]
        recent = [automation.pending_body(p) for p in automation.pending_actions(session, actor, status=None, limit=30)]
        everything = waiting + recent
        names = subject_names(session, actor, {(p["record_type"], p["record_id"]) for p in everything})
        rules = automation.rule_names(session, actor, {p["rule_id"] for p in everything})
    lang = _lang(request)
    for pending in everything:
        _name_record(request, pending, names)
        pending["rule_name"] = rules.get(pending["rule_id"])
        pending["label"] = explain.action_text(pending["action"], lang)
        failure = pending["result"].get("error") if isinstance(pending["result"], dict) else None
        pending["error"] = explain.error_text(failure, lang)
    finished = [p for p in recent if p["status"] != "pending"]
    return {
        "user": user, "actor": actor, "waiting": waiting, "finished": finished, "status_labels": STATUS_LABELS,
        "record_labels": RECORD_LABELS,
    }  # fmt: skip


@router.get("/automation/pending")
def pending_page(request: Request) -> Response:
    context = _pending_context(request)
    template = "automation/pending_list.html" if is_htmx(request) else "automation/pending.html"
    return render(request, template, context)


@router.post("/automation/pending/{pending_id}/cancel")
def cancel(request: Request, pending_id: int, csrf: str = Form(""), back: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        automation.cancel_pending(session, actor, pending_id)
    if back.startswith(("/accounts/", "/opportunities/")) and back[1:].replace("/", "").isalnum():
        # undone from the record's page: back there
        return RedirectResponse(back + "#decisions", status_code=303)
    if is_htmx(request):
        return render(request, "automation/pending_list.html", _pending_context(request))
    return RedirectResponse("/automation/pending", status_code=303)


@router.get("/automation/reviews")
def reviews_page(request: Request) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        items = [automation.review_body(r) for r in automation.reviews(session, actor)]
    context = {"user": user, "actor": actor, "reviews": items, "status_labels": STATUS_LABELS}
    return render(request, "automation/reviews.html", context)


@router.post("/automation/reviews/{review_id}/resolve")
def answer_review(request: Request, review_id: int, csrf: str = Form(""), resolution: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    if not resolution.strip():
        raise ValidationFailed.one("resolution", "say what you decided", "required")
    with database_of(request).unit_of_work(actor) as session:
        automation.resolve_review(session, actor, review_id, resolution=resolution)
    return RedirectResponse("/automation/reviews", status_code=303)


# --- outgoing webhooks: the allowed hosts (administrators) and the delivery log ----------------------

DELIVERY_LABELS = {"pending": N_("Retrying"), "delivered": N_("Delivered"), "failed": N_("Failed")}


def _webhooks_context(request: Request, **extra: Any) -> dict[str, Any]:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        deliveries = [webhooks.delivery_body(d) for d in automation.webhook_deliveries(session, actor, limit=200)]
        hosts = (
            [{"id": h.id, "host": h.host, "created_at": h.created_at} for h in automation.webhook_hosts(session, actor)]
            if actor.can("organization:manage")
            else None
        )
    return {
        "user": user, "actor": actor, "deliveries": deliveries, "hosts": hosts,
        "delivery_labels": DELIVERY_LABELS, **extra,
    }  # fmt: skip


@router.get("/automation/webhooks")
def webhooks_page(request: Request) -> Response:
    """The delivery log (status, attempts, last error) and, for administrators, the allowed hosts."""
    return render(request, "automation/webhooks.html", _webhooks_context(request))


@router.post("/automation/webhooks/hosts")
def add_webhook_host(request: Request, csrf: str = Form(""), host: str = Form("")) -> Response:
    """Allow a host; its signing secret is shown this once."""
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        row, secret = automation.allow_webhook_host(session, actor, host)
        added = {"host": row.host, "secret": secret}
    return render(request, "automation/webhooks.html", _webhooks_context(request, added=added), status_code=201)


@router.post("/automation/webhooks/hosts/{host_id}/remove")
def remove_webhook_host(request: Request, host_id: int, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        automation.remove_webhook_host(session, actor, host_id)
    return RedirectResponse("/automation/webhooks", status_code=303)
