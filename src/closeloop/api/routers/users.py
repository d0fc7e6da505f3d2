"""Users and regions of the caller's organization."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, etag, json_response
from closeloop.api.resources import RecordId
from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound
from closeloop.core.pagination import MAX_LIMIT
from closeloop.crm.schemas import Email, Id, Schema
from closeloop.db.scope import RowAccess, visible
from closeloop.governance.permissions import Role, require
from closeloop.org import service as org_service
from closeloop.org.models import Region, User

router = APIRouter(tags=["users"])

Username = Annotated[str, Field(min_length=2, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]+$")]
DisplayName = Annotated[str, Field(min_length=1, max_length=120)]
Locale = Annotated[str, Field(pattern=r"^(zh_CN|en)$")]


class UserCreate(Schema):
    username: Username
    display_name: DisplayName
    role: Role
    password: Annotated[str, Field(min_length=8, max_length=200)] | None = None
    email: Email | None = None
    manager_id: Id | None = None
    region_id: Id | None = None
    locale: Locale | None = None


class UserUpdate(Schema):
    display_name: DisplayName | None = None
    role: Role | None = None
    email: Email | None = None
    manager_id: Id | None = None
    region_id: Id | None = None
    locale: Locale | None = None
    is_active: bool | None = None
    password: Annotated[str, Field(min_length=8, max_length=200)] | None = None
    current_password: Annotated[str, Field(max_length=200)] | None = Field(
        default=None, description="Your current password; needed when you set a new one for yourself"
    )


class RegionCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    code: Annotated[str, Field(max_length=40)] | None = None


def user_body(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "manager_id": user.manager_id,
        "region_id": user.region_id,
        "locale": user.locale,
        "is_active": user.is_active,
        "version": user.version,
        "created_at": user.created_at,
    }


@router.get("/users", operation_id="list_users", summary="Users of your organization", response_class=Response)
def list_users(
    database: DatabaseDep,
    actor: CurrentActor,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    role: Role | None = None,
    region_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    manager_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    with database.reading(actor) as session:
        require(actor, "users:read")
        statement = visible(actor, User, access=RowAccess.READ).order_by(User.id).limit(limit + 1)
        if after_id is not None:
            statement = statement.where(User.id > after_id)
        if role is not None:
            statement = statement.where(User.role == role.value)
        if region_id is not None:
            statement = statement.where(User.region_id == region_id)
        if manager_id is not None:
            statement = statement.where(User.manager_id == manager_id)
        users = list(session.scalars(statement))
        next_cursor = str(users[limit - 1].id) if len(users) > limit else None
        return json_response({"items": [user_body(u) for u in users[:limit]], "next_cursor": next_cursor})


def _get_user(session: Session, actor: Actor, user_id: int) -> User:
    require(actor, "users:read")
    user = session.scalar(visible(actor, User, access=RowAccess.READ).where(User.id == user_id))
    if user is None:
        raise NotFound("user", user_id)
    return user


@router.get("/users/{record_id}", operation_id="get_user", summary="Read a user", response_class=Response)
def get_user(database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.reading(actor) as session:
        user = _get_user(session, actor, record_id)
        return json_response(user_body(user), headers={"ETag": etag(user.version)})


@router.post("/users", operation_id="create_user", status_code=201, summary="Add a user", response_class=Response)
def create_user(database: DatabaseDep, actor: CurrentActor, body: Annotated[UserCreate, Body()]) -> Response:
    with database.writing(actor) as session:
        user = org_service.create_user(session, actor, data=org_service.NewUser(**body.model_dump()))
        response = json_response(
            user_body(user),
            status_code=201,
            headers={"Location": f"/api/v1/users/{user.id}", "ETag": etag(user.version)},
        )
        commit(session)
        return response


@router.patch("/users/{record_id}", operation_id="update_user", summary="Change a user", response_class=Response)
def update_user(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    record_id: RecordId,
    expected_version: ExpectedVersion,
    body: Annotated[UserUpdate, Body()],
) -> Response:
    with database.writing(actor) as session:
        user = org_service.update_user(
            session,
            actor,
            user_id=record_id,
            changes=body.model_dump(exclude_unset=True),
            expected_version=expected_version,
        )
        response = json_response(user_body(user), headers={"ETag": etag(user.version)})
        commit(session)
    request.app.state.token_cache.forget_user(record_id)
    return response


@router.get("/regions", operation_id="list_regions", summary="Regions of your organization", response_class=Response)
def list_regions(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        require(actor, "users:read")
        regions = session.scalars(visible(actor, Region, access=RowAccess.READ).order_by(Region.name))
        return json_response({"items": [{"id": r.id, "name": r.name, "code": r.code} for r in regions]})


@router.post("/regions", operation_id="create_region", status_code=201, summary="Add a region", response_class=Response)
def create_region(database: DatabaseDep, actor: CurrentActor, body: Annotated[RegionCreate, Body()]) -> Response:
    with database.writing(actor) as session:
        require(actor, "organization:manage")
        region = org_service.ensure_region(session, actor, name=body.name, code=body.code)
        response = json_response({"id": region.id, "name": region.name, "code": region.code}, status_code=201)
        commit(session)
        return response
