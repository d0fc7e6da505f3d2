"""One tenant's business: accounts, contacts, leads (some converted), opportunities with their stage
history, orders (first orders of wins, then repurchases) and referrals.

The records follow the product's own rules, as if they had been made through the services: a
converted lead names the account, contact and opportunity it became and the opportunity names its
source lead; every opportunity's stage history starts at prospecting and walks the stages in
order with the time spent in each; a repurchase is an order without an opportunity placed after
the account's first win; a referral's lead arrives after its referrer bought.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from closeloop.crm.enums import (
    OPEN_STAGES,
    CompanySize,
    DecisionRole,
    LeadSource,
    LeadStatus,
    OrderStatus,
    Stage,
    Tier,
)
from closeloop.demo import phrases
from closeloop.demo.bulk import Rows
from closeloop.demo.catalog import ProductLineSpec
from closeloop.demo.names import Company, Namer, Person, coordinates_near
from closeloop.demo.world import (
    WINDOW_DAYS,
    AccountInfo,
    Calendar,
    ContactInfo,
    LeadInfo,
    LineInfo,
    OpportunityInfo,
    ProductRef,
    Tenant,
    Territory,
    money,
    record_columns,
)

T = TypeVar("T")

#: days an opportunity spends in each open stage, fewest and most
STAGE_DAYS: dict[Stage, tuple[float, float]] = {
    Stage.PROSPECTING: (3, 25),
    Stage.QUALIFICATION: (5, 30),
    Stage.PROPOSAL: (7, 40),
    Stage.NEGOTIATION: (5, 30),
}
#: how often a lost deal was lost in each open stage
LOST_IN_STAGE = (0.30, 0.30, 0.25, 0.15)
CREDIT_LINES: dict[Tier, tuple[int, int]] = {
    Tier.A: (3_000_000, 20_000_000),
    Tier.B: (500_000, 5_000_000),
    Tier.C: (100_000, 1_000_000),
}
TIER_WIN_BONUS: dict[Tier, float] = {Tier.A: 0.08, Tier.B: 0.0, Tier.C: -0.05}
#: deals that stall in their last stage instead of closing (the stale part of the pipeline)
STALLED_SHARE = 0.03
#: open deals past their planned close that their owner has re-dated
REDATED_SHARE = 0.5


def weighted(rng: random.Random, pairs: Sequence[tuple[T, float]]) -> T:
    """One item of ``(item, weight)`` pairs, drawn by weight."""
    return rng.choices([item for item, _ in pairs], weights=[weight for _, weight in pairs])[0]


@dataclass(frozen=True, slots=True)
class StagePlan:
    stage: Stage
    #: (from stage, to stage, when, seconds spent in the from stage)
    moves: list[tuple[Stage | None, Stage, datetime, int | None]]
    stage_changed_at: datetime
    closed_at: datetime | None
    lost_reason: str | None
    #: the close date the owner planned when the deal was opened
    planned_close: date


class PipelineBuilder:
    """Generates one tenant's records into :class:`~closeloop.demo.bulk.Rows`, remembering what it made."""

    def __init__(self, rows: Rows, rng: random.Random, namer: Namer, calendar: Calendar, tenant: Tenant) -> None:
        self.rows = rows
        self.rng = rng
        self.namer = namer
        self.calendar = calendar
        self.tenant = tenant
        self.accounts: list[AccountInfo] = []
        self.opportunities: list[OpportunityInfo] = []
        self.leads: list[LeadInfo] = []
        self.order_rows: list[dict[str, Any]] = []
        self._by_territory: dict[str, list[AccountInfo]] = defaultdict(list)
        self._ordered: set[int] = set()
        self._external_refs = 0

    # accounts and contacts ------------------------------------------------------------------

    def add_accounts(self, count: int) -> list[AccountInfo]:
        """``count`` established customers, created over the whole window, with 2-5 contacts each."""
        made = []
        for _ in range(count):
            created_at = self.calendar.days_ago(self.rng.uniform(45, WINDOW_DAYS + 30))
            account = self.new_account(created_at)
            self.add_contacts(account, self.rng.randint(2, 5), created_at)
            made.append(account)
        return made

    def territory(self) -> Territory:
        return weighted(self.rng, [(territory, territory.spec.weight) for territory in self.tenant.territories])

    def _industry(self, name: str | None) -> tuple[str, int, int]:
        if name is None:
            return weighted(self.rng, [((n, low, high), w) for n, w, low, high in self.tenant.industries])
        return next((n, low, high) for n, _, low, high in self.tenant.industries if n == name)

    def new_account(
        self,
        created_at: datetime,
        *,
        territory: Territory | None = None,
        industry: str | None = None,
        company: Company | None = None,
        chinese: bool | None = None,
        owner_id: int | None = None,
    ) -> AccountInfo:
        rng = self.rng
        territory = territory or self.territory()
        province = rng.choice(territory.spec.provinces)
        city = rng.choice(province.cities)
        industry, fewest, most = self._industry(industry)
        is_chinese = rng.random() < self.tenant.chinese_share if chinese is None else chinese
        company = company or self.namer.company(industry, city, chinese=is_chinese)
        employees = int(fewest * (most / fewest) ** rng.random())
        score = math.log(employees / fewest) / math.log(most / fewest) + rng.uniform(-0.15, 0.15)
        tier = Tier.A if score > 0.72 else Tier.B if score > 0.4 else Tier.C
        owner_id = owner_id or self._owner(territory, tier)
        parent = self._parent(industry, territory)
        latitude, longitude = coordinates_near(city.name, company.name)
        row = {
            "name": company.name,
            "industry": industry,
            "size": CompanySize.from_employees(employees).value,
            "employees": employees,
            "annual_revenue": money(employees * rng.uniform(250_000, 1_200_000), 10_000),
            "tier": tier.value,
            "region_id": territory.region_id,
            "country": "中国",
            "province": province.name,
            "city": city.name,
            "address": self.namer.address(province, city, chinese=is_chinese),
            "latitude": latitude,
            "longitude": longitude,
            "phone": self.namer.landline(city),
            "website": f"www.{company.domain}" if rng.random() < 0.7 else None,
            "credit_line": None if rng.random() < 0.1 else money(rng.uniform(*CREDIT_LINES[tier]), 100_000),
            "currency": "CNY",
            "parent_account_id": parent.id if parent else None,
            "year_established": rng.randint(1950, 2015) if industry == "医院" else rng.randint(1985, 2022),
            "external_ref": self._external_ref("ERP-C") if rng.random() < 0.4 else None,
            "owner_id": owner_id,
            **record_columns(self.tenant.organization_id, created_at, custom=True),
        }
        account = AccountInfo(
            id=self.rows.add("accounts", row),
            name=company.name,
            industry=industry,
            tier=tier,
            territory=territory,
            province=province,
            city=city,
            owner_id=owner_id,
            created_at=created_at,
            is_chinese=is_chinese,
            domain=company.domain,
        )
        self.accounts.append(account)
        self._by_territory[territory.spec.name].append(account)
        return account

    def _owner(self, territory: Territory, tier: Tier) -> int:
        if tier is Tier.A and territory.managers and self.rng.random() < 0.25:
            return self.rng.choice(territory.managers)
        return self.rng.choice(territory.owners)

    def _parent(self, industry: str, territory: Territory) -> AccountInfo | None:
        """Now and then a subsidiary or branch of an earlier customer of the same industry."""
        if self.rng.random() >= 0.03:
            return None
        candidates = [a for a in self._by_territory[territory.spec.name][-200:] if a.industry == industry]
        return self.rng.choice(candidates) if candidates else None

    def _external_ref(self, prefix: str) -> str:
        self._external_refs += 1
        return f"{prefix}{self._external_refs:06d}"

    def add_contacts(self, account: AccountInfo, count: int, since: datetime, *, first: int = 0) -> None:
        """Contacts ``first``..``count - 1`` of the account; contact 0 is its decision maker."""
        for index in range(first, count):
            role = DecisionRole.DECISION_MAKER if index == 0 else weighted(self.rng, phrases.OTHER_ROLES)
            at = self.calendar.after(since, 0, 90) if index else since
            self.new_contact(account, at, role)

    def new_contact(
        self,
        account: AccountInfo,
        at: datetime,
        role: DecisionRole,
        *,
        person: Person | None = None,
        title: str | None = None,
    ) -> ContactInfo:
        rng = self.rng
        key = (account.industry == "医院", account.is_chinese)
        person = person or self.namer.person(chinese=account.is_chinese)
        row = {
            "account_id": account.id,
            "name": person.name,
            "title": title or rng.choice(phrases.TITLES[key][role]),
            "title_confirmed_on": self._title_confirmed_on(at),
            "department": phrases.DEPARTMENTS[key][role],
            "decision_role": role.value,
            "email": f"{person.email_local}@{account.domain}",
            "phone": self.namer.landline(account.city) if rng.random() < 0.5 else None,
            "mobile": self.namer.mobile(),
            "wechat": self.namer.wechat(person) if account.is_chinese and rng.random() < 0.7 else None,
            "external_ref": None,
            "owner_id": account.owner_id,
            **record_columns(self.tenant.organization_id, at, custom=True),
        }
        contact = ContactInfo(self.rows.add("contacts", row), person.name, role, at)
        account.contacts.append(contact)
        return contact

    def _title_confirmed_on(self, created_at: datetime) -> date | None:
        """When the title was last checked: unknown for some, stale (over 180 days) for about a third."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.08:
            return None
        created = self.calendar.local_date(created_at)
        today = self.calendar.local_date(self.calendar.anchor)
        if draw < 0.38:
            latest_stale = today - timedelta(days=181)
            if created <= latest_stale:
                return created + timedelta(days=rng.randint(0, (latest_stale - created).days))
            return created
        earliest = max(created, today - timedelta(days=180))
        return earliest + timedelta(days=rng.randint(0, max((today - earliest).days, 0)))

    # leads -------------------------------------------------------------------------------------

    def add_leads(self, count: int, *, conversion_rate: float) -> None:
        """``count`` leads, more of them recently (the business grows)."""
        for _ in range(count):
            received_at = self.calendar.days_ago(self.rng.triangular(0, WINDOW_DAYS, 0))
            self.new_lead(received_at, source=weighted(self.rng, phrases.LEAD_SOURCES), conversion_rate=conversion_rate)

    def add_returning_inquiries(self, count: int) -> None:
        """``count`` new, unassigned leads from companies that are already accounts, written the way
        web forms get them (有限公司 shortened to 公司, "Co., Ltd." to "Co."): the duplicates the lead
        inbox warns of before anyone converts them into a second account."""
        candidates = [a for a in self.accounts if a.name.endswith(("有限公司", "Co., Ltd."))]
        for account in self.rng.sample(candidates, min(count, len(candidates))):
            shortened = (
                account.name.removesuffix("有限公司") + "公司"
                if account.is_chinese
                else account.name.removesuffix(", Ltd.")
            )
            received_at = self.calendar.days_ago(self.rng.uniform(0.5, 6))
            self.new_lead(
                received_at,
                source=LeadSource.WEBSITE,
                conversion_rate=0.0,
                territory=account.territory,
                company_name=shortened,
                industry=account.industry,
                is_chinese=account.is_chinese,
                status=LeadStatus.NEW,
            )

    def new_lead(
        self,
        received_at: datetime,
        *,
        source: LeadSource,
        conversion_rate: float,
        territory: Territory | None = None,
        owner_id: int | None = None,
        notes: str | None = None,
        company_name: str | None = None,
        industry: str | None = None,
        is_chinese: bool | None = None,
        status: LeadStatus | None = None,
    ) -> LeadInfo:
        """A lead; old enough ones were worked: converted, disqualified or still in progress. A given
        ``company_name`` (with its ``industry`` and language) and ``status`` are taken as they are."""
        rng = self.rng
        territory = territory or self.territory()
        city = rng.choice(rng.choice(territory.spec.provinces).cities)
        industry = industry or self._industry(None)[0]
        is_chinese = rng.random() < self.tenant.chinese_share if is_chinese is None else is_chinese
        person = self.namer.person(chinese=is_chinese)
        company = self.namer.company(industry, city, chinese=is_chinese)
        if company_name is not None:
            company = replace(company, name=company_name)
        role = weighted(self.rng, [(DecisionRole.DECISION_MAKER, 0.3), *phrases.OTHER_ROLES])
        title = rng.choice(phrases.TITLES[(industry == "医院", is_chinese)][role])
        line_id, line, _ = rng.choice(self.tenant.catalog.lines)
        status = status or self._lead_status(received_at, conversion_rate, assigned=owner_id is not None)
        if status is not LeadStatus.NEW or owner_id is not None:
            owner_id = owner_id or rng.choice(territory.owners)
        row = {
            "name": person.name,
            "company": company.name,
            "title": title,
            "email": f"{person.email_local}@{company.domain}",
            "phone": self.namer.landline(city) if rng.random() < 0.4 else None,
            "mobile": self.namer.mobile() if rng.random() < 0.85 else None,
            "source": source.value,
            "status": status.value,
            "industry": industry,
            "region_id": territory.region_id,
            "product_line_id": line_id,
            "owner_id": owner_id,
            "received_at": received_at,
            "disqualified_reason": None,
            "converted_at": None,
            "converted_account_id": None,
            "converted_contact_id": None,
            "converted_opportunity_id": None,
            "notes": notes or (rng.choice(phrases.LEAD_NOTES).format(line=line.name) if rng.random() < 0.5 else None),
            "external_ref": self._external_ref("WEB-") if source is LeadSource.WEBSITE else None,
            **record_columns(self.tenant.organization_id, received_at, custom=True),
        }
        lead = LeadInfo(self.rows.add("leads", row), owner_id, received_at, None, territory, is_chinese)
        self.leads.append(lead)
        if status is LeadStatus.CONVERTED:
            self._convert(row, lead, person, company, industry, role, title, line_id)
        elif status is LeadStatus.DISQUALIFIED:
            row["disqualified_reason"] = rng.choice(phrases.DISQUALIFY_REASONS)
            row["updated_at"] = self.calendar.after(received_at, 1, 20)
        return lead

    def _lead_status(self, received_at: datetime, conversion_rate: float, *, assigned: bool) -> LeadStatus:
        rng = self.rng
        age = (self.calendar.anchor - received_at).days
        if age < 14:
            return LeadStatus.NEW if not assigned and rng.random() < 0.55 else LeadStatus.WORKING
        draw = rng.random()
        for status, share in (
            (LeadStatus.CONVERTED, conversion_rate),
            (LeadStatus.DISQUALIFIED, 0.20),
            (LeadStatus.QUALIFIED, 0.06),
            (LeadStatus.NEW, 0.0 if assigned else 0.03),
        ):
            if draw < share:
                return status
            draw -= share
        return LeadStatus.WORKING

    def _convert(
        self,
        row: dict[str, Any],
        lead: LeadInfo,
        person: Person,
        company: Company,
        industry: str,
        role: DecisionRole,
        title: str,
        line_id: int,
    ) -> None:
        """What ``convert_lead`` does: an account (new, or an existing one), a contact, an opportunity."""
        rng = self.rng
        assert lead.owner_id is not None
        age = (self.calendar.anchor - lead.received_at).days
        at = self.calendar.after(lead.received_at, 1, max(2, min(40, age - 1)))
        account = self._existing_account(lead.territory, at) if rng.random() < 0.2 else None
        if account is None:
            account = self.new_account(
                at,
                territory=lead.territory,
                industry=industry,
                company=company,
                chinese=lead.is_chinese,
                owner_id=lead.owner_id,
            )
            contact = self.new_contact(account, at, role, person=person, title=title)
            self.add_contacts(account, rng.randint(1, 3), at, first=1)
        else:
            contact = self.new_contact(account, at, role, person=person, title=title)
        opportunity = None
        if rng.random() < 0.95:
            opportunity = self.new_opportunity(
                account,
                at,
                owner_id=lead.owner_id,
                contact_id=contact.id,
                lead_id=lead.id,
                line_id=line_id,
                name=f"{account.name} - {person.name}",
            )
        lead.converted_at = at
        row.update(
            converted_at=at,
            converted_account_id=account.id,
            converted_contact_id=contact.id,
            converted_opportunity_id=opportunity.id if opportunity else None,
            updated_at=at,
        )

    def _existing_account(self, territory: Territory, before: datetime) -> AccountInfo | None:
        candidates = self._by_territory[territory.spec.name]
        for _ in range(10):
            if not candidates:
                return None
            account = self.rng.choice(candidates)
            if account.created_at < before:
                return account
        return None

    # opportunities -----------------------------------------------------------------------------

    def add_direct_opportunities(self, accounts: Sequence[AccountInfo]) -> None:
        """Deals opened directly on established accounts (A-tier accounts have more of them)."""
        rng = self.rng
        per_tier = {Tier.A: (1, 4), Tier.B: (0, 3), Tier.C: (0, 2)}
        for account in accounts:
            for _ in range(rng.randint(*per_tier[account.tier])):
                available = (self.calendar.anchor - account.created_at).days - 2
                if available < 3:
                    break
                opened_at = self.calendar.during_office_hours(self.calendar.after(account.created_at, 2, available))
                contact = account.contact(rng, DecisionRole.DECISION_MAKER, DecisionRole.CHAMPION)
                self.new_opportunity(
                    account, opened_at, owner_id=account.owner_id, contact_id=contact.id if contact else None
                )

    def new_opportunity(
        self,
        account: AccountInfo,
        opened_at: datetime,
        *,
        owner_id: int,
        contact_id: int | None,
        lead_id: int | None = None,
        line_id: int | None = None,
        name: str | None = None,
    ) -> OpportunityInfo:
        rng = self.rng
        catalog = self.tenant.catalog
        if line_id is None:
            line_id, line, products = weighted(rng, [(entry, entry[1].weight) for entry in catalog.lines])
        else:
            line, products = next((spec, items) for i, spec, items in catalog.lines if i == line_id)
        lines = self._deal_lines(products)
        amount = sum((item.amount for item in lines), Decimal(0))
        plan = self._plan_stages(opened_at, self.tenant.win_rate + TIER_WIN_BONUS[account.tier])
        main = lines[0].product
        row = {
            "name": name or self._deal_name(account, line),
            "account_id": account.id,
            "contact_id": contact_id,
            "stage": plan.stage.value,
            "amount": amount,
            "currency": "CNY",
            "margin": Decimal(f"{rng.uniform(*line.margin):.2f}"),
            "expected_close_date": self._expected_close(plan),
            "opened_at": opened_at,
            "closed_at": plan.closed_at,
            "stage_changed_at": plan.stage_changed_at,
            "product_id": main.id,
            "lost_reason": plan.lost_reason,
            "source_lead_id": lead_id,
            "description": self._deal_description(account, main, amount) if rng.random() < 0.4 else None,
            "external_ref": None,
            "owner_id": owner_id,
            **record_columns(self.tenant.organization_id, opened_at, custom=True),
        }
        row["updated_at"] = plan.stage_changed_at
        organization_id = self.tenant.organization_id
        opportunity_id = self.rows.add("opportunities", row)
        self.rows.add(
            "opportunity_product_lines",
            {"organization_id": organization_id, "opportunity_id": opportunity_id, "product_line_id": line_id},
        )
        for from_stage, to_stage, at, seconds in plan.moves:
            self.rows.add(
                "stage_changes",
                {
                    "organization_id": organization_id,
                    "opportunity_id": opportunity_id,
                    "from_stage": from_stage.value if from_stage else None,
                    "to_stage": to_stage.value,
                    "changed_by_id": owner_id,
                    "changed_at": at,
                    "duration_seconds": seconds,
                },
            )
        opportunity = OpportunityInfo(
            opportunity_id,
            account,
            contact_id,
            owner_id,
            opened_at,
            plan.stage,
            plan.stage_changed_at,
            plan.closed_at,
            lines,
        )
        self.opportunities.append(opportunity)
        if plan.stage is Stage.WON and plan.closed_at is not None:
            first = account.first_win_at
            account.first_win_at = plan.closed_at if first is None else min(first, plan.closed_at)
        return opportunity

    def _deal_lines(self, products: Sequence[ProductRef]) -> list[LineInfo]:
        """A first deal is mostly equipment, sometimes with the consumables that go with it."""
        rng = self.rng
        equipment = [p for p in products if not p.spec.is_recurring]
        recurring = [p for p in products if p.spec.is_recurring]
        main = rng.choice(equipment) if equipment and rng.random() < 0.8 else rng.choice(list(products))
        lines = [self.line(main)]
        extras = [p for p in recurring if p is not main]
        if extras and rng.random() < 0.35:
            lines.append(self.line(rng.choice(extras)))
        return lines

    def line(self, product: ProductRef) -> LineInfo:
        """A priced line: a quantity in the product's usual range at a negotiated net price."""
        spec = product.spec
        quantity = self.rng.randint(*spec.quantity)
        price = spec.list_price * Decimal(str(round(self.rng.uniform(0.8, 1.0), 3)))
        step = 100 if spec.list_price >= 10_000 else 1 if spec.list_price >= 100 else 0
        return LineInfo(product, quantity, money(price, step))

    def _deal_name(self, account: AccountInfo, line: ProductLineSpec) -> str:
        if account.is_chinese:
            return f"{account.name}{line.name}采购项目"
        return f"{account.name} – {line.name_en}"

    def _deal_description(self, account: AccountInfo, product: ProductRef, amount: Decimal) -> str:
        if account.is_chinese:
            return f"客户计划采购{product.spec.name}，预算约 {amount / 10_000:,.0f} 万元。"
        return f"Plans to buy {product.spec.name}; budget about CNY {amount:,.0f}."

    def _plan_stages(self, opened_at: datetime, win_rate: float) -> StagePlan:
        """Where the deal is by the anchor, the dated path of stage moves that got it there, and the
        close date its owner planned when it was opened.

        The deal's whole path is drawn first: won or lost, the stages it passes (a lost deal stops
        in one of them and is marked lost a little later), the days spent in each. It is closed by
        the anchor only if that path fits in its age; otherwise it stands in the stage it has
        reached. A few deals stall in their last stage instead of closing (the stale pipeline every
        CRM has). The planned close is the whole path's typical length, under- or overestimated
        by the owner — so won deals slip against their plan the way real ones do, which is what
        the bookings forecast learns its close-date slippage from."""
        rng = self.rng
        calendar = self.calendar
        age = (calendar.anchor - opened_at).total_seconds() / 86_400
        outcome = Stage.WON if rng.random() < win_rate else Stage.LOST
        reached = 4 if outcome is Stage.WON else weighted(rng, list(zip((1, 2, 3, 4), LOST_IN_STAGE, strict=True)))
        full = [rng.uniform(*STAGE_DAYS[stage]) for stage in OPEN_STAGES]
        days = full[:reached]
        if outcome is Stage.LOST:
            days[-1] += rng.uniform(0, 30)  # a lost deal is marked lost a while after it went quiet
        planned = sum(full) * rng.uniform(0.6, 1.1)
        stalled = rng.random() < STALLED_SHARE
        closes = sum(days) <= age - 0.5 and not stalled
        visited = list(OPEN_STAGES[:reached])
        if closes:
            targets: list[Stage] = [*visited[1:], outcome]
        else:
            # the stage in progress at the anchor (a stalled deal: its last one)
            elapsed, current = 0.0, len(visited) - 1
            for index, spent in enumerate(days):
                if elapsed + spent > age - 1.0:
                    current = index
                    break
                elapsed += spent
            visited = visited[: current + 1]
            targets = visited[1:]
        moves: list[tuple[Stage | None, Stage, datetime, int | None]] = [(None, Stage.PROSPECTING, opened_at, None)]
        at = opened_at
        limit = calendar.latest
        for previous, target, spent in zip(visited, targets, days, strict=False):
            moved = min(calendar.during_office_hours(at + timedelta(days=spent)), limit)
            if moved <= at:
                moved = at + timedelta(minutes=rng.randint(5, 90))
            moves.append((previous, target, moved, int((moved - at).total_seconds())))
            at = moved
        stage = outcome if closes else visited[-1]
        lost_reason = rng.choice(phrases.LOST_REASONS) if stage is Stage.LOST else None
        planned_close = calendar.local_date(opened_at + timedelta(days=planned))
        return StagePlan(stage, moves, at, at if closes else None, lost_reason, planned_close)

    def _expected_close(self, plan: StagePlan) -> date:
        """The planned close; an open deal past it has been re-dated by its owner about half the time."""
        today = self.calendar.local_date(self.calendar.anchor)
        if plan.closed_at is None and plan.planned_close < today and self.rng.random() < REDATED_SHARE:
            return today + timedelta(days=self.rng.randint(7, 60))
        return plan.planned_close

    # orders ------------------------------------------------------------------------------------

    def add_initial_orders(self) -> None:
        """The order of every won deal not yet ordered, a few days after the win."""
        for opportunity in self.opportunities:
            if opportunity.stage is not Stage.WON or opportunity.id in self._ordered:
                continue
            assert opportunity.closed_at is not None
            self._ordered.add(opportunity.id)
            at = self.calendar.after(opportunity.closed_at, 1, 12)
            self._order(opportunity.account, at, opportunity.lines, opportunity.id, opportunity.owner_id)

    def add_repurchases(self, rate: float) -> None:
        """Later orders (no opportunity) from a share of the won accounts: reagents, consumables, renewals."""
        rng = self.rng
        horizon = self.calendar.anchor - timedelta(days=1)
        for account in self.accounts:
            if account.first_win_at is None or rng.random() >= rate + (0.15 if account.tier is Tier.A else 0.0):
                continue
            at = account.first_win_at
            for number in range(rng.randint(1, 4)):
                later = at + timedelta(days=rng.uniform(30, 150) + 10 * number)
                if later >= horizon:
                    break
                at = max(self.calendar.during_office_hours(later), at + timedelta(days=1))
                candidates = self._repurchasable(account)
                lines = [self.line(p) for p in rng.sample(candidates, min(len(candidates), rng.randint(1, 2)))]
                status = OrderStatus.CANCELLED if rng.random() < 0.04 else None
                self._order(account, at, lines, None, account.owner_id, status)
                if status is None and account.first_repurchase_at is None:
                    account.first_repurchase_at = at

    def _repurchasable(self, account: AccountInfo) -> list[ProductRef]:
        """Recurring products of the lines the account bought from, else any recurring product."""
        lines = {product.line_id for product in account.bought}
        related = [p for p in self.tenant.catalog.recurring() if p.line_id in lines]
        return related or self.tenant.catalog.recurring()

    def _order(
        self,
        account: AccountInfo,
        at: datetime,
        lines: Sequence[LineInfo],
        opportunity_id: int | None,
        owner_id: int,
        status: OrderStatus | None = None,
    ) -> None:
        organization_id = self.tenant.organization_id
        row: dict[str, Any] = {
            "number": "",
            "account_id": account.id,
            "opportunity_id": opportunity_id,
            "contract_id": None,
            "ordered_at": at,
            "status": (status or self._order_status(at)).value,
            "currency": "CNY",
            "total": sum((item.amount for item in lines), Decimal(0)),
            "owner_id": owner_id,
            **record_columns(organization_id, at),
        }
        order_id = self.rows.add("orders", row)
        self.order_rows.append(row)
        for position, item in enumerate(lines, start=1):
            self.rows.add(
                "order_lines",
                {
                    "organization_id": organization_id,
                    "order_id": order_id,
                    "position": position,
                    "product_id": item.product.id,
                    "description": item.product.spec.name,
                    "quantity": Decimal(item.quantity),
                    "unit_price": item.unit_price,
                    "amount": item.amount,
                },
            )
            if item.product not in account.bought:
                account.bought.append(item.product)

    def _order_status(self, at: datetime) -> OrderStatus:
        age = (self.calendar.anchor - at).days
        if age < 3:
            return OrderStatus.PENDING if self.rng.random() < 0.4 else OrderStatus.CONFIRMED
        if age < 15:
            return OrderStatus.CONFIRMED
        return OrderStatus.SHIPPED if age < 40 else OrderStatus.DELIVERED

    def number_orders(self) -> None:
        """Number the orders per year in the order they were placed: ``SO-2025-00042``."""
        counters: dict[int, int] = defaultdict(int)
        for row in sorted(self.order_rows, key=lambda r: (r["ordered_at"], r["id"])):
            year = row["ordered_at"].year
            counters[year] += 1
            row["number"] = f"SO-{year}-{counters[year]:05d}"

    # referrals ---------------------------------------------------------------------------------

    def add_referrals(self, rate: float) -> None:
        """Customers refer new leads: mostly accounts that repurchased (after repurchasing), a few after a win."""
        rng = self.rng
        cutoff = self.calendar.anchor - timedelta(days=20)
        for account in list(self.accounts):
            if account.first_repurchase_at is not None and account.first_repurchase_at < cutoff:
                if rng.random() < rate:
                    at = account.first_repurchase_at
                    for _ in range(1 + (rng.random() < 0.2)):
                        at = self.calendar.after(at, 5, 150, limit=self.calendar.anchor - timedelta(days=1))
                        self._referral(account, at)
            elif account.first_win_at is not None and account.first_win_at < cutoff and rng.random() < rate / 5:
                self._referral(
                    account, self.calendar.after(account.first_win_at, 10, 200, limit=cutoff + timedelta(days=19))
                )

    def _referral(self, account: AccountInfo, at: datetime) -> None:
        rng = self.rng
        contact = account.contact(rng, DecisionRole.CHAMPION, DecisionRole.DECISION_MAKER)
        same_region = rng.random() < 0.75
        territory = account.territory if same_region else self.territory()
        note = f"由{account.name}的{contact.name}推荐" if contact else f"由{account.name}推荐"
        lead = self.new_lead(
            at,
            source=LeadSource.REFERRAL,
            conversion_rate=0.6,
            territory=territory,
            owner_id=account.owner_id if same_region else rng.choice(territory.owners),
            notes=note,
        )
        self.rows.add(
            "referrals",
            {
                "referrer_account_id": account.id,
                "referrer_contact_id": contact.id if contact else None,
                "lead_id": lead.id,
                "referred_at": at,
                "notes": note,
                "owner_id": account.owner_id,
                **record_columns(self.tenant.organization_id, at),
            },
        )
