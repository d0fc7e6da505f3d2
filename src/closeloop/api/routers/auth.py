"""Personal API tokens: obtain one with a username and password, list and revoke your own."""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.api.resources import RecordId
from closeloop.core.clock import utcnow
from closeloop.core.errors import Unauthenticated
from closeloop.crm.schemas import Schema
from closeloop.db.scope import RowAccess, visible
from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import ApiToken, User

router = APIRouter(tags=["auth"])


class TokenRequest(Schema):
    username: Annotated[str, Field(min_length=1, max_length=80)]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    name: Annotated[str, Field(min_length=1, max_length=100)] = "api"
    expires_in_days: Annotated[int, Field(ge=1, le=365, description="Days until the token expires (1-365)")] = 90


class TokenIssued(BaseModel):
    token: str = Field(description="The secret; it is shown only this once")
    token_id: int
    prefix: str
    expires_at: str


@router.post(
    "/auth/token",
    operation_id="create_token",
    status_code=201,
    response_model=TokenIssued,
    summary="Exchange a username and password for a personal bearer token",
    response_class=Response,
)
def create_token(request: Request, body: Annotated[TokenRequest, Body()]) -> Response:
    database: Database = request.app.state.database
    client = request.client.host if request.client else "?"
    with database.unit_of_work(None, system=True) as session:
        user = org_service.sign_in(session, username=body.username, password=body.password, client=client, via="api")
        if user is None:
            raise Unauthenticated("Unknown username or wrong password")
        actor = org_service.actor_for(session, user, request_id=getattr(request.state, "request_id", None))
        expires_at = utcnow() + timedelta(days=body.expires_in_days)
        token, secret = org_service.issue_token(session, actor, user=user, name=body.name, expires_at=expires_at)
        payload = {
            "token": secret,
            "token_id": token.id,
            "prefix": token.prefix,
            "expires_at": expires_at.isoformat(),
        }
    return json_response(payload, status_code=201)


def _token_body(token: ApiToken) -> dict[str, object]:
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


@router.get(
    "/auth/tokens",
    operation_id="list_tokens",
    summary="Your tokens (all tokens with users:manage)",
    response_class=Response,
)
def list_tokens(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        statement = visible(actor, ApiToken, access=RowAccess.READ).order_by(ApiToken.id.desc()).limit(500)
        if not actor.can("users:manage"):
            statement = statement.where(ApiToken.user_id == actor.user_id)
        return json_response({"items": [_token_body(t) for t in session.scalars(statement)]})


@router.delete(
    "/auth/tokens/{record_id}",
    operation_id="revoke_token",
    status_code=204,
    summary="Revoke a token",
    response_class=Response,
)
def revoke_token(request: Request, database: DatabaseDep, actor: CurrentActor, record_id: RecordId) -> Response:
    with database.writing(actor) as session:
        org_service.revoke_token(session, actor, token_id=record_id)
        commit(session)
        request.app.state.token_cache.forget_token(record_id)
        return Response(status_code=204)


@router.get(
    "/users/me",
    operation_id="get_me",
    tags=["users"],
    summary="Who you are, and what you may do",
    response_class=Response,
)
def me(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        user = (
            session.scalar(visible(actor, User, access=RowAccess.READ).where(User.id == actor.user_id))
            if actor.user_id
            else None
        )
        return json_response(
            {
                "user_id": actor.user_id,
                "username": user.username if user else None,
                "display_name": user.display_name if user else actor.label,
                "organization_id": actor.organization_id,
                "role": actor.role,
                "scope": actor.scope.value,
                "permissions": sorted(actor.permissions),
                "token_id": actor.token_id,
            }
        )
