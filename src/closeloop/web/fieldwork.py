"""Field-work pages (CN-5, 外勤): today's visits and plan, the phone-sized check-in page (the
browser's position and a camera photo), visit plans, the customer map and visits per rep. The
same services as the API."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc
from closeloop.core.errors import DomainError, FieldProblem, ValidationFailed
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities import service as activities
from closeloop.crm.activities.models import Activity
from closeloop.crm.activities.schemas import ActivityCreate
from closeloop.crm.enums import ActivityKind
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.fieldwork import plans
from closeloop.fieldwork import service as fieldwork
from closeloop.fieldwork.models import CheckIn
from closeloop.fieldwork.service import MAX_PHOTOS, Position
from closeloop.org.models import Region, User
from closeloop.web.i18n import translations
from closeloop.web.routes import MAX_ID, database_of, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

ACCOUNT_CHOICES = 300
REQUIRED_POSITION = "is required; allow location access or enter the position by hand"


def _today() -> date:
    return calendar.today(settings.business_timezone)


def _day(value: str | None) -> date:
    try:
        return date.fromisoformat(value) if value else _today()
    except ValueError:
        raise ValidationFailed.one("day", "is not a date such as 2026-11-27", "invalid_date") from None


def _accounts(session: Any, actor: Actor) -> list[tuple[int, str]]:
    rows = session.execute(
        visible(actor, Account, access=RowAccess.READ)
        .with_only_columns(Account.id, Account.name)
        .order_by(Account.name, Account.id)
        .limit(ACCOUNT_CHOICES)
    )
    return [(row[0], row[1]) for row in rows]


@router.get("/fieldwork")
def today_page(request: Request, day: str | None = None) -> Response:
    """The rep's day: the plan with what is done, the visits of the day, a form to start a visit."""
    user, actor = require_user(request)
    return _today_page(request, user, actor, _day(day))


def _today_page(
    request: Request,
    user: User,
    actor: Actor,
    chosen: date,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The day's page; a refused "start a visit" comes back here with its problem beside the field
    and the account chosen still chosen."""
    start, end = calendar.days_as_utc(chosen, chosen, settings.business_timezone)
    with database_of(request).reading(actor) as session:
        plan, rows = plans.plan_rows(session, actor, user_id=user.id, day=chosen)
        visits = list(
            session.execute(
                visible(actor, Activity, access=RowAccess.READ)
                .with_only_columns(
                    Activity.id, Activity.subject, Activity.occurred_at, Account.name, Activity.account_id
                )
                .outerjoin(Account, Account.id == Activity.account_id)
                .where(
                    Activity.user_id == user.id,
                    Activity.kind == ActivityKind.VISIT,
                    Activity.occurred_at >= start,
                    Activity.occurred_at < end,
                )
                .order_by(Activity.occurred_at)
            )
        )
        checked = {
            row.activity_id: row
            for row in session.scalars(
                visible(actor, CheckIn, access=RowAccess.READ).where(
                    CheckIn.activity_id.in_([visit[0] for visit in visits])
                )
            )
        }
        accounts = _accounts(session, actor)
    context = {
        "user": user,
        "actor": actor,
        "day": chosen,
        "previous": chosen - timedelta(days=1),
        "next": chosen + timedelta(days=1),
        "plan": plan,
        "rows": rows,
        "visits": visits,
        "checked": checked,
        "accounts": accounts,
        "values": values or {},
        "errors": errors or {},
    }
    return render(request, "fieldwork/today.html", context, status_code=status_code)


@router.post("/fieldwork/visits")
def start_visit(request: Request, account_id: str = Form(""), csrf: str = Form("")) -> Response:
    """Log a visit to an account now, and open its check-in page (or the day's page again, the
    problem beside the account field and the choice kept, when the visit cannot start)."""
    user, actor = require_user(request)
    require_csrf(request, csrf)
    gettext = translations(locale_of(request)).gettext
    chosen = account_id.strip()
    if not chosen.isdecimal() or int(chosen) > MAX_ID:
        errors = {"account_id": gettext("Choose the account you are visiting.")}
        return _today_page(
            request, user, actor, _today(), values={"account_id": chosen}, errors=errors, status_code=422
        )
    try:
        with database_of(request).unit_of_work(actor) as session:
            data = ActivityCreate(kind=ActivityKind.VISIT, account_id=int(chosen), subject=None)
            visit = activities.log_activity(session, actor, data=data)
            visit_id = visit.id
    except DomainError as error:
        if error.status not in (404, 422):
            raise
        message = gettext("Choose the account you are visiting.") if error.status == 404 else None
        errors = {"account_id": message or "; ".join(gettext(problem.message) for problem in error.problems)
                  or gettext(error.message)}  # fmt: skip
        return _today_page(
            request, user, actor, _today(), values={"account_id": chosen}, errors=errors, status_code=422
        )
    return RedirectResponse(f"/fieldwork/visits/{visit_id}/check-in", status_code=303)


def _check_in_page(
    request: Request,
    user: User,
    actor: Actor,
    activity_id: int,
    *,
    values: dict[str, str] | None = None,
    problems: list[FieldProblem] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    with database_of(request).reading(actor) as session:
        visit = activities.get_activity(session, actor, activity_id=activity_id)
        record = fieldwork.get_check_in(session, actor, activity_id=activity_id)
        photos = fieldwork.list_photos(session, actor, activity_id=activity_id)
        # the account's name and address only when the reader may see the account itself
        account = (
            session.scalar(visible(actor, Account, access=RowAccess.READ).where(Account.id == visit.account_id))
            if visit.account_id
            else None
        )
    translate = translations(locale_of(request)).gettext
    errors = {problem.field.split("[")[0]: translate(problem.message) for problem in problems or []}
    visit_day = calendar.local_date(as_utc(visit.occurred_at), settings.business_timezone)
    context = {
        "user": user,
        "actor": actor,
        "visit": visit,
        "account": account,
        "check_in": record,
        "photos": photos,
        "values": values or {},
        "errors": errors,
        "message": message,
        "may_check_in": record is None and visit.user_id == actor.user_id and actor.can("fieldwork:checkin"),
        "visit_day": visit_day,
        "is_visit_day": visit_day == _today(),
        "max_photos": MAX_PHOTOS,
        "max_mb": settings.photo_max_bytes // 1_048_576,
        "far_m": settings.far_check_in_metres,
    }
    return render(request, "fieldwork/check_in.html", context, status_code=status_code)


@router.get("/fieldwork/visits/{activity_id}/check-in")
def check_in_page(request: Request, activity_id: int) -> Response:
    user, actor = require_user(request)
    return _check_in_page(request, user, actor, activity_id)


def _number(name: str, raw: str, problems: list[FieldProblem], *, required: bool) -> float | None:
    text = raw.strip()
    if not text:
        if required:
            problems.append(FieldProblem(name, REQUIRED_POSITION, "required"))
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(FieldProblem(name, "is not a number", "invalid_number"))
        return None
    if not math.isfinite(value):
        problems.append(FieldProblem(name, "is not a number", "invalid_number"))
        return None
    return value


_PHOTO_INDEX = re.compile(r"^photos\[(\d+)\]$")


def _naming_files(
    problems: list[FieldProblem], file_names: list[str], gettext: Callable[[str], str]
) -> list[FieldProblem]:
    """The service names a bad photo by its place (``photos[1]``); the page names the file the rep
    chose ("门头2.heic: is not a JPEG, PNG or WebP image"), one sentence per bad photo."""
    named: list[FieldProblem] = []
    for problem in problems:
        place = _PHOTO_INDEX.match(problem.field)
        if place is not None and int(place[1]) < len(file_names):
            message = gettext("%(file)s: %(reason)s") % {
                "file": file_names[int(place[1])],
                "reason": gettext(problem.message),
            }
            problem = replace(problem, message=message)
        named.append(problem)
    return named


@router.post("/fieldwork/visits/{activity_id}/check-in")
def check_in(
    request: Request,
    activity_id: int,
    latitude: str = Form(""),
    longitude: str = Form(""),
    accuracy: str = Form(""),
    address: str = Form(""),
    manual: str = Form(""),
    manual_latitude: str = Form(""),
    manual_longitude: str = Form(""),
    csrf: str = Form(""),
    photos: list[UploadFile] = File(default=[]),
) -> Response:
    user, actor = require_user(request)
    require_csrf(request, csrf)
    by_hand = bool(manual)
    values = {"latitude": latitude, "longitude": longitude, "accuracy": accuracy, "address": address,
              "manual": "on" if by_hand else "", "manual_latitude": manual_latitude,
              "manual_longitude": manual_longitude}  # fmt: skip
    problems: list[FieldProblem] = []
    if by_hand:  # typed in: stored as entered by hand, with no accuracy claimed
        lat = _number("manual_latitude", manual_latitude, problems, required=True)
        lon = _number("manual_longitude", manual_longitude, problems, required=True)
        acc = None
    else:  # the browser's geolocation filled these read-only fields
        lat = _number("latitude", latitude, problems, required=True)
        lon = _number("longitude", longitude, problems, required=True)
        acc = _number("accuracy", accuracy, problems, required=False)
    if "\x00" in address:
        problems.append(FieldProblem("address", "must not contain NUL characters", "invalid_character"))
    chosen = [upload for upload in photos if upload.filename]
    uploads = [upload.file.read(settings.photo_max_bytes + 1) for upload in chosen]
    file_names = [str(upload.filename) for upload in chosen]
    try:
        if problems:
            raise ValidationFailed(problems)
        if lat is None or lon is None:  # refused above already
            raise ValidationFailed.one("latitude", "is required", "required")
        with database_of(request).unit_of_work(actor) as session:
            fieldwork.check_in(
                session,
                actor,
                activity_id=activity_id,
                position=Position(lat, lon, acc, address.strip() or None, manual=by_hand),
                uploads=uploads,
            )
    except ValidationFailed as error:
        found = _naming_files(error.problems, file_names, translations(locale_of(request)).gettext)
        if by_hand:  # the coordinates' problems belong to the fields the rep typed in
            found = [replace(p, field=f"manual_{p.field}") if p.field in ("latitude", "longitude") else p
                     for p in found]  # fmt: skip
        return _check_in_page(request, user, actor, activity_id, values=values, problems=found, status_code=422)
    except DomainError as error:
        if error.status == 404:
            raise
        # not on the visit's own day: the page itself says which day the visit is on
        message = None if error.code == "not_visit_day" else translations(locale_of(request)).gettext(error.message)
        return _check_in_page(
            request, user, actor, activity_id, values=values, message=message, status_code=error.status
        )
    return RedirectResponse(f"/fieldwork/visits/{activity_id}/check-in", status_code=303)


@router.get("/fieldwork/visits/{activity_id}/photos/{photo_id}")
def photo(request: Request, activity_id: int, photo_id: int) -> Response:
    _user, actor = require_user(request)
    with database_of(request).reading(actor) as session:
        found, data = fieldwork.get_photo(session, actor, activity_id=activity_id, photo_id=photo_id)
    return Response(
        data,
        media_type=found.content_type,
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/fieldwork/plans")
def plan_page(request: Request, user_id: int | None = None, day: str | None = None) -> Response:
    user, actor = require_user(request)
    chosen = _day(day)
    person_id = user_id or user.id
    with database_of(request).reading(actor) as session:
        person = plans.person_in_reach(session, actor, person_id)
        plan, rows = plans.plan_rows(session, actor, user_id=person_id, day=chosen)
        people = plans.people_in_reach(session, actor)
        accounts = _accounts(session, actor)
    context = {
        "user": user,
        "actor": actor,
        "person": person,
        "people": people,
        "day": chosen,
        "plan": plan,
        "rows": rows,
        "accounts": accounts,
        "blank_rows": max(3, 8 - len(rows)),
    }
    return render(request, "fieldwork/plan.html", context)


@router.post("/fieldwork/plans")
def save_plan(
    request: Request,
    user_id: str = Form(""),
    day: str = Form(""),
    account_id: list[str] = Form(default=[]),
    note: list[str] = Form(default=[]),
    csrf: str = Form(""),
) -> Response:
    """The plan form: the person, the day and the chosen accounts in their order (empty rows skipped)."""
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    if not user_id.isdecimal():
        raise ValidationFailed.one("user_id", "choose a person", "required")
    chosen = _day(day)
    stops = []
    for index, value in enumerate(account_id):
        if not value.strip():
            continue
        if not value.isdecimal():
            raise ValidationFailed.one(f"items[{index}].account_id", "choose an account", "required")
        stops.append(plans.PlannedStop(int(value), note[index] if index < len(note) else None))
    with database_of(request).unit_of_work(actor) as session:
        plans.set_plan(session, actor, user_id=int(user_id), day=chosen, stops=stops)
    return RedirectResponse(f"/fieldwork/plans?user_id={user_id}&day={chosen.isoformat()}", status_code=303)


@router.get("/fieldwork/map")
def map_page(request: Request, owner_id: str | None = None, region_id: str | None = None) -> Response:
    user, actor = require_user(request)
    owner = int(owner_id) if owner_id and owner_id.isdecimal() else None
    region = int(region_id) if region_id and region_id.isdecimal() else None
    with database_of(request).reading(actor) as session:
        points = plans.map_points(session, actor, owner_id=owner, region_id=region)
        people = plans.people_in_reach(session, actor)
        regions = list(
            session.execute(
                select(Region.id, Region.name).where(tenant_clause(actor.organization_id, Region)).order_by(Region.name)
            )
        )
    names = {person.id: person.display_name for person in people}
    chart = {
        "points": [
            [p["longitude"], p["latitude"], p["name"], names.get(p["owner_id"], ""), p["city"] or "", p["id"]]
            for p in points
        ],
    }
    context = {
        "user": user,
        "actor": actor,
        "points": points,
        "chart": chart,
        "people": people,
        "regions": regions,
        "owner_id": owner,
        "region_id": region,
        "limit": plans.MAP_POINT_LIMIT,
    }
    return render(request, "fieldwork/map.html", context)


@router.get("/fieldwork/report")
def report_page(request: Request, start: str | None = None, end: str | None = None) -> Response:
    user, actor = require_user(request)
    last = _day(end)
    first = _day(start) if start else last.replace(day=1)
    with database_of(request).reading(actor) as session:
        rows = plans.visit_report(session, actor, first=first, last=last)
    context = {"user": user, "actor": actor, "rows": rows, "first": first, "last": last}
    return render(request, "fieldwork/report.html", context)
