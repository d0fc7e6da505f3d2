"""``closeloop demo``: the demo seller, its two dealers and its service provider, with two years of business.

The data set is deterministic: one ``random.Random(seed)`` draws everything, and every business
date is placed relative to a fixed anchor (:data:`~closeloop.demo.world.ANCHOR`), never to the wall
clock. Only the bookkeeping is real-time: the organizations' own rows and the audit entries say
when the seeding actually happened.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from closeloop.crm import search
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.demo import bulk
from closeloop.demo.cash import seed_cash
from closeloop.demo.catalog import DEALER_CATALOG, SELLER_CATALOG, SERVICE_CATALOG, ProductLineSpec
from closeloop.demo.history import HistoryResult, add_field_history
from closeloop.demo.names import INDUSTRIES, REGIONS, Namer, RegionSpec
from closeloop.demo.people import DEMO_PASSWORD, SIGN_IN_ROLES, SignIn, Staff, add_partner_staff, add_seller_staff
from closeloop.demo.pipeline import PipelineBuilder
from closeloop.demo.touches import TouchBuilder
from closeloop.demo.workflow import seed_workflow
from closeloop.demo.world import ANCHOR, DEFAULT_SEED, Calendar, Tenant, add_catalog
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import Organization, OrganizationKind, Region, User
from closeloop.org.passwords import hash_password

DEFAULT_SLUG = "demo"
SELLER_NAME = "华衡医疗科技 Huaheng Medical"


@dataclass(frozen=True, slots=True)
class Volume:
    """How much business a generated organization does."""

    accounts: int
    leads: int
    lead_conversion: float
    repurchase_rate: float
    referral_rate: float
    #: one interaction about every N days of a deal's life
    days_per_touch: float
    ticket_rate: float
    silent_share: float


SELLER_VOLUME = Volume(
    accounts=1500,
    leads=2600,
    lead_conversion=0.42,
    repurchase_rate=0.55,
    referral_rate=0.32,
    days_per_touch=10.0,
    ticket_rate=0.35,
    silent_share=0.12,  # of the ~190 accounts whose open deal is over 60 days old
)


@dataclass(frozen=True, slots=True)
class PartnerSpec:
    key: str
    name: str
    kind: OrganizationKind
    handle: str
    regions: tuple[str, ...]
    catalog: tuple[ProductLineSpec, ...]
    industries: tuple[str, ...]
    volume: Volume


PARTNERS: tuple[PartnerSpec, ...] = (
    PartnerSpec(
        "huarui",
        "华瑞医疗器械经销 Huarui Medical Distribution",
        OrganizationKind.DEALER,
        "dealer",
        ("华东",),
        DEALER_CATALOG,
        ("医院", "零售药店", "第三方检验"),
        Volume(60, 40, 0.45, 0.6, 0.2, 12.0, 0.1, 0.05),
    ),
    PartnerSpec(
        "yuekang",
        "粤康医疗供应链 Yuekang Healthcare Supply",
        OrganizationKind.DEALER,
        "dealer2",
        ("华南",),
        DEALER_CATALOG,
        ("医院", "零售药店", "分销"),
        Volume(55, 35, 0.45, 0.6, 0.2, 12.0, 0.1, 0.05),
    ),
    PartnerSpec(
        "annuo",
        "安诺医疗技术服务 Annuo Medical Services",
        OrganizationKind.SERVICE_PROVIDER,
        "service",
        ("华东", "华南", "华北"),
        SERVICE_CATALOG,
        ("医院", "第三方检验"),
        Volume(70, 20, 0.5, 0.7, 0.1, 14.0, 0.9, 0.0),
    ),
)


@dataclass(slots=True)
class DemoResult:
    """What ``seed_demo`` made: the seller, its partners, row counts per organization, and the sign-ins."""

    organization_id: int
    partner_ids: list[int]
    #: organization id → name, the seller first
    names: dict[int, str]
    counts: dict[int, dict[str, int]]
    sign_ins: list[SignIn]
    silent_account_ids: list[int] = field(default_factory=list)
    seconds: float = 0.0
    #: the seller's field history (freshness monitoring has something to watch)
    history: HistoryResult | None = None
    #: organization id → defects its first data-quality scan opened
    defects: dict[int, int] = field(default_factory=dict)


def database_is_empty(db: Database) -> bool:
    """True when no organization exists at all (what ``closeloop demo --if-empty`` checks)."""
    with db.reading(None, system=True) as session:
        return not session.scalar(select(func.count()).select_from(Organization))


def seed_demo(
    db: Database, *, seed: int = DEFAULT_SEED, slug: str = DEFAULT_SLUG, anchor: datetime = ANCHOR
) -> DemoResult:
    """Create the demo organizations and their data in one transaction: all of it, or nothing.

    Usernames start with ``slug`` (``demo.rep``, ``demo.manager``, …) and share one password,
    :data:`~closeloop.demo.people.DEMO_PASSWORD`, hashed once.
    """
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    namer = Namer(rng)
    calendar = Calendar(rng, anchor)
    rows = bulk.Rows()
    password_hash = hash_password(DEMO_PASSWORD)
    founded = calendar.start - timedelta(days=60)
    with db.unit_of_work(None, system=True) as session:
        seller = org_service.create_organization(session, name=SELLER_NAME, slug=slug, label="demo")
        staff = add_seller_staff(
            rows,
            namer,
            organization_id=seller.id,
            organization_name=seller.name,
            prefix=slug,
            password_hash=password_hash,
            at=founded,
        )
        tenant = Tenant(
            organization_id=seller.id,
            name=seller.name,
            territories=staff.territories,
            catalog=add_catalog(rows, seller.id, SELLER_CATALOG, founded),
            chinese_share=0.8,
            industries=INDUSTRIES,
            win_rate=0.38,
            domain="mail.huaheng-medical.example.com",
        )
        seller_builder = PipelineBuilder(rows, rng, namer, calendar, tenant)
        silent = _fill(seller_builder, SELLER_VOLUME)
        sign_ins = list(staff.sign_ins)
        names = {seller.id: seller.name}
        partner_ids = []
        for spec in PARTNERS:
            partner = org_service.create_organization(
                session,
                name=spec.name,
                kind=spec.kind,
                partner_of_id=seller.id,
                slug=f"{slug}-{spec.key}",
                label="demo",
            )
            partner_ids.append(partner.id)
            names[partner.id] = partner.name
            partner_staff = _partner_staff(rows, namer, partner, spec, slug, password_hash, founded)
            sign_ins.extend(partner_staff.sign_ins)
            partner_tenant = Tenant(
                organization_id=partner.id,
                name=partner.name,
                territories=partner_staff.territories,
                catalog=add_catalog(rows, partner.id, spec.catalog, founded),
                chinese_share=0.95,
                industries=tuple(entry for entry in INDUSTRIES if entry[0] in spec.industries),
                win_rate=0.45,
                domain=f"mail.{spec.key}.example.com",
            )
            _fill(PipelineBuilder(rows, rng, namer, calendar, partner_tenant), spec.volume)
        # drawn last, so that the rest of the demo is what the same seed always gave
        seller_builder.add_returning_inquiries(RETURNING_INQUIRIES)
        counts = rows.counts_by_organization()
        real = rows.flush(session)
        seed_cash(session, seller.id, anchor=anchor)
        for organization_id, tables in counts.items():
            search.refresh_keys(session, organization_id, only_missing=True)
            bulk.record_seeding(session, organization_id, tables, label="demo")
        bulk.analyze(session, bulk.TABLES)
        seller_id = seller.id
        _open_pools(session, seller_id, anchor)  # its set-based recycle expires the session's objects
        seed_workflow(session, seller_id, prefix=slug, anchor=anchor)
    history = add_field_history(db, seller_id, seed=seed)
    defects = _scan_quality(db, [seller_id, *partner_ids])
    return DemoResult(
        organization_id=seller_id,
        partner_ids=partner_ids,
        names=names,
        counts=counts,
        sign_ins=sign_ins,
        silent_account_ids=[real["accounts"][account_id - 1] for account_id in silent],
        seconds=time.perf_counter() - started,
        history=history,
        defects=defects,
    )


def _scan_quality(db: Database, organization_ids: list[int]) -> dict[int, int]:
    """Run the data-quality scan the nightly job runs, once per demo organization, so that the data
    quality page, owners' tasks and team scorecards have figures from the first sign-in (the scan
    takes the KPI snapshots the scorecards read). Returns the defects opened per organization."""
    from closeloop.quality.service import run_scan

    return {organization_id: run_scan(db, organization_id).opened for organization_id in organization_ids}


#: the demo's public pools (CN-1): one for the biggest region, one catching every other account
DEMO_POOLS: tuple[dict[str, Any], ...] = (
    {"name": "华东公海", "region": "华东", "description": "华东区一年未跟进的客户"},
    {"name": "全国公海", "region": None, "description": "其他大区一年未跟进的客户"},
)
#: the rules both demo pools share: a year without follow-up returns an account, two weeks' notice
POOL_RULES: dict[str, Any] = {
    "follow_up_days": 365,
    "remind_days": 14,
    "protection_days": None,
    "daily_claim_cap": 5,
    "holding_cap": 300,
    "lock_cap": 20,
    "cooldown_days": 30,
}


#: the recycle runs of the demo, in days before its anchor
RECYCLE_RUNS = (120, 90, 60, 45, 30, 21, 14, 7, 3, 0)


def _open_pools(session: Session, organization_id: int, anchor: datetime) -> None:
    """Create the demo's pools, administered by each region's director, and run the real recycle as
    of a few days before the anchor and on it: accounts nobody followed up for a year go to the
    public pool on the run after their year is up (so they came back on different days), logged
    as owner changes like any nightly run."""
    from closeloop.org.service import system_actor
    from closeloop.pools import service as pools

    actor = system_actor(organization_id)
    named = select(Region.name, Region.id).where(tenant_clause(organization_id, Region))
    regions = dict(session.execute(named).all())
    for spec in DEMO_POOLS:
        region = regions[spec["region"]] if spec["region"] else None
        directors = session.scalars(
            select(User.id).where(
                tenant_clause(organization_id, User),
                User.role == Role.DIRECTOR.value,
                *([User.region_id == region] if region else []),
            )
        ).all()
        pools.create_pool(
            session,
            actor,
            {
                "name": spec["name"],
                "description": spec["description"],
                "region_ids": [region] if region else [],
                "admin_ids": list(directors),
                **POOL_RULES,
            },
        )
    for days_before in RECYCLE_RUNS:
        pools.recycle(session, organization_id, now=anchor - timedelta(days=days_before))


def _partner_staff(
    rows: bulk.Rows,
    namer: Namer,
    partner: Organization,
    spec: PartnerSpec,
    slug: str,
    password_hash: str,
    at: datetime,
) -> Staff:
    regions: tuple[RegionSpec, ...] = tuple(region for region in REGIONS if region.name in spec.regions)
    return add_partner_staff(
        rows,
        namer,
        organization_id=partner.id,
        organization_name=partner.name,
        prefix=slug,
        handle=spec.handle,
        regions=regions,
        password_hash=password_hash,
        at=at,
    )


#: new web leads from companies that already are the seller's accounts (the lead inbox warns of them)
RETURNING_INQUIRIES = 4


def _fill(builder: PipelineBuilder, volume: Volume) -> list[int]:
    """Generate one organization's business; return the provisional ids of its silent accounts."""
    established = builder.add_accounts(volume.accounts)
    builder.add_leads(volume.leads, conversion_rate=volume.lead_conversion)
    builder.add_direct_opportunities(established)
    builder.add_initial_orders()
    builder.add_repurchases(volume.repurchase_rate)
    builder.add_referrals(volume.referral_rate)
    builder.add_initial_orders()  # the wins among the referred leads' deals
    builder.number_orders()
    touches = TouchBuilder(builder)
    touches.add_deal_activities(volume.days_per_touch)
    touches.add_lead_activities()
    touches.add_account_care()
    touches.add_silences(volume.silent_share)
    touches.add_tickets(volume.ticket_rate)
    touches.flush()
    return touches.silent_account_ids


def demo_sign_ins(db: Database, *, slug: str = DEFAULT_SLUG) -> list[SignIn]:
    """The featured sign-ins of an existing demo (one user per role), or ``[]`` when there is no demo."""
    handles = [(role, role.value) for role in SIGN_IN_ROLES if role.value != "partner_user"]
    handles += [(SIGN_IN_ROLES[-1], spec.handle) for spec in PARTNERS]
    wanted = {f"{slug}.{handle}": role for role, handle in handles}
    with db.reading(None, system=True) as session:
        seller = session.scalar(select(Organization).where(Organization.slug == slug))
        if seller is None:
            return []
        found = session.execute(
            select(User.username, User.display_name, Organization.name)
            .join(Organization, Organization.id == User.organization_id)
            .where(User.username.in_(sorted(wanted)))
        ).all()
    by_name = {username: (display_name, organization) for username, display_name, organization in found}
    return [
        SignIn(username, role, by_name[username][1], by_name[username][0])
        for username, role in wanted.items()
        if username in by_name
    ]


__all__ = ["DEFAULT_SLUG", "DemoResult", "database_is_empty", "demo_sign_ins", "seed_demo"]
