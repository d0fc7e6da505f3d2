"""``closeloop demo --scale N``: one large seller tenant for benchmarks.

N opportunities, N/5 accounts with three contacts each, N/2 leads (about two in five converted
into an opportunity), first orders for every win and repurchases for about half the won accounts,
referrals, N/20 tickets and exactly 5×N activities. The shape follows the normal demo (same
regions, catalogue, stage walk and reply patterns) but the generator is built for throughput:
per-record facts live in compact arrays, rows are tuples in storage form, and the writing is
streamed by :class:`~closeloop.demo.loader.Loader`.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, TypeVar

from closeloop.crm import search
from closeloop.crm.enums import (
    OPEN_STAGES,
    ActivityKind,
    CompanySize,
    DecisionRole,
    Direction,
    LeadSource,
    LeadStatus,
    Stage,
    TicketStatus,
    Tier,
)
from closeloop.db.session import Database
from closeloop.demo import bulk, phrases
from closeloop.demo.catalog import SELLER_CATALOG
from closeloop.demo.loader import IdSource, Loader, Progress, TableWriter, Timeline
from closeloop.demo.names import INDUSTRIES, REGIONS, Namer, coordinates_near
from closeloop.demo.people import DEMO_PASSWORD, SignIn, add_seller_staff
from closeloop.demo.pipeline import CREDIT_LINES, LOST_IN_STAGE, STAGE_DAYS
from closeloop.demo.touches import KINDS
from closeloop.demo.world import ANCHOR, DEFAULT_SEED, WINDOW_DAYS, Catalog, Territory, add_catalog
from closeloop.org import service as org_service
from closeloop.org.passwords import hash_password

T = TypeVar("T")
DAY = 86_400
WIN_RATE = 0.36
REPURCHASE_RATE = 0.5
DEAL_TOUCHES = 4
LEAD_TOUCHES = 2


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


#: the tables loaded in bulk (the organization's users, regions and catalogue are written normally)
BULK_TABLES = tuple(name for name in bulk.TABLES if name not in ("regions", "users", "product_lines", "products"))

COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": _columns(
        "id organization_id name industry size employees annual_revenue tier region_id country province city address "
        "latitude longitude phone website credit_line currency year_established owner_id created_at updated_at version "
        "custom"
    ),
    "contacts": _columns(
        "id organization_id account_id name title title_confirmed_on department decision_role email mobile wechat "
        "owner_id created_at updated_at version custom"
    ),
    "leads": _columns(
        "id organization_id name company title email mobile source status industry region_id product_line_id owner_id "
        "received_at disqualified_reason converted_at converted_account_id converted_contact_id notes created_at "
        "updated_at version custom"
    ),
    "opportunities": _columns(
        "id organization_id name account_id contact_id stage amount currency margin expected_close_date opened_at "
        "closed_at stage_changed_at product_id lost_reason source_lead_id owner_id created_at updated_at version custom"
    ),
    "opportunity_product_lines": _columns("organization_id opportunity_id product_line_id"),
    "stage_changes": _columns(
        "organization_id opportunity_id from_stage to_stage changed_by_id changed_at duration_seconds"
    ),
    "orders": _columns(
        "id organization_id number account_id opportunity_id ordered_at status currency total owner_id created_at "
        "updated_at version"
    ),
    "order_lines": _columns("organization_id order_id position product_id description quantity unit_price amount"),
    "referrals": _columns(
        "organization_id referrer_account_id referrer_contact_id lead_id referred_at notes owner_id created_at "
        "updated_at version"
    ),
    "activities": _columns(
        "organization_id kind direction subject occurred_at user_id account_id contact_id opportunity_id lead_id "
        "is_replied replied_at duration_minutes outcome created_at updated_at version custom"
    ),
    "tickets": _columns(
        "organization_id subject description account_id contact_id product_id status priority opened_at resolved_at "
        "owner_id created_at updated_at version"
    ),
}


@dataclass(frozen=True, slots=True)
class ScaleCounts:
    """The fixed sizes of a scale tenant with ``opportunities`` deals."""

    opportunities: int

    @property
    def accounts(self) -> int:
        return max(self.opportunities // 5, 1)

    @property
    def contacts(self) -> int:
        return 3 * self.accounts

    @property
    def leads(self) -> int:
        return (self.opportunities + 1) // 2

    @property
    def activities(self) -> int:
        return 5 * self.opportunities

    @property
    def tickets(self) -> int:
        return self.opportunities // 20


def scale_teams(opportunities: int) -> dict[str, tuple[int, int]]:
    """Managers and reps per region: about one rep per 5,000 deals (at least one per region), eight reps a manager."""
    reps = max(len(REGIONS), opportunities // 5_000)
    teams = {}
    for region in REGIONS:
        region_reps = max(1, round(reps * region.weight))
        teams[region.name] = (max(1, math.ceil(region_reps / 8)), region_reps)
    return teams


@dataclass(slots=True)
class ScaleResult:
    organization_id: int
    slug: str
    counts: dict[str, int]
    sign_ins: list[SignIn]
    seconds: float
    rows_per_second: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class Picker(Generic[T]):
    """A fast weighted draw: one ``random()`` and a bisection."""

    def __init__(self, rng: random.Random, pairs: Sequence[tuple[T, float]]) -> None:
        self._random = rng.random
        self._items = [item for item, _ in pairs]
        self._cumulative = list(itertools.accumulate(weight for _, weight in pairs))
        self._total = self._cumulative[-1]

    def __call__(self) -> T:
        return self._items[bisect.bisect(self._cumulative, self._random() * self._total)]


def seed_scale(
    db: Database,
    *,
    opportunities: int,
    seed: int = DEFAULT_SEED,
    slug: str | None = None,
    progress: Progress | None = None,
) -> ScaleResult:
    """Create a seller organization with ``opportunities`` deals and everything in proportion.

    The organization, its users and catalogue are one transaction; the bulk tables are then loaded
    in batches of their own, so an interrupted load leaves a partial tenant behind (load into a
    fresh slug or database again). Ends with one ``demo.seeded`` audit entry per table.
    """
    if opportunities < 1:
        raise ValueError("a scale tenant needs at least one opportunity")
    started = time.perf_counter()
    slug = slug or f"demo-scale-{opportunities}"
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    namer = Namer(rng)
    anchor = ANCHOR
    origin = (anchor - timedelta(days=WINDOW_DAYS + 120)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = bulk.Rows()
    with db.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(
            session, name=f"华衡医疗 Scale {opportunities:,}", slug=slug, label="demo --scale"
        )
        staff = add_seller_staff(
            rows,
            namer,
            organization_id=organization.id,
            organization_name=organization.name,
            prefix=slug,
            password_hash=hash_password(DEMO_PASSWORD),
            at=origin,
            teams=scale_teams(opportunities),
        )
        catalog = add_catalog(rows, organization.id, SELLER_CATALOG, origin)
        counts = rows.counts_by_organization()[organization.id]
        real = rows.flush(session)
    actor = org_service.system_actor(organization.id, label="demo --scale")
    with Loader(db, actor, progress=progress) as loader, loader.indexes_suspended(BULK_TABLES):
        timeline = Timeline(origin, (anchor - origin).days + 400, dialect=loader.dialect)
        generator = _ScaleGenerator(
            loader, rng, namer, timeline, organization.id, ScaleCounts(opportunities), staff.territories, catalog, real
        )
        timings = generator.run()
        counts.update(generator.counts)
    with db.unit_of_work(actor) as session:
        search.refresh_keys(session, organization.id, only_missing=True)
        bulk.record_seeding(session, organization.id, counts, label="demo --scale")
        bulk.analyze(session, BULK_TABLES)
    seconds = time.perf_counter() - started
    return ScaleResult(
        organization_id=organization.id,
        slug=slug,
        counts=counts,
        sign_ins=staff.sign_ins,
        seconds=seconds,
        rows_per_second=sum(counts.values()) / seconds,
        timings=timings,
    )


class _ScaleGenerator:
    """Generates and writes the bulk tables in foreign-key order, remembering per-record facts in arrays."""

    def __init__(
        self,
        loader: Loader,
        rng: random.Random,
        namer: Namer,
        timeline: Timeline,
        organization_id: int,
        sizes: ScaleCounts,
        territories: Sequence[Territory],
        catalog: Catalog,
        real: dict[str, Sequence[int]],
    ) -> None:
        self.loader = loader
        self.rng = rng
        self.namer = namer
        self.timeline = timeline
        self.org = organization_id
        self.sizes = sizes
        self.counts: dict[str, int] = {}
        self.latest = timeline.seconds(ANCHOR - timedelta(hours=1))
        self.window_start = timeline.seconds(ANCHOR - timedelta(days=WINDOW_DAYS))
        users, regions = real["users"], real["regions"]
        #: (region spec, real region id, real owner ids)
        self.territories = [
            (t.spec, regions[_provisional(t.region_id) - 1], [users[owner - 1] for owner in t.owners])
            for t in territories
        ]
        self.pick_territory = Picker(rng, [(t, t[0].weight) for t in self.territories])
        self.pick_industry = Picker(rng, [((name, low, high), weight) for name, weight, low, high in INDUSTRIES])
        products, lines = real["products"], real["product_lines"]
        #: (real product id, spec, real line id, line spec)
        self.products = [
            (products[p.id - 1], p.spec, lines[line_id - 1], line)
            for line_id, line, items in catalog.lines
            for p in items
        ]
        line_weights = {line.code: line.weight / len(line.products) for _, line, _ in catalog.lines}
        self.pick_product = Picker(rng, [(index, line_weights[p[3].code]) for index, p in enumerate(self.products)])
        self.price_cents = [int(p[1].list_price * 100) for p in self.products]
        self.recurring = [index for index, p in enumerate(self.products) if p[1].is_recurring]
        self.pick_role = Picker(rng, phrases.OTHER_ROLES)

    def run(self) -> dict[str, float]:
        timings = {}
        for step in (
            self.accounts,
            self.contacts,
            self.leads,
            self.opportunities,
            self.orders,
            self.referrals,
            self.tickets,
            self.activities,
        ):
            started = time.perf_counter()
            step()
            timings[step.__name__] = time.perf_counter() - started
        return timings

    def _writer(self, table: str, expected: int | None = None, *parents: TableWriter) -> TableWriter:
        return TableWriter(self.loader, table, COLUMNS[table], expected, parents)

    def _close(self, *writers: TableWriter) -> None:
        for writer in writers:
            self.counts[writer.table] = writer.close()

    def _office(self, seconds: int) -> int:
        """The same Beijing day at a time between 09:00 and 18:00, never past the latest moment."""
        moment = (seconds // DAY) * DAY + 3_600 + int(self.rng.random() * 32_400)
        return moment if moment <= self.latest else moment - DAY

    # accounts and contacts ---------------------------------------------------------------------

    def accounts(self) -> None:
        rng, random_, stamp = self.rng, self.rng.random, self.timeline.stamp
        count = self.sizes.accounts
        self.account_ids = self.loader.reserve("accounts", count)
        earliest = self.timeline.seconds(ANCHOR - timedelta(days=WINDOW_DAYS + 30))
        span = self.latest - 45 * DAY - earliest
        created = sorted(earliest + int(random_() * span) for _ in range(count))
        self.account_created = array("q", created)
        self.account_owner = array("q", bytes(8 * count))
        self.account_domain: list[str] = []
        self.account_name: list[str] = []
        self.account_chinese = bytearray(count)
        self.account_hospital = bytearray(count)
        writer = self._writer("accounts", count)
        for index in range(count):
            spec, region_id, owners = self.pick_territory()
            province = rng.choice(spec.provinces)
            city = rng.choice(province.cities)
            industry, fewest, most = self.pick_industry()
            chinese = random_() < 0.8
            company = self.namer.company(industry, city, chinese=chinese, unique=False)
            employees = int(fewest * (most / fewest) ** random_())
            score = math.log(employees / fewest) / math.log(most / fewest) + (random_() - 0.5) * 0.3
            tier = Tier.A if score > 0.72 else Tier.B if score > 0.4 else Tier.C
            low, high = CREDIT_LINES[tier]
            owner = rng.choice(owners)
            self.account_owner[index] = owner
            self.account_domain.append(company.domain)
            self.account_name.append(company.name)
            self.account_chinese[index] = chinese
            self.account_hospital[index] = industry == "医院"
            at = stamp(created[index])
            writer.add(
                (
                    self.account_ids[index],
                    self.org,
                    company.name,
                    industry,
                    CompanySize.from_employees(employees).value,
                    employees,
                    employees * int(250_000 + random_() * 950_000) // 10_000 * 1_000_000,
                    tier.value,
                    region_id,
                    "中国",
                    province.name,
                    city.name,
                    self.namer.address(province, city, chinese=chinese),
                    *coordinates_near(city.name, company.name),
                    self.namer.landline(city),
                    f"www.{company.domain}" if random_() < 0.7 else None,
                    int(low + random_() * (high - low)) // 100_000 * 10_000_000,
                    "CNY",
                    rng.randint(1950, 2022),
                    owner,
                    at,
                    at,
                    1,
                    "{}",
                )
            )
        self._close(writer)

    def contacts(self) -> None:
        rng, random_, timeline = self.rng, self.rng.random, self.timeline
        count = self.sizes.contacts
        self.contact_ids = self.loader.reserve("contacts", count)
        today = self.latest // DAY
        writer = self._writer("contacts", count)
        titles = phrases.TITLES
        departments = phrases.DEPARTMENTS
        for index in range(count):
            account = index // 3
            role = DecisionRole.DECISION_MAKER if index % 3 == 0 else self.pick_role()
            chinese = bool(self.account_chinese[account])
            key = (bool(self.account_hospital[account]), chinese)
            person = self.namer.person(chinese=chinese)
            created = self.account_created[account] + int(random_() * 30 * DAY)
            created = min(created, self.latest)
            draw = random_()
            confirmed_day = created // DAY if draw < 0.35 else today - int(random_() * 180)
            at = timeline.stamp(created)
            writer.add(
                (
                    self.contact_ids[index],
                    self.org,
                    self.account_ids[account],
                    person.name,
                    rng.choice(titles[key][role]),
                    None if draw < 0.08 else timeline.date(max(confirmed_day, created // DAY) * DAY),
                    departments[key][role],
                    role.value,
                    f"{person.email_local}@{self.account_domain[account]}",
                    self.namer.mobile(),
                    self.namer.wechat(person) if chinese and random_() < 0.6 else None,
                    self.account_owner[account],
                    at,
                    at,
                    1,
                    "{}",
                )
            )
        self._close(writer)

    # leads -------------------------------------------------------------------------------------

    def leads(self) -> None:
        """Leads in time order; about two in five old enough are converted, each into one opportunity."""
        rng, random_, timeline = self.rng, self.rng.random, self.timeline
        count, deals = self.sizes.leads, self.sizes.opportunities
        self.lead_ids = self.loader.reserve("leads", count)
        self.opportunity_ids = self.loader.reserve("opportunities", deals)
        span = self.latest - self.window_start
        received = sorted(self.window_start + int(span * (1 - math.sqrt(random_()))) for _ in range(count))
        self.lead_received = array("q", received)
        old_enough = self.latest - 14 * DAY
        converted = [index for index in range(count) if received[index] < old_enough and random_() < 0.4]
        converted = converted[:deals]
        #: the opportunity each converted lead became (spread over all opportunities), and back
        self.deal_lead = array("q", [-1]) * deals
        self.deal_account = array("q", [-1]) * deals
        self.deal_opened = array("q", bytes(8 * deals))
        self.lead_end = array("q", bytes(8 * count))
        self.lead_owner = array("q", bytes(8 * count))
        self.referral_leads: list[int] = []
        conversions: dict[int, int] = {}
        for number, lead in enumerate(converted):
            conversions[lead] = number * deals // len(converted)
        pick_source = Picker(rng, [*phrases.LEAD_SOURCES, (LeadSource.REFERRAL, 0.05)])
        writer = self._writer("leads", count)
        links: list[tuple[int, int]] = []
        for index in range(count):
            at = received[index]
            spec, region_id, owners = self.pick_territory()
            city = rng.choice(rng.choice(spec.provinces).cities)
            industry = self.pick_industry()[0]
            chinese = random_() < 0.8
            person = self.namer.person(chinese=chinese)
            source = pick_source()
            deal = conversions.get(index)
            converted_at = account = contact = None
            if deal is not None:
                converted_at = min(at + DAY + int(random_() * 39 * DAY), self.latest)
                account = bisect.bisect(self.account_created, converted_at) - 1
                account = max(account - int(random_() * min(account, 5_000)), 0)
                owner: int | None = self.account_owner[account]
                contact = self.contact_ids[3 * account + int(random_() * 3)]
                self.deal_lead[deal], self.deal_account[deal], self.deal_opened[deal] = index, account, converted_at
                links.append((self.lead_ids[index], self.opportunity_ids[deal]))
                status = LeadStatus.CONVERTED
            else:
                status, owner = self._lead_status(at, owners)
            company = self.namer.company(industry, city, chinese=chinese, unique=False)
            self.lead_owner[index] = owner or 0
            self.lead_end[index] = converted_at or min(at + 30 * DAY, self.latest)
            if source is LeadSource.REFERRAL:
                self.referral_leads.append(index)
            stamp_at = timeline.stamp(at)
            line = self.products[self.pick_product()]
            writer.add(
                (
                    self.lead_ids[index],
                    self.org,
                    person.name,
                    company.name,
                    None,
                    f"{person.email_local}@{company.domain}",
                    self.namer.mobile(),
                    source.value,
                    status.value,
                    industry,
                    region_id,
                    line[2],
                    owner,
                    stamp_at,
                    rng.choice(phrases.DISQUALIFY_REASONS) if status is LeadStatus.DISQUALIFIED else None,
                    timeline.stamp(converted_at) if converted_at is not None else None,
                    self.account_ids[account] if account is not None else None,
                    contact,
                    None,
                    timeline.stamp(converted_at) if converted_at is not None else stamp_at,
                    timeline.stamp(converted_at) if converted_at is not None else stamp_at,
                    1,
                    "{}",
                )
            )
        self._close(writer)
        self._links = links

    def _lead_status(self, received: int, owners: Sequence[int]) -> tuple[LeadStatus, int | None]:
        draw = self.rng.random()
        if self.latest - received < 14 * DAY:
            return (LeadStatus.NEW, None) if draw < 0.5 else (LeadStatus.WORKING, self.rng.choice(owners))
        if draw < 0.35:
            return LeadStatus.DISQUALIFIED, self.rng.choice(owners)
        if draw < 0.45:
            return LeadStatus.QUALIFIED, self.rng.choice(owners)
        if draw < 0.48:
            return LeadStatus.NEW, None
        return LeadStatus.WORKING, self.rng.choice(owners)

    # opportunities -----------------------------------------------------------------------------

    def opportunities(self) -> None:
        """Every deal with its product line and stage walk; remembers wins for the orders."""
        random_, timeline = self.rng.random, self.timeline
        deals = self.sizes.opportunities
        self.deal_end = array("q", bytes(8 * deals))
        self.deal_is_open = bytearray(deals)
        self.account_first_win = array("q", [-1]) * self.sizes.accounts
        #: (deal index, closed at, product index, quantity, unit price in cents)
        self.wins: list[tuple[int, int, int, int, int]] = []
        opportunities = self._writer("opportunities", deals)
        lines = self._writer("opportunity_product_lines", deals, opportunities)
        moves = self._writer("stage_changes", None, opportunities)
        lost_reasons = phrases.LOST_REASONS
        stamp = timeline.stamp
        for index in range(deals):
            account = self.deal_account[index]
            if account < 0:
                account = int(random_() * self.sizes.accounts)
                created = self.account_created[account]
                room = max(self.latest - created - 2 * DAY, DAY)
                opened = self._office(created + 2 * DAY + int(random_() * room))
                opened = max(min(opened, self.latest), created)
                self.deal_account[index], self.deal_opened[index] = account, opened
            opened = self.deal_opened[index]
            owner = self.account_owner[account]
            product_index = self.pick_product()
            real_product, spec, line_id, line = self.products[product_index]
            low, high = spec.quantity
            quantity = low + int(random_() * (high - low + 1))
            price = self.price_cents[product_index] * (80 + int(random_() * 21)) // 100
            stage, path, closed = self._walk(opened)
            deal_id = self.opportunity_ids[index]
            last = path[-1][2]
            self.deal_end[index] = closed if closed is not None else self.latest
            self.deal_is_open[index] = closed is None
            if stage == _WON and closed is not None:
                self.wins.append((index, closed, product_index, quantity, price))
                first = self.account_first_win[account]
                self.account_first_win[account] = closed if first < 0 else min(first, closed)
            if self.account_chinese[account]:
                name = f"{self.account_name[account]}{line.name}采购项目"
            else:
                name = f"{self.account_name[account]} – {line.name_en}"
            expected = closed if closed is not None else last + (20 + int(random_() * 60)) * DAY
            opportunities.add(
                (
                    deal_id,
                    self.org,
                    name,
                    self.account_ids[account],
                    self.contact_ids[3 * account],
                    stage,
                    price * quantity,
                    "CNY",
                    int((line.margin[0] + random_() * (line.margin[1] - line.margin[0])) * 100),
                    timeline.date(expected),
                    stamp(opened),
                    stamp(closed) if closed is not None else None,
                    stamp(last),
                    real_product,
                    lost_reasons[int(random_() * len(lost_reasons))] if stage == _LOST else None,
                    None,
                    owner,
                    stamp(opened),
                    stamp(last),
                    1,
                    "{}",
                )
            )
            lines.add((self.org, deal_id, line_id))
            for from_stage, to_stage, at, seconds in path:
                moves.add((self.org, deal_id, from_stage, to_stage, owner, stamp(at), seconds))
        self._close(opportunities, lines, moves)
        self.loader.link("opportunities", "source_lead_id", [(deal, lead) for lead, deal in self._links])
        self.loader.link("leads", "converted_opportunity_id", self._links)

    def _walk(self, opened: int) -> tuple[str, list[tuple[str | None, str, int, int | None]], int | None]:
        """The stage the deal reached and its dated moves (like the normal demo's, on whole seconds)."""
        random_, latest = self.rng.random, self.latest
        age_days = (latest - opened) / DAY
        closed_share = 0.97 if age_days > 240 else 0.8 if age_days > 120 else 0.5 if age_days > 60 else 0.15
        final: str | None = None
        if random_() < closed_share:
            final = _WON if random_() < WIN_RATE else _LOST
            reached = 4 if final == _WON else 1 + bisect.bisect(_LOST_CUMULATIVE, random_())
        else:
            reached = 1 + int(random_() * 4)
        targets = [*_OPEN[1:reached], final] if final else _OPEN[1:reached]
        days = [low + random_() * span for low, span in _STAGE_DAYS[: len(targets)]]
        scale = min(1.0, max(age_days - 1, 0.01) / (sum(days) or 1.0))
        at, previous = opened, _OPEN[0]
        path: list[tuple[str | None, str, int, int | None]] = [(None, previous, opened, None)]
        for target, spent in zip(targets, days, strict=True):
            moved = min(at + max(int(spent * scale * DAY), 300), latest)
            path.append((previous, target, moved, moved - at))
            at, previous = moved, target
        return final or _OPEN[reached - 1], path, at if final else None

    # orders, referrals, tickets ----------------------------------------------------------------

    def orders(self) -> None:
        """The first order of every win, then repurchases (no opportunity) for about half the won accounts."""
        random_, timeline = self.rng.random, self.timeline
        orders = self._writer("orders")
        lines = self._writer("order_lines", None, orders)
        ids = IdSource(self.loader, "orders")
        numbers: dict[str, int] = {}
        self.account_first_repurchase = array("q", [-1]) * self.sizes.accounts

        def place(
            account: int, at: int, deal: int | None, product: int, quantity: int, price: int, status: str
        ) -> None:
            year = timeline.year(at)
            numbers[year] = numbers.get(year, 0) + 1
            order_id = ids.take()
            stamp = timeline.stamp(at)
            total = quantity * price
            orders.add(
                (
                    order_id,
                    self.org,
                    f"SO-{year}-{numbers[year]:06d}",
                    self.account_ids[account],
                    self.opportunity_ids[deal] if deal is not None else None,
                    stamp,
                    status,
                    "CNY",
                    total,
                    self.account_owner[account],
                    stamp,
                    stamp,
                    1,
                )
            )
            lines.add(
                (
                    self.org,
                    order_id,
                    1,
                    self.products[product][0],
                    self.products[product][1].name,
                    quantity * 1000,
                    price,
                    total,
                )
            )

        for deal, closed, product, quantity, price in self.wins:
            at = min(closed + DAY + int(random_() * 11 * DAY), self.latest)
            place(self.deal_account[deal], at, deal, product, quantity, price, self._order_status(at))
        for account in range(self.sizes.accounts):
            first_win = self.account_first_win[account]
            if first_win < 0 or random_() >= REPURCHASE_RATE:
                continue
            at = first_win
            for _ in range(1 + int(random_() * 3)):
                at += (30 + int(random_() * 120)) * DAY
                if at > self.latest - DAY:
                    break
                product = self.recurring[int(random_() * len(self.recurring))]
                low, high = self.products[product][1].quantity
                quantity = low + int(random_() * (high - low + 1))
                price = self.price_cents[product] * (85 + int(random_() * 16)) // 100
                cancelled = random_() < 0.04
                place(account, at, None, product, quantity, price, "cancelled" if cancelled else self._order_status(at))
                if not cancelled and self.account_first_repurchase[account] < 0:
                    self.account_first_repurchase[account] = at
        self._close(orders, lines)

    def _order_status(self, at: int) -> str:
        age = (self.latest - at) // DAY
        return "confirmed" if age < 15 else "shipped" if age < 40 else "delivered"

    def referrals(self) -> None:
        """Each referral-sourced lead gets a referrer among the accounts that had repurchased before it came in."""
        rng, timeline = self.rng, self.timeline
        repurchased = sorted((at, account) for account, at in enumerate(self.account_first_repurchase) if at >= 0)
        moments = [at for at, _ in repurchased]
        writer = self._writer("referrals")
        for lead in self.referral_leads:
            received = self.lead_received[lead]
            earlier = bisect.bisect_left(moments, received)
            if earlier == 0:
                continue
            account = repurchased[rng.randrange(earlier)][1]
            stamp = timeline.stamp(received)
            writer.add(
                (
                    self.org,
                    self.account_ids[account],
                    self.contact_ids[3 * account],
                    self.lead_ids[lead],
                    stamp,
                    "老客户转介绍",
                    self.account_owner[account],
                    stamp,
                    stamp,
                    1,
                )
            )
        self._close(writer)

    def tickets(self) -> None:
        rng, random_, timeline = self.rng, self.rng.random, self.timeline
        won = [account for account, at in enumerate(self.account_first_win) if at >= 0]
        writer = self._writer("tickets", self.sizes.tickets if won else 0)
        statuses = [status.value for status in TicketStatus]
        priorities = ("low", "normal", "normal", "high", "urgent")
        for _ in range(self.sizes.tickets if won else 0):
            account = rng.choice(won)
            first = self.account_first_win[account]
            opened = first + int(random_() * max(self.latest - first, DAY))
            opened = min(opened, self.latest)
            recent = self.latest - opened < 30 * DAY
            status = rng.choice(statuses) if recent else ("closed" if random_() < 0.75 else "resolved")
            resolved = (
                min(opened + int(random_() * 10 * DAY), self.latest) if status in ("resolved", "closed") else None
            )
            product, spec, _, line = self.products[rng.choice(self.recurring)]
            stamp = timeline.stamp(opened)
            writer.add(
                (
                    self.org,
                    rng.choice(phrases.TICKET_SUBJECTS[line.code]).format(product=spec.name),
                    rng.choice(phrases.TICKET_DETAILS),
                    self.account_ids[account],
                    self.contact_ids[3 * account + 2],
                    product,
                    status,
                    rng.choice(priorities),
                    stamp,
                    timeline.stamp(resolved) if resolved is not None else None,
                    self.account_owner[account],
                    stamp,
                    timeline.stamp(resolved) if resolved is not None else stamp,
                    1,
                )
            )
        self._close(writer)

    # activities --------------------------------------------------------------------------------

    def activities(self) -> None:
        """Four touches per deal and two per lead (the last lead one when the count is odd): 5 × N in all."""
        random_, stamp, office = self.rng.random, self.timeline.stamp, self._office
        touch = _TouchTable(self.rng)
        draw = touch.draw
        writer = self._writer("activities", self.sizes.activities)
        add = writer.add
        org, latest, contacts = self.org, self.latest, self.contact_ids
        for deal in range(self.sizes.opportunities):
            account = self.deal_account[deal]
            opened, end = self.deal_opened[deal], self.deal_end[deal]
            owner = self.account_owner[account]
            account_id, deal_id = self.account_ids[account], self.opportunity_ids[deal]
            silent = self.deal_is_open[deal] and opened < latest - 60 * DAY and random_() < 0.02
            if silent:
                last = latest - (16 + int(random_() * 14)) * DAY
                moments = [opened + int(random_() * (last - 12 * DAY - opened)), last - 10 * DAY, last - 5 * DAY, last]
            else:
                span = end - opened
                moments = sorted([opened + int(random_() * span) for _ in range(DEAL_TOUCHES)])
            for number, at in enumerate(moments):
                at = max(opened, min(office(at), end))
                kind, direction, subject, is_replied, replied, minutes, outcome = (
                    touch.silent(at) if silent and number > 0 else draw(at, latest)
                )
                when = stamp(at)
                add(
                    (
                        org,
                        kind,
                        direction,
                        subject,
                        when,
                        owner,
                        account_id,
                        contacts[3 * account + int(random_() * 3)],
                        deal_id,
                        None,
                        is_replied,
                        stamp(replied) if replied is not None else None,
                        minutes,
                        outcome,
                        when,
                        when,
                        1,
                        "{}",
                    )
                )
        remaining = self.sizes.activities - self.sizes.opportunities * DEAL_TOUCHES
        for lead in range(self.sizes.leads):
            received, end = self.lead_received[lead], self.lead_end[lead]
            lead_owner = self.lead_owner[lead] or None
            for _ in range(min(LEAD_TOUCHES, remaining)):
                remaining -= 1
                at = max(received, min(office(received + int(random_() * (end - received))), end))
                kind, direction, subject, is_replied, replied, minutes, outcome = draw(at, latest)
                when = stamp(at)
                add(
                    (
                        org,
                        kind,
                        direction,
                        subject,
                        when,
                        lead_owner,
                        None,
                        None,
                        None,
                        self.lead_ids[lead],
                        is_replied,
                        stamp(replied) if replied is not None else None,
                        minutes,
                        outcome,
                        when,
                        when,
                        1,
                        "{}",
                    )
                )
        self._close(writer)


class _TouchTable:
    """Precomputed kinds, directions and subjects, so each activity costs a few ``random()`` calls."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random
        self.choice = rng.choice
        entries: list[tuple[str, str, tuple[str, ...], tuple[int, int] | None, tuple[str, ...]]] = []
        inbound = {"email": 0.2, "call": 0.25, "chat": 0.45}
        for kind, weight in KINDS:
            share = inbound.get(kind.value, 0.0)
            for direction, part in (("outbound", 1 - share), ("inbound", share)):
                templates = phrases.SUBJECTS.get((kind, _DIRECTIONS[direction]))
                if not templates or part <= 0:
                    continue
                subjects = tuple(
                    template.format(product=product.name, line=line.name, contact="客户")
                    for template in templates[0]
                    for line in SELLER_CATALOG
                    for product in line.products[:2]
                )
                minutes = {"call": (2, 40), "visit": (30, 150), "meeting": (45, 180)}.get(kind.value)
                outcomes = phrases.OUTCOMES[kind][0] if kind in phrases.OUTCOMES else ()
                entries.extend([(kind.value, direction, subjects, minutes, outcomes)] * round(weight * part * 100))
        self.entries = entries
        #: "跟进：是否收到报价？", the e-mail a silent account does not answer
        self.silent_subject = phrases.SUBJECTS[(ActivityKind.EMAIL, Direction.OUTBOUND)][0][-1]

    def draw(self, at: int, latest: int) -> tuple[str, str, str, bool | None, int | None, int | None, str | None]:
        random_ = self.random
        kind, direction, subjects, minutes, outcomes = self.entries[int(random_() * len(self.entries))]
        is_replied: bool | None = None
        replied: int | None = None
        if direction == "outbound" and kind in ("email", "chat"):
            replied = at + 1_200 + int(random_() * 3 * DAY)
            is_replied = random_() < 0.62 and replied <= latest
            if not is_replied:
                replied = None
        duration = minutes[0] + int(random_() * (minutes[1] - minutes[0])) if minutes else None
        outcome = outcomes[int(random_() * len(outcomes))] if outcomes and random_() < 0.8 else None
        return kind, direction, subjects[int(random_() * len(subjects))], is_replied, replied, duration, outcome

    def silent(self, at: int) -> tuple[str, str, str, bool | None, int | None, int | None, str | None]:
        return "email", "outbound", self.silent_subject, False, None, None, None


def _provisional(identifier: int | None) -> int:
    if identifier is None:
        raise ValueError("every territory of the scale tenant is a region of its own")
    return identifier


_LOST_CUMULATIVE = list(itertools.accumulate(LOST_IN_STAGE))[:-1]
_OPEN = [stage.value for stage in OPEN_STAGES]
_STAGE_DAYS = [(STAGE_DAYS[stage][0], STAGE_DAYS[stage][1] - STAGE_DAYS[stage][0]) for stage in OPEN_STAGES]
_WON, _LOST = Stage.WON.value, Stage.LOST.value
_DIRECTIONS = {"outbound": Direction.OUTBOUND, "inbound": Direction.INBOUND}
