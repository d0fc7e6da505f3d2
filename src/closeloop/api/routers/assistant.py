"""The sales assistants beyond the knowledge base: contract comparison against the standard templates,
talk tracks and battlecards, verdicts on suggestions and the weekly adoption report, workflows.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, Multipart, commit, json_response
from closeloop.assistant import tracks
from closeloop.assistant.contracts import service as contracts
from closeloop.assistant.feedback import service as feedback
from closeloop.assistant.knowledge import parsing
from closeloop.assistant.workflows import service as workflows
from closeloop.crm.schemas import Schema

router = APIRouter()

TemplateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The template's id")]


@router.get(
    "/assistant/contract-templates",
    tags=["assistant"],
    operation_id="list_contract_templates",
    response_class=Response,
    summary="The organization's standard contract templates",
)
def list_templates(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [contracts.template_body(t) for t in contracts.list_templates(session, actor)]
    return json_response({"items": items})


@router.post(
    "/assistant/contract-templates",
    tags=["assistant"],
    status_code=201,
    operation_id="upload_contract_template",
    response_class=Response,
    summary="Upload a standard contract template (DOCX, PDF or TXT)",
    description="Multipart fields `name` and `file`. The template's text is kept and its clauses listed. Any "
    "other body (JSON) is refused with 415 `unsupported_media_type`.",
)
def upload_template(
    database: DatabaseDep,
    actor: CurrentActor,
    name: Annotated[str, Form(min_length=1, max_length=120, description="The template's name")],
    _multipart: Multipart,
    file: Annotated[UploadFile, File(description="The template")],
) -> Response:
    content = file.file.read(parsing.MAX_BYTES + 1)
    with database.writing(actor) as session:
        template = contracts.add_template(
            session, actor, name=name, filename=file.filename or "template.txt", content=content
        )
        payload = contracts.template_body(template, with_clauses=True)
        commit(session)
    return json_response(
        payload, status_code=201, headers={"Location": f"/api/v1/assistant/contract-templates/{payload['id']}"}
    )


@router.get(
    "/assistant/contract-templates/{template_id}",
    tags=["assistant"],
    operation_id="get_contract_template",
    response_class=Response,
    summary="A template with its clauses as segmented (number, title, text, type)",
)
def get_template(database: DatabaseDep, actor: CurrentActor, template_id: TemplateId) -> Response:
    with database.reading(actor) as session:
        template = contracts.get_template(session, actor, template_id)
        return json_response(contracts.template_body(template, with_clauses=True))


@router.delete(
    "/assistant/contract-templates/{template_id}",
    tags=["assistant"],
    status_code=204,
    operation_id="delete_contract_template",
    response_class=Response,
    summary="Delete a template",
)
def delete_template(database: DatabaseDep, actor: CurrentActor, template_id: TemplateId) -> Response:
    with database.writing(actor) as session:
        contracts.delete_template(session, actor, template_id)
        commit(session)
    return Response(status_code=204)


@router.post(
    "/assistant/contract-templates/{template_id}/compare",
    tags=["assistant"],
    operation_id="compare_contract",
    response_class=Response,
    summary="Compare a contract (DOCX, PDF or TXT) against the template, clause by clause",
    description="Multipart field `file`. Answers the clauses in the contract's order, each `unchanged`, "
    "`changed` (with a word-level `diff` of `equal` / `delete` / `insert` pieces), `missing` (only in the "
    "template) or `added`; `matched_by` says how a pair was found (`number_title`, `title`, `text`, "
    "`number`); `type` is the clause type (payment, liability_cap, penalties, ip, termination, "
    "jurisdiction, confidentiality, other) and `risk` 0–3. Nothing is stored. Any other body (JSON) is refused "
    "with 415 `unsupported_media_type`.",
)
def compare(
    database: DatabaseDep,
    actor: CurrentActor,
    template_id: TemplateId,
    _multipart: Multipart,
    file: Annotated[UploadFile, File(description="The contract")],
) -> Response:
    content = file.file.read(parsing.MAX_BYTES + 1)
    with database.reading(actor) as session:
        result = contracts.compare(
            session, actor, template_id, filename=file.filename or "contract.txt", content=content
        )
        return json_response(result.as_dict())


class TalkTrackRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    objection: Annotated[str, Field(min_length=1, max_length=2000, description="What the customer objected")]
    k: Annotated[int, Field(ge=1, le=tracks.MAX_TRACKS)] = 3


class BattlecardRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    competitor: Annotated[str, Field(min_length=1, max_length=120, description="The competitor's name")]
    k: Annotated[int, Field(ge=1, le=tracks.MAX_TRACKS)] = 5


class VerdictRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    source: Literal["brief", "talk_track", "battlecard", "passage"]
    key: Annotated[str, Field(min_length=3, max_length=80, description="The suggestion's `key`, e.g. knowledge:12")]
    query: Annotated[str, Field(max_length=2000, description="The request the suggestion answered")] = ""
    verdict: Literal["adopted", "rejected"]
    reason: Annotated[str, Field(max_length=2000, description="Why (required when rejected)")] = ""


@router.post(
    "/assistant/talk-tracks",
    tags=["assistant"],
    operation_id="suggest_talk_tracks",
    response_class=Response,
    summary="Talk tracks for an objection, from the knowledge you may read, cited and compliance-checked",
    description="Each track is the passage's sentences closest to the objection, with its citation, its "
    "`key` for a verdict, and `compliance` findings (risky spans are cut from `text`; `original` keeps them).",
)
def talk_tracks(database: DatabaseDep, actor: CurrentActor, body: Annotated[TalkTrackRequest, Body()]) -> Response:
    with database.reading(actor) as session:
        return json_response(tracks.talk_tracks(session, actor, body.objection, k=body.k).as_dict())


@router.post(
    "/assistant/battlecards",
    tags=["assistant"],
    operation_id="build_battlecard",
    response_class=Response,
    summary="A competitor battlecard: knowledge passages naming it and activity notes mentioning it",
    description="Built from what you may see (collection access, row scope, field masks); every statement "
    "cited and compliance-checked.",
)
def battlecard(database: DatabaseDep, actor: CurrentActor, body: Annotated[BattlecardRequest, Body()]) -> Response:
    with database.reading(actor) as session:
        return json_response(tracks.battlecard(session, actor, body.competitor, k=body.k).as_dict())


@router.post(
    "/assistant/verdicts",
    tags=["assistant"],
    status_code=201,
    operation_id="record_suggestion_verdict",
    response_class=Response,
    summary="Adopt or reject a suggestion (a rejection needs a reason); verdicts move later rankings",
)
def record_verdict(database: DatabaseDep, actor: CurrentActor, body: Annotated[VerdictRequest, Body()]) -> Response:
    with database.writing(actor) as session:
        row = feedback.record_verdict(
            session,
            actor,
            source=body.source,
            key=body.key,
            query=body.query,
            verdict=body.verdict,
            reason=body.reason,
        )
        payload = feedback.verdict_body(row)
        commit(session)
    return json_response(payload, status_code=201)


@router.get(
    "/assistant/adoption-report",
    tags=["assistant"],
    operation_id="get_adoption_report",
    response_class=Response,
    summary="A week's adoption of suggestions per rep and team, and the rejections grouped by reason",
)
def adoption_report(
    database: DatabaseDep,
    actor: CurrentActor,
    week: Annotated[datetime.date | None, Query(description="Any day of the week (default: this week)")] = None,
) -> Response:
    with database.reading(actor) as session:
        return json_response(feedback.report(session, actor, week))


@router.get(
    "/assistant/adoption-reports",
    tags=["assistant"],
    operation_id="list_adoption_reports",
    response_class=Response,
    summary="The weekly reports kept by the Monday task, newest first",
)
def adoption_reports(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [
            {"week_start": r.week_start.isoformat(), "computed_at": r.computed_at.isoformat(), **r.body}
            for r in feedback.stored_reports(session, actor)
        ]
    return json_response({"items": items})


WorkflowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The workflow's id")]


class WorkflowCondition(Schema):
    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, Field(max_length=50, description="`record.<field>` or `account.<field>`")]
    op: Literal["eq", "ne", "in", "contains"] = "eq"
    value: (
        Annotated[str, Field(max_length=200)]
        | Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=50)]
    )


class WorkflowDefinition(Schema):
    model_config = ConfigDict(extra="forbid")

    conditions: Annotated[list[WorkflowCondition], Field(default_factory=list, max_length=20)]
    compose: Annotated[
        Literal["account_brief", "lead_brief"],
        Field(description="account_brief for account-linked events, lead_brief for lead.created / lead.assigned"),
    ] = "account_brief"
    passages: Annotated[int, Field(ge=0, le=10)] = 3
    deliver: Annotated[
        list[Literal["notification", "task"]],
        Field(default_factory=lambda: ["notification"], min_length=1, max_length=2),
    ]


class WorkflowIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)]
    event_type: Annotated[str, Field(max_length=60, description="The outbox event, e.g. activity.created")]
    definition: WorkflowDefinition
    enabled: bool = True


class WorkflowPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


@router.get(
    "/assistant/workflows",
    tags=["assistant"],
    operation_id="list_assistant_workflows",
    response_class=Response,
    summary="The organization's assistant workflows (trigger, conditions, composition, delivery)",
)
def list_workflows(database: DatabaseDep, actor: CurrentActor) -> Response:
    with database.reading(actor) as session:
        items = [workflows.workflow_body(w) for w in workflows.list_workflows(session, actor)]
    return json_response({"items": items})


@router.post(
    "/assistant/workflows",
    tags=["assistant"],
    status_code=201,
    operation_id="create_assistant_workflow",
    response_class=Response,
    summary="Define a workflow as data: an event type, conditions on the record and its account, delivery",
    description="Example: `{name, event_type: activity.created, definition: {conditions: [{field: "
    "account.industry, op: eq, value: hospital}], compose: account_brief, deliver: [notification, task]}}` — "
    "a brief for the record's owner, composed with the owner's own permissions.",
)
def create_workflow(database: DatabaseDep, actor: CurrentActor, body: Annotated[WorkflowIn, Body()]) -> Response:
    with database.writing(actor) as session:
        workflow = workflows.create_workflow(
            session,
            actor,
            name=body.name,
            event_type=body.event_type,
            definition=body.definition.model_dump(),
            enabled=body.enabled,
        )
        payload = workflows.workflow_body(workflow)
        commit(session)
    return json_response(payload, status_code=201)


@router.patch(
    "/assistant/workflows/{workflow_id}",
    tags=["assistant"],
    operation_id="update_assistant_workflow",
    response_class=Response,
    summary="Enable or disable a workflow",
)
def update_workflow(
    database: DatabaseDep, actor: CurrentActor, workflow_id: WorkflowId, body: Annotated[WorkflowPatch, Body()]
) -> Response:
    with database.writing(actor) as session:
        payload = workflows.workflow_body(workflows.set_enabled(session, actor, workflow_id, body.enabled))
        commit(session)
    return json_response(payload)
