"""The web workspace's shared machinery and its first pages: sign-in, sign-out, language,
notifications.

Every page is rendered for the signed-in actor through the same services (and field masks) as
the API; every form carries the session's CSRF token. Pages of each area live in a module of
their own (``settings.py``, …) and register here in :func:`install`; their entries in the
navigation are :data:`NAV`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exception_handlers import http_exception_handler
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.core.messages import FIELD_LABELS, field_message, refusal_sentence
from closeloop.db.session import Database
from closeloop.org import browser, notifications
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.throttle import TooManyAttempts
from closeloop.web import i18n
from closeloop.web.i18n import N_, negotiate, translations

_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class NavGroup:
    """A heading of the navigation; its entries are the :class:`NavItem` naming its ``key``."""

    key: str
    label: str  # English source text; translated when rendered


@dataclass(frozen=True)
class NavItem:
    """One entry of the workspace's navigation: shown to actors holding ``permission`` (None: all)
    or having one of ``roles``, under the heading ``group`` (a :data:`NAV_GROUPS` key)."""

    path: str
    label: str  # English source text; translated when rendered
    permission: str | None = None
    group: str = "workspace"
    roles: tuple[str, ...] = ()

    def shown_to(self, actor: Actor) -> bool:
        return self.permission is None or actor.can(self.permission) or actor.role in self.roles


#: the navigation's headings, in order
NAV_GROUPS: list[NavGroup] = [
    NavGroup("workspace", N_("Workspace")),
    NavGroup("sales", N_("Customers & sales")),
    NavGroup("field", N_("Field work & cash")),
    NavGroup("automation", N_("Automation")),
    NavGroup("assistants", N_("Assistants")),
    NavGroup("data", N_("Data governance")),
    NavGroup("settings", N_("Settings")),
]

#: the navigation; each area adds its pages here, one line each, naming its group (entries are
#: shown in this order within their group)
NAV: list[NavItem] = [
    NavItem("/", N_("Home"), group="workspace"),
    NavItem("/tasks", N_("Tasks"), "tasks:read", group="workspace"),
    NavItem("/funnel", N_("Funnel"), "funnel:read", group="workspace"),
    NavItem("/dashboard", N_("Performance"), "funnel:read", group="workspace"),
    NavItem("/forecasts", N_("Forecast"), "forecasts:read", group="workspace"),
    NavItem("/scorecards", N_("Team scorecards"), "quality:read", group="workspace"),
    NavItem("/targets", N_("Targets"), "targets:read", group="workspace"),
    NavItem("/approvals", N_("Approvals"), "approvals:use", group="workspace"),
    NavItem("/reports/mine", N_("My report"), "reports:write", group="workspace"),
    NavItem("/reports/team", N_("Team reports"), "reports:read", group="workspace"),
    NavItem("/pipeline", N_("Pipeline"), "opportunities:read", group="sales"),
    NavItem("/leads/inbox", N_("Lead inbox"), "leads:read", group="sales"),
    NavItem("/accounts", N_("Accounts"), "accounts:read", group="sales"),
    NavItem("/contacts", N_("Contacts"), "contacts:read", group="sales"),
    NavItem("/leads", N_("Leads"), "leads:read", group="sales"),
    NavItem("/opportunities", N_("Opportunities"), "opportunities:read", group="sales"),
    NavItem("/activities", N_("Activities"), "activities:read", group="sales"),
    NavItem("/pools", N_("Public pool"), "pools:read", group="sales"),
    NavItem("/pools/mine", N_("My private pool"), "pools:read", group="sales"),
    NavItem("/fieldwork", N_("Field work"), "fieldwork:read", group="field"),
    NavItem("/fieldwork/map", N_("Customer map"), "fieldwork:read", group="field"),
    NavItem("/fieldwork/report", N_("Visits per rep"), "fieldwork:read", group="field"),
    NavItem("/contracts", N_("Contracts"), "contracts:read", group="field"),
    NavItem("/cash", N_("Cash collections"), "contracts:read", group="field"),
    NavItem("/automation/rules", N_("Rules"), "rules:read", group="automation"),
    NavItem("/automation/decisions", N_("Decision log"), "decisions:read", group="automation"),
    NavItem("/automation/pending", N_("Undo window"), "decisions:read", group="automation"),
    NavItem("/automation/reviews", N_("Review requests"), "decisions:read", group="automation"),
    NavItem("/automation/webhooks", N_("Webhooks"), "decisions:read", group="automation"),
    NavItem("/compliance", N_("Compliance check"), "compliance:check", group="assistants"),
    NavItem("/compliance/reviews", N_("Compliance reviews"), "compliance:review", group="assistants"),
    NavItem("/knowledge", N_("Knowledge base"), "knowledge:read", group="assistants"),
    NavItem("/assistant/coach", N_("Talk tracks and battlecards"), "knowledge:read", group="assistants"),
    NavItem("/assistant/contracts", N_("Contract comparison"), "contracts:read", group="assistants"),
    NavItem("/assistant/adoption", N_("Suggestion adoption"), "assistant:report", group="assistants"),
    NavItem("/assistant/workflows", N_("Assistant workflows"), "assistant:report", group="assistants"),
    NavItem("/import", N_("Import"), "imports:run", group="data"),
    NavItem("/quality", N_("Data quality"), "quality:read", group="data"),
    NavItem("/settings/assets", N_("Data assets"), "assets:read", group="data"),
    NavItem("/settings/users", N_("Users and roles"), "users:manage", group="settings"),
    NavItem("/approvals/flows", N_("Approval flows"), "approval_flows:read", group="settings"),
    NavItem("/settings/fields", N_("Custom fields"), "schema:read", group="settings"),
    NavItem("/settings/security", N_("Field security"), "schema:manage", group="settings"),
    NavItem("/settings/formulas", N_("Formula editor"), "schema:manage", group="settings"),
    NavItem(
        "/settings/changes", N_("Change requests"), "schema:manage", group="settings", roles=("sales_vp", "it_director")
    ),
    NavItem("/api/docs", N_("API"), group="settings"),
]


@dataclass(frozen=True)
class NavSection:
    """A heading with the entries the actor may open under it, as the page shows them."""

    key: str
    label: str
    items: list[NavItem]
    current: bool


def nav_sections(actor: Actor | None, current: str | None) -> list[NavSection]:
    """The navigation ``actor`` sees, grouped under :data:`NAV_GROUPS` (empty headings left out;
    an entry naming an unknown group goes to the last heading rather than disappear)."""
    if actor is None:
        return []
    keys = [group.key for group in NAV_GROUPS]
    sections = []
    for group in NAV_GROUPS:
        items = [
            item
            for item in NAV
            if (item.group == group.key or (item.group not in keys and group is NAV_GROUPS[-1]))
            and item.shown_to(actor)
        ]
        if items:
            sections.append(NavSection(group.key, group.label, items, any(item.path == current for item in items)))
    return sections


def _locale_of(context: Context) -> str:
    return str(context.get("locale") or "zh_CN")


@pass_context
def _money(context: Context, amount: Any, currency: str | None = None) -> str:
    return i18n.format_money(amount, currency or "CNY", _locale_of(context))


@pass_context
def _compact(context: Context, amount: Any, currency: str | None = None) -> str:
    return i18n.format_compact(amount, _locale_of(context), currency=currency)


@pass_context
def _in_unit(context: Context, amount: Any) -> str:
    return i18n.format_in_unit(amount, _locale_of(context))


@pass_context
def _money_unit(context: Context) -> str:
    return i18n.money_unit(_locale_of(context))


@pass_context
def _number(context: Context, value: Any) -> str:
    return i18n.format_number(value, _locale_of(context))


@pass_context
def _percent(context: Context, ratio: Any) -> str:
    return i18n.format_percent(ratio, _locale_of(context))


@pass_context
def _date(context: Context, value: Any) -> str:
    return i18n.format_date(value, _locale_of(context))


@pass_context
def _datetime(context: Context, value: Any) -> str:
    return i18n.format_datetime(value, _locale_of(context))


_environment.globals.update(role_labels=i18n.ROLE_LABELS, noun_labels=i18n.NOUN_LABELS, money_unit=_money_unit)
_environment.filters.update(
    money=_money,
    compact=_compact,
    in_unit=_in_unit,
    number=_number,
    percent=_percent,
    date=_date,
    datetime=_datetime,
)


def csrf_token(request: Request) -> str:
    token = request.session.get(browser.CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[browser.CSRF_KEY] = token
    return str(token)


def csrf_ok(request: Request, sent: str | None) -> bool:
    return browser.csrf_matches(request.session, sent)


def database_of(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def signed_in_user(request: Request) -> tuple[User, Actor] | None:
    signed_in = browser.credentials(request.session)
    return browser.resolve(database_of(request), *signed_in) if signed_in else None


class SignInRequired(Exception):
    """The page needs a signed-in person; the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class FormExpired(DomainError):
    def __init__(self) -> None:
        super().__init__(N_("Your session expired; please try again."), code="csrf", status=400)


def require_user(request: Request) -> tuple[User, Actor]:
    """The signed-in person and their actor, or :class:`SignInRequired` (a redirect to sign in)."""
    signed_in = signed_in_user(request)
    if signed_in is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    user, actor = signed_in
    return user, actor.with_request(getattr(request.state, "request_id", None))


def require_csrf(request: Request, sent: str | None = None) -> None:
    """The form's ``csrf`` field, or the ``X-CSRF-Token`` header HTMX sends on every request."""
    if not csrf_ok(request, sent or request.headers.get("x-csrf-token")):
        raise FormExpired()


def locale_of(request: Request) -> str:
    return negotiate(request.session.get("locale"), request.headers.get("accept-language"))


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request, template: str, context: dict[str, Any], *, locale: str | None = None, status_code: int = 200
) -> HTMLResponse:
    """``template`` for the request's language, with the navigation and the unread count when a
    person is signed in (``user`` and ``actor`` in ``context``)."""
    language = locale or locale_of(request)
    translation = translations(language)
    actor: Actor | None = context.get("actor")
    unread = 0
    if actor is not None and "unread" not in context and not is_htmx(request):
        with database_of(request).reading(actor) as session:
            unread = notifications.unread_count(session, actor)
    shown = [item for item in NAV if actor is not None and item.shown_to(actor)]
    current_nav = _current(shown, request.url.path)
    page = _environment.get_template(template)
    body = page.render(
        request=request,
        csrf_token=csrf_token(request),
        locale=language,
        _=translation.gettext,
        gettext=translation.gettext,
        ngettext=translation.ngettext,
        nav=shown,
        nav_sections=nav_sections(actor, current_nav),
        current_nav=current_nav,
        current_path=request.url.path,
        unread=unread,
        **context,
    )
    return HTMLResponse(body, status_code=status_code, headers={"Content-Language": language.replace("_", "-")})


def _current(items: list[NavItem], path: str) -> str | None:
    """The navigation entry a page belongs to: the longest entry path that is the page's path or
    a parent of it (``/leads/inbox`` is the inbox, ``/leads/7/edit`` the leads)."""
    matching = [
        item.path for item in items if path == item.path or (item.path != "/" and path.startswith(item.path + "/"))
    ]
    return max(matching, key=len) if matching else None


def _sign_in_redirect(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    target = f"/login?next={quote(error.next_path)}"
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def problem_text(error: DomainError, locale: str) -> tuple[str, list[tuple[str, str]]]:
    """The refusal as the person reads it in ``locale``: its sentence and its field problems as
    (field label, message) pairs. A service sentence without a translation (``account 7 not found``)
    is replaced by a translated sentence for its kind of refusal, and field keys by their labels,
    so a Chinese page never shows an English sentence or a raw key."""

    gettext = translations(locale).gettext
    message = refusal_sentence(error, locale)
    details = []
    for problem in error.problems:
        label = FIELD_LABELS.get(problem.field) or FIELD_LABELS.get(problem.field.removeprefix("custom."))
        details.append((gettext(label) if label else problem.field, field_message(gettext, problem)))
    return message, details


def _problem_page(request: Request, error: Exception) -> Response:
    """An expected failure on a page: the error page (or, for an HTMX fragment, the message alone)."""
    assert isinstance(error, DomainError)
    message, details = problem_text(error, locale_of(request))
    signed_in = signed_in_user(request)
    context: dict[str, Any] = {"error": error, "message": message, "details": details}
    if signed_in is not None:
        context.update(user=signed_in[0], actor=signed_in[1])
    if is_htmx(request):
        # shown above the page (#flash), whatever element the request meant to replace
        response = render(request, "fragments/problem.html", context, status_code=error.status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "problem.html", context, status_code=error.status)


class PageMissing(DomainError):
    """No page at this address (an unknown path, or a method the page does not take)."""

    def __init__(self, status: int) -> None:
        message = N_("This page does not exist, or you may not see it.")
        super().__init__(message, code="not_found" if status == 404 else "error", status=status)


async def _no_such_page(request: Request, error: Exception) -> Response:
    """A path of the workspace that matches no page: the workspace's own not-found page, in the
    reader's language (the API, mounted under ``/api``, answers with its problem documents)."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (404, 405):
        return _problem_page(request, PageMissing(error.status_code))
    return await http_exception_handler(request, error)


#: the largest id a record can have (a signed 64-bit integer, on both databases)
MAX_ID = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")
#: query parameters that name a record by its id (besides every ``…_id``)
_ID_PARAMETERS = frozenset({"owner", "region", "product_line", "account", "contact", "lead", "opportunity"})


def _ids_in_range(request: Request) -> None:
    """A page address naming an id beyond any record's (``/accounts/99999999999999999999``) is a page
    that does not exist, and such an id in a filter is a field problem — not a database error."""
    for segment in request.url.path.split("/"):
        if _DIGITS.fullmatch(segment) and int(segment) > MAX_ID:
            raise PageMissing(404)
    for key, value in request.query_params.multi_items():
        if (key in _ID_PARAMETERS or key.endswith("_id")) and _DIGITS.fullmatch(value) and int(value) > MAX_ID:
            raise ValidationFailed.one(key, "names no record: an id is at most 9223372036854775807", "out_of_range")


IDS_IN_RANGE = [Depends(_ids_in_range)]


def _safe_next(path: str | None) -> str:
    """Only a path on this site (``/…``, not ``//host``) is followed after signing in."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"error": None, "username": "", "next": _safe_next(next)})


@router.post("/login")
def login(
    request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""), next: str = Form("/")
) -> Response:
    def again(error: str, status_code: int) -> Response:
        translated = translations(locale_of(request)).gettext(error)
        context = {"error": translated, "username": username, "next": _safe_next(next)}
        return render(request, "login.html", context, status_code=status_code)

    if not csrf_ok(request, csrf):
        return again(N_("Your session expired; please try again."), 400)
    client = request.client.host if request.client else "?"
    try:
        with database_of(request).unit_of_work(None, system=True) as session:
            user = org_service.sign_in(session, username=username.strip(), password=password, client=client, via="web")
    except TooManyAttempts:
        return again(N_("Too many failed sign-ins; wait a few minutes and try again."), 429)
    if user is None:
        return again(N_("Unknown username or wrong password."), 401)
    browser.start(request.session, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if csrf_ok(request, csrf):
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/language/{locale}")
def switch_language(request: Request, locale: str) -> Response:
    """Show the workspace in ``locale``; for a signed-in person it becomes their setting too."""
    if locale in i18n.SUPPORTED:
        request.session["locale"] = locale
        signed_in = signed_in_user(request)
        if signed_in is not None and signed_in[0].locale != locale:
            user, actor = signed_in
            with database_of(request).unit_of_work(actor) as session:
                org_service.update_user(session, actor, user_id=user.id, changes={"locale": locale})
    referer = request.headers.get("referer") or "/"
    return RedirectResponse(referer if referer.startswith(str(request.base_url)) else "/", status_code=303)


@router.get("/notifications")
def notifications_page(request: Request, cursor: str | None = None) -> Response:
    user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        found, next_cursor = notifications.page(session, actor, limit=30, cursor=cursor)
    context = {"user": user, "actor": actor, "items": found, "next_cursor": next_cursor}
    return render(request, "notifications.html", context)


@router.post("/notifications/{notification_id}/read")
def read_notification(request: Request, notification_id: int, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        notice = notifications.mark_read(session, actor, notification_id)
        link = notice.link
    return RedirectResponse(_safe_next(link) if link else "/notifications", status_code=303)


@router.post("/notifications/read")
def read_all_notifications(request: Request, csrf: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    with database_of(request).unit_of_work(actor) as session:
        notifications.mark_all_read(session, actor)
    return RedirectResponse("/notifications", status_code=303)


def install(app: FastAPI) -> None:
    from closeloop.web import (
        accounts,
        approvals,
        assistant,
        automation,
        board,
        cash,
        compliance,
        dashboards,
        fieldwork,
        forecasts,
        formulas,
        home,
        imports,
        knowledge,
        leads,
        pools,
        quality,
        records,
        scorecards,
        search,
        settings,
        targets,
        users,
        work_reports,
    )

    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(DomainError, _problem_page)
    app.add_exception_handler(StarletteHTTPException, _no_such_page)
    app.include_router(router, dependencies=IDS_IN_RANGE)
    app.include_router(home.router, dependencies=IDS_IN_RANGE)
    app.include_router(board.router, dependencies=IDS_IN_RANGE)
    app.include_router(settings.router, dependencies=IDS_IN_RANGE)
    app.include_router(users.router, dependencies=IDS_IN_RANGE)
    app.include_router(formulas.router, dependencies=IDS_IN_RANGE)
    # the record pages first: /accounts/new before the account 360's /accounts/{id}
    app.include_router(forecasts.router, dependencies=IDS_IN_RANGE)
    app.include_router(scorecards.router, dependencies=IDS_IN_RANGE)
    app.include_router(pools.router, dependencies=IDS_IN_RANGE)  # /pools/… before the records' /{plural} pages
    app.include_router(approvals.router, dependencies=IDS_IN_RANGE)
    # the contract page /contracts/{id} beside the records' pages
    app.include_router(cash.router, dependencies=IDS_IN_RANGE)
    app.include_router(targets.router, dependencies=IDS_IN_RANGE)
    app.include_router(fieldwork.router, dependencies=IDS_IN_RANGE)
    app.include_router(work_reports.router, dependencies=IDS_IN_RANGE)
    app.include_router(records.router, dependencies=IDS_IN_RANGE)
    app.include_router(imports.router, dependencies=IDS_IN_RANGE)
    app.include_router(accounts.router, dependencies=IDS_IN_RANGE)
    app.include_router(leads.router, dependencies=IDS_IN_RANGE)
    app.include_router(search.router, dependencies=IDS_IN_RANGE)
    app.include_router(dashboards.router, dependencies=IDS_IN_RANGE)
    app.include_router(quality.router, dependencies=IDS_IN_RANGE)
    app.include_router(compliance.router, dependencies=IDS_IN_RANGE)
    app.include_router(automation.router, dependencies=IDS_IN_RANGE)
    app.include_router(knowledge.router, dependencies=IDS_IN_RANGE)
    app.include_router(assistant.router, dependencies=IDS_IN_RANGE)
