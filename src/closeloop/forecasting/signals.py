"""Inquiry-keyword signals (FC-2 input, FC-4 trigger) and stock reservations against dealers' stock.

A signal recorded here is also an outbox event ``signal.recorded`` about its account, in the same
transaction, so rules can wake on it (``closeloop.automation``: "an account searched 椎间孔镜配件 on
3 consecutive days → tell its rep and reserve 20 units"). A reservation holds units of a dealer's
reported stock for an account; releasing it gives them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core import calendar
from closeloop.core.actor import Actor
from closeloop.core.clock import as_utc, utcnow
from closeloop.core.errors import Conflict, NotFound, ValidationFailed
from closeloop.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Page
from closeloop.crm.accounts.models import Account
from closeloop.crm.products.models import Product
from closeloop.db.scope import RowAccess, tenant_clause, visibility_clause
from closeloop.forecasting.actions import account_keys
from closeloop.forecasting.models import DealerStock, InquirySignal, StockReservation
from closeloop.governance.audit import service as audit
from closeloop.governance.events import service as events
from closeloop.governance.permissions import require

SIGNAL_COLUMNS = ("account", "keyword", "occurred_at")
#: a streak is looked for over at most this many days back
STREAK_HORIZON_DAYS = 366


def record_signals(session: Session, actor: Actor, lines: Sequence[dict[str, str]]) -> int:
    """Store signals (CSV rows: ``account`` — id, external reference or exact name —, ``keyword``,
    ``occurred_at`` — an ISO date or date-time, UTC —, optional ``source`` and ``count``) and emit one
    ``signal.recorded`` event each. A bad row is refused with its line number and nothing is stored."""
    org = actor.organization_id
    if lines and (missing := [name for name in SIGNAL_COLUMNS if name not in lines[0]]):
        raise ValidationFailed.one(missing[0], "column is missing")
    accounts = account_keys(session, org)
    rows: list[InquirySignal] = []
    for number, line in enumerate(lines, start=2):
        where = f"line {number}"
        account = accounts.get((line.get("account") or "").strip())
        if account is None:
            raise ValidationFailed.one("account", f"{where}: no such account")
        keyword = (line.get("keyword") or "").strip()
        if not keyword or len(keyword) > 200:
            raise ValidationFailed.one("keyword", f"{where}: a keyword of 1 to 200 characters is expected")
        text = (line.get("occurred_at") or "").strip()
        try:
            moment = (
                datetime.combine(date.fromisoformat(text), time(12), tzinfo=UTC)
                if len(text) == 10
                else as_utc(datetime.fromisoformat(text))
            )
            count = int((line.get("count") or "1").strip() or "1")
        except ValueError:
            raise ValidationFailed.one("occurred_at", f"{where}: an ISO date and a whole count are expected") from None
        if count < 1:
            raise ValidationFailed.one("count", f"{where}: the count is at least 1")
        source = (line.get("source") or "import").strip()[:40] or "import"
        rows.append(
            InquirySignal(
                organization_id=org, account_id=account, keyword=keyword, occurred_at=moment, source=source, count=count
            )
        )
    return _store(session, actor, rows)


#: most signals one API call may carry
MAX_SIGNALS_PER_CALL = 1000
_SIGNAL_FIELDS = {"account_id", "keyword", "occurred_at", "source", "count"}


def record_signal_items(session: Session, actor: Actor, items: Sequence[Any]) -> int:
    """Store signals sent as JSON objects (``account_id``, ``keyword``, ``occurred_at`` — ISO date or
    date-time, UTC when no offset —, optional ``source`` and ``count``), all or none: the first bad
    item is refused naming its index and field (``items.3.keyword``). An account of another
    organization is refused exactly like an unknown one. Needs ``signals:write``."""
    require(actor, "signals:write")
    org = actor.organization_id
    if not isinstance(items, list) or not items:
        raise ValidationFailed.one("items", "a non-empty JSON list of signals is expected")
    if len(items) > MAX_SIGNALS_PER_CALL:
        raise ValidationFailed.one("items", f"at most {MAX_SIGNALS_PER_CALL} signals per call, {len(items)} sent")
    wanted = {
        item.get("account_id")
        for item in items
        if isinstance(item, dict) and type(item.get("account_id")) is int and 1 <= item["account_id"] < 2**63
    }
    known = (
        set(session.scalars(select(Account.id).where(tenant_clause(org, Account), Account.id.in_(sorted(wanted)))))
        if wanted
        else set()
    )
    rows: list[InquirySignal] = []
    for index, item in enumerate(items):
        where = f"items.{index}"
        if not isinstance(item, dict):
            raise ValidationFailed.one(where, "a JSON object is expected")
        if unknown := sorted(set(item) - _SIGNAL_FIELDS):
            raise ValidationFailed.one(f"{where}.{unknown[0]}", "unknown field")
        account = item.get("account_id")
        if type(account) is not int or account not in known:
            raise ValidationFailed.one(f"{where}.account_id", "no such account")
        keyword = item.get("keyword")
        if not isinstance(keyword, str) or not keyword.strip() or len(keyword.strip()) > 200 or "\x00" in keyword:
            raise ValidationFailed.one(f"{where}.keyword", "a keyword of 1 to 200 characters is expected")
        text = item.get("occurred_at")
        try:
            if not isinstance(text, str):
                raise ValueError
            text = text.strip()
            moment = (
                datetime.combine(date.fromisoformat(text), time(12), tzinfo=UTC)
                if len(text) == 10
                else as_utc(datetime.fromisoformat(text))
            )
        except (ValueError, OverflowError):
            raise ValidationFailed.one(f"{where}.occurred_at", "an ISO date or date-time is expected") from None
        count = item.get("count", 1)
        if type(count) is not int or not 1 <= count < 2**31:
            raise ValidationFailed.one(f"{where}.count", "a whole number of at least 1 is expected")
        source = item.get("source", "api")
        if source is None:
            source = "api"
        if not isinstance(source, str) or len(source.strip()) > 40 or "\x00" in source:
            raise ValidationFailed.one(f"{where}.source", "a text of at most 40 characters is expected")
        rows.append(
            InquirySignal(
                organization_id=org, account_id=account, keyword=keyword.strip(), occurred_at=moment,
                source=source.strip() or "api", count=count,
            )
        )  # fmt: skip
    return _store(session, actor, rows)


def _store(session: Session, actor: Actor, rows: list[InquirySignal]) -> int:
    """Add the signals and emit ``signal.recorded`` for each, in the session's transaction."""
    session.add_all(rows)
    session.flush()
    for row in rows:
        events.emit(
            session, actor, "signal.recorded", subject_type="account", subject_id=row.account_id,
            payload={"signal_id": row.id, "keyword": row.keyword, "source": row.source},
            occurred_at=row.occurred_at,
        )  # fmt: skip
    return len(rows)


def keyword_streak(
    session: Session, organization_id: int, account_id: int, keyword: str, now: datetime, *, timezone: str | None = None
) -> tuple[int, date | None]:
    """Consecutive days, ending on ``now``'s day, on which the account had a signal for ``keyword``
    (case-insensitive), and the streak's first day (``(0, None)`` when none today). Days are local
    days of the business time zone (``settings.business_timezone`` unless ``timezone`` names one): a
    search at 07:30 in Shanghai belongs to that Shanghai day, not to the UTC day before."""
    zone = timezone or settings.business_timezone
    today = calendar.local_date(as_utc(now), zone)
    start, _ = calendar.days_as_utc(today - timedelta(days=STREAK_HORIZON_DAYS), today, zone)
    moments = session.scalars(
        select(InquirySignal.occurred_at).where(
            tenant_clause(organization_id, InquirySignal),
            InquirySignal.account_id == account_id,
            func.lower(InquirySignal.keyword) == keyword.strip().lower(),
            InquirySignal.occurred_at >= start,
            InquirySignal.occurred_at <= now,
        )
    ).all()
    days = {calendar.local_date(as_utc(moment), zone) for moment in moments}
    streak, day = 0, today
    while day in days:
        streak += 1
        day -= timedelta(days=1)
    return streak, (day + timedelta(days=1)) if streak else None


def available(session: Session, organization_id: int, stock: DealerStock) -> Decimal:
    """What is left of a dealer's reported stock once the active reservations are held."""
    held = session.scalar(
        select(func.coalesce(func.sum(StockReservation.quantity), 0)).where(
            tenant_clause(organization_id, StockReservation),
            StockReservation.dealer_stock_id == stock.id,
            StockReservation.status == "active",
        )
    )
    return Decimal(stock.on_hand) - Decimal(held or 0)


def product_of(session: Session, organization_id: int, reference: str) -> Product | None:
    """A product by id, code or exact name."""
    reference = reference.strip()
    clauses = [Product.code == reference, Product.name == reference]
    if reference.isdigit():
        clauses.append(Product.id == int(reference))
    from sqlalchemy import or_

    return session.scalars(
        select(Product).where(tenant_clause(organization_id, Product), or_(*clauses)).order_by(Product.id).limit(1)
    ).first()


def reserve(
    session: Session, organization_id: int, *, account_id: int, product: str, quantity: Decimal, reason: str,
    decision_id: int | None = None,
) -> StockReservation:  # fmt: skip
    """Hold ``quantity`` units of ``product`` for the account, from the dealer stock with the most units
    available (ties: the lowest id). Refused, saying how many are available, when none has enough."""
    if quantity <= 0:
        raise ValidationFailed.one("quantity", "must be more than zero")
    found = product_of(session, organization_id, product)
    if found is None:
        raise ValidationFailed.one("product", f"no product {product!r} (id, code or name)")
    stocks = session.scalars(
        select(DealerStock)
        .where(tenant_clause(organization_id, DealerStock), DealerStock.product_id == found.id)
        .order_by(DealerStock.id)
        .with_for_update()
    ).all()
    best: tuple[Decimal, Any] | None = None
    for stock in stocks:
        left = available(session, organization_id, stock)
        if best is None or left > best[0]:
            best = (left, stock)
    if best is None or best[0] < quantity:
        have = best[0] if best is not None else Decimal(0)
        raise ValidationFailed.one(
            "quantity",
            f"only {have.normalize():f} units of {found.name} are available in dealers' stock, "
            f"{quantity.normalize():f} asked",
        )
    reservation = StockReservation(
        organization_id=organization_id, dealer_stock_id=best[1].id, account_id=account_id, product_id=found.id,
        quantity=quantity, status="active", reason=reason[:300], decision_id=decision_id, created_at=utcnow(),
    )  # fmt: skip
    session.add(reservation)
    session.flush()
    return reservation


RESERVATION_STATUSES = ("active", "released")


def reservation_body(row: StockReservation, account: str, product: str, code: str | None) -> dict[str, Any]:
    return {
        "id": row.id, "account_id": row.account_id, "account": account, "product_id": row.product_id,
        "product": product, "product_code": code, "dealer_stock_id": row.dealer_stock_id,
        "quantity": Decimal(row.quantity), "status": row.status, "reason": row.reason,
        "decision_id": row.decision_id, "created_at": row.created_at, "released_at": row.released_at,
    }  # fmt: skip


def list_reservations(
    session: Session, actor: Actor, *, status: str | None = None, account_id: int | None = None,
    limit: int = DEFAULT_LIMIT, cursor: str | None = None,
) -> Page[dict[str, Any]]:  # fmt: skip
    """Reservations of the accounts ``actor`` may see, newest first, one page at a time (``cursor``:
    the previous page's ``next_cursor``)."""
    require(actor, "accounts:read")
    if status is not None and status not in RESERVATION_STATUSES:
        raise ValidationFailed.one("status", "active or released")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed.one("limit", f"must be between 1 and {MAX_LIMIT}")
    org = actor.organization_id
    clauses = [tenant_clause(org, StockReservation)]
    if status is not None:
        clauses.append(StockReservation.status == status)
    if account_id is not None:
        clauses.append(StockReservation.account_id == account_id)
    if cursor:
        clauses.append(StockReservation.id < Cursor.decode(cursor, sort="-id").id)
    statement = (
        select(StockReservation, Account.name, Product.name, Product.code)
        .select_from(StockReservation)  # the account's read scope holds subqueries: name the left side
        .join(
            Account,
            and_(Account.id == StockReservation.account_id, visibility_clause(actor, Account, access=RowAccess.READ)),
        )
        .join(Product, and_(Product.id == StockReservation.product_id, tenant_clause(org, Product)))
        .where(*clauses)
        .order_by(StockReservation.id.desc())
        .limit(limit + 1)
    )
    rows = session.execute(statement).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = Cursor("-id", rows[-1][0].id, rows[-1][0].id).encode()
    return Page(items=[reservation_body(*row) for row in rows], next_cursor=next_cursor)


def release_visible(session: Session, actor: Actor, reservation_id: int) -> dict[str, Any]:
    """Release a reservation of an account ``actor`` may see (404 otherwise), audited; a reservation
    already released is a conflict. Needs ``stock_reservations:release``."""
    require(actor, "stock_reservations:release")
    org = actor.organization_id
    found = session.execute(
        select(StockReservation, Account.name, Product.name, Product.code)
        .select_from(StockReservation)  # the account's read scope holds subqueries: name the left side
        .join(
            Account,
            and_(Account.id == StockReservation.account_id, visibility_clause(actor, Account, access=RowAccess.WRITE)),
        )
        .join(Product, and_(Product.id == StockReservation.product_id, tenant_clause(org, Product)))
        .where(tenant_clause(org, StockReservation), StockReservation.id == reservation_id)
        .with_for_update(of=StockReservation)
    ).first()
    if found is None:
        raise NotFound("stock reservation", reservation_id)
    if found[0].status != "active":
        raise Conflict(f"stock reservation {reservation_id} is already released", code="already_released")
    reservation = release(session, org, reservation_id)
    session.flush()
    audit.record(
        session, actor, "stock_reservation.released", subject_type="stock_reservation", subject_id=reservation.id,
        changes={"status": ["active", "released"]},
    )  # fmt: skip
    return reservation_body(reservation, found[1], found[2], found[3])


def release(session: Session, organization_id: int, reservation_id: int) -> StockReservation:
    reservation = session.scalars(
        select(StockReservation).where(
            tenant_clause(organization_id, StockReservation), StockReservation.id == reservation_id
        )
    ).first()
    if reservation is None:
        raise ValidationFailed.one("reservation", f"no reservation {reservation_id}")
    if reservation.status == "active":
        reservation.status, reservation.released_at = "released", utcnow()
    return reservation
