"""The search box: accounts, contacts, leads and opportunities by characters, pinyin or initials,
through the same service as ``GET /api/v1/search`` (scope, tenancy and field masks included)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from closeloop.crm import search as search_service
from closeloop.crm.search import MAX_QUERY
from closeloop.web.accounts import STAGES
from closeloop.web.i18n import N_
from closeloop.web.leads import STATUSES
from closeloop.web.routes import database_of, render, require_user

router = APIRouter(include_in_schema=False)

GROUPS = {
    "account": (N_("Accounts"), "/accounts/{id}"),
    "contact": (N_("Contacts"), "/contacts/{id}"),
    "lead": (N_("Leads"), "/leads/{id}"),
    "opportunity": (N_("Opportunities"), "/accounts/{account_id}"),
}


@router.get("/search")
def search_page(request: Request, q: str = "") -> Response:
    user, actor = require_user(request)
    query = q.strip()[:MAX_QUERY]
    groups = []
    if query:
        with database_of(request).reading(actor) as session:
            groups = search_service.search(session, actor, query, limit=10)
    found = []
    for group in groups:
        label, pattern = GROUPS[group.noun]
        for item in group.items:
            if group.noun == "opportunity":
                item["link"] = pattern.format(**item) if item.get("account_name") else None
            else:
                item["link"] = pattern.format(**item)
        found.append((group, label))
    context = {
        "user": user,
        "actor": actor,
        "query": query,
        "groups": found,
        "total": sum(len(group.items) for group, _label in found),
        "stages": STAGES,
        "statuses": STATUSES,
    }
    return render(request, "search.html", context)
