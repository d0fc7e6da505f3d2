"""Field work (CN-5, 外勤): visit check-ins with photos, visit plans, the customer map's points and
the visits-per-rep report.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, form_body, json_response
from closeloop.config import settings
from closeloop.core.errors import NotFound, ValidationFailed
from closeloop.crm.schemas import Schema
from closeloop.fieldwork import plans
from closeloop.fieldwork import service as fieldwork
from closeloop.fieldwork.service import MAX_PHOTOS, Position

router = APIRouter(tags=["fieldwork"])

ActivityId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The visit activity's id")]
PhotoId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The photo's id")]
UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The rep's user id")]
OptionalId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Photos = Annotated[
    list[UploadFile] | None,
    File(description=f"Up to {MAX_PHOTOS} JPEG, PNG or WebP photos (type read from the content, size-limited)"),
]


#: the bodies the check-in and photo uploads read: a multipart form (with the photos as files), or,
#: without photos, the same fields URL-encoded as a plain form sends them
FORM_BODIES = ("multipart/form-data", "application/x-www-form-urlencoded")
NOT_A_FORM = "The body must be multipart/form-data: the fields as form fields and the photos as files, not JSON"


FormBody = Annotated[None, form_body(FORM_BODIES, NOT_A_FORM)]


def _read(files: list[UploadFile] | None) -> list[bytes]:
    """The uploaded photos' bytes, each read only up to one byte past the limit."""
    found = [upload for upload in files or [] if upload.filename or upload.size]
    if len(found) > MAX_PHOTOS:
        raise ValidationFailed.one("photos", f"at most {MAX_PHOTOS} photos per visit", "too_many")
    return [upload.file.read(settings.photo_max_bytes + 1) for upload in found]


def _text(name: str, value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValidationFailed.one(name, "must not contain NUL characters", "invalid_character")
    return value


@router.get(
    "/fieldwork/visits/{activity_id}/check-in",
    operation_id="get_visit_check_in",
    summary="A visit's check-in: position, accuracy, address, distance to the account, photos",
    response_class=Response,
)
def get_check_in(database: DatabaseDep, actor: CurrentActor, activity_id: ActivityId) -> Response:
    with database.reading(actor) as session:
        record = fieldwork.get_check_in(session, actor, activity_id=activity_id)
        if record is None:
            raise NotFound("check_in", activity_id)
        body = fieldwork.check_in_body(record, fieldwork.list_photos(session, actor, activity_id=activity_id))
    return json_response(body)


@router.post(
    "/fieldwork/visits/{activity_id}/check-in",
    operation_id="check_in_visit",
    status_code=201,
    summary="Check in on your visit: coordinates from the phone, accuracy in metres, address, photos",
    description="Multipart form: `latitude` (-90…90), `longitude` (-180…180) from the device's geolocation, "
    "optional `accuracy` (metres, positive, as the device reports it), `address`, and `photos` (files). A "
    "position typed in by the rep is sent with `manual=true` and no `accuracy`: it is stored and shown as "
    "entered by hand (`source: manual`). Only on the visit's own day in the business time zone (409 "
    "`not_visit_day` otherwise, naming the visit's date). A check-in farther than the configured distance from "
    "the account's coordinates is flagged `is_far`. One check-in per visit (409 after). Any other body (JSON) "
    "is refused with 415 `unsupported_media_type`.",
    response_class=Response,
)
def check_in(
    database: DatabaseDep,
    actor: CurrentActor,
    activity_id: ActivityId,
    _form: FormBody,
    latitude: Annotated[float, Form(description="WGS-84 degrees")],
    longitude: Annotated[float, Form(description="WGS-84 degrees")],
    accuracy: Annotated[float | None, Form(description="metres, as the browser reports it")] = None,
    address: Annotated[str | None, Form(max_length=300)] = None,
    manual: Annotated[bool, Form(description="the rep typed the position in (no accuracy)")] = False,
    photos: Photos = None,
) -> Response:
    position = Position(latitude, longitude, accuracy, _text("address", address), manual=manual)
    uploads = _read(photos)
    with database.writing(actor) as session:
        record = fieldwork.check_in(session, actor, activity_id=activity_id, position=position, uploads=uploads)
        body = fieldwork.check_in_body(record, fieldwork.list_photos(session, actor, activity_id=activity_id))
        commit(session)
    return json_response(
        body, status_code=201, headers={"Location": f"/api/v1/fieldwork/visits/{activity_id}/check-in"}
    )


@router.get(
    "/fieldwork/visits/{activity_id}/photos",
    operation_id="list_visit_photos",
    summary="The photos of a visit",
    response_class=Response,
)
def list_photos(database: DatabaseDep, actor: CurrentActor, activity_id: ActivityId) -> Response:
    with database.reading(actor) as session:
        items = [
            fieldwork.photo_body(photo) for photo in fieldwork.list_photos(session, actor, activity_id=activity_id)
        ]
    return json_response({"items": items})


@router.post(
    "/fieldwork/visits/{activity_id}/photos",
    operation_id="add_visit_photos",
    status_code=201,
    summary="Add photos to a visit (JPEG, PNG or WebP; size-limited)",
    response_class=Response,
)
def add_photos(
    database: DatabaseDep, actor: CurrentActor, activity_id: ActivityId, _form: FormBody, photos: Photos = None
) -> Response:
    uploads = _read(photos)
    with database.writing(actor) as session:
        rows = fieldwork.add_photos(session, actor, activity_id=activity_id, uploads=uploads)
        body = {"items": [fieldwork.photo_body(photo) for photo in rows]}
        commit(session)
    return json_response(body, status_code=201)


@router.get(
    "/fieldwork/visits/{activity_id}/photos/{photo_id}",
    operation_id="get_visit_photo",
    summary="One photo of a visit, for whoever may see the visit",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
def get_photo(database: DatabaseDep, actor: CurrentActor, activity_id: ActivityId, photo_id: PhotoId) -> Response:
    with database.reading(actor) as session:
        photo, data = fieldwork.get_photo(session, actor, activity_id=activity_id, photo_id=photo_id)
    return Response(
        data,
        media_type=photo.content_type,
        headers={
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": "inline",
            "ETag": f'"{photo.sha256}"',
        },
    )


class PlanStop(Schema):
    model_config = ConfigDict(extra="forbid")

    account_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    note: Annotated[str, Field(max_length=300)] | None = None


class PlanBody(Schema):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[PlanStop], Field(max_length=plans.MAX_PLAN_ITEMS)]


@router.get(
    "/fieldwork/plans/{user_id}/{day}",
    operation_id="get_visit_plan",
    summary="A rep's visit plan for a day, each stop with whether it was done (a check-in there that day)",
    response_class=Response,
)
def get_plan(database: DatabaseDep, actor: CurrentActor, user_id: UserId, day: date) -> Response:
    with database.reading(actor) as session:
        plan, rows = plans.plan_rows(session, actor, user_id=user_id, day=day)
    return json_response(plans.plan_body(plan, rows, user_id=user_id, day=day))


@router.put(
    "/fieldwork/plans/{user_id}/{day}",
    operation_id="set_visit_plan",
    summary="Set a rep's visit plan for a day: the accounts in visiting order (the rep, or their manager)",
    response_class=Response,
)
def set_plan(
    database: DatabaseDep, actor: CurrentActor, user_id: UserId, day: date, body: Annotated[PlanBody, Body()]
) -> Response:
    stops = [plans.PlannedStop(item.account_id, item.note) for item in body.items]
    with database.writing(actor) as session:
        plans.set_plan(session, actor, user_id=user_id, day=day, stops=stops)
        plan, rows = plans.plan_rows(session, actor, user_id=user_id, day=day)
        payload = plans.plan_body(plan, rows, user_id=user_id, day=day)
        commit(session)
    return json_response(payload)


@router.get(
    "/fieldwork/map",
    operation_id="get_customer_map",
    summary="Accounts with coordinates, for the customer map (filter by owner and region)",
    response_class=Response,
)
def customer_map(
    database: DatabaseDep, actor: CurrentActor, owner_id: OptionalId = None, region_id: OptionalId = None
) -> Response:
    with database.reading(actor) as session:
        points = plans.map_points(session, actor, owner_id=owner_id, region_id=region_id)
    return json_response({"items": points, "limit": plans.MAP_POINT_LIMIT})


@router.get(
    "/fieldwork/visit-report",
    operation_id="get_visit_report",
    summary="Per rep over a period: planned stops, those done, visits, check-ins, far-away check-ins",
    response_class=Response,
)
def visit_report(
    database: DatabaseDep,
    actor: CurrentActor,
    from_: Annotated[date, Query(alias="from", description="first local day")],
    to: Annotated[date, Query(description="last local day (inclusive)")],
) -> Response:
    with database.reading(actor) as session:
        rows = plans.visit_report(session, actor, first=from_, last=to)
    items = [
        {
            "user_id": row.user_id,
            "name": row.name,
            "planned": row.planned,
            "planned_done": row.planned_done,
            "visits": row.visits,
            "checked_in": row.checked_in,
            "far": row.far,
        }
        for row in rows
    ]
    return json_response({"from": from_.isoformat(), "to": to.isoformat(), "items": items})
