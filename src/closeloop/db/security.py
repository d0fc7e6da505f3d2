"""Database-side walls, installed by the migrations.

* PostgreSQL row-level security on every tenant table (``FORCE``, so the owner is held too): a row
  is visible only when ``closeloop.organization_id`` names its organization, or when the
  transaction runs as the system (``closeloop.system = 'on'``, for sign-in and operator commands).
  Unset settings match nothing: a forgotten tenant is an empty result, never a leak.
* An application role (``closeloop_app``, no superuser, no BYPASSRLS) that superuser connections
  switch to (see :mod:`closeloop.db.engine`).
* The audit trail is append-only: triggers refuse UPDATE and DELETE on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Connection, text

APP_ROLE = "closeloop_app"
_ORG = "NULLIF(current_setting('closeloop.organization_id', true), '')::bigint"
_SYSTEM = "current_setting('closeloop.system', true) = 'on'"


def enable_row_level_security(bind: Connection, tables: Iterable[str], *, role: str = APP_ROLE) -> None:
    if bind.dialect.name != "postgresql":
        return
    for table in tables:
        bind.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        bind.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
        condition = f"({_SYSTEM} OR organization_id = {_ORG})"
        # table names come from the migration's own constant, never from input
        bind.execute(text(f"CREATE POLICY tenant_wall ON {table} USING {condition} WITH CHECK {condition}"))
    bind.execute(text("ALTER TABLE organizations ENABLE ROW LEVEL SECURITY"))
    bind.execute(text("ALTER TABLE organizations FORCE ROW LEVEL SECURITY"))
    bind.execute(
        text(
            f"CREATE POLICY tenant_wall ON organizations USING ({_SYSTEM} OR id = {_ORG}) "
            f"WITH CHECK ({_SYSTEM} OR id = {_ORG})"
        )
    )
    grant_app_role(bind, role=role)


def add_tenant_tables(bind: Connection, tables: Iterable[str], *, role: str = APP_ROLE) -> None:
    """Put row-level security on tenant tables that a later migration adds (the ``organizations``
    policy exists already), and grant the application role access to them and their sequences."""
    if bind.dialect.name != "postgresql":
        return
    condition = f"({_SYSTEM} OR organization_id = {_ORG})"
    for table in tables:
        # table names come from the migration's own constant, never from input
        bind.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        bind.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
        bind.execute(text(f"CREATE POLICY tenant_wall ON {table} USING {condition} WITH CHECK {condition}"))
    grant_app_role(bind, role=role)


_GRANT_TEMPLATE = """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                BEGIN
                    CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS;
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE NOTICE 'cannot create role {role}; the application will run as the table owner';
                END;
            END IF;
            IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema());
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO {role}',
                               current_schema());
                EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {role}', current_schema());
                EXECUTE format('REVOKE UPDATE, DELETE ON audit_entries FROM {role}');
                BEGIN
                    EXECUTE format('GRANT {role} TO %I', current_user);
                EXCEPTION WHEN OTHERS THEN
                    NULL;
                END;
            END IF;
        END
        $$;
"""


def grant_app_role(bind: Connection, *, role: str = APP_ROLE) -> None:
    """Create the application role when allowed, and grant it data access (not ownership)."""
    if bind.dialect.name != "postgresql":
        return
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"not a plain role name: {role!r}")
    bind.execute(text(_GRANT_TEMPLATE.replace("{role}", role)))


def protect_audit_trail(bind: Connection) -> None:
    if bind.dialect.name == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            bind.execute(
                text(
                    f"CREATE TRIGGER audit_entries_no_{operation.lower()} BEFORE {operation} ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                )
            )
        return
    bind.execute(
        text("""
        CREATE OR REPLACE FUNCTION closeloop_audit_append_only() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only';
        END;
        $$ LANGUAGE plpgsql
    """)
    )
    bind.execute(
        text(
            "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION closeloop_audit_append_only()"
        )
    )


def drop_walls(bind: Connection, tables: Iterable[str]) -> None:
    if bind.dialect.name == "sqlite":
        bind.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_update"))
        bind.execute(text("DROP TRIGGER IF EXISTS audit_entries_no_delete"))
        return
    bind.execute(text("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries"))
    bind.execute(text("DROP FUNCTION IF EXISTS closeloop_audit_append_only()"))
    for table in (*tables, "organizations"):
        bind.execute(text(f"DROP POLICY IF EXISTS tenant_wall ON {table}"))
        bind.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
        bind.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))
