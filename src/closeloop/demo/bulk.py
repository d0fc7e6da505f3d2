"""Writing generated rows fast: provisional ids, id reservation, bulk INSERTs and the audit summary.

Seeding writes tens of thousands of rows, so it bypasses the per-record services and inserts with
SQLAlchemy Core ``executemany``. Rows are generated with *provisional* ids (1, 2, … per table);
:meth:`Rows.flush` reserves real ids from the database, rewrites every id and foreign key, and
inserts table by table in foreign-key order. Because the per-record services are bypassed, each
organization's audit trail gets one summary entry per table (:func:`record_seeding`) instead of
one entry per row; the hash chain stays intact and ``audit.verify`` passes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.contracts import models as contract_models  # noqa: F401 - orders.contract_id resolves to it
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine, StageChange
from closeloop.crm.orders.models import Order, OrderLine
from closeloop.crm.products.models import Product, ProductLine
from closeloop.crm.referrals.models import Referral
from closeloop.crm.tickets.models import Ticket
from closeloop.governance.audit import service as audit
from closeloop.org import service as org_service
from closeloop.org.models import Department, Region, User

#: The models the demo fills, parents before children.
MODELS: dict[str, Any] = {
    model.__tablename__: model
    for model in (
        Region,
        Department,
        User,
        ProductLine,
        Product,
        Account,
        Contact,
        Lead,
        Opportunity,
        OpportunityProductLine,
        StageChange,
        Order,
        OrderLine,
        Referral,
        Activity,
        Ticket,
    )
}
TABLES: tuple[str, ...] = tuple(MODELS)

#: Tables that other rows point at: their rows get ids from :meth:`Rows.add`. The others let the
#: database number them.
IDENTIFIED: frozenset[str] = frozenset(
    {
        "regions",
        "departments",
        "users",
        "product_lines",
        "products",
        "accounts",
        "contacts",
        "leads",
        "opportunities",
        "orders",
    }
)


def table(name: str) -> Table:
    table_: Table = MODELS[name].__table__
    return table_


def _references(name: str) -> dict[str, str]:
    """``{column: referenced table}`` for the foreign keys of ``name`` that point at demo rows."""
    return {
        fk.parent.name: fk.column.table.name for fk in table(name).foreign_keys if fk.column.table.name in IDENTIFIED
    }


REFERENCES: dict[str, dict[str, str]] = {name: _references(name) for name in TABLES}


def _deferred(name: str) -> tuple[str, ...]:
    """Foreign keys to a table inserted later (``leads.converted_opportunity_id``): set after the insert."""
    position = TABLES.index(name)
    return tuple(
        column for column, target in REFERENCES[name].items() if target != name and TABLES.index(target) > position
    )


DEFERRED: dict[str, tuple[str, ...]] = {name: _deferred(name) for name in TABLES}


def reserve_ids(session: Session, name: str, count: int) -> Sequence[int]:
    """``count`` fresh primary keys for table ``name``, in increasing order.

    SQLite: the ids after the current maximum (the seeding transaction holds the write lock, so
    nobody takes them meanwhile). PostgreSQL: drawn from the table's sequence, so concurrent
    writers never collide with them.
    """
    if count == 0:
        return ()
    if session.get_bind().dialect.name == "postgresql":
        sequence = session.scalar(text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": name})
        drawn = session.scalars(
            text("SELECT nextval(CAST(:sequence AS regclass)) FROM generate_series(1, :count)"),
            {"sequence": sequence, "count": count},
        ).all()
        return sorted(int(value) for value in drawn)
    highest = session.scalar(select(func.max(table(name).c.id))) or 0
    return range(highest + 1, highest + 1 + count)


class Rows:
    """Generated rows by table; rows of :data:`IDENTIFIED` tables carry provisional ids."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, name: str, row: dict[str, Any]) -> int:
        """Queue ``row`` for ``name`` and return its provisional id (0 for tables the database numbers)."""
        rows = self.tables[name]
        rows.append(row)
        if name in IDENTIFIED:
            row["id"] = len(rows)
            return len(rows)
        return 0

    def counts_by_organization(self) -> dict[int, dict[str, int]]:
        """``{organization_id: {table: rows}}`` of everything queued."""
        counts: dict[int, Counter[str]] = defaultdict(Counter)
        for name in TABLES:
            for row in self.tables.get(name, ()):
                counts[row["organization_id"]][name] += 1
        return {organization: dict(counter) for organization, counter in counts.items()}

    def flush(self, session: Session) -> dict[str, Sequence[int]]:
        """Give every row its real id, rewrite the foreign keys, and insert in foreign-key order.

        Returns the real ids by table: provisional id ``n`` became ``result[table][n - 1]``.
        """
        real = {name: reserve_ids(session, name, len(self.tables.get(name, ()))) for name in sorted(IDENTIFIED)}
        pending: dict[str, list[dict[str, int | None]]] = {}
        for name in TABLES:
            rows = self.tables.get(name)
            if not rows:
                continue
            _check_columns(name, rows)
            _translate(name, rows, real)
            pending[name] = _hold_back(name, rows)
            session.execute(insert(table(name)), rows)
        for name, held in pending.items():
            _set_deferred(session, name, held)
        self.tables.clear()
        return real


def _check_columns(name: str, rows: list[dict[str, Any]]) -> None:
    """Every row of a bulk INSERT must name the same columns; say which row does not."""
    expected = rows[0].keys()
    for position, row in enumerate(rows):
        if row.keys() != expected:
            difference = sorted(set(row) ^ set(expected))
            raise ValueError(f"{name} row {position} differs from the first row in columns {difference}")


def _translate(name: str, rows: list[dict[str, Any]], real: Mapping[str, Sequence[int]]) -> None:
    references = REFERENCES[name]
    own = real.get(name)
    for row in rows:
        if own is not None:
            row["id"] = own[row["id"] - 1]
        for column, target in references.items():
            value = row.get(column)
            if value is not None:
                row[column] = real[target][value - 1]


def _hold_back(name: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Null the deferred foreign keys for the INSERT; return them (with ``updated_at``) for the UPDATE."""
    columns = DEFERRED[name]
    if not columns:
        return []
    held = []
    for row in rows:
        held.append({"id": row["id"], "updated_at": row["updated_at"], **{column: row[column] for column in columns}})
        for column in columns:
            row[column] = None
    return held


def _set_deferred(session: Session, name: str, held: list[dict[str, Any]]) -> None:
    """Set the deferred foreign keys. ``updated_at`` is written back unchanged: left out, the
    column's ``onupdate`` would stamp the wall clock into the data."""
    target = table(name)
    for column in DEFERRED[name]:
        changed = [
            {"row_id": item["id"], "value": item[column], "stamp": item["updated_at"]}
            for item in held
            if item[column] is not None
        ]
        if changed:
            statement = (
                update(target)
                .where(target.c.id == bindparam("row_id"))
                .values({column: bindparam("value"), "updated_at": bindparam("stamp")})
            )
            session.execute(statement, changed)


def analyze(session: Session, names: Sequence[str]) -> list[str]:
    """Refresh the query planner's statistics of freshly loaded tables; return the tables analyzed.

    Without statistics a planner guesses, and after a bulk load it can guess badly: on a million
    deals SQLite joins every won account to the orders through the ``ordered_at`` index instead of
    the ``account_id`` one, and the funnel never finishes (with statistics: 20 seconds); PostgreSQL
    takes seconds instead of milliseconds on the normal demo. SQLite samples (``analysis_limit``),
    which takes milliseconds. On PostgreSQL only a table's owner (or a superuser) may analyze it:
    when the application role was switched to by a superuser login (see ``db.engine``), the
    analysis runs as that login for a moment; otherwise tables the role does not own are left to
    autovacuum (which may be slow to come, or switched off).
    """
    wanted = [name for name in names if name in MODELS]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=1000"))
        for name in wanted:
            session.execute(text(f"ANALYZE {name}"))
        session.execute(text("PRAGMA analysis_limit=0"))
        return wanted
    owned = set(
        session.scalars(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(:names) "
                "AND pg_has_role(current_user, tableowner, 'MEMBER')"
            ),
            {"names": wanted},
        )
    )
    analyzed = [name for name in wanted if name in owned]
    current_role = session.scalar(text("SELECT current_user"))
    login_is_superuser = session.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user"))
    if len(analyzed) < len(wanted) and login_is_superuser:
        session.execute(text("RESET ROLE"))
        try:
            for name in wanted:
                session.execute(text(f"ANALYZE {name}"))
        finally:
            session.execute(text("SELECT set_config('role', :role, false)"), {"role": current_role})
        return wanted
    for name in analyzed:
        session.execute(text(f"ANALYZE {name}"))
    return analyzed


def record_seeding(session: Session, organization_id: int, counts: Mapping[str, int], *, label: str) -> None:
    """Write one ``demo.seeded`` audit entry per table seeded into the organization.

    Bulk seeding does not go through the per-record services, so there is no entry per row; the
    summary names the table and how many rows it received (``{"accounts": [None, 2400]}``).
    """
    actor = org_service.system_actor(organization_id, label=label)
    for name in TABLES:
        count = counts.get(name, 0)
        if count:
            audit.record(
                session,
                actor,
                "demo.seeded",
                subject_type="organization",
                subject_id=organization_id,
                changes={name: [None, count]},
            )
