"""The users and roles page (user admin in the workspace, for the roles holding ``users:manage``:
the IT director and administrators): a searchable, paged list; adding a user with role, manager,
region and language; changing role, manager and region; deactivating and reactivating.

Every change goes through :mod:`closeloop.org.service` — the same calls as ``/api/v1/users`` — so
every rule the API enforces holds here too (nobody grants a role that sees or governs more than
theirs, nor takes one away; no reporting cycles; nobody changes their own role) and the audit
trail records ``user.created`` / ``user.updated`` as it does for the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, FieldProblem, NotFound, ValidationFailed
from closeloop.core.messages import field_message
from closeloop.db.scope import RowAccess, visible
from closeloop.governance.grants import can_grant
from closeloop.governance.permissions import Role, require
from closeloop.org import service as org_service
from closeloop.org.models import Region, User
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import MAX_ID, database_of, locale_of, problem_text, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
#: how many colleagues the manager list offers (active users, by name)
MANAGER_CHOICES = 1000
LOCALES = {"zh_CN": "中文", "en": "English"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: what the page says beside a field for a refusal of the user service, by (field, code); the
#: service's own sentence (English) is the fallback, translated where the catalogue has it
_SENTENCES: dict[tuple[str, str], str] = {
    ("role", "forbidden"): N_(
        "Your role cannot grant this role, nor take it away: it sees fields or governs what yours does not."
    ),
    ("is_active", "forbidden"): N_(
        "Your role cannot deactivate or reactivate a holder of this role: "
        "it sees fields or governs what yours does not."
    ),
    ("password", "forbidden"): N_(
        "Your role cannot set the password of a holder of this role: it sees fields or governs what yours does not."
    ),
    ("username", "conflict"): N_("This username is taken."),
    ("username", "invalid"): N_("Use 2–80 letters, digits, dots, dashes, underscores or @."),
    ("display_name", "invalid"): N_("Give the name colleagues know this person by."),
    ("display_name", "required"): N_("Give the name colleagues know this person by."),
    ("manager_id", "not_found"): N_("No such user in your organization."),
    ("manager_id", "cycle"): N_("This would make a reporting cycle: the manager reports to this user."),
    ("region_id", "not_found"): N_("No such region in your organization."),
    ("role", "invalid"): N_("You cannot change your own role."),
    ("is_active", "invalid"): N_("You cannot deactivate yourself."),
    ("password", "own_password"): N_("Change your own password on your settings page, with your current one."),
}


def _sentence(gettext: Callable[[str], str], problem: FieldProblem) -> str:
    known = _SENTENCES.get((problem.field, problem.code))
    return gettext(known) if known else field_message(gettext, problem)


def _refusal(request: Request, error: DomainError) -> tuple[dict[str, str], str | None]:
    """A refusal as the form shows it: the problems beside their fields, and a sentence above the
    form for one that names no field (a stale version, …)."""
    locale = locale_of(request)
    gettext = translations(locale).gettext
    errors = {problem.field: _sentence(gettext, problem) for problem in error.problems}
    message = None if errors else problem_text(error, locale)[0]
    return errors, message


def _require_manager(request: Request) -> tuple[User, Actor]:
    user, actor = require_user(request)
    require(actor, "users:manage")
    return user, actor


def _label(user: User) -> str:
    return f"{user.display_name} ({user.username})"


def _choices(session: Session, actor: Actor) -> dict[str, Any]:
    managers = list(
        session.scalars(
            visible(actor, User, access=RowAccess.READ)
            .where(User.is_active.is_(True))
            .order_by(User.display_name, User.id)
            .limit(MANAGER_CHOICES)
        )
    )
    regions = list(session.scalars(visible(actor, Region, access=RowAccess.READ).order_by(Region.name)))
    return {
        "managers": [(u.id, _label(u), u.role) for u in managers],
        "regions": [(r.id, r.name) for r in regions],
        "grantable": [
            role.value
            for role in Role
            if can_grant(session, actor, role) and org_service.role_fits(session, actor.organization_id, role)
        ],
        "locales": LOCALES,
    }


def _optional_id(name: str, raw: str, problems: list[FieldProblem]) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdecimal() or not 1 <= int(text) <= MAX_ID:
        problems.append(FieldProblem(name, "names no record", "not_found"))
        return None
    return int(text)


def _common_fields(
    form: dict[str, str], problems: list[FieldProblem], gettext: Callable[[str], str]
) -> dict[str, object]:
    """The fields the add and change forms share, checked as the API's schema checks them."""
    values: dict[str, object] = {}
    role = form["role"].strip()
    if role not in {r.value for r in Role}:
        problems.append(FieldProblem("role", gettext(N_("Choose a role.")), "required"))
    values["role"] = role
    locale = form["locale"].strip()
    if locale and locale not in LOCALES:
        problems.append(FieldProblem("locale", gettext(N_("Choose Chinese or English.")), "invalid_choice"))
    values["locale"] = locale or None
    values["manager_id"] = _optional_id("manager_id", form["manager_id"], problems)
    values["region_id"] = _optional_id("region_id", form["region_id"], problems)
    display_name = form["display_name"].strip()
    if not display_name or len(display_name) > 120:
        problems.append(FieldProblem("display_name", "must not be empty", "required"))
    values["display_name"] = display_name
    email = form["email"].strip()
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        problems.append(
            FieldProblem("email", gettext(N_("Give an email address such as li.wei@example.com.")), "invalid_email")
        )
    values["email"] = email or None
    return values


@router.get("/settings/users")
def users_page(request: Request, q: str = "", role: str = "", page: str = "1", state: str = "active") -> Response:
    """Everyone in the organization, searchable by name, username or email, by role and state."""
    user, actor = _require_manager(request)
    number = int(page) if page.isdecimal() and 0 < int(page) < 10**6 else 1
    wanted = q.strip()[:100]
    with database_of(request).reading(actor) as session:
        statement = visible(actor, User, access=RowAccess.READ)
        if wanted:
            pattern = f"%{wanted.lower()}%"
            statement = statement.where(
                or_(
                    func.lower(User.username).like(pattern),
                    func.lower(User.display_name).like(pattern),
                    func.lower(func.coalesce(User.email, "")).like(pattern),
                )
            )
        if role in {r.value for r in Role}:
            statement = statement.where(User.role == role)
        if state in ("active", "inactive"):
            statement = statement.where(User.is_active.is_(state == "active"))
        total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        last_page = max(1, -(-total // PAGE_SIZE))
        number = min(number, last_page)
        users = list(
            session.scalars(
                statement.order_by(User.display_name, User.id).offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)
            )
        )
        names = {
            row[0]: row[1]
            for row in session.execute(
                select(User.id, User.display_name).where(
                    User.id.in_({u.manager_id for u in users if u.manager_id is not None})
                )
            )
        }
        regions = dict(
            session.execute(
                visible(actor, Region, access=RowAccess.READ).with_only_columns(Region.id, Region.name)
            ).all()
        )
        misplaced = [(u.id, _label(u)) for u, _ in org_service.misplaced_partner_users(session, actor.organization_id)]
        session.expunge_all()  # read as they are now, shown after the session ends
    context = {
        "misplaced": misplaced,
        "user": user,
        "actor": actor,
        "users": users,
        "manager_names": names,
        "region_names": regions,
        "q": wanted,
        "role": role,
        "state": state,
        "roles": [r.value for r in Role],
        "page": number,
        "last_page": last_page,
        "total": total,
        "locales": LOCALES,
    }
    return render(request, "users/list.html", context)


_EMPTY = {"username": "", "display_name": "", "role": "rep", "email": "", "manager_id": "", "region_id": "",
          "locale": "", "password": ""}  # fmt: skip


def _form_page(
    request: Request,
    user: User,
    actor: Actor,
    *,
    values: dict[str, str],
    subject: User | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    with database_of(request).reading(actor) as session:
        choices = _choices(session, actor)
        takeable = subject is None or can_grant(session, actor, Role(subject.role))
        role = Role(subject.role) if subject is not None else None
        misplaced = role is not None and not org_service.role_fits(session, actor.organization_id, role)
    context = {
        "misplaced": misplaced,
        "user": user,
        "actor": actor,
        "subject": subject,
        "values": values,
        "errors": errors or {},
        "message": message,
        "notice": notice,
        "takeable": takeable,
        "own": subject is not None and subject.id == actor.user_id,
        **choices,
    }
    return render(request, "users/form.html", context, status_code=status_code)


@router.get("/settings/users/new")
def new_user_page(request: Request) -> Response:
    user, actor = _require_manager(request)
    return _form_page(request, user, actor, values=dict(_EMPTY))


@router.post("/settings/users/new")
def create_user(
    request: Request,
    username: str = Form(""),
    display_name: str = Form(""),
    role: str = Form(""),
    email: str = Form(""),
    manager_id: str = Form(""),
    region_id: str = Form(""),
    locale: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    user, actor = _require_manager(request)
    require_csrf(request, csrf)
    form = {"username": username.strip(), "display_name": display_name, "role": role, "email": email,
            "manager_id": manager_id, "region_id": region_id, "locale": locale, "password": ""}  # fmt: skip
    gettext = translations(locale_of(request)).gettext
    problems: list[FieldProblem] = []
    values = _common_fields(form, problems, gettext)
    if not org_service.USERNAME.match(form["username"]):
        problems.append(FieldProblem("username", "use 2-80 letters, digits, dots, dashes, underscores or @", "invalid"))
    try:
        if problems:
            raise ValidationFailed(problems)
        with database_of(request).unit_of_work(actor) as session:
            data = org_service.NewUser(
                username=form["username"],
                display_name=str(values["display_name"]),
                role=Role(str(values["role"])),
                password=password or None,
                email=values["email"] if isinstance(values["email"], str) else None,
                manager_id=values["manager_id"] if isinstance(values["manager_id"], int) else None,
                region_id=values["region_id"] if isinstance(values["region_id"], int) else None,
                locale=values["locale"] if isinstance(values["locale"], str) else None,
            )
            created = org_service.create_user(session, actor, data=data)
            created_id = created.id
    except DomainError as error:
        if error.status not in (403, 409, 422):
            raise
        errors, message = _refusal(request, error)
        return _form_page(request, user, actor, values=form, errors=errors, message=message, status_code=error.status)
    return RedirectResponse(f"/settings/users/{created_id}?saved=created", status_code=303)


def _subject(session: Session, actor: Actor, user_id: int) -> User:
    subject = session.scalar(visible(actor, User, access=RowAccess.READ).where(User.id == user_id))
    if subject is None:
        raise NotFound("user", user_id)
    session.expunge(subject)
    return subject


def _values_of(subject: User) -> dict[str, str]:
    return {
        "username": subject.username,
        "display_name": subject.display_name,
        "role": subject.role,
        "email": subject.email or "",
        "manager_id": str(subject.manager_id or ""),
        "region_id": str(subject.region_id or ""),
        "locale": subject.locale or "",
        "version": str(subject.version),
    }


_NOTICES = {
    "created": N_("User added. They sign in once you or they set a password."),
    "saved": N_("Changes saved."),
    "deactivated": N_("User deactivated: their sessions and tokens have ended."),
    "activated": N_("User reactivated."),
    "password": N_("Password set: their sessions and tokens have ended."),
}


@router.get("/settings/users/{user_id}")
def user_page(request: Request, user_id: int, saved: str | None = None) -> Response:
    user, actor = _require_manager(request)
    with database_of(request).reading(actor) as session:
        subject = _subject(session, actor, user_id)
    notice = translations(locale_of(request)).gettext(_NOTICES[saved]) if saved in _NOTICES else None
    return _form_page(request, user, actor, values=_values_of(subject), subject=subject, notice=notice)


def _forget(request: Request, user_id: int) -> None:
    """Sessions and tokens of a changed user are re-checked (as the API's PATCH does)."""
    request.app.state.token_cache.forget_user(user_id)


@router.post("/settings/users/{user_id}")
def update_user(
    request: Request,
    user_id: int,
    display_name: str = Form(""),
    role: str = Form(""),
    email: str = Form(""),
    manager_id: str = Form(""),
    region_id: str = Form(""),
    locale: str = Form(""),
    version: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    user, actor = _require_manager(request)
    require_csrf(request, csrf)
    with database_of(request).reading(actor) as session:
        subject = _subject(session, actor, user_id)
    form = {"username": subject.username, "display_name": display_name, "role": role or subject.role,
            "email": email, "manager_id": manager_id, "region_id": region_id, "locale": locale,
            "version": version}  # fmt: skip
    gettext = translations(locale_of(request)).gettext
    problems: list[FieldProblem] = []
    values = _common_fields(form, problems, gettext)
    # only what changed is sent, as a client of the API would: an untouched role is no grant
    changes = {name: value for name, value in values.items() if value != getattr(subject, name)}
    try:
        if problems:
            raise ValidationFailed(problems)
        with database_of(request).unit_of_work(actor) as session:
            org_service.update_user(
                session,
                actor,
                user_id=user_id,
                changes=changes,
                expected_version=int(version) if version.isdecimal() else None,
            )
    except DomainError as error:
        if error.status not in (403, 409, 412, 422):
            raise
        errors, message = _refusal(request, error)
        return _form_page(
            request, user, actor, values=form, subject=subject, errors=errors, message=message, status_code=error.status
        )
    _forget(request, user_id)
    return RedirectResponse(f"/settings/users/{user_id}?saved=saved", status_code=303)


@router.post("/settings/users/{user_id}/active")
def set_active(request: Request, user_id: int, active: str = Form(""), csrf: str = Form("")) -> Response:
    """Deactivate (``active=0``) or reactivate (``active=1``) a user."""
    user, actor = _require_manager(request)
    require_csrf(request, csrf)
    with database_of(request).reading(actor) as session:
        subject = _subject(session, actor, user_id)
    wanted = active == "1"
    return _change(request, user, actor, subject, {"is_active": wanted}, "activated" if wanted else "deactivated")


def _change(
    request: Request, user: User, actor: Actor, subject: User, changes: dict[str, object], saved: str
) -> Response:
    """One change of a user from a button on their page: back to the page saying it was saved, or the
    page again with the refusal beside its field (above the form when the page has no such field)."""
    try:
        if "password" in changes and subject.id == actor.user_id:
            raise ValidationFailed.one("password", "change your own password on your settings page", "own_password")
        with database_of(request).unit_of_work(actor) as session:
            org_service.update_user(session, actor, user_id=subject.id, changes=changes)
    except DomainError as error:
        if error.status not in (403, 409, 412, 422):
            raise
        errors, message = _refusal(request, error)
        if subject.id == actor.user_id:  # one's own page has no reset form: say it above the form
            message = errors.pop("password", message)
        return _form_page(
            request,
            user,
            actor,
            values=_values_of(subject),
            subject=subject,
            errors=errors,
            message=message,
            status_code=error.status,
        )
    _forget(request, subject.id)
    return RedirectResponse(f"/settings/users/{subject.id}?saved={saved}", status_code=303)


@router.post("/settings/users/{user_id}/password")
def set_password(request: Request, user_id: int, password: str = Form(""), csrf: str = Form("")) -> Response:
    """Set another user's password (a reset: their sessions and tokens end). The service's rules hold:
    only for a role one may grant, a password that is long enough and not common; one's own password
    is changed with the current one, on one's own settings page."""
    user, actor = _require_manager(request)
    require_csrf(request, csrf)
    with database_of(request).reading(actor) as session:
        subject = _subject(session, actor, user_id)
    return _change(request, user, actor, subject, {"password": password}, "password")
