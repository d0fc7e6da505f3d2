"""The pipeline board (UI-1): a column per stage with its count and amount, cards the person can
drag — or move from the keyboard — to another stage, filters by owner, region and product line.

A move goes through ``opportunity_service.move_stage``, the API's call: the stage history and the
audit entry are written, the card's version must still be current (a stale card is refused with
"changed by someone else — reload"), a lost deal needs its reason, and an opportunity outside the
person's scope is *not found*. Every answer re-renders the board, so counts and sums follow.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, ValidationFailed
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities import board as board_service
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.opportunities.board import BoardFilters
from closeloop.org.models import User
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

#: each stage's name on screen (GLOSSARY.md)
STAGE_LABELS = {
    Stage.PROSPECTING: N_("Prospecting"),
    Stage.QUALIFICATION: N_("Qualification"),
    Stage.PROPOSAL: N_("Proposal"),
    Stage.NEGOTIATION: N_("Negotiation"),
    Stage.WON: N_("Won"),
    Stage.LOST: N_("Lost"),
}

#: what the board says when a move is refused, by the error's code
_REFUSALS = {
    "stale_version": N_("This deal was changed by someone else — reload the board and try again."),
    "not_found": N_("This deal no longer exists or is not yours to move."),
    "forbidden": N_("Your role may not move deals."),
    "csrf": N_("Your session expired; please try again."),
}
_LOST_REASON_NEEDED = N_("Say why the deal was lost: a lost deal needs its reason.")
_INVALID_MOVE = N_("This move is not possible.")


def _number(name: str, raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed.one(name, "must be a whole number") from None


def _filters(owner: str | None, region: str | None, product_line: str | None) -> BoardFilters:
    return BoardFilters(
        owner_id=_number("owner", owner),
        region_id=_number("region", region),
        product_line_id=_number("product_line", product_line),
    )


def _board_context(
    request: Request, user: User, actor: Actor, filters: BoardFilters, *, message: str | None = None
) -> dict[str, Any]:
    with database_of(request).reading(actor) as session:
        columns = board_service.board(session, actor, filters=filters)
        show_amounts = board_service.can_read_amounts(session, actor)
    return {
        "user": user,
        "actor": actor,
        "columns": columns,
        "filters": filters,
        "stage_labels": STAGE_LABELS,
        "open_stages": OPEN_STAGES,
        "can_move": actor.can("opportunities:write"),
        "show_amounts": show_amounts,
        "closed_window_days": board_service.CLOSED_WINDOW_DAYS,
        "message": message,
    }


@router.get("/pipeline")
def pipeline_page(
    request: Request, owner: str | None = None, region: str | None = None, product_line: str | None = None
) -> Response:
    """The board; an HTMX request (a filter changed) gets the board alone."""
    user, actor = require_user(request)
    filters = _filters(owner, region, product_line)
    context = _board_context(request, user, actor, filters)
    if is_htmx(request):
        return render(request, "board/board.html", context)
    with database_of(request).reading(actor) as session:
        context["choices"] = board_service.filter_choices(session, actor)
    return render(request, "board/page.html", context)


@router.get("/pipeline/columns/{stage}")
def more_cards(
    request: Request,
    stage: Stage,
    offset: int = 0,
    owner: str | None = None,
    region: str | None = None,
    product_line: str | None = None,
) -> Response:
    """The next cards of one column ("show more"), with the button for the ones after them."""
    user, actor = require_user(request)
    filters = _filters(owner, region, product_line)
    with database_of(request).reading(actor) as session:
        total = board_service.stage_totals(session, actor, filters=filters)[stage].count
        cards = board_service.column_cards(session, actor, stage=stage, filters=filters, offset=max(offset, 0))
        show_amounts = board_service.can_read_amounts(session, actor)
    context = {
        "user": user,
        "actor": actor,
        "stage": stage,
        "cards": cards,
        "next_offset": max(offset, 0) + len(cards),
        "total": total,
        "filters": filters,
        "can_move": actor.can("opportunities:write"),
        "show_amounts": show_amounts,
        "stage_labels": STAGE_LABELS,
    }
    return render(request, "board/cards.html", context)


def _refusal(error: DomainError) -> str:
    if any(problem.field == "lost_reason" for problem in error.problems):
        return _LOST_REASON_NEEDED
    return _REFUSALS.get(error.code, _INVALID_MOVE)


@router.post("/pipeline/move")
def move(
    request: Request,
    opportunity_id: str = Form(""),
    stage: str = Form(""),
    version: str = Form(""),
    lost_reason: str = Form(""),
    owner: str = Form(""),
    region: str = Form(""),
    product_line: str = Form(""),
) -> Response:
    """Move one card; the board comes back re-rendered, with the refusal on top when the move was refused
    (and the refusal's status: 400 session expired, 404 not yours, 412 stale, 422 invalid)."""
    user, actor = require_user(request)
    filters = _filters(owner, region, product_line)
    try:
        require_csrf(request)
        target = _number("opportunity_id", opportunity_id)
        if target is None:
            raise ValidationFailed.one("opportunity_id", "is required", "required")
        if stage not in {item.value for item in Stage}:
            raise ValidationFailed.one("stage", "is not a stage", "invalid")
        with database_of(request).unit_of_work(actor) as session:
            opportunity_service.move_stage(
                session,
                actor,
                opportunity_id=target,
                stage=Stage(stage),
                lost_reason=lost_reason.strip() or None,
                expected_version=_number("version", version),
            )
    except DomainError as error:
        message = translations(locale_of(request)).gettext(_refusal(error))
        context = _board_context(request, user, actor, filters, message=message)
        return render(request, "board/board.html", context, status_code=error.status)
    return render(request, "board/board.html", _board_context(request, user, actor, filters))
