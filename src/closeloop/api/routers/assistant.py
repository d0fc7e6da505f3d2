"""The sales assistants beyond the knowledge base: contract comparison against the standard templates.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, commit, json_response
from closeloop.assistant.contracts import service as contracts
from closeloop.assistant.knowledge import parsing

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
    description="Multipart fields `name` and `file`. The template's text is kept and its clauses listed.",
)
def upload_template(
    database: DatabaseDep,
    actor: CurrentActor,
    name: Annotated[str, Form(min_length=1, max_length=120, description="The template's name")],
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
    "jurisdiction, confidentiality, other) and `risk` 0–3. Nothing is stored.",
)
def compare(
    database: DatabaseDep,
    actor: CurrentActor,
    template_id: TemplateId,
    file: Annotated[UploadFile, File(description="The contract")],
) -> Response:
    content = file.file.read(parsing.MAX_BYTES + 1)
    with database.reading(actor) as session:
        result = contracts.compare(
            session, actor, template_id, filename=file.filename or "contract.txt", content=content
        )
        return json_response(result.as_dict())
