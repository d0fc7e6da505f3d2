"""Formula fields (GOV-2): check a formula while it is being written, and preview its values.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, DatabaseDep, json_response
from closeloop.crm import formula_vocabulary, formulas
from closeloop.crm.schemas import Id, Schema
from closeloop.governance.formulas import Checked
from closeloop.governance.formulas.syntax import MAX_LENGTH

router = APIRouter(tags=["formulas"])

RecordTypeName = Literal["account", "contact", "lead", "opportunity", "order", "quote"]
Expression = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_LENGTH,
        description="The formula, e.g. `SUM(orders.amount WHERE days_ago <= 90) / COUNT(orders)`",
        examples=['IF(tier = "A", ROUND(annual_revenue / 10000, 1), 0)'],
    ),
]


class FormulaCheck(Schema):
    # a formula is taken as typed: stripping spaces would move the positions errors point at
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    record_type: RecordTypeName
    expression: Expression


class FormulaPreview(FormulaCheck):
    limit: Annotated[int, Field(ge=1, le=formulas.MAX_PREVIEW)] = 10
    ids: Annotated[list[Id], Field(max_length=formulas.MAX_PREVIEW)] | None = Field(
        default=None, description="Compute on these records (those you cannot see are left out)"
    )


def _described(masked: list[tuple[str, str]], checked: Checked) -> dict[str, Any]:
    return {
        "type": checked.type.value,
        "normalized": checked.normalized,
        "inputs": [f"{noun}.{field}" for noun, field in sorted(checked.inputs)],
        "sources": sorted(checked.sources),
        "masked_inputs": [f"{noun}.{field}" for noun, field in masked],
    }


@router.post(
    "/formulas/check",
    operation_id="check_formula",
    response_class=Response,
    summary="Check a formula: its type, the fields it reads, its normalized text",
    description="A formula that does not parse or type-check is a 422 problem whose error names "
    "`expression`; the body carries `position` (0-based), `end`, `line` and `column` (1-based). "
    "`masked_inputs` lists the inputs your role may not read: the formula's values are hidden from you.",
)
def check_formula(database: DatabaseDep, actor: CurrentActor, body: Annotated[FormulaCheck, Body()]) -> Response:
    with database.reading(actor) as session:
        checked = formulas.check(actor, body.record_type, body.expression, session)
        return json_response(_described(formulas.masked_inputs(actor, checked, session), checked))


@router.post(
    "/formulas/preview",
    operation_id="preview_formula",
    response_class=Response,
    summary="Compute a formula on records you can see",
    description="On the records given by `ids`, or the first `limit` (at most 20) by id. A formula "
    "that reads a field your role may not read is refused (403, `masked_inputs` names it).",
)
def preview_formula(database: DatabaseDep, actor: CurrentActor, body: Annotated[FormulaPreview, Body()]) -> Response:
    with database.reading(actor) as session:
        compiled = formulas.compile_for(actor, body.record_type, body.expression, session)
        values = formulas.values_of(session, actor, body.record_type, compiled, ids=body.ids, limit=body.limit)
    result = _described([], compiled)
    result["items"] = [{"id": record_id, "value": value} for record_id, value in values]
    return json_response(result)


@router.get(
    "/formulas/vocabulary/{plural}",
    operation_id="formula_vocabulary",
    response_class=Response,
    summary="What a formula on a record type may name: fields, related records, functions",
    description="The fields of the record type (`accounts`, `contacts`, `leads`, `opportunities`, "
    "`orders`, `quotes`) and of the lists of related records usable in aggregates, with their types; "
    "the functions with their signatures and descriptions (Chinese and English); the keywords. "
    "Only what your role may read: a masked field is left out, and so is a list of records you may not read.",
)
def vocabulary_of(database: DatabaseDep, actor: CurrentActor, plural: str) -> Response:
    with database.reading(actor) as session:
        found = formula_vocabulary.vocabulary(session, actor, formula_vocabulary.noun_of(plural))
    return json_response(found.as_json())
