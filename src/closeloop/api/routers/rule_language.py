"""Rules written in plain language (AUTO-2): parse a sentence into the structured rule and read it back.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations at run time.)
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from closeloop.api.deps import CurrentActor, json_response
from closeloop.automation.language import MAX_TEXT, parse_rule
from closeloop.core.errors import FieldProblem, ValidationFailed
from closeloop.governance.permissions import require

router = APIRouter(tags=["rules"])


class RuleText(BaseModel):
    # the text is taken as typed: stripping it would move the positions a problem points at
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    text: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_TEXT,
            description="The rule as a manager writes it, in Chinese or English",
            examples=["新线索24小时内未分配，提醒销售运营"],
        ),
    ]
    lang: Literal["zh", "en"] | None = Field(default=None, description="Detected from the text when left out")


@router.post(
    "/rules/parse",
    operation_id="parse_rule",
    response_class=Response,
    summary="Turn a rule written in plain Chinese or English into the structured rule",
    description="Answers `rule` (trigger, conditions, actions), `readback` (the rule in plain words, in "
    "the same language, to confirm before saving) and `lang`. A sentence the parser does not fully "
    "understand is a 422 problem: `detail` quotes the first part it did not understand and its position; "
    "`problems` lists every such part with `start`/`end` (0-based character offsets), `fragment` and the "
    "message in English and Chinese. Nothing is saved.",
)
def parse_rule_text(actor: CurrentActor, body: Annotated[RuleText, Body()]) -> Response:
    require(actor, "rules:write")
    parsed = parse_rule(body.text, body.lang)
    if parsed.rule is None:
        first = parsed.problems[0]
        detail = f"Not understood at characters {first.start}–{first.end} ({first.fragment!r}): {first.message_en}"
        error = ValidationFailed(
            [
                FieldProblem("text", f"{p.fragment!r} at {p.start}–{p.end}: {p.message_en}", "not_understood")
                for p in parsed.problems
            ],
            message=detail,
        )
        error.extra = {
            "lang": parsed.lang,
            "position": first.start,
            "end": first.end,
            "problems": [p.as_dict() for p in parsed.problems],
        }
        raise error
    return json_response({"rule": parsed.rule, "readback": parsed.readback, "lang": parsed.lang})
