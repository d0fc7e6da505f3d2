"""The event/policy calendar (FC-2, FC-3): holidays, tender dates, regulation changes — the days
that move business — imported from a CSV, optionally for one region or product line. Deviation
attribution gives a calendar event the deals expected to close inside it that missed their period."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from closeloop.core.errors import ValidationFailed
from closeloop.crm.products.models import ProductLine
from closeloop.db.scope import tenant_clause
from closeloop.forecasting.models import CalendarEvent
from closeloop.org.models import Region

KINDS = ("holiday", "tender", "regulation", "other")
COLUMNS = ("name", "kind", "starts_on")


def import_events(session: Session, organization_id: int, lines: Sequence[dict[str, str]]) -> int:
    """Replace the organization's calendar with the CSV rows (``name``, ``kind`` — holiday, tender,
    regulation or other — ``starts_on``, optional ``ends_on`` (inclusive, default the start),
    ``region`` and ``product_line`` by name or id). A bad row is refused naming its line and field;
    nothing is stored then."""
    if lines and (missing := [name for name in COLUMNS if name not in lines[0]]):
        raise ValidationFailed.one(missing[0], "column is missing")
    regions: dict[str, int] = {}
    for region_id, name in session.execute(
        select(Region.id, Region.name).where(tenant_clause(organization_id, Region))
    ):
        regions.setdefault(str(region_id), region_id)
        regions.setdefault(name, region_id)
    product_lines: dict[str, int] = {}
    for line_id, name in session.execute(
        select(ProductLine.id, ProductLine.name).where(tenant_clause(organization_id, ProductLine))
    ):
        product_lines.setdefault(str(line_id), line_id)
        product_lines.setdefault(name, line_id)
    events: list[CalendarEvent] = []
    for number, line in enumerate(lines, start=2):
        where = f"line {number}"
        name = (line.get("name") or "").strip()
        kind = (line.get("kind") or "").strip().lower()
        if not name:
            raise ValidationFailed.one("name", f"{where}: is empty")
        if kind not in KINDS:
            raise ValidationFailed.one("kind", f"{where}: must be one of {', '.join(KINDS)}")
        try:
            starts = date.fromisoformat((line.get("starts_on") or "").strip())
        except ValueError:
            raise ValidationFailed.one("starts_on", f"{where}: an ISO date (YYYY-MM-DD) is expected") from None
        try:
            ends_text = (line.get("ends_on") or "").strip()
            ends = date.fromisoformat(ends_text) if ends_text else starts
        except ValueError:
            raise ValidationFailed.one("ends_on", f"{where}: an ISO date (YYYY-MM-DD) is expected") from None
        if ends < starts:
            raise ValidationFailed.one("ends_on", f"{where}: is before starts_on")
        scope: dict[str, int | None] = {}
        for field, known in (("region", regions), ("product_line", product_lines)):
            text = (line.get(field) or "").strip()
            if text and text not in known:
                raise ValidationFailed.one(field, f"{where}: no such {field.replace('_', ' ')}")
            scope[field] = known[text] if text else None
        events.append(
            CalendarEvent(
                organization_id=organization_id,
                name=name[:200],
                kind=kind,
                starts_on=starts,
                ends_on=ends,
                region_id=scope["region"],
                product_line_id=scope["product_line"],
            )
        )
    session.execute(delete(CalendarEvent).where(tenant_clause(organization_id, CalendarEvent)))
    session.add_all(events)
    session.flush()
    return len(events)


def events_between(session: Session, organization_id: int, start: date, end: date) -> list[CalendarEvent]:
    """The organization's events overlapping [start, end)."""
    return list(
        session.scalars(
            select(CalendarEvent)
            .where(
                tenant_clause(organization_id, CalendarEvent),
                CalendarEvent.starts_on < end,
                CalendarEvent.ends_on >= start,
            )
            .order_by(CalendarEvent.starts_on, CalendarEvent.id)
        )
    )


def during_event(
    events: Sequence[CalendarEvent], day: date, region_id: int | None, product_line_id: int | None
) -> bool:
    """Whether ``day`` falls inside an event that applies to the region and product line."""
    return any(
        event.starts_on <= day <= event.ends_on
        and event.region_id in (None, region_id)
        and event.product_line_id in (None, product_line_id)
        for event in events
    )
