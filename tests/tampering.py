"""What an attacker with database access does to the audit trail: go past the append-only triggers
and edit, delete or reorder entries, as the table owner."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, text

from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry

_COLUMNS = [column.name for column in AuditEntry.__table__.c]


def _as_owner_without_triggers(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_entries_no_update")
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_entries_no_delete")
        return
    # The application connects as closeloop_app after SET ROLE; the owner may switch triggers off.
    connection.exec_driver_sql("RESET ROLE")
    connection.exec_driver_sql("SET LOCAL session_replication_role = replica")


def tamper(database: Database, statement: str, **parameters: Any) -> int:
    """Run one UPDATE or DELETE on ``audit_entries`` past its triggers; the number of rows it hit."""
    with database.unit_of_work(None, system=True) as session:
        connection = session.connection()
        _as_owner_without_triggers(connection)
        return connection.execute(text(statement), parameters).rowcount


def entries(database: Database, organization_id: int) -> list[dict[str, Any]]:
    """The organization's entries, in chain order, as plain column dictionaries."""
    with database.reading(None, system=True) as session:
        rows = session.scalars(
            select(AuditEntry).where(tenant_clause(organization_id, AuditEntry)).order_by(AuditEntry.seq)
        ).all()
        return [{name: getattr(row, name) for name in _COLUMNS} for row in rows]


def rehashed(fields: dict[str, Any]) -> str:
    """The hash an attacker would compute for an entry with ``fields`` (so it matches itself)."""
    return audit.compute_hash(AuditEntry(**fields))


def problems(database: Database, organization_id: int) -> list[tuple[str, int]]:
    with database.reading(None, system=True) as session:
        return [(problem.kind, problem.seq) for problem in audit.verify(session, organization_id)]
