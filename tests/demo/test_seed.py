"""The normal demo: what it contains, that it follows the product's rules, and that it is the same every time."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.cash import service as cash
from closeloop.cash.daily import run_daily
from closeloop.cash.models import Collection, Instalment
from closeloop.core.actor import Actor
from closeloop.core.clock import frozen_at
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.contracts.service import CONTRACTS
from closeloop.crm.enums import ActivityKind, DecisionRole, Direction, LeadSource, LeadStatus, Stage, TicketStatus
from closeloop.crm.funnel.service import STEPS, FunnelFilters, measure_funnel
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.referrals.models import Referral
from closeloop.crm.tickets.models import Ticket
from closeloop.db.migrate import upgrade
from closeloop.db.scope import RowAccess, tenant_clause, visible, within_organization
from closeloop.db.session import Database, connect
from closeloop.demo import bulk
from closeloop.demo.people import DEMO_PASSWORD, SIGN_IN_ROLES
from closeloop.demo.seed import RETURNING_INQUIRIES, DemoResult, demo_sign_ins, seed_demo
from closeloop.demo.world import ANCHOR, WINDOW_DAYS
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service
from closeloop.org.models import Department, Organization, OrganizationKind, User
from closeloop.pools.duplicates import find_matches
from closeloop.pools.models import OwnerChange, Pool
from closeloop.targets.models import Target
from tests.apps import app_for
from tests.conftest import Backend
from tests.demo.conftest import _plain, fingerprint
from tests.web.test_partner_workspace import SELLER_PAGES, nav_links
from tests.web.test_sign_in import csrf_of

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def rows_of(backend: Backend, organization_id: int, model: Any) -> list[Any]:
    with backend.database.reading(None, system=True) as session:
        return list(session.scalars(within_organization(organization_id, model).order_by(model.id)))


def user_actor(backend: Backend, username: str) -> Actor:
    with backend.database.reading(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return org_service.actor_for(session, user)


def test_the_tables_hold_exactly_what_seeding_reported(backend: Backend, demo: DemoResult) -> None:
    with backend.database.reading(None, system=True) as session:
        for organization_id, counts in demo.counts.items():
            for name in bulk.TABLES:
                model = bulk.MODELS[name]
                found = session.scalar(
                    select(func.count()).select_from(within_organization(organization_id, model).subquery())
                )
                assert found == counts.get(name, 0), (organization_id, name)


def test_the_seller_has_over_2000_accounts_with_chinese_and_english_names(backend: Backend, demo: DemoResult) -> None:
    accounts = rows_of(backend, demo.organization_id, Account)
    chinese = [a for a in accounts if CHINESE.search(a.name)]
    english = [a for a in accounts if a.name.isascii()]

    assert len(accounts) >= 2000
    assert len(chinese) + len(english) == len(accounts)
    assert len(english) >= 300
    assert len({a.name for a in accounts}) == len(accounts)
    assert {a.tier for a in accounts} == {"A", "B", "C"}
    assert {a.industry for a in accounts} == {"医院", "医疗器械", "分销", "零售药店", "制造", "第三方检验", "SaaS"}
    assert all(a.region_id and a.province and a.city and a.address for a in accounts)
    # accounts nobody followed up for a year went to the public pools when the demo ran the recycle
    in_pools = [a for a in accounts if a.owner_id is None]
    assert 0 < len(in_pools) < len(accounts) * 0.2
    assert sum(a.credit_line is not None for a in accounts) > len(accounts) * 0.8


def test_the_demo_has_an_organization_chart_and_public_pools(backend: Backend, demo: DemoResult) -> None:
    seller = demo.organization_id
    departments = {d.id: d for d in rows_of(backend, seller, Department)}
    users = rows_of(backend, seller, User)
    assert all(u.department_id in departments for u in users)
    by_name = {d.name: d for d in departments.values()}
    assert by_name["华东销售部"].parent_id == by_name["销售中心"].id
    assert by_name["华东销售1组"].parent_id == by_name["华东销售部"].id
    rep = next(u for u in users if u.username == "demo.rep")
    assert departments[rep.department_id].name.endswith("组")  # a rep sits in a sales group

    pools = {p.name: p for p in rows_of(backend, seller, Pool)}
    assert set(pools) == {"华东公海", "全国公海"}
    assert pools["华东公海"].admin_ids
    assert pools["华东公海"].region_ids
    ownerless = {a.id for a in rows_of(backend, seller, Account) if a.owner_id is None}
    recycled = {c.account_id for c in rows_of(backend, seller, OwnerChange) if c.action == "recycled"}
    assert ownerless == recycled  # every account in a public pool got there through the recycle run
    returned_on = {c.changed_at.date() for c in rows_of(backend, seller, OwnerChange) if c.action == "recycled"}
    assert len(returned_on) >= 3  # the recycle ran on several days, not all back at once


def test_the_demo_has_approval_flows_an_inbox_a_plan_and_targets_that_are_not_sums(
    backend: Backend, demo: DemoResult
) -> None:
    from closeloop.approvals import service as approvals
    from closeloop.approvals.models import ApprovalFlow
    from closeloop.fieldwork import plans
    from closeloop.targets.models import Target

    seller = demo.organization_id
    flows = {f.record_type: f for f in rows_of(backend, seller, ApprovalFlow)}
    assert set(flows) == {"contract", "quote", "collection", "account_transfer", "expense"}
    assert [t for t, f in flows.items() if not f.is_enabled] == []
    big = flows["contract"].definition["branches"][0]
    assert big["conditions"] == [{"field": "amount", "op": "gt", "value": 200000}]
    assert big["steps"][0]["approvers"] == [{"kind": "supervisors", "levels": 2}]
    # built-in names carry their keys: an English reader sees them in English
    from closeloop.approvals import names

    assert {t: names.flow_label(f.name, f.definition, "en") for t, f in flows.items()} == {
        "contract": "Contract approval",
        "quote": "Quote discount approval",
        "collection": "Collection approval",
        "account_transfer": "Account transfer approval",
        "expense": "Expense claim approval",
    }
    assert (big["key"], big["steps"][0]["key"]) == ("large_contract", "two_supervisors")

    manager = user_actor(backend, "demo.manager")
    rep = user_actor(backend, "demo.rep")
    with backend.database.reading(manager) as session:
        waiting, _ = approvals.inbox(session, manager, box="to_approve", limit=20, cursor=None)
        assert {a.record_type for a in waiting} == {"expense", "account_transfer"}
    with backend.database.reading(rep) as session:
        mine, _ = approvals.inbox(session, rep, box="submitted", limit=20, cursor=None)
        assert {a.status for a in mine} == {"pending", "approved", "rejected"}
        day = ANCHOR.date()
        today, _ = plans.plan_rows(session, rep, user_id=rep.user_id or 0, day=day)
        tomorrow, _ = plans.plan_rows(session, rep, user_id=rep.user_id or 0, day=day + timedelta(days=1))
        assert (today is not None, tomorrow is not None) == (True, True)
    # the collection awaiting approval is decided through the collection flow, in finance's inbox
    cfo = user_actor(backend, "demo.cfo")
    with backend.database.reading(cfo) as session:
        waiting, _ = approvals.inbox(session, cfo, box="to_approve", limit=20, cursor=None)
        submitted = [c.id for c in cash.list_collections(session, cfo) if c.status == "submitted"]
        in_flow = cash.pending_approvals(session, seller, submitted)
    assert len(submitted) == 1
    assert sorted(in_flow.values()) == sorted(a.id for a in waiting if a.record_type == "collection")
    assert list(in_flow) == submitted

    departments = {d.id: d for d in rows_of(backend, seller, Department)}
    month = {t.department_id: t.value for t in rows_of(backend, seller, Target) if t.department_id and t.month}
    center = next(d.id for d in departments.values() if d.name == "销售中心")
    children = [d.id for d in departments.values() if d.parent_id == center]
    assert month[center] != sum(month[child] for child in children)
    company = next(
        t.value
        for t in rows_of(backend, seller, Target)
        if t.scope == "company" and t.month and t.metric == "contract_amount"
    )
    assert company >= month[center]  # the company never asks less than its sales centre was given
    assert len({month[d.id] for d in departments.values() if d.name.endswith("组")}) > 1


def test_every_stage_decision_role_lead_status_ticket_status_and_activity_kind_is_present(
    backend: Backend, demo: DemoResult
) -> None:
    seller = demo.organization_id
    assert {o.stage for o in rows_of(backend, seller, Opportunity)} == set(Stage)
    assert {c.decision_role for c in rows_of(backend, seller, Contact)} == set(DecisionRole)
    assert {lead.status for lead in rows_of(backend, seller, Lead)} == set(LeadStatus)
    assert {lead.source for lead in rows_of(backend, seller, Lead)} == set(LeadSource) - {LeadSource.OTHER}
    assert {t.status for t in rows_of(backend, seller, Ticket)} == set(TicketStatus)
    assert {a.kind for a in rows_of(backend, seller, Activity)} == set(ActivityKind)


def test_stage_history_walks_the_stages_in_order_and_ends_where_the_opportunity_is(
    backend: Backend, demo: DemoResult
) -> None:
    seller = demo.organization_id
    history = defaultdict(list)
    for change in rows_of(backend, seller, StageChange):
        history[change.opportunity_id].append(change)
    order = [Stage.PROSPECTING, Stage.QUALIFICATION, Stage.PROPOSAL, Stage.NEGOTIATION]
    for opportunity in rows_of(backend, seller, Opportunity):
        changes = sorted(history[opportunity.id], key=lambda c: (c.changed_at, c.id))
        first, last = changes[0], changes[-1]
        assert (first.from_stage, first.to_stage, first.changed_at) == (None, Stage.PROSPECTING, opportunity.opened_at)
        assert last.to_stage == opportunity.stage
        assert last.changed_at == opportunity.stage_changed_at
        for before, after in itertools.pairwise(changes):
            assert after.from_stage == before.to_stage
            assert after.duration_seconds == int((after.changed_at - before.changed_at).total_seconds())
            if after.to_stage not in (Stage.WON, Stage.LOST):
                assert order.index(after.to_stage) == order.index(after.from_stage) + 1
        if opportunity.stage in (Stage.WON, Stage.LOST):
            assert opportunity.closed_at == last.changed_at
            assert (opportunity.lost_reason is not None) == (opportunity.stage == Stage.LOST)
        else:
            assert opportunity.closed_at is None
            assert opportunity.lost_reason is None


def test_lost_reasons_are_chinese_and_amounts_are_realistic(backend: Backend, demo: DemoResult) -> None:
    opportunities = rows_of(backend, demo.organization_id, Opportunity)
    lost = [o for o in opportunities if o.stage == Stage.LOST]

    assert all(CHINESE.search(o.lost_reason) for o in lost)
    assert len({o.lost_reason for o in lost}) == 10
    assert all(o.currency == "CNY" and o.amount is not None and o.amount >= 1000 for o in opportunities)
    assert all(o.margin is not None and 10 <= o.margin <= 80 for o in opportunities)
    assert all(o.expected_close_date is not None for o in opportunities)


def test_converted_leads_and_their_opportunities_point_at_each_other(backend: Backend, demo: DemoResult) -> None:
    seller = demo.organization_id
    leads = {lead.id: lead for lead in rows_of(backend, seller, Lead)}
    contacts = {c.id: c for c in rows_of(backend, seller, Contact)}
    opportunities = {o.id: o for o in rows_of(backend, seller, Opportunity)}
    converted = [lead for lead in leads.values() if lead.status == LeadStatus.CONVERTED]

    for lead in converted:
        assert lead.converted_at is not None
        assert lead.converted_at > lead.received_at
        assert contacts[lead.converted_contact_id].account_id == lead.converted_account_id
        assert contacts[lead.converted_contact_id].name == lead.name
        if lead.converted_opportunity_id is not None:
            opportunity = opportunities[lead.converted_opportunity_id]
            assert opportunity.source_lead_id == lead.id
            assert opportunity.account_id == lead.converted_account_id
            assert opportunity.contact_id == lead.converted_contact_id
            assert opportunity.opened_at == lead.converted_at
    from_leads = [o for o in opportunities.values() if o.source_lead_id is not None]
    assert len(from_leads) == sum(lead.converted_opportunity_id is not None for lead in converted)
    assert all(leads[o.source_lead_id].converted_opportunity_id == o.id for o in from_leads)
    unconverted = [lead for lead in leads.values() if lead.status != LeadStatus.CONVERTED]
    assert all(lead.converted_account_id is None for lead in unconverted)
    assert all(lead.disqualified_reason for lead in leads.values() if lead.status == LeadStatus.DISQUALIFIED)
    assert any(lead.owner_id is None and lead.status == LeadStatus.NEW for lead in leads.values())


def test_new_web_leads_from_existing_accounts_are_flagged_as_duplicates(backend: Backend, demo: DemoResult) -> None:
    """The lead inbox's duplicate warning has something to show: a few new, unassigned web leads come
    from companies that are already accounts, written as forms get them (有限公司 → 公司)."""
    vp = user_actor(backend, "demo.sales_vp")
    inbox = [
        lead
        for lead in rows_of(backend, demo.organization_id, Lead)
        if lead.status == LeadStatus.NEW and lead.owner_id is None and lead.source == LeadSource.WEBSITE
    ]
    accounts = {account.name for account in rows_of(backend, demo.organization_id, Account)}

    def account_of(company: str) -> str | None:
        for name in (company + ", Ltd.", company.removesuffix("公司") + "有限公司"):
            if name in accounts:
                return name
        return None

    returning = [(lead, account_of(lead.company)) for lead in inbox if account_of(lead.company)]
    assert len(returning) == RETURNING_INQUIRIES
    with backend.database.reading(vp) as session:
        for lead, account in returning:
            matches = find_matches(session, vp, name=lead.company, exclude_lead_id=lead.id)
            assert [(m.kind, m.name) for m in matches] == [("account", account)], lead.company


def test_each_win_has_one_first_order_and_repurchases_come_later_without_an_opportunity(
    backend: Backend, demo: DemoResult
) -> None:
    seller = demo.organization_id
    opportunities = {o.id: o for o in rows_of(backend, seller, Opportunity)}
    orders = rows_of(backend, seller, Order)
    lines = defaultdict(list)
    for line in rows_of(backend, seller, OrderLine):
        lines[line.order_id].append(line)
    first_orders = Counter(order.opportunity_id for order in orders if order.opportunity_id is not None)
    won = {i for i, o in opportunities.items() if o.stage == Stage.WON}
    first_win: dict[int, Any] = {}
    for opportunity in opportunities.values():
        if opportunity.stage == Stage.WON and opportunity.account_id is not None:
            known = first_win.get(opportunity.account_id)
            first_win[opportunity.account_id] = min(known or opportunity.closed_at, opportunity.closed_at)
    repurchases = [order for order in orders if order.opportunity_id is None]

    assert set(first_orders) == won
    assert set(first_orders.values()) == {1}
    for order in orders:
        assert order.total == sum(line.amount for line in lines[order.id])
        assert all(line.amount == line.quantity * line.unit_price for line in lines[order.id])
        if order.opportunity_id is not None:
            assert order.ordered_at >= opportunities[order.opportunity_id].closed_at
            assert order.total == opportunities[order.opportunity_id].amount
    assert len(repurchases) >= 300
    assert all(order.ordered_at > first_win[order.account_id] for order in repurchases)
    assert len({order.number for order in orders}) == len(orders)


def test_referrals_follow_repurchases(backend: Backend, demo: DemoResult) -> None:
    seller = demo.organization_id
    leads = {lead.id: lead for lead in rows_of(backend, seller, Lead)}
    referrals = rows_of(backend, seller, Referral)
    first_repurchase: dict[int, Any] = {}
    for order in rows_of(backend, seller, Order):
        if order.opportunity_id is None and order.status != "cancelled":
            known = first_repurchase.get(order.account_id)
            first_repurchase[order.account_id] = min(known or order.ordered_at, order.ordered_at)

    assert len(referrals) >= 50
    assert all(leads[r.lead_id].source == LeadSource.REFERRAL for r in referrals)
    assert all(leads[r.lead_id].received_at == r.referred_at for r in referrals)
    after_repurchase = [
        r
        for r in referrals
        if r.referrer_account_id in first_repurchase and r.referred_at > first_repurchase[r.referrer_account_id]
    ]
    assert len(after_repurchase) >= 50
    assert sum(lead.source == LeadSource.REFERRAL for lead in leads.values()) == len(referrals)


def test_the_funnel_on_the_demo_has_every_step(backend: Backend, demo: DemoResult) -> None:
    vice_president = user_actor(backend, "demo.sales_vp")
    with backend.database.reading(vice_president) as session:
        funnel = measure_funnel(session, vice_president, filters=FunnelFilters())
    counts = demo.counts[demo.organization_id]

    assert [step.step for step in funnel.steps] == list(STEPS)
    assert funnel.steps[0].count == counts["leads"]
    assert funnel.steps[1].count == counts["opportunities"]
    assert all(step.count > 0 for step in funnel.steps)
    assert all(step.median_days_from_previous for step in funnel.steps[1:])


def test_emails_are_answered_or_not_and_silent_accounts_go_quiet(backend: Backend, demo: DemoResult) -> None:
    activities = rows_of(backend, demo.organization_id, Activity)
    emails = [a for a in activities if a.kind == ActivityKind.EMAIL]
    by_account = defaultdict(list)
    for activity in activities:
        if activity.account_id is not None:
            by_account[activity.account_id].append(activity)

    assert {(a.direction, a.is_replied) for a in emails} == {
        (Direction.OUTBOUND, True),
        (Direction.OUTBOUND, False),
        (Direction.INBOUND, None),
    }
    assert all(a.replied_at > a.occurred_at for a in activities if a.is_replied)
    assert all(a.occurred_at < ANCHOR and (a.replied_at is None or a.replied_at < ANCHOR) for a in activities)
    assert len(demo.silent_account_ids) >= 20
    for account_id in demo.silent_account_ids:
        latest = sorted(by_account[account_id], key=lambda a: a.occurred_at)[-3:]
        assert [(a.kind, a.direction, a.is_replied) for a in latest] == [
            (ActivityKind.EMAIL, Direction.OUTBOUND, False)
        ] * 3
        assert ANCHOR - latest[-1].occurred_at >= timedelta(days=15)


def test_contact_titles_are_confirmed_recently_or_long_ago(backend: Backend, demo: DemoResult) -> None:
    contacts = rows_of(backend, demo.organization_id, Contact)
    today = ANCHOR.date()
    stale = [c for c in contacts if c.title_confirmed_on and today - c.title_confirmed_on > timedelta(days=180)]
    fresh = [c for c in contacts if c.title_confirmed_on and today - c.title_confirmed_on <= timedelta(days=180)]

    assert len(stale) > len(contacts) * 0.15
    assert len(fresh) > len(contacts) * 0.4
    assert any(c.title_confirmed_on is None for c in contacts)
    assert all(c.title and c.email and c.mobile for c in contacts)


def test_every_business_date_lies_in_the_two_years_before_the_anchor(backend: Backend, demo: DemoResult) -> None:
    earliest = ANCHOR - timedelta(days=WINDOW_DAYS + 90)
    with backend.database.reading(None, system=True) as session:
        for column in (
            Account.created_at,
            Lead.received_at,
            Opportunity.opened_at,
            Opportunity.stage_changed_at,
            StageChange.changed_at,
            Order.ordered_at,
            Activity.occurred_at,
            Ticket.opened_at,
            Referral.referred_at,
        ):
            low, high = session.execute(select(func.min(column), func.max(column))).one()
            assert earliest <= low, column
            assert high < ANCHOR, column


def test_partners_are_two_dealers_and_a_service_provider_that_see_only_their_own_rows(
    backend: Backend, demo: DemoResult
) -> None:
    with backend.database.reading(None, system=True) as session:
        partners = list(
            session.scalars(select(Organization).where(Organization.id.in_(demo.partner_ids)).order_by(Organization.id))
        )
    seller_accounts = {a.id for a in rows_of(backend, demo.organization_id, Account)}

    assert [p.kind for p in partners] == [
        OrganizationKind.DEALER,
        OrganizationKind.DEALER,
        OrganizationKind.SERVICE_PROVIDER,
    ]
    assert {p.partner_of_id for p in partners} == {demo.organization_id}
    for partner, username in zip(partners, ("demo.dealer", "demo.dealer2", "demo.service"), strict=True):
        actor = user_actor(backend, username)
        with backend.database.reading(actor) as session:
            accounts = list(session.scalars(visible(actor, Account, access=RowAccess.READ)))
            opportunities = list(session.scalars(visible(actor, Opportunity, access=RowAccess.READ)))
        assert actor.organization_id == partner.id
        assert actor.role == Role.PARTNER_USER
        assert len(accounts) == demo.counts[partner.id]["accounts"] > 0
        assert len(opportunities) == demo.counts[partner.id]["opportunities"] > 0
        assert not {a.id for a in accounts} & seller_accounts
        assert {a.organization_id for a in accounts} == {partner.id}


def test_demo_dealer_signs_in_to_a_workspace_without_the_sellers_governance_pages(
    backend: Backend, demo: DemoResult
) -> None:
    """``make run``'s dealer: none of the seller's pages in the navigation, each refused when typed in;
    the demo manager has them all. Signing in writes to the user rows: in a transaction rolled back,
    so the module's demo stays as seeded."""
    connection = backend.database.write_engine.connect()
    transaction = connection.begin()
    try:
        app = app_for(backend, Database.bound_to(connection))
        with TestClient(app, raise_server_exceptions=False) as client:
            for username, shown in (("demo.dealer", False), ("demo.manager", True)):
                client.cookies.clear()
                token = csrf_of(client.get("/login").text)
                signed_in = client.post(
                    "/login",
                    data={"username": username, "password": DEMO_PASSWORD, "csrf": token},
                    follow_redirects=False,
                )
                assert signed_in.status_code == 303, signed_in.text
                links = nav_links(client.get("/").text)
                assert (set(SELLER_PAGES) <= links) if shown else links.isdisjoint(SELLER_PAGES), username
                assert "/accounts" in links
                for path in SELLER_PAGES:
                    assert client.get(path).status_code == (200 if shown else 403), (username, path)
    finally:
        transaction.rollback()
        connection.close()


def test_the_first_quality_scan_ran_so_team_scorecards_and_owners_tasks_are_there_at_once(
    backend: Backend, demo: DemoResult
) -> None:
    """Seeding ends with the nightly job's scan of every demo organization: each has one finished
    scan, its defects are owners' open tasks, and the scorecards read its KPI snapshots."""
    from closeloop.crm.tasks.models import Task
    from closeloop.forecasting import scorecards
    from closeloop.quality.models import Defect, Scan, ScanStatus

    assert set(demo.defects) == {demo.organization_id, *demo.partner_ids}
    assert demo.defects[demo.organization_id] > 0
    with backend.database.reading(None, system=True) as session:
        for organization_id, opened in demo.defects.items():
            scans = list(session.scalars(select(Scan).where(tenant_clause(organization_id, Scan))))
            assert [(scan.status, scan.full) for scan in scans] == [(ScanStatus.DONE, True)], organization_id
            defects = session.scalar(select(func.count()).where(tenant_clause(organization_id, Defect)))
            tasks = session.scalar(
                select(func.count()).where(
                    tenant_clause(organization_id, Task), Task.status == "open", Task.source.like("quality:%")
                )
            )
            assert defects == opened, organization_id
            assert tasks == opened, organization_id
    manager, vice_president = user_actor(backend, "demo.manager"), user_actor(backend, "demo.sales_vp")
    with backend.database.reading(manager) as session:
        mine = scorecards.team_scorecard(session, manager)["items"]
    with backend.database.reading(vice_president) as session:
        every = scorecards.team_scorecard(session, vice_president)["items"]
    assert [row["manager_id"] for row in mine] == [manager.user_id]
    assert mine[0]["quality"]["scan_id"] is not None
    assert 0 < mine[0]["quality"]["defects_total"] < demo.defects[demo.organization_id]
    assert len(every) > 1
    assert all(row["quality"]["scan_id"] == mine[0]["quality"]["scan_id"] for row in every)


def test_the_sales_team_sees_its_own_slice(backend: Backend, demo: DemoResult) -> None:
    rep, manager, vice_president = (user_actor(backend, f"demo.{n}") for n in ("rep", "manager", "sales_vp"))
    with backend.database.reading(None, system=True) as session:
        team = set(session.scalars(select(User.id).where(User.manager_id == manager.user_id)))
    partner_accounts = {a.id for partner in demo.partner_ids for a in rows_of(backend, partner, Account)}
    with backend.database.reading(rep) as session:
        rep_accounts = list(session.scalars(visible(rep, Account, access=RowAccess.WRITE)))
        rep_readable = {a.id for a in session.scalars(visible(rep, Account, access=RowAccess.READ))}
        rep_deal_accounts = set(
            session.scalars(
                visible(rep, Opportunity, access=RowAccess.WRITE)
                .with_only_columns(Opportunity.account_id)
                .where(Opportunity.account_id.is_not(None))
            )
        )
        rep_child_accounts = {
            account_id
            for child in (Contact, Ticket)
            for account_id in session.scalars(
                visible(rep, child, access=RowAccess.WRITE).with_only_columns(child.account_id)
            )
            if account_id is not None
        }
    with backend.database.reading(manager) as session:
        manager_accounts = list(session.scalars(visible(manager, Account, access=RowAccess.WRITE)))
    with backend.database.reading(vice_president) as session:
        all_accounts = {a.id for a in session.scalars(visible(vice_president, Account, access=RowAccess.READ))}

    assert rep.user_id in team
    assert len(team) >= 3
    assert rep_accounts
    assert {a.owner_id for a in rep_accounts} == {rep.user_id}
    assert {a.owner_id for a in manager_accounts} <= team | {manager.user_id}
    assert len(manager_accounts) > len(rep_accounts)
    assert len(all_accounts) == demo.counts[demo.organization_id]["accounts"]
    # the rep also reads (only reads) the accounts of its own deals, contacts and tickets that others own
    assert rep_readable == {a.id for a in rep_accounts} | rep_deal_accounts | rep_child_accounts
    assert rep_deal_accounts - {a.id for a in rep_accounts}
    assert not all_accounts & partner_accounts


def test_every_demo_organization_has_an_intact_audit_chain_with_one_summary_per_table(
    backend: Backend, demo: DemoResult
) -> None:
    with backend.database.reading(None, system=True) as session:
        for organization_id in (demo.organization_id, *demo.partner_ids):
            assert list(audit.verify(session, organization_id)) == []
            summaries = session.scalars(
                within_organization(organization_id, AuditEntry)
                .where(AuditEntry.action == "demo.seeded")
                .order_by(AuditEntry.seq)
            ).all()
            assert [entry.changes for entry in summaries] == [
                {name: [None, count]} for name, count in demo.counts[organization_id].items()
            ]
            assert {entry.subject_id for entry in summaries} == {organization_id}


def test_each_printed_sign_in_can_sign_in_with_the_demo_password(backend: Backend, demo: DemoResult) -> None:
    roles = [sign_in.role for sign_in in demo.sign_ins]

    assert roles == [*SIGN_IN_ROLES, Role.PARTNER_USER, Role.PARTNER_USER]
    assert demo_sign_ins(backend.database) == demo.sign_ins
    with backend.database.unit_of_work(None, system=True) as session:
        for sign_in in demo.sign_ins:
            user = org_service.authenticate(session, username=sign_in.username, password=DEMO_PASSWORD)
            assert user is not None, sign_in
            assert user.role == sign_in.role.value
            assert user.display_name == sign_in.display_name
        assert org_service.authenticate(session, username="demo.rep", password="not-the-password") is None


def test_seeding_again_with_the_same_seed_gives_the_same_data(
    backend: Backend, demo: DemoResult, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'again.db'}"
    upgrade(url)
    again_database: Database = connect(url)
    try:
        again = seed_demo(again_database)
        first = fingerprint(backend.database, [demo.organization_id, *demo.partner_ids])
        second = fingerprint(again_database, [again.organization_id, *again.partner_ids])
        first_work = _workflow_print(backend.database, demo.organization_id)
        second_work = _workflow_print(again_database, again.organization_id)
    finally:
        again_database.dispose()

    # counts per organization, in the order they were made (their ids depend on what ran before)
    assert list(again.counts.values()) == list(demo.counts.values())
    assert first == second
    assert first_work == second_work


def _workflow_print(database: Database, organization_id: int) -> list[Any]:
    """What the demo makes through the services rather than in bulk — flows, approvals, targets,
    visit plans, pool returns — without ids or clock times."""
    from closeloop.approvals.models import Approval, ApprovalFlow
    from closeloop.fieldwork.models import VisitPlan
    from closeloop.targets.models import Target

    with database.reading(None, system=True) as session:

        def rows(model: Any, *columns: Any) -> list[tuple[Any, ...]]:
            found = session.execute(select(*columns).where(tenant_clause(organization_id, model)))
            return sorted((tuple(repr(_comparable(v)) for v in row) for row in found), key=repr)

        return [
            rows(ApprovalFlow, ApprovalFlow.name, ApprovalFlow.record_type, ApprovalFlow.definition),
            rows(Approval, Approval.record_type, Approval.title, Approval.status, Approval.branch),
            rows(Target, Target.scope, Target.metric, Target.year, Target.month, Target.value),
            rows(VisitPlan, VisitPlan.plan_date),
            rows(OwnerChange, OwnerChange.action, OwnerChange.changed_at),
        ]


def test_freshness_has_real_history_and_one_stale_field(backend: Backend, demo: DemoResult) -> None:
    """The demo's field history went through change requests and the account service; the
    freshness pass found the intent level silent and told the sales VP."""
    from closeloop.quality import freshness

    assert demo.history is not None
    assert demo.history.stale == ["account.custom.intent"]
    vp = user_actor(backend, "demo.sales_vp")
    assert demo.history.alerted == {"account.custom.intent": [vp.user_id]}
    with backend.database.reading(None, system=True) as session:
        statuses = {s.key: s for s in freshness.evaluate(session, demo.organization_id)}
    assert statuses["account.custom.last_review"].status == "fresh"
    assert statuses["account.custom.intent"].status == "stale"
    assert statuses["account.custom.intent"].silent_days in range(112, 121)  # 17 weeks, give or take


def test_the_demo_has_plans_collections_an_overdue_instalment_and_targets(backend: Backend, demo: DemoResult) -> None:
    """The demo seller's lead to cash and targets: won deals with contracts, plans and collections,
    one overdue instalment that the daily run alerts on, one collection awaiting approval, targets."""
    org = demo.organization_id
    with backend.database.reading(None, system=True) as session:
        instalments = session.scalar(select(func.count()).select_from(within_organization(org, Instalment).subquery()))
        rows = session.execute(
            select(Collection.status, func.count()).where(tenant_clause(org, Collection)).group_by(Collection.status)
        ).all()
        statuses = {str(status): int(count) for status, count in rows}
        targets = session.scalar(select(func.count()).select_from(within_organization(org, Target).subquery()))
    assert instalments == 36
    assert statuses["submitted"] == 1
    assert statuses["approved"] > 10
    assert (targets or 0) > 10
    with frozen_at(ANCHOR + timedelta(hours=1)):
        cfo = org_service.system_actor(org)
        with backend.database.reading(cfo) as session:
            late = cash.overdue(session, cfo)
        assert len(late) == 1
        # the daily run writes alerts: in a transaction rolled back, so the module's demo stays as seeded
        connection = backend.database.write_engine.connect()
        transaction = connection.begin()
        try:
            with Database.bound_to(connection).unit_of_work(None, system=True) as session:
                assert run_daily(session, org).alerted == 1
        finally:
            transaction.rollback()
            connection.close()


def test_every_won_deal_has_a_contract_and_targets_follow_the_bookings(backend: Backend, demo: DemoResult) -> None:
    """A sales VP compares attainment with bookings: every won deal was signed as a contract (for
    its amount, on the day it was won), and this month's targets were set from the bookings of the
    three whole months before it — a rep's at 10 % over their average month (at least 300,000), the
    company's above its average month — so attainment is comparable with what the team books."""
    from closeloop.crm.contracts.models import Contract

    org = demo.organization_id
    with backend.database.reading(None, system=True) as session:
        won = {
            row.id: row
            for row in session.execute(
                select(Opportunity.id, Opportunity.amount, Opportunity.closed_at).where(
                    tenant_clause(org, Opportunity), Opportunity.stage == Stage.WON
                )
            )
        }
        contracts = list(session.scalars(within_organization(org, Contract)))
        reps = {u.id for u in session.scalars(within_organization(org, User)) if u.role == Role.REP}
    signed = {c.opportunity_id: c for c in contracts}
    assert set(signed) == set(won)
    assert all(signed[i].amount == won[i].amount for i in won)
    assert all(signed[i].signed_on == won[i].closed_at.date() for i in won)
    assert max(Counter(c.number for c in contracts).values()) == 1
    first, last = date(ANCHOR.year, ANCHOR.month - 3, 1), date(ANCHOR.year, ANCHOR.month, 1)
    booked: defaultdict[int | None, Decimal] = defaultdict(Decimal)
    for contract in contracts:
        if contract.signed_on is not None and first <= contract.signed_on < last:
            booked[contract.owner_id] += contract.amount or Decimal(0)
    month = {
        t.subject_key: t.value
        for t in rows_of(backend, org, Target)
        if t.month == ANCHOR.month and t.metric == "contract_amount"
    }
    assert month["company"] > sum(booked.values()) / 3
    assert len(reps) > 5
    # 10 % over the rep's average month, rounded up to 100,000
    expected = {rep: max(300000, math.ceil(booked[rep] / 3 * Decimal("1.1") / 100000) * 100000) for rep in reps}
    assert {rep: month[f"user:{rep}"] for rep in reps} == expected
    assert len({month[f"user:{rep}"] for rep in reps}) > 5  # set per rep, not one figure for all


def test_demo_rep_finds_their_contracts_plans_an_invoice_and_the_overdue_instalment(
    backend: Backend, demo: DemoResult
) -> None:
    with frozen_at(ANCHOR + timedelta(hours=1)), backend.database.reading(None, system=True) as session:
        user = session.scalar(
            select(User).where(tenant_clause(demo.organization_id, User), User.username == "demo.rep")
        )
        assert user is not None
        rep = org_service.actor_for(session, user)
        contracts = records.read_page(session, rep, CONTRACTS, {"limit": "50"}).items
        assert len(contracts) >= 3
        assert {c["owner_id"] for c in contracts} == {user.id}
        approved = [c for c in cash.list_collections(session, rep) if c.status == "approved"]
        assert approved
        invoices = [i for c in contracts for i in cash.list_invoices(session, rep, contract_id=c["id"])]
        assert len(invoices) == 1
        late = cash.overdue(session, rep)
        assert len(late) == 1
        assert late[0].contract.owner_id == user.id


def _comparable(value: Any) -> Any:
    """The same value whichever database stored it: JSON with sorted keys (JSONB reorders them),
    times in UTC (PostgreSQL returns them aware, SQLite naive)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)).isoformat()
    return _plain(value)


def test_a_demo_contract_is_titled_in_its_deals_language() -> None:
    from closeloop.demo.cash import contract_title

    assert contract_title("协和医院 耗材采购") == "协和医院 耗材采购合同"
    assert contract_title("Sinoswiss United Family Clinic — Consumables") == (
        "Sinoswiss United Family Clinic — Consumables contract"
    )
    assert len(contract_title("x" * 300)) == 200
