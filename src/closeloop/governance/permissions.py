"""The permission vocabulary and what each role holds (STYLE.md habit 4).

Permissions read ``"<resource>:<verb>"``. Row reach (own / team / all) comes with the role; field
reach is in :mod:`closeloop.governance.fields`.
"""

from __future__ import annotations

from enum import StrEnum

from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import Forbidden


class Role(StrEnum):
    REP = "rep"
    MANAGER = "manager"
    DIRECTOR = "director"
    SALES_VP = "sales_vp"
    CFO = "cfo"
    IT_DIRECTOR = "it_director"
    PARTNER_USER = "partner_user"
    ADMIN = "admin"


#: Records every seller-side role works with.
CRM_RESOURCES = (
    "accounts",
    "contacts",
    "leads",
    "opportunities",
    "quotes",
    "contracts",
    "orders",
    "activities",
    "tickets",
    "referrals",
    "tasks",
)
CATALOG_RESOURCES = ("products", "product_lines")


def _grant(resources: tuple[str, ...], *verbs: str) -> set[str]:
    return {f"{resource}:{verb}" for resource in resources for verb in verbs}


_REP = (
    _grant(CRM_RESOURCES, "read", "write")
    | _grant(CATALOG_RESOURCES, "read")
    | {"users:read", "funnel:read", "exports:run", "history:read", "quality:read", "decisions:read", "knowledge:read"}
)
_MANAGER = _REP | _grant(CRM_RESOURCES, "delete") | {"imports:run", "quality:scan", "rules:read", "rules:write"}
_EXECUTIVE = (
    _MANAGER | _grant(CATALOG_RESOURCES, "write", "delete") | {"audit:read", "schema:manage", "knowledge:manage"}
)
_CFO = (
    _grant(CRM_RESOURCES, "read")
    | _grant(("quotes", "contracts", "orders"), "write")
    | _grant(CATALOG_RESOURCES, "read")
    | {
        "users:read",
        "funnel:read",
        "exports:run",
        "history:read",
        "audit:read",
        "quality:read",
        "decisions:read",
        "knowledge:read",
    }
)
_IT = (
    _grant(CRM_RESOURCES, "read")
    | _grant(CATALOG_RESOURCES, "read")
    | {
        "users:read",
        "users:manage",
        "audit:read",
        "audit:verify",
        "imports:run",
        "exports:run",
        "history:read",
        "quality:read",
        "quality:scan",
        "decisions:read",
        "knowledge:read",
        "knowledge:manage",
    }
)
_PARTNER = (
    _grant(
        ("accounts", "contacts", "leads", "opportunities", "activities", "tickets", "orders", "referrals", "tasks"),
        "read",
        "write",
    )
    | _grant(CATALOG_RESOURCES, "read")
    | {"users:read", "funnel:read", "history:read"}
    # the knowledge collections their seller shared with their organization (and their own)
    | {"knowledge:read"}
)
_ADMIN = (
    _grant(CRM_RESOURCES, "read", "write", "delete")
    | _grant(CATALOG_RESOURCES, "read", "write", "delete")
    | {
        "users:read",
        "users:manage",
        "organization:manage",
        "schema:manage",
        "audit:read",
        "audit:verify",
        "imports:run",
        "exports:run",
        "funnel:read",
        "history:read",
        "quality:read",
        "quality:scan",
        "rules:read",
        "rules:write",
        "decisions:read",
        "knowledge:read",
        "knowledge:manage",
    }
)

# The compliance checker (AST-2): everyone who writes to customers checks and reads findings in
# their reach; supervisors also scan logged activities and decide the review queue.
_COMPLIANCE_USE = {"compliance:check", "compliance:read"}
_COMPLIANCE_SUPERVISE = _COMPLIANCE_USE | {"compliance:scan", "compliance:review"}
_REP, _CFO, _PARTNER = _REP | _COMPLIANCE_USE, _CFO | _COMPLIANCE_USE, _PARTNER | _COMPLIANCE_USE
_MANAGER, _EXECUTIVE = _MANAGER | _COMPLIANCE_SUPERVISE, _EXECUTIVE | _COMPLIANCE_SUPERVISE
_IT, _ADMIN = _IT | _COMPLIANCE_SUPERVISE, _ADMIN | _COMPLIANCE_SUPERVISE
#: pools (CN-1): reps read pools and claim; sales ops (the VP, admins) manage them
_POOLS = {"pools:read", "pools:claim"}
_REP |= _POOLS
_MANAGER |= _POOLS
_EXECUTIVE |= _POOLS | {"pools:manage"}
_ADMIN |= _POOLS | {"pools:manage"}
#: approvals (CN-4, 审批流): every seller-side user submits and approves; sales ops keep the flows
#: and see every approval; partner users have no part in the seller's approvals. Reading the flows
#: (who decides what) is for the people who approve and keep them — managers up, not reps
_REP |= {"approvals:use"}
_MANAGER |= {"approvals:use", "approval_flows:read"}
_EXECUTIVE |= {"approvals:use", "approval_flows:read", "approvals:manage"}
_CFO |= {"approvals:use", "approval_flows:read"}
_IT |= {"approvals:use", "approval_flows:read"}
_ADMIN |= {"approvals:use", "approval_flows:read", "approvals:manage"}
#: lead to cash (CN-3): finance approves any collection (an owner's manager approves their reports'
#: in the service); targets (CN-6): every seller-side role reads them, sales ops set them
_CFO |= {"collections:approve"}
_REP |= {"targets:read"}
_MANAGER |= {"targets:read"}
_CFO |= {"targets:read"}
_IT |= {"targets:read"}
_EXECUTIVE |= {"targets:read", "targets:manage"}
_ADMIN |= {"targets:read", "targets:manage"}

#: field work (CN-5) and daily/weekly reports (CN-6): the sales line checks in, plans and reports;
#: sales ops (the VP, admins) set who must report by when
_FIELD = {"fieldwork:read", "fieldwork:checkin", "fieldwork:plan", "reports:read", "reports:write"}
_REP |= _FIELD
_MANAGER |= _FIELD
_EXECUTIVE |= _FIELD | {"reports:manage"}
_ADMIN |= _FIELD | {"reports:manage"}

#: contract comparison (AST-4): whoever reads contracts compares against the standard templates;
#: sales ops, finance and admins keep the templates
_EXECUTIVE |= {"contract_templates:manage"}
_CFO |= {"contract_templates:manage"}
_ADMIN |= {"contract_templates:manage"}
#: the weekly adoption report of the assistants' suggestions (AST-5): sales leaders and admins
_MANAGER |= {"assistant:report"}
_EXECUTIVE |= {"assistant:report"}
_ADMIN |= {"assistant:report"}
#: assistant workflows (AST-6) are configured by sales ops and admins
_EXECUTIVE |= {"assistant:workflows"}
_ADMIN |= {"assistant:workflows"}

#: forecasts (issue #5): the people who forecast and are forecast against — managers up, finance, admins
_FORECASTS = {"forecasts:read"}
_MANAGER |= _FORECASTS
_EXECUTIVE |= _FORECASTS
_CFO |= _FORECASTS
_ADMIN |= _FORECASTS
#: inquiry-keyword signals (FC-4) are pushed by integrations (an admin's API token) and sales ops;
#: stock held for an account by a rule is released by sales leaders — managers up — and admins
_EXECUTIVE |= {"signals:write"}
_ADMIN |= {"signals:write"}
_MANAGER |= {"stock_reservations:release"}
_EXECUTIVE |= {"stock_reservations:release"}
_ADMIN |= {"stock_reservations:release"}

#: the seller's own governance views — the data-quality loop and the team scorecards it feeds
#: (``quality:read``), the data asset map (``assets:read``), the custom-field settings page
#: (``schema:read``) — are for seller-side roles: a partner organization (one partner user, no
#: managers, no schema of its own to keep) has no use for them, and its users are refused
_SELLER_VIEWS = {"assets:read", "schema:read"}
_REP |= _SELLER_VIEWS
_MANAGER |= _SELLER_VIEWS
_EXECUTIVE |= _SELLER_VIEWS
_CFO |= _SELLER_VIEWS
_IT |= _SELLER_VIEWS
_ADMIN |= _SELLER_VIEWS

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.REP: frozenset(_REP),
    Role.MANAGER: frozenset(_MANAGER),
    Role.DIRECTOR: frozenset(_MANAGER),
    Role.SALES_VP: frozenset(_EXECUTIVE),
    Role.CFO: frozenset(_CFO),
    Role.IT_DIRECTOR: frozenset(_IT),
    Role.PARTNER_USER: frozenset(_PARTNER),
    Role.ADMIN: frozenset(_ADMIN),
}

ROLE_SCOPES: dict[Role, RowScope] = {
    Role.REP: RowScope.OWN,
    Role.MANAGER: RowScope.TEAM,
    Role.DIRECTOR: RowScope.TEAM,
    Role.SALES_VP: RowScope.ALL,
    Role.CFO: RowScope.ALL,
    Role.IT_DIRECTOR: RowScope.ALL,
    Role.PARTNER_USER: RowScope.ALL,
    Role.ADMIN: RowScope.ALL,
}

#: Every permission the product knows, for the permission-matrix tests and the docs.
ALL_PERMISSIONS: frozenset[str] = frozenset().union(*ROLE_PERMISSIONS.values())


def require(actor: Actor, permission: str) -> None:
    """Raise :class:`Forbidden` unless ``actor`` holds ``permission``."""
    if not actor.can(permission):
        raise Forbidden(f"Your role ({actor.role}) does not allow {permission}")
