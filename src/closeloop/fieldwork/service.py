"""Visit check-ins and their photos (CN-5, 外勤).

A check-in is taken on a visit activity by the visit's rep; whoever sees the visit (tenancy, row
scope) sees its check-in and photos, and nobody else learns that they exist.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Conflict, FieldProblem, Forbidden, NotFound, ValidationFailed
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.activities.service import ACTIVITIES
from closeloop.crm.enums import ActivityKind
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.fieldwork import photos as photo_files
from closeloop.fieldwork.models import CheckIn, VisitPhoto
from closeloop.governance.audit import service as audit
from closeloop.governance.permissions import require

EARTH_RADIUS_M = 6_371_008.8
MAX_PHOTOS = 6
#: where a check-in's coordinates came from
DEVICE, MANUAL = "device", "manual"


@dataclass(frozen=True)
class Position:
    """Where the browser said the rep was, or (``manual``) where the rep said they were."""

    latitude: float
    longitude: float
    accuracy_m: float | None = None
    address: str | None = None
    at: datetime | None = None
    manual: bool = False

    @property
    def source(self) -> str:
        return MANUAL if self.manual else DEVICE


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine on the mean Earth radius)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def check_position(position: Position) -> None:
    """Refuse coordinates outside the globe and a non-positive accuracy, naming each field."""
    problems: list[FieldProblem] = []

    def finite(value: float) -> bool:
        return isinstance(value, int | float) and math.isfinite(value)

    if not finite(position.latitude) or not -90 <= position.latitude <= 90:
        problems.append(FieldProblem("latitude", "must be between -90 and 90 degrees", "out_of_range"))
    if not finite(position.longitude) or not -180 <= position.longitude <= 180:
        problems.append(FieldProblem("longitude", "must be between -180 and 180 degrees", "out_of_range"))
    if position.accuracy_m is not None and (not finite(position.accuracy_m) or position.accuracy_m <= 0):
        problems.append(FieldProblem("accuracy", "must be a positive number of metres", "out_of_range"))
    if position.manual and position.accuracy_m is not None:
        problems.append(
            FieldProblem("accuracy", "a position entered by hand has no accuracy; leave it out", "manual_position")
        )
    if position.address is not None and len(position.address) > 300:
        problems.append(FieldProblem("address", "must be at most 300 characters", "too_long"))
    if problems:
        raise ValidationFailed(problems)


def on_visit_day(visit: Activity, now: datetime) -> None:
    """A check-in is taken on the visit's own day (business time zone): never on yesterday's
    visit, nor ahead on tomorrow's."""
    visit_day = calendar.local_date(as_utc(visit.occurred_at), settings.business_timezone)
    today = calendar.local_date(now, settings.business_timezone)
    if visit_day != today:
        raise Conflict(
            f"Check in only on the visit's own day: this visit is on {visit_day.isoformat()}, today is "
            f"{today.isoformat()}",
            code="not_visit_day",
            field_name="activity_id",
        )


def _visit(session: Session, actor: Actor, activity_id: int) -> Activity:
    require(actor, "fieldwork:read")
    activity = records.get(session, actor, ACTIVITIES, activity_id, access=RowAccess.READ)
    if activity.kind != ActivityKind.VISIT:
        raise NotFound("visit", activity_id)
    return activity


def get_check_in(session: Session, actor: Actor, *, activity_id: int) -> CheckIn | None:
    """The visit's check-in (``None`` if none yet); not found when the visit is outside reach."""
    activity = _visit(session, actor, activity_id)
    return session.scalar(
        select(CheckIn).where(tenant_clause(actor.organization_id, CheckIn), CheckIn.activity_id == activity.id)
    )


def _store_photos(actor: Actor, uploads: Sequence[bytes]) -> list[photo_files.StoredPhoto]:
    if len(uploads) > MAX_PHOTOS:
        raise ValidationFailed.one("photos", f"at most {MAX_PHOTOS} photos per visit", "too_many")
    types = [photo_files.check(data, field_name=f"photos[{index}]") for index, data in enumerate(uploads)]
    return [photo_files.store(actor.organization_id, data, kind) for data, kind in zip(uploads, types, strict=True)]


def _add_photo_rows(
    session: Session, actor: Actor, activity: Activity, stored: list[photo_files.StoredPhoto]
) -> list[VisitPhoto]:
    rows = [
        VisitPhoto(
            organization_id=actor.organization_id,
            activity_id=activity.id,
            user_id=activity.user_id,
            content_type=item.content_type,
            size_bytes=item.size_bytes,
            sha256=item.sha256,
            stored_name=item.stored_name,
        )
        for item in stored
    ]
    session.add_all(rows)
    session.flush()
    return rows


def check_in(
    session: Session, actor: Actor, *, activity_id: int, position: Position, uploads: Sequence[bytes] = ()
) -> CheckIn:
    """Check the visit's rep in at ``position`` with photos; flag it when farther than the
    configured distance from the account's coordinates. One check-in per visit (409 after)."""
    require(actor, "fieldwork:checkin")
    activity = _visit(session, actor, activity_id)
    if activity.user_id != actor.user_id:
        raise Forbidden("Only the visit's own rep checks in on it", field_name="activity_id")
    check_position(position)
    on_visit_day(activity, utcnow())
    existing = session.scalar(
        select(CheckIn.id).where(tenant_clause(actor.organization_id, CheckIn), CheckIn.activity_id == activity.id)
    )
    if existing is not None:
        raise Conflict("This visit already has a check-in", code="already_checked_in", field_name="activity_id")
    distance: float | None = None
    if activity.account_id is not None:
        account = session.scalar(
            select(Account).where(tenant_clause(actor.organization_id, Account), Account.id == activity.account_id)
        )
        if account is not None and account.latitude is not None and account.longitude is not None:
            distance = round(distance_m(position.latitude, position.longitude, account.latitude, account.longitude), 1)
    stored = _store_photos(actor, uploads)
    try:
        record = CheckIn(
            organization_id=actor.organization_id,
            activity_id=activity.id,
            user_id=activity.user_id,
            account_id=activity.account_id,
            latitude=position.latitude,
            longitude=position.longitude,
            accuracy_m=position.accuracy_m,
            source=position.source,
            address=(position.address or "").strip() or None,
            checked_in_at=position.at or utcnow(),
            distance_m=distance,
            is_far=distance is not None and distance > settings.far_check_in_metres,
        )
        session.add(record)
        session.flush()
        _add_photo_rows(session, actor, activity, stored)
        audit.record(
            session,
            actor,
            "visit.checked_in",
            subject_type="activity",
            subject_id=activity.id,
            changes={
                "latitude": [None, record.latitude],
                "longitude": [None, record.longitude],
                "source": [None, record.source],
                "distance_m": [None, distance],
                "is_far": [None, record.is_far],
                "photos": [None, len(stored)],
            },
        )
    except Exception:
        photo_files.discard(actor.organization_id, [item.stored_name for item in stored])
        raise
    return record


def add_photos(session: Session, actor: Actor, *, activity_id: int, uploads: Sequence[bytes]) -> list[VisitPhoto]:
    """Attach photos to a visit (its rep, or anyone who may write activities within reach)."""
    require(actor, "fieldwork:checkin")
    activity = _visit(session, actor, activity_id)
    records.require_write(actor, ACTIVITIES)
    have = len(list_photos(session, actor, activity_id=activity.id))
    if have + len(uploads) > MAX_PHOTOS:
        raise ValidationFailed.one("photos", f"at most {MAX_PHOTOS} photos per visit", "too_many")
    if not uploads:
        raise ValidationFailed.one("photos", "add at least one photo", "required")
    stored = _store_photos(actor, uploads)
    try:
        rows = _add_photo_rows(session, actor, activity, stored)
        audit.record(
            session,
            actor,
            "visit.photos_added",
            subject_type="activity",
            subject_id=activity.id,
            changes={"photos": [have, have + len(rows)]},
        )
    except Exception:
        photo_files.discard(actor.organization_id, [item.stored_name for item in stored])
        raise
    return rows


def list_photos(session: Session, actor: Actor, *, activity_id: int) -> list[VisitPhoto]:
    activity = _visit(session, actor, activity_id)
    return list(
        session.scalars(
            select(VisitPhoto)
            .where(tenant_clause(actor.organization_id, VisitPhoto), VisitPhoto.activity_id == activity.id)
            .order_by(VisitPhoto.id)
        )
    )


def get_photo(session: Session, actor: Actor, *, activity_id: int, photo_id: int) -> tuple[VisitPhoto, bytes]:
    """A photo of a visit the actor may see, with its bytes; not found otherwise."""
    activity = _visit(session, actor, activity_id)
    photo = session.scalar(
        visible(actor, VisitPhoto, access=RowAccess.READ).where(
            VisitPhoto.id == photo_id, VisitPhoto.activity_id == activity.id
        )
    )
    if photo is None:
        raise NotFound("visit_photo", photo_id)
    path = photo_files.path_of(actor.organization_id, photo.stored_name)
    if not path.is_file():
        raise NotFound("visit_photo", photo_id)
    return photo, path.read_bytes()


def check_in_body(record: CheckIn, photo_rows: Sequence[VisitPhoto] = ()) -> dict[str, Any]:
    return {
        "id": record.id,
        "activity_id": record.activity_id,
        "user_id": record.user_id,
        "account_id": record.account_id,
        "latitude": record.latitude,
        "longitude": record.longitude,
        "accuracy": record.accuracy_m,
        "source": record.source,
        "address": record.address,
        "checked_in_at": record.checked_in_at,
        "distance_m": record.distance_m,
        "is_far": record.is_far,
        "far_threshold_m": settings.far_check_in_metres,
        "photos": [photo_body(photo) for photo in photo_rows],
    }


def photo_body(photo: VisitPhoto) -> dict[str, Any]:
    return {
        "id": photo.id,
        "content_type": photo.content_type,
        "size_bytes": photo.size_bytes,
        "sha256": photo.sha256,
        "url": f"/api/v1/fieldwork/visits/{photo.activity_id}/photos/{photo.id}",
    }
