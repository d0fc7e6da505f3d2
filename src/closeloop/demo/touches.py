"""Interactions (calls, e-mails, chats, visits, meetings) and after-sales tickets for a generated pipeline.

Outbound e-mails and chats record whether the customer replied. Some accounts go quiet on
purpose: their last three interactions are unanswered e-mails, the newest over 15 days before
the anchor (the pattern the process scan and the health score look for).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from closeloop.crm.enums import ActivityKind, DecisionRole, Direction, Stage, TicketPriority, TicketStatus
from closeloop.demo import phrases
from closeloop.demo.pipeline import PipelineBuilder, weighted
from closeloop.demo.world import AccountInfo, ContactInfo, record_columns

KINDS: tuple[tuple[ActivityKind, float], ...] = (
    (ActivityKind.EMAIL, 0.35),
    (ActivityKind.CALL, 0.30),
    (ActivityKind.CHAT, 0.15),
    (ActivityKind.VISIT, 0.12),
    (ActivityKind.MEETING, 0.08),
)
#: share of each kind that the customer started
INBOUND_SHARE = {ActivityKind.EMAIL: 0.2, ActivityKind.CALL: 0.25, ActivityKind.CHAT: 0.45}
REPLY_RATE = 0.62
MINUTES: dict[ActivityKind, tuple[int, int]] = {
    ActivityKind.CALL: (2, 40),
    ActivityKind.VISIT: (30, 150),
    ActivityKind.MEETING: (45, 180),
}
PRIORITIES = (
    (TicketPriority.LOW, 0.2),
    (TicketPriority.NORMAL, 0.5),
    (TicketPriority.HIGH, 0.22),
    (TicketPriority.URGENT, 0.08),
)


class TouchBuilder:
    """Adds activities and tickets for what a :class:`PipelineBuilder` generated."""

    def __init__(self, pipeline: PipelineBuilder) -> None:
        self.pipeline = pipeline
        self.rng = pipeline.rng
        self.calendar = pipeline.calendar
        self.tenant = pipeline.tenant
        #: activities by account (0: not about an account), each as (when, sequence, row)
        self._activities: dict[int, list[tuple[datetime, int, dict[str, Any]]]] = defaultdict(list)
        self._sequence = 0
        self.silent_account_ids: list[int] = []

    def add_deal_activities(self, days_per_touch: float) -> None:
        """Touches over each deal's life, about one every ``days_per_touch`` days (2 to 20 per deal)."""
        rng = self.rng
        limit = self.calendar.latest
        for deal in self.pipeline.opportunities:
            end = deal.closed_at or limit
            span = max((end - deal.opened_at).total_seconds() / 86_400, 0.2)
            count = max(2, min(20, round(span / days_per_touch + rng.uniform(-1, 2))))
            main = deal.lines[0].product
            for _ in range(count):
                at = self._within(deal.opened_at + timedelta(days=rng.uniform(0, span)), deal.opened_at, end)
                self._activity(
                    deal.account,
                    at,
                    user_id=deal.owner_id,
                    opportunity_id=deal.id,
                    product=main.spec.name,
                    line=main.line.name if deal.account.is_chinese else main.line.name_en,
                )

    def add_lead_activities(self) -> None:
        """One to three touches on each assigned lead, before it was converted or went cold."""
        rng = self.rng
        limit = self.calendar.latest
        for lead in self.pipeline.leads:
            if lead.owner_id is None:
                continue
            end = lead.converted_at or min(lead.received_at + timedelta(days=30), limit)
            span = max((end - lead.received_at).total_seconds() / 86_400, 0.1)
            _, line, products = rng.choice(self.tenant.catalog.lines)
            for _ in range(rng.randint(1, 3)):
                at = self._within(lead.received_at + timedelta(days=rng.uniform(0, span)), lead.received_at, end)
                self._activity(
                    None,
                    at,
                    user_id=lead.owner_id,
                    lead_id=lead.id,
                    chinese=lead.is_chinese,
                    product=rng.choice(products).spec.name,
                    line=line.name if lead.is_chinese else line.name_en,
                )

    def add_account_care(self) -> None:
        """After-sale check-ins with won accounts."""
        rng = self.rng
        for account in self.pipeline.accounts:
            if account.first_win_at is None or not account.bought:
                continue
            for _ in range(rng.randint(0, 3)):
                product = rng.choice(account.bought)
                at = self.calendar.after(account.first_win_at, 10, 400)
                self._activity(
                    account,
                    self._within(at, account.first_win_at, self.calendar.latest),
                    user_id=account.owner_id,
                    product=product.spec.name,
                    line=product.line.name if account.is_chinese else product.line.name_en,
                )

    def add_silences(self, share: float) -> None:
        """Turn ``share`` of the accounts with an open deal silent: three unanswered e-mails in a row,
        the last 16-30 days before the anchor, and nothing after the first of them."""
        rng = self.rng
        anchor = self.calendar.anchor
        open_deals = {
            deal.account.id: deal
            for deal in self.pipeline.opportunities
            if deal.stage not in (Stage.WON, Stage.LOST) and deal.opened_at < anchor - timedelta(days=60)
        }
        chosen = sorted(rng.sample(sorted(open_deals), round(len(open_deals) * share)))
        for account_id in chosen:
            deal = open_deals[account_id]
            last = self.calendar.days_ago(rng.uniform(16, 30))
            gap = timedelta(days=rng.uniform(3, 7))
            times = [last - 2 * gap, last - gap, last]
            kept = [entry for entry in self._activities[account_id] if entry[0] < times[0]]
            for _, _, row in kept:
                if row["replied_at"] is not None and row["replied_at"] >= times[0]:
                    row["is_replied"], row["replied_at"] = False, None
            self._activities[account_id] = kept
            main = deal.lines[0].product
            for at in times:
                self._activity(
                    deal.account,
                    at,
                    user_id=deal.owner_id,
                    opportunity_id=deal.id,
                    kind=ActivityKind.EMAIL,
                    direction=Direction.OUTBOUND,
                    replied=False,
                    product=main.spec.name,
                    line=main.line.name if deal.account.is_chinese else main.line.name_en,
                )
            self.silent_account_ids.append(account_id)

    def add_tickets(self, rate: float) -> None:
        """After-sales tickets from a share of the accounts that bought; older ones are resolved or closed."""
        rng = self.rng
        limit = self.calendar.latest
        for account in self.pipeline.accounts:
            if account.first_win_at is None or not account.bought or rng.random() >= rate:
                continue
            for _ in range(rng.randint(1, 3)):
                opened_at = self.calendar.after(account.first_win_at, 20, 500, limit=limit)
                self._ticket(account, opened_at)

    def _ticket(self, account: AccountInfo, opened_at: datetime) -> None:
        rng = self.rng
        product = rng.choice(account.bought)
        age = (self.calendar.anchor - opened_at).days
        shares = (0.35, 0.35, 0.2, 0.1) if age < 30 else (0.03, 0.05, 0.22, 0.7)
        status = weighted(rng, list(zip(tuple(TicketStatus), shares, strict=True)))
        resolved_at = None
        if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            resolved_at = self.calendar.after(opened_at, 0.1, 10)
        contact = account.contact(rng, DecisionRole.USER, DecisionRole.CHAMPION)
        templates = phrases.TICKET_SUBJECTS[product.line.code]
        row = {
            "subject": rng.choice(templates).format(product=product.spec.name),
            "description": rng.choice(phrases.TICKET_DETAILS),
            "account_id": account.id,
            "contact_id": contact.id if contact else None,
            "product_id": product.id,
            "status": status.value,
            "priority": weighted(rng, PRIORITIES).value,
            "opened_at": opened_at,
            "resolved_at": resolved_at,
            "owner_id": account.owner_id,
            **record_columns(self.tenant.organization_id, opened_at),
        }
        row["updated_at"] = resolved_at or opened_at
        self.pipeline.rows.add("tickets", row)

    def flush(self) -> None:
        """Queue every activity, oldest first (so ids follow time)."""
        entries = sorted(
            (entry for entries in self._activities.values() for entry in entries), key=lambda e: (e[0], e[1])
        )
        for _, _, row in entries:
            self.pipeline.rows.add("activities", row)
        self._activities.clear()

    def _within(self, moment: datetime, start: datetime, end: datetime) -> datetime:
        """``moment`` moved into office hours, but kept between ``start`` and ``end``."""
        return max(start, min(self.calendar.during_office_hours(moment), end))

    def _activity(
        self,
        account: AccountInfo | None,
        at: datetime,
        *,
        user_id: int,
        product: str,
        line: str,
        opportunity_id: int | None = None,
        lead_id: int | None = None,
        chinese: bool | None = None,
        kind: ActivityKind | None = None,
        direction: Direction | None = None,
        replied: bool | None = None,
    ) -> None:
        rng = self.rng
        kind = kind or weighted(rng, KINDS)
        if direction is None:
            inbound = rng.random() < INBOUND_SHARE.get(kind, 0.0)
            direction = Direction.INBOUND if inbound else Direction.OUTBOUND
        chinese = account.is_chinese if account is not None else bool(chinese)
        contact: ContactInfo | None = account.contact(rng, *DecisionRole) if account is not None else None
        language = 0 if chinese else 1
        subject = rng.choice(phrases.SUBJECTS[(kind, direction)][language])
        is_replied, replied_at = self._reply(kind, direction, at, replied)
        minutes = MINUTES.get(kind)
        outcomes = phrases.OUTCOMES.get(kind)
        self._sequence += 1
        row = {
            "kind": kind.value,
            "direction": direction.value,
            "subject": subject.format(product=product, line=line, contact=contact.name if contact else "客户")[:200],
            "occurred_at": at,
            "user_id": user_id,
            "account_id": account.id if account is not None else None,
            "contact_id": contact.id if contact else None,
            "opportunity_id": opportunity_id,
            "lead_id": lead_id,
            "is_replied": is_replied,
            "replied_at": replied_at,
            "duration_minutes": rng.randint(*minutes) if minutes else None,
            "outcome": rng.choice(outcomes[language]) if outcomes and rng.random() < 0.8 else None,
            "content_ref": f"<demo-{self._sequence:07d}@{self.tenant.domain}>" if kind is ActivityKind.EMAIL else None,
            "notes": None,
            **record_columns(self.tenant.organization_id, at, custom=True),
        }
        self._activities[account.id if account is not None else 0].append((at, self._sequence, row))

    def _reply(
        self, kind: ActivityKind, direction: Direction, at: datetime, replied: bool | None
    ) -> tuple[bool | None, datetime | None]:
        """Outbound e-mails and chats were answered or not; a reply never comes after the anchor."""
        if kind not in (ActivityKind.EMAIL, ActivityKind.CHAT) or direction is Direction.INBOUND:
            return None, None
        if replied is None:
            replied = self.rng.random() < REPLY_RATE
        if not replied:
            return False, None
        replied_at = at + timedelta(minutes=self.rng.uniform(20, 3 * 1440))
        if replied_at >= self.calendar.anchor:
            return False, None
        return True, replied_at
