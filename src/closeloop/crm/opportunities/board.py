"""The pipeline board's reads: one column per stage with its count and amount, and the first cards
of each column (UI-1, the board of issue #3).

Moves do not live here: the board moves a card through :func:`service.move_stage`, the same call
as the API. Everything is read within the actor's row scope; a card carries only the fields the
actor may read (``visible_fields``), so a masked field never reaches a page or a fragment.

Open stages show every open deal; *won* and *lost* show the deals closed in the last
:data:`CLOSED_WINDOW_DAYS` days (the demo's executives would otherwise see years of history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import utcnow
from closeloop.crm import records
from closeloop.crm.accounts.models import Account
from closeloop.crm.enums import OPEN_STAGES, Stage
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine
from closeloop.crm.opportunities.service import OPPORTUNITIES
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.governance.permissions import require
from closeloop.org.models import Region, User

#: the board's columns, left to right
BOARD_STAGES: tuple[Stage, ...] = (*OPEN_STAGES, Stage.WON, Stage.LOST)
#: how far back the *won* and *lost* columns reach
CLOSED_WINDOW_DAYS = 30
#: cards shown per column before "show more"
CARDS_PER_COLUMN = 20
#: the fields a card shows (each only when the actor may read it)
CARD_FIELDS = (
    "id",
    "name",
    "stage",
    "account_id",
    "amount",
    "currency",
    "owner_id",
    "expected_close_date",
    "closed_at",
    "version",
)


@dataclass(frozen=True, slots=True)
class BoardFilters:
    """Which deals the board shows: one owner, one region (of the account), one product line."""

    owner_id: int | None = None
    region_id: int | None = None
    product_line_id: int | None = None


@dataclass(slots=True)
class Card:
    id: int
    name: str
    stage: Stage
    version: int
    account_id: int | None = None
    account_name: str | None = None
    owner_id: int | None = None
    owner_name: str | None = None
    expected_close_date: date | None = None
    closed_at: datetime | None = None
    #: absent (None) when the actor may not read it
    amount: Decimal | None = None
    currency: str = "CNY"

    @property
    def is_overdue(self) -> bool:
        return (
            self.expected_close_date is not None
            and not self.stage.is_closed
            and self.expected_close_date < utcnow().date()
        )


@dataclass(slots=True)
class Column:
    stage: Stage
    count: int = 0
    #: currency → sum of amounts (empty when the actor may not read amounts)
    totals: dict[str, Decimal] = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return max(self.count - len(self.cards), 0)


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    name: str


@dataclass(slots=True)
class FilterChoices:
    owners: list[Choice]
    regions: list[Choice]
    product_lines: list[Choice]


def _stage_clause(stage: Stage, since: datetime) -> ColumnElement[bool]:
    clause: ColumnElement[bool] = Opportunity.stage == stage.value
    if stage.is_closed:
        clause = clause & (Opportunity.closed_at >= since)
    return clause


def _board_clauses(actor: Actor, filters: BoardFilters, since: datetime) -> list[ColumnElement[bool]]:
    """The deals on the board: visible, on one of its columns, within the filters."""
    clauses: list[ColumnElement[bool]] = [
        visibility_clause(actor, Opportunity, access=RowAccess.READ),
        or_(
            Opportunity.stage.in_([stage.value for stage in OPEN_STAGES]),
            Opportunity.stage.in_([Stage.WON.value, Stage.LOST.value]) & (Opportunity.closed_at >= since),
        ),
    ]
    if filters.owner_id is not None:
        clauses.append(Opportunity.owner_id == filters.owner_id)
    if filters.region_id is not None:
        clauses.append(
            exists(
                select(Account.id).where(
                    tenant_clause(actor.organization_id, Account),
                    Account.id == Opportunity.account_id,
                    Account.region_id == filters.region_id,
                )
            )
        )
    if filters.product_line_id is not None:
        clauses.append(
            or_(
                exists(
                    select(OpportunityProductLine.opportunity_id).where(
                        tenant_clause(actor.organization_id, OpportunityProductLine),
                        OpportunityProductLine.opportunity_id == Opportunity.id,
                        OpportunityProductLine.product_line_id == filters.product_line_id,
                    )
                ),
                exists(
                    select(Product.id).where(
                        tenant_clause(actor.organization_id, Product),
                        Product.id == Opportunity.product_id,
                        Product.product_line_id == filters.product_line_id,
                    )
                ),
            )
        )
    return clauses


def _closed_since(now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=CLOSED_WINDOW_DAYS)


def can_read_amounts(session: Session, actor: Actor) -> bool:
    return "amount" in records.visible_fields(session, actor, OPPORTUNITIES)


def stage_totals(
    session: Session, actor: Actor, *, filters: BoardFilters | None = None, now: datetime | None = None
) -> dict[Stage, Column]:
    """Each board column's count and amount sums (per currency), without cards."""
    require(actor, "opportunities:read")
    since = _closed_since(now)
    columns = {stage: Column(stage) for stage in BOARD_STAGES}
    with_amounts = can_read_amounts(session, actor)
    measures: list[Any] = [Opportunity.stage, Opportunity.currency, func.count()]
    if with_amounts:
        measures.append(func.sum(Opportunity.amount))
    statement = (
        select(*measures)
        .where(*_board_clauses(actor, filters or BoardFilters(), since))
        .group_by(Opportunity.stage, Opportunity.currency)
    )
    for row in session.execute(statement):
        column = columns[Stage(row[0])]
        column.count += int(row[2])
        if with_amounts and row[3] is not None:
            column.totals[row[1]] = column.totals.get(row[1], Decimal(0)) + Decimal(row[3])
    return columns


def column_cards(
    session: Session,
    actor: Actor,
    *,
    stage: Stage,
    filters: BoardFilters | None = None,
    offset: int = 0,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[Card]:
    """One column's cards, ``limit`` from ``offset``: open deals soonest expected close first,
    closed deals most recently closed first."""
    require(actor, "opportunities:read")
    since = _closed_since(now)
    readable = set(records.visible_fields(session, actor, OPPORTUNITIES))
    names = [name for name in CARD_FIELDS if name in readable or name in ("id", "stage", "version", "name")]
    table = Opportunity.__table__
    order: list[Any]
    if stage.is_closed:
        order = [Opportunity.closed_at.desc(), Opportunity.id.desc()]
    else:
        order = [Opportunity.expected_close_date.is_(None), Opportunity.expected_close_date, Opportunity.id]
    statement = (
        select(*(table.c[name] for name in names))
        .where(*_board_clauses(actor, filters or BoardFilters(), since), _stage_clause(stage, since))
        .order_by(*order)
        .offset(max(offset, 0))
        .limit(limit or CARDS_PER_COLUMN)
    )
    rows = [dict(zip(names, row, strict=True)) for row in session.execute(statement)]
    cards = [
        Card(
            id=row["id"],
            name=row["name"],
            stage=Stage(row["stage"]),
            version=row["version"],
            account_id=row.get("account_id"),
            owner_id=row.get("owner_id"),
            expected_close_date=row.get("expected_close_date"),
            closed_at=row.get("closed_at"),
            amount=row.get("amount"),
            currency=row.get("currency") or "CNY",
        )
        for row in rows
    ]
    _name_accounts_and_owners(session, actor, cards)
    return cards


def _name_accounts_and_owners(session: Session, actor: Actor, cards: list[Card]) -> None:
    """Accounts are named only when the actor may see them; owners are people of the organization."""
    account_ids = {card.account_id for card in cards if card.account_id is not None}
    owner_ids = {card.owner_id for card in cards if card.owner_id is not None}
    accounts: dict[int, str] = {}
    owners: dict[int, str] = {}
    if account_ids:
        found = select(Account.id, Account.name).where(
            visibility_clause(actor, Account, access=RowAccess.READ), Account.id.in_(sorted(account_ids))
        )
        accounts = dict(session.execute(found).all())
    if owner_ids:
        people = select(User.id, User.display_name).where(
            tenant_clause(actor.organization_id, User), User.id.in_(sorted(owner_ids))
        )
        owners = dict(session.execute(people).all())
    for card in cards:
        card.account_name = accounts.get(card.account_id) if card.account_id is not None else None
        card.owner_name = owners.get(card.owner_id) if card.owner_id is not None else None


def board(
    session: Session,
    actor: Actor,
    *,
    filters: BoardFilters | None = None,
    per_column: int | None = None,
    now: datetime | None = None,
) -> list[Column]:
    """Every column of the board, left to right, with its totals and its first ``per_column`` cards
    (:data:`CARDS_PER_COLUMN` by default)."""
    columns = stage_totals(session, actor, filters=filters, now=now)
    for stage, column in columns.items():
        if column.count:
            column.cards = column_cards(session, actor, stage=stage, filters=filters, limit=per_column, now=now)
    return [columns[stage] for stage in BOARD_STAGES]


def filter_choices(session: Session, actor: Actor) -> FilterChoices:
    """The owners (people whose deals the actor sees), regions and product lines to filter by."""
    require(actor, "opportunities:read")
    people = select(User.id, User.display_name).where(
        tenant_clause(actor.organization_id, User), User.is_active.is_(True)
    )
    if actor.scope is not RowScope.ALL:
        people = people.where(User.id.in_(sorted(actor.owner_ids)))
    else:
        people = people.where(
            exists(
                select(Opportunity.id).where(
                    tenant_clause(actor.organization_id, Opportunity), Opportunity.owner_id == User.id
                )
            )
        )
    owners = [Choice(*row) for row in session.execute(people.order_by(User.display_name, User.id))]
    regions = [
        Choice(*row)
        for row in session.execute(
            select(Region.id, Region.name)
            .where(tenant_clause(actor.organization_id, Region))
            .order_by(Region.name, Region.id)
        )
    ]
    lines = [
        Choice(*row)
        for row in session.execute(
            select(ProductLine.id, ProductLine.name)
            .where(visibility_clause(actor, ProductLine, access=RowAccess.READ))
            .order_by(ProductLine.name, ProductLine.id)
        )
    ]
    return FilterChoices(owners=owners, regions=regions, product_lines=lines)
