"""Compliance pages (AST-2): a rep pastes a draft and sees each risky phrase highlighted with its
level, citation and a compliant rewrite; supervisors work the review queue. The same services and
checks as the API (``closeloop.assistant.compliance.service``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from closeloop.assistant.compliance import service as compliance
from closeloop.assistant.compliance.matcher import Finding
from closeloop.assistant.compliance.packs import Lang
from closeloop.core.errors import NotFound
from closeloop.crm.products.models import Product
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.fields import can_read_field
from closeloop.governance.permissions import require
from closeloop.org.models import User
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

CATEGORY_LABELS = {
    "absolute_term": N_("Absolute term"),
    "efficacy_guarantee": N_("Efficacy or safety guarantee"),
    "cure_rate": N_("Cure or effective rate"),
    "endorsement": N_("Endorsement"),
    "investment_guarantee": N_("Return or principal guarantee"),
    "overpromise": N_("Promise beyond what you can keep"),
    "disparagement": N_("Disparaging or comparing competitors"),
    "false_endorsement": N_("State or false endorsement"),
    "superstition": N_("Superstition"),
    "commercial_bribery": N_("Commercial bribery or kickback"),
    "other": N_("Other regulated claim"),
}
LEVEL_LABELS = {1: N_("Level 1 · review"), 2: N_("Level 2 · not allowed"), 3: N_("Level 3 · serious")}
REVIEW_STATES = {"pending": N_("Pending"), "approved": N_("Approved"), "rejected": N_("Rejected")}


def highlighted(text: str, findings: list[Finding]) -> list[tuple[str, int | None]]:
    """The text cut into pieces, each with the index of the finding it belongs to (or None)."""
    pieces: list[tuple[str, int | None]] = []
    position = 0
    for index, finding in enumerate(findings):
        if finding.start > position:
            pieces.append((text[position : finding.start], None))
        pieces.append((text[finding.start : finding.end], index))
        position = finding.end
    if position < len(text):
        pieces.append((text[position:], None))
    return pieces


def _products(request: Request, actor: Any) -> list[dict[str, Any]]:
    with database_of(request).reading(actor) as session:
        if not actor.can("products:read"):
            return []
        lead_visible = can_read_field(session, actor, "product", "lead_time_days")
        rows = session.scalars(
            visible(actor, Product, access=RowAccess.READ)
            .where(Product.is_active.is_(True))
            .order_by(Product.name)
            .limit(300)
        )
        return [
            {"id": row.id, "name": row.name, "lead_time_days": row.lead_time_days if lead_visible else None}
            for row in rows
        ]


def _context(request: Request, actor: Any, **extra: Any) -> dict[str, Any]:
    """The page's context, with the signed-in user so the workspace shell (sidebar, top bar) shows."""
    return {
        "user": require_user(request)[0],
        "actor": actor,
        "category_labels": CATEGORY_LABELS,
        "level_labels": LEVEL_LABELS,
        **extra,
    }


def _text_error(request: Request, text: str) -> str | None:
    """Why the draft cannot be checked, in the reader's language (the service's own rule)."""
    problem = compliance.text_too_long_or_empty(text)
    if problem is None:
        return None
    gettext = translations(locale_of(request)).gettext
    if problem[1] == "required":
        return gettext("Paste the draft to check.")
    return gettext(
        "The draft has %(length)s characters; one check takes at most %(limit)s. Nothing was checked: "
        "check it in parts of at most %(limit)s characters."
    ) % {"length": f"{len(text):,}", "limit": f"{compliance.MAX_TEXT:,}"}


@router.get("/compliance")
def compliance_page(request: Request) -> Response:
    _user, actor = require_user(request)
    require(actor, "compliance:check")
    return render(
        request,
        "compliance/index.html",
        _context(request, actor, products=_products(request, actor), text="", lang="", product_id=None, result=None),
    )


@router.post("/compliance/check")
def check_draft(
    request: Request,
    csrf: str = Form(""),
    text: str = Form(""),
    lang: str = Form(""),
    product_id: str = Form(""),
    outgoing: str = Form(""),
) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    chosen: Lang | None = "zh" if lang == "zh" else "en" if lang == "en" else None
    product = int(product_id) if product_id.isdecimal() and 0 < int(product_id) < 2**63 else None
    refused = _text_error(request, text)
    if refused is not None:
        # never cut and never half-checked: the form comes back with the draft and the reason beside it
        if is_htmx(request):
            # HTMX swaps a 422 in where the result would go (base.html's responseHandling)
            return render(
                request, "compliance/result.html", _context(request, actor, text_error=refused), status_code=422
            )
        context = _context(
            request, actor, products=_products(request, actor), text=text, lang=lang, product_id=product, result=None
        )
        return render(request, "compliance/index.html", context | {"text_error": refused}, status_code=422)
    with database_of(request).unit_of_work(actor) as session:
        findings = compliance.check_text(session, actor, text, lang=chosen, product_id=product)
        review = compliance.submit_outgoing(session, actor, text, findings) if outgoing else None
        review_id = review.id if review else None
    result = {
        "findings": findings,
        "pieces": highlighted(text, findings),
        "review_id": review_id,
        "serious": any(finding.level >= 3 for finding in findings),
    }
    if is_htmx(request):
        return render(request, "compliance/result.html", _context(request, actor, result=result))
    context = _context(
        request, actor, products=_products(request, actor), text=text, lang=lang, product_id=product, result=result
    )
    return render(request, "compliance/index.html", context)


@router.get("/compliance/reviews")
def reviews_page(request: Request, status: str = "pending") -> Response:
    _user, actor = require_user(request)
    shown = status if status in (*REVIEW_STATES, "all") else "pending"
    with database_of(request).reading(actor) as session:
        reviews = compliance.list_reviews(session, actor, status=None if shown == "all" else shown)
        items = [compliance.review_body(session, actor, review) for review in reviews]
        ids = {item["rep_id"] for item in items if item["rep_id"]}
        query = select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User), User.id.in_(ids))
        names: dict[int, str] = dict(session.execute(query).all()) if ids else {}
    return render(
        request,
        "compliance/reviews.html",
        _context(
            request,
            actor,
            items=items,
            names=names,
            status=shown,
            review_states=REVIEW_STATES,
            can_decide=actor.can("compliance:review"),
        ),
    )


@router.post("/compliance/reviews/{review_id}/{decision}")
def decide(request: Request, review_id: int, decision: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    _user, actor = require_user(request)
    require_csrf(request, csrf)
    if decision not in ("approve", "reject") or not 1 <= review_id < 2**63:
        raise NotFound("compliance review", review_id)
    with database_of(request).unit_of_work(actor) as session:
        compliance.decide_review(
            session, actor, review_id, approve=decision == "approve", reason=reason or None, comment=reason or None
        )
    return RedirectResponse("/compliance/reviews", status_code=303)
