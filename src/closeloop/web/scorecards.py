"""The team scorecard page: each manager's team's data-quality KPIs (completeness, contact-title
freshness, stage-log completeness, duplicate rate) with their history, next to the team's
forecast-deviation rate — read through the same service as ``GET /api/v1/scorecards/teams``, as the
signed-in person (a manager sees their team, the sales VP every team, a rep their own figures)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from closeloop.core.errors import ValidationFailed
from closeloop.forecasting import scorecards
from closeloop.web.i18n import N_
from closeloop.web.routes import database_of, render, require_user

router = APIRouter(include_in_schema=False)

KPI_LABELS = {
    "completeness": N_("Completeness"),
    "title_freshness": N_("Title freshness"),
    "stage_log_completeness": N_("Stage-log completeness"),
    "duplicate_rate": N_("Duplicate rate"),
}
GRANULARITY_LABELS = {"month": N_("By month"), "quarter": N_("By quarter")}


@router.get("/scorecards")
def scorecard_page(request: Request) -> Response:
    user, actor = require_user(request)
    granularity = request.query_params.get("granularity") or "month"
    if granularity not in GRANULARITY_LABELS:
        raise ValidationFailed.one("granularity", f"must be one of: {', '.join(GRANULARITY_LABELS)}")
    with database_of(request).reading(actor) as session:
        answer = scorecards.team_scorecard(session, actor, granularity=granularity, history=12)
    return render(
        request,
        "scorecards/index.html",
        {
            "user": user,
            "actor": actor,
            "answer": answer,
            "items": answer["items"],
            "granularity": granularity,
            "granularity_labels": GRANULARITY_LABELS,
            "kpi_labels": KPI_LABELS,
        },
    )
