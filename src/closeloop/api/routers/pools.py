"""Pools (CN-1, 私海/公海) and the duplicate check (CN-2, 查重/撞单).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, ExpectedVersion, commit, etag, json_response
from closeloop.core.clock import utcnow
from closeloop.core.errors import FieldProblem, ValidationFailed
from closeloop.core.pagination import MAX_LIMIT
from closeloop.crm.schemas import Schema
from closeloop.governance.permissions import require
from closeloop.pools import duplicates
from closeloop.pools import service as pools
from closeloop.pools.models import DuplicateMode
from closeloop.pools.preview import creation_preview, recycle_preview

router = APIRouter(tags=["pools"])

PoolId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The pool's id")]
AccountId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The account's id")]
Days = Annotated[int, Field(ge=0, le=3650)] | None
Reason = Annotated[str, Field(max_length=300)] | None


class TierDays(Schema):
    model_config = ConfigDict(extra="forbid")

    follow_up_days: Days = None
    opportunity_days: Days = None
    deal_days: Days = None
    protection_days: Days = None


class PoolChange(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    region_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = None
    admin_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = None
    department_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = None
    follow_up_days: Days = None
    opportunity_days: Days = None
    deal_days: Days = None
    protection_days: Days = None
    tier_rules: dict[str, TierDays] | None = None
    remind_days: Days = None
    exempt_won: bool | None = None
    exempt_open_opportunities: bool | None = None
    daily_claim_cap: Days = None
    holding_cap: Days = None
    lock_cap: Days = None
    cooldown_days: Days = None
    is_active: bool | None = None

    def values(self) -> dict[str, Any]:
        values = self.model_dump(exclude_unset=True)
        if "tier_rules" in values:
            values["tier_rules"] = {
                tier: rules.model_dump(exclude_unset=True) for tier, rules in (self.tier_rules or {}).items()
            }
        for name in ("region_ids", "admin_ids", "department_ids"):
            if name in values and values[name] is None:
                values[name] = []
        return values


class PoolCreate(PoolChange):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class ClaimBody(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = None


class AssignBody(Schema):
    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    reason: Reason = None


class LockBody(Schema):
    model_config = ConfigDict(extra="forbid")

    locked: bool = True


class SettingsBody(Schema):
    model_config = ConfigDict(extra="forbid")

    duplicate_mode: DuplicateMode


class DuplicateQuery(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] | None = None
    mobile: Annotated[str, Field(max_length=40)] | None = None


def _caps(session: Any, actor: Any, pool: Any) -> dict[str, Any]:
    caps = pools.caps(session, actor, pool)
    return {
        "claims_today": caps.claims_today,
        "daily_claim_cap": caps.daily_claim_cap,
        "claims_left_today": caps.claims_left,
        "holding": caps.holding,
        "holding_cap": caps.holding_cap,
        "locked": caps.locked,
        "lock_cap": caps.lock_cap,
    }


def _pool_body(session: Any, actor: Any, pool: Any) -> dict[str, Any]:
    return {
        **pools.serialize_pool(pool),
        "manageable": pools.can_manage(actor, pool),
        "member": pools.is_member(session, actor, pool),
        "my_caps": _caps(session, actor, pool) if actor.user_id else None,
    }


@router.get("/pools", operation_id="list_pools", summary="Your organization's pools", response_class=Response)
def list_pools(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [_pool_body(session, actor, pool) for pool in pools.list_pools(session, actor)]
    return json_response({"items": items})


@router.post(
    "/pools",
    operation_id="create_pool",
    status_code=201,
    summary="Create a pool (sales ops)",
    description="With `dry_run=true` nothing is saved: the answer (200) is the impact preview of the new "
    "pool — how many owned accounts the next nightly run would recycle, by reason, among the accounts the "
    "pool would take: under today's pools (`current`; a regional pool takes its regions from the "
    "all-regions pool) and under the new pool's rules (`proposed`), and when that run is (`next_run_at`). "
    "It refuses what creating refuses (422, 409). Without it the pool is created (201), with the same "
    "preview of its rules under `recycle_preview`.",
    response_class=Response,
)
def create_pool(
    database: DatabaseDep,
    actor: CurrentActor,
    body: Annotated[PoolCreate, Body()],
    dry_run: Annotated[bool, Query(description="preview the recycling impact without saving")] = False,
) -> Response:
    if dry_run:
        with database.reading(actor) as session:
            preview = creation_preview(session, actor, values=body.values())
        return json_response(preview)
    with database.writing(actor) as session:
        pool = pools.create_pool(session, actor, body.values())
        payload = _pool_body(session, actor, pool)
        payload["recycle_preview"] = recycle_preview(session, actor, pool_id=pool.id, changes={})
        commit(session)
    return json_response(payload, status_code=201, headers={"Location": f"/api/v1/pools/{pool.id}"})


@router.get(
    "/pools/private",
    operation_id="list_private_pool",
    summary="Your private pool (私海): the accounts you hold, with the days left before recycling",
    response_class=Response,
)
def private_pool(
    database: DatabaseDep,
    actor: CurrentActor,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="a person of your team")] = None,
) -> Response:
    with database.reading(actor) as session:
        held = pools.private_accounts(session, actor, user_id=user_id)
        now = utcnow()
        items = [
            {
                "account_id": h.account_id,
                "name": h.name,
                "tier": h.tier,
                "locked": h.locked,
                "pool_id": h.pool_id,
                "owned_since": h.owned_since.isoformat(),
                "recycle_at": h.recycle_at.isoformat() if h.recycle_at else None,
                "recycle_reason": h.reason,
                "days_to_recycle": h.days_left(now),
            }
            for h in held
        ]
    return json_response({"items": items})


@router.get(
    "/pools/settings", operation_id="get_pool_settings", summary="Duplicate protection setting", response_class=Response
)
def get_settings(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        require(actor, "pools:read")
        mode = pools.duplicate_mode(session, actor.organization_id)
    return json_response({"duplicate_mode": mode.value})


@router.put(
    "/pools/settings",
    operation_id="update_pool_settings",
    summary="Block, warn or ignore duplicates (sales ops)",
    response_class=Response,
)
def put_settings(database: DatabaseDep, actor: CurrentActor, body: Annotated[SettingsBody, Body()]) -> Response:
    with database.writing(actor) as session:
        mode = pools.set_duplicate_mode(session, actor, body.duplicate_mode)
        commit(session)
    return json_response({"duplicate_mode": mode.value})


@router.get("/pools/{pool_id}", operation_id="get_pool", summary="A pool", response_class=Response)
def get_pool(database: DatabaseDep, actor: CurrentActor, pool_id: PoolId) -> Response:
    with database.reading(actor) as session:
        pool = pools.get_pool(session, actor, pool_id)
        payload = _pool_body(session, actor, pool)
    return json_response(payload, headers={"ETag": etag(pool.version)})


@router.patch(
    "/pools/{pool_id}",
    operation_id="update_pool",
    summary="Change a pool's scope and rules (its admins or sales ops)",
    description="With `dry_run=true` nothing is saved: the answer is the impact preview — how many owned "
    "accounts the next nightly run would recycle, by reason, under the current rules (`current`) and under "
    "the change (`proposed`), and when that run is (`next_run_at`). Without it the change is saved and the "
    "answer is the pool, with the same preview of the rules as saved under `recycle_preview`.",
    response_class=Response,
)
def update_pool(
    database: DatabaseDep,
    actor: CurrentActor,
    pool_id: PoolId,
    expected_version: ExpectedVersion,
    body: Annotated[PoolChange, Body()],
    dry_run: Annotated[bool, Query(description="preview the recycling impact without saving")] = False,
) -> Response:
    if dry_run:
        with database.reading(actor) as session:
            preview = recycle_preview(session, actor, pool_id=pool_id, changes=body.values())
        return json_response(preview)
    with database.writing(actor) as session:
        pool = pools.update_pool(session, actor, pool_id, body.values(), expected_version=expected_version)
        payload = _pool_body(session, actor, pool)
        payload["recycle_preview"] = recycle_preview(session, actor, pool_id=pool.id, changes={})
        commit(session)
    return json_response(payload, headers={"ETag": etag(pool.version)})


@router.get(
    "/pools/{pool_id}/accounts",
    operation_id="list_pool_accounts",
    summary="The public pool (公海): accounts without an owner, newest first",
    response_class=Response,
)
def pool_accounts(
    request: Request,
    database: DatabaseDep,
    actor: CurrentActor,
    pool_id: PoolId,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the previous page")] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    with database.reading(actor) as session:
        items, next_cursor = pools.public_accounts(session, actor, pool_id, limit=limit, after_id=cursor, q=q)
    headers = {}
    if next_cursor:
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return json_response({"items": items, "next_cursor": next_cursor}, headers=headers)


def _done(session: Any, actor: Any, account: Any) -> dict[str, Any]:
    return {"account_id": account.id, "owner_id": account.owner_id, "version": account.version}


@router.post(
    "/pools/{pool_id}/accounts/{account_id}/claim",
    operation_id="claim_pool_account",
    summary="Claim an account from the public pool (daily cap, holding cap, cooldown)",
    response_class=Response,
)
def claim(
    database: DatabaseDep,
    actor: CurrentActor,
    pool_id: PoolId,
    account_id: AccountId,
    body: Annotated[ClaimBody | None, Body(description="optional: the reason")] = None,
) -> Response:
    with database.writing(actor) as session:
        reason = body.reason if body is not None else None
        account = pools.claim(session, actor, account_id=account_id, pool_id=pool_id, reason=reason)
        payload = _done(session, actor, account)
        commit(session)
    return json_response(payload)


@router.post(
    "/pools/accounts/{account_id}/release",
    operation_id="release_account",
    summary="Give an account back to its public pool",
    response_class=Response,
)
def release(
    database: DatabaseDep,
    actor: CurrentActor,
    account_id: AccountId,
    body: Annotated[ClaimBody | None, Body(description="optional: the reason")] = None,
) -> Response:
    with database.writing(actor) as session:
        reason = body.reason if body is not None else None
        account = pools.release(session, actor, account_id=account_id, reason=reason)
        payload = _done(session, actor, account)
        commit(session)
    return json_response(payload)


@router.post(
    "/pools/accounts/{account_id}/assign",
    operation_id="assign_pool_account",
    summary="Hand an account to a person (pool admins, sales ops)",
    response_class=Response,
)
def assign(
    database: DatabaseDep, actor: CurrentActor, account_id: AccountId, body: Annotated[AssignBody, Body()]
) -> Response:
    with database.writing(actor) as session:
        account = pools.assign(session, actor, account_id=account_id, user_id=body.user_id, reason=body.reason)
        payload = _done(session, actor, account)
        commit(session)
    return json_response(payload)


@router.post(
    "/pools/accounts/{account_id}/lock",
    operation_id="lock_pool_account",
    summary="Lock (never recycled, within the lock cap) or unlock an owned account",
    response_class=Response,
)
def lock(
    database: DatabaseDep, actor: CurrentActor, account_id: AccountId, body: Annotated[LockBody, Body()]
) -> Response:
    with database.writing(actor) as session:
        account = pools.set_lock(session, actor, account_id=account_id, locked=body.locked)
        payload = {**_done(session, actor, account), "locked": body.locked}
        commit(session)
    return json_response(payload)


@router.get(
    "/pools/accounts/{account_id}/owner-changes",
    operation_id="list_owner_changes",
    summary="Who held an account, and why it changed hands",
    response_class=Response,
)
def owner_changes(database: DatabaseDep, actor: CurrentActor, account_id: AccountId) -> Response:
    with database.reading(actor) as session:
        items = pools.owner_history(session, actor, account_id)
    return json_response({"items": items})


@router.post(
    "/duplicates/check",
    operation_id="check_duplicates",
    summary="Accounts and leads of your organization with the same company name or mobile number",
    description="Names compare without legal suffixes, full-/half-width, traditional/simplified and by pinyin; "
    "mobiles as E.164. Owners of records you cannot see are masked (张** · 华东区).",
    response_class=Response,
)
def check_duplicates(database: DatabaseDep, actor: CurrentActor, body: Annotated[DuplicateQuery, Body()]) -> Response:
    require(actor, "accounts:read")
    if not (body.name or "").strip() and not (body.mobile or "").strip():
        raise ValidationFailed(
            [
                FieldProblem("name", "give a company name or a mobile number to compare", "required"),
                FieldProblem("mobile", "give a company name or a mobile number to compare", "required"),
            ],
            message="Give a company name or a mobile number to look for duplicates",
        )
    with database.reading(actor) as session:
        matches = duplicates.find_matches(session, actor, name=body.name, mobile=body.mobile)
        mode = pools.duplicate_mode(session, actor.organization_id)
    return json_response({"matches": [m.public() for m in matches], "duplicate_mode": mode.value})
