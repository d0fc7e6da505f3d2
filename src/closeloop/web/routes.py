"""Pages: sign-in, sign-out and the home page with the closed-loop funnel.

Every form carries the session's CSRF token; every page is rendered for the signed-in actor
through the same services (and field masks) as the API.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.crm.funnel.service import FunnelFilters, measure_funnel
from closeloop.db.session import Database
from closeloop.org import browser
from closeloop.org import service as org_service
from closeloop.org.models import User
from closeloop.org.throttle import TooManyAttempts
from closeloop.web.i18n import negotiate, translations

_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
)

router = APIRouter(include_in_schema=False)


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


def render(
    request: Request, template: str, context: dict[str, Any], *, locale: str | None = None, status_code: int = 200
) -> HTMLResponse:
    language = locale or negotiate(request.session.get("locale"), request.headers.get("accept-language"))
    translation = translations(language)
    page = _environment.get_template(template)
    body = page.render(
        request=request,
        csrf_token=csrf_token(request),
        locale=language,
        _=translation.gettext,
        gettext=translation.gettext,
        ngettext=translation.ngettext,
        **context,
    )
    return HTMLResponse(body, status_code=status_code, headers={"Content-Language": language.replace("_", "-")})


@router.get("/login")
def login_page(request: Request) -> Response:
    return render(request, "login.html", {"error": None, "username": ""})


@router.post("/login")
def login(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form("")) -> Response:
    if not csrf_ok(request, csrf):
        return render(
            request,
            "login.html",
            {"error": "Your session expired; please try again.", "username": username},
            status_code=400,
        )
    client = request.client.host if request.client else "?"
    try:
        with database_of(request).unit_of_work(None, system=True) as session:
            user = org_service.sign_in(session, username=username.strip(), password=password, client=client, via="web")
    except TooManyAttempts:
        return render(
            request,
            "login.html",
            {"error": "Too many failed sign-ins; wait a few minutes and try again.", "username": username},
            status_code=429,
        )
    if user is None:
        return render(
            request,
            "login.html",
            {"error": "Unknown username or wrong password.", "username": username},
            status_code=401,
        )
    browser.start(request.session, user)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if csrf_ok(request, csrf):
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/language/{locale}")
def switch_language(request: Request, locale: str) -> Response:
    if locale in ("zh_CN", "en"):
        request.session["locale"] = locale
    referer = request.headers.get("referer") or "/"
    return RedirectResponse(referer if referer.startswith(str(request.base_url)) else "/", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    signed_in = signed_in_user(request)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    user, actor = signed_in
    with database_of(request).reading(actor) as session:
        funnel = measure_funnel(session, actor, filters=FunnelFilters()) if actor.can("funnel:read") else None
    return render(request, "home.html", {"user": user, "actor": actor, "funnel": funnel})


def install(app: FastAPI) -> None:
    from closeloop.web import settings

    app.include_router(router)
    app.include_router(settings.router)
