"""Automation: rules (versioned, enabled or not), their backtest, the decisions they wrote, the
actions waiting in the undo window, review requests (AUTO-1, AUTO-4, AUTO-5, GOV-8); the
approvals rules ask for are in the approval engine's inbox (closeloop.api.routers.approvals)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.automation import playbooks, webhooks
from closeloop.automation import service as automation
from closeloop.crm.schemas import Schema

router = APIRouter(tags=["automation"])
Id = Annotated[int, Path(ge=1, lt=2**63)]


class RuleCreate(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    definition: dict[str, Any]
    text: str | None = Field(default=None, max_length=2000)
    lang: str | None = Field(default=None, max_length=8)
    enabled: bool = False
    undo_seconds: int | None = Field(default=None, ge=0, le=automation.MAX_UNDO_SECONDS)


class RuleUpdate(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    definition: dict[str, Any] | None = None
    text: str | None = Field(default=None, max_length=2000)
    lang: str | None = Field(default=None, max_length=8)
    undo_seconds: int | None = Field(default=None, ge=0, le=automation.MAX_UNDO_SECONDS)


class BacktestRequest(Schema):
    model_config = ConfigDict(extra="forbid")
    definition: dict[str, Any]
    days: int = Field(default=30, ge=1, le=366)


class ReviewCreate(Schema):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class ReviewAnswer(Schema):
    model_config = ConfigDict(extra="forbid")
    resolution: str = Field(min_length=1, max_length=2000)


class HostCreate(Schema):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=253)


@router.get("/rules", operation_id="list_rules", summary="The organization's rules", response_class=Response)
def list_rules(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [automation.rule_body(session, actor, rule) for rule in automation.list_rules(session, actor)]
    return json_response({"items": items})


@router.post("/rules", operation_id="create_rule", status_code=201, response_class=Response, summary="Add a rule")
def create_rule(database: DatabaseDep, actor: CurrentActor, body: Annotated[RuleCreate, Body()]) -> Response:
    """``definition`` has the structure the plain-language parser produces: ``trigger``,
    ``conditions``, ``actions``. Rules start disabled unless ``enabled`` is true."""
    with database.writing(actor) as session:
        rule = automation.create_rule(session, actor, **body.model_dump())
        response = json_response(automation.rule_body(session, actor, rule), status_code=201)
        commit(session)
    return response


@router.post("/rules/backtest", operation_id="backtest_rule", response_class=Response, summary="Try a rule on history")
def backtest_rule(database: DatabaseDep, actor: CurrentActor, body: Annotated[BacktestRequest, Body()]) -> Response:
    """How often the rule would have fired over the last ``days`` days, on which records, with the
    decision records it would have written — nothing is done."""
    with database.reading(actor) as session:
        result = automation.backtest(session, actor, body.definition, days=body.days)
    return json_response(automation.backtest_body(result))


@router.get("/rules/{rule_id}", operation_id="get_rule", response_class=Response, summary="One rule")
def get_rule(database: DatabaseDep, actor: CurrentActor, rule_id: Id) -> Response:
    with database.reading(actor) as session:
        body = automation.rule_body(session, actor, automation.get_rule(session, actor, rule_id))
    return json_response(body)


@router.get("/rules/{rule_id}/versions", operation_id="rule_versions", response_class=Response, summary="Versions")
def rule_versions(database: DatabaseDep, actor: CurrentActor, rule_id: Id) -> Response:
    with database.reading(actor) as session:
        items = [
            {"version": v.version, "definition": v.definition, "text": v.text, "lang": v.lang,
             "created_by_id": v.created_by_id, "created_at": v.created_at.isoformat()}
            for v in automation.versions(session, actor, rule_id)
        ]  # fmt: skip
    return json_response({"items": items})


@router.patch("/rules/{rule_id}", operation_id="update_rule", response_class=Response, summary="Edit a rule")
def update_rule(
    database: DatabaseDep, actor: CurrentActor, rule_id: Id, body: Annotated[RuleUpdate, Body()]
) -> Response:
    """A new definition becomes a new version; decisions keep naming the version that fired."""
    with database.writing(actor) as session:
        rule = automation.update_rule(session, actor, rule_id, **body.model_dump())
        response = json_response(automation.rule_body(session, actor, rule))
        commit(session)
    return response


@router.delete("/rules/{rule_id}", operation_id="delete_rule", status_code=204, response_class=Response)
def delete_rule(database: DatabaseDep, actor: CurrentActor, rule_id: Id) -> Response:
    with database.writing(actor) as session:
        automation.delete_rule(session, actor, rule_id)
        commit(session)
    return Response(status_code=204)


def _switch(database: DatabaseDep, actor: CurrentActor, rule_id: int, enabled: bool) -> Response:
    with database.writing(actor) as session:
        rule = automation.set_enabled(session, actor, rule_id, enabled)
        response = json_response(automation.rule_body(session, actor, rule))
        commit(session)
    return response


@router.post("/rules/{rule_id}/enable", operation_id="enable_rule", response_class=Response, summary="Switch on")
def enable_rule(database: DatabaseDep, actor: CurrentActor, rule_id: Id) -> Response:
    return _switch(database, actor, rule_id, True)


@router.post("/rules/{rule_id}/disable", operation_id="disable_rule", response_class=Response, summary="Switch off")
def disable_rule(database: DatabaseDep, actor: CurrentActor, rule_id: Id) -> Response:
    return _switch(database, actor, rule_id, False)


@router.get("/decisions", operation_id="list_decisions", response_class=Response, summary="Decision records")
def list_decisions(
    database: DatabaseDep,
    actor: CurrentActor,
    record_type: Annotated[str | None, Query(max_length=40)] = None,
    record_id: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
    rule_id: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Why rules fired: each condition with the value it saw, the actions and their fate, and the
    reason in your language. A rep reads the decisions about their own records."""
    with database.reading(actor) as session:
        found = automation.decisions(
            session, actor, record_type=record_type, record_id=record_id, rule_id=rule_id, limit=limit
        )
        hidden = automation.mask_checker(session, actor)
        items = [automation.visible_body(session, actor, d, hidden) for d in found]
    return json_response({"items": items})


@router.get("/decisions/{decision_id}", operation_id="get_decision", response_class=Response, summary="One decision")
def get_decision(database: DatabaseDep, actor: CurrentActor, decision_id: Id) -> Response:
    with database.reading(actor) as session:
        body = automation.visible_body(session, actor, automation.get_decision(session, actor, decision_id))
    return json_response(body)


@router.post(
    "/decisions/{decision_id}/review", operation_id="request_review", status_code=201, response_class=Response,
    summary="Ask a person to review a decision (the rule owner's manager)",
)  # fmt: skip
def request_review(
    database: DatabaseDep, actor: CurrentActor, decision_id: Id, body: Annotated[ReviewCreate, Body()]
) -> Response:
    with database.writing(actor) as session:
        review = automation.request_review(session, actor, decision_id, reason=body.reason)
        response = json_response(automation.review_body(review), status_code=201)
        commit(session)
    return response


@router.get("/pending-actions", operation_id="list_pending_actions", response_class=Response, summary="Undo window")
def list_pending_actions(
    database: DatabaseDep, actor: CurrentActor, status: Annotated[str | None, Query(max_length=16)] = "pending"
) -> Response:
    with database.reading(actor) as session:
        items = [automation.pending_body(p) for p in automation.pending_actions(session, actor, status=status or None)]
    return json_response({"items": items})


@router.post(
    "/pending-actions/{pending_id}/cancel", operation_id="cancel_pending_action", response_class=Response,
    summary="Cancel an action before its undo window ends",
)  # fmt: skip
def cancel_pending_action(database: DatabaseDep, actor: CurrentActor, pending_id: Id) -> Response:
    with database.writing(actor) as session:
        response = json_response(automation.pending_body(automation.cancel_pending(session, actor, pending_id)))
        commit(session)
    return response


@router.get("/reviews", operation_id="list_reviews", response_class=Response, summary="Review requests")
def list_reviews(
    database: DatabaseDep, actor: CurrentActor, status: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    with database.reading(actor) as session:
        items = [automation.review_body(r) for r in automation.reviews(session, actor, status=status)]
    return json_response({"items": items})


@router.post("/reviews/{review_id}/resolve", operation_id="resolve_review", response_class=Response, summary="Answer")
def resolve_review(
    database: DatabaseDep, actor: CurrentActor, review_id: Id, body: Annotated[ReviewAnswer, Body()]
) -> Response:
    with database.writing(actor) as session:
        review = automation.resolve_review(session, actor, review_id, resolution=body.resolution)
        response = json_response(automation.review_body(review))
        commit(session)
    return response


@router.post("/webhook-hosts", operation_id="allow_webhook_host", status_code=201, response_class=Response)
def allow_webhook_host(database: DatabaseDep, actor: CurrentActor, body: Annotated[HostCreate, Body()]) -> Response:
    """Allow outgoing webhooks to a host; the answer carries the HMAC-SHA256 signing secret, once."""
    with database.writing(actor) as session:
        row, secret = automation.allow_webhook_host(session, actor, body.host)
        response = json_response({"id": row.id, "host": row.host, "secret": secret}, status_code=201)
        commit(session)
    return response


@router.get("/webhook-hosts", operation_id="list_webhook_hosts", response_class=Response, summary="Webhook hosts")
def list_webhook_hosts(database: DatabaseDep, actor: CurrentActor) -> Response:
    """The hosts outgoing webhooks may call (administrators); secrets are never shown again."""
    with database.reading(actor) as session:
        items = [
            {"id": row.id, "host": row.host, "created_at": row.created_at.isoformat()}
            for row in automation.webhook_hosts(session, actor)
        ]
    return json_response({"items": items})


@router.delete("/webhook-hosts/{host_id}", operation_id="remove_webhook_host", status_code=204, response_class=Response)
def remove_webhook_host(database: DatabaseDep, actor: CurrentActor, host_id: Id) -> Response:
    """Stop webhooks to a host; deliveries still queued for it fail instead of being sent."""
    with database.writing(actor) as session:
        automation.remove_webhook_host(session, actor, host_id)
        commit(session)
    return Response(status_code=204)


@router.get(
    "/webhook-deliveries", operation_id="list_webhook_deliveries", response_class=Response, summary="Delivery log"
)
def list_webhook_deliveries(
    database: DatabaseDep,
    actor: CurrentActor,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """Outgoing webhooks of the decisions the caller can see: status, attempts, last error, and the
    ``Idempotency-Key`` every attempt carried."""
    with database.reading(actor) as session:
        items = [
            webhooks.delivery_body(row)
            for row in automation.webhook_deliveries(session, actor, status=status, limit=limit)
        ]
    return json_response({"items": items})


class PlaybookCreate(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    match: dict[str, Any] = Field(default_factory=dict)
    steps: list[dict[str, Any]]


def _playbook_body(playbook: Any) -> dict[str, Any]:
    return {"id": playbook.id, "name": playbook.name, "match": playbook.match, "steps": playbook.steps}


@router.get("/playbooks", operation_id="list_playbooks", response_class=Response, summary="Follow-up playbooks")
def list_playbooks(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [_playbook_body(p) for p in playbooks.listing(session, actor)]
    return json_response({"items": items})


@router.post("/playbooks", operation_id="create_playbook", status_code=201, response_class=Response)
def create_playbook(database: DatabaseDep, actor: CurrentActor, body: Annotated[PlaybookCreate, Body()]) -> Response:
    """``match``: ``industries``, ``sizes`` (company sizes), ``cycle`` (long / short); ``steps``:
    ``[{"title", "due_in_days"}]``. A rule's ``apply_playbook`` action assigns it to opportunities."""
    with database.writing(actor) as session:
        playbook = playbooks.create(session, actor, name=body.name, match=body.match, steps=body.steps)
        response = json_response(_playbook_body(playbook), status_code=201)
        commit(session)
    return response


@router.post("/playbooks/templates", operation_id="install_playbook_templates", response_class=Response)
def install_playbook_templates(database: DatabaseDep, actor: CurrentActor) -> Response:
    """Add the built-in playbooks (hospital equipment, long cycle; SMB SaaS, short cycle) not yet there."""
    with database.writing(actor) as session:
        added = [_playbook_body(p) for p in playbooks.install_templates(session, actor)]
        commit(session)
    return json_response({"items": added})
