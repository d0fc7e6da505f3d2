"""Custom fields marked indexed: the flag, and on PostgreSQL the one door through which the
application role (which does not own the tables) builds and drops their expression indexes; and
the due-date boundaries the incremental data-quality scan reads (title confirmation, stage change,
activities changed)

Revision ID: 206f06fc8f86
Revises: de5883fa4803
Create Date: 2026-11-26 14:04:35.805106
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from closeloop.db import security

revision: str = "206f06fc8f86"
down_revision: str | None = "de5883fa4803"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every part is checked before it is spliced (format %I / %L), and the index can only be the
# organization plus one JSON key read as one of four types, named cfx_<table>_<definition id>:
# the application can build nothing else through it.
_FUNCTION = """
CREATE OR REPLACE FUNCTION closeloop_custom_field_index(
    p_table text, p_definition bigint, p_key text, p_cast text, p_wanted boolean
) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    index_name text := format('cfx_%s_%s', p_table, p_definition);
BEGIN
    IF p_key !~ '^[a-z][a-z0-9_]{0,39}$' OR p_cast NOT IN ('FLOAT', 'VARCHAR', 'INTEGER', 'BOOLEAN')
       OR p_definition <= 0 OR NOT EXISTS (
           SELECT 1 FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = p_table AND column_name = 'custom'
       ) THEN
        RAISE EXCEPTION 'not a custom-field index: % % % %', p_table, p_definition, p_key, p_cast;
    END IF;
    IF p_wanted THEN
        EXECUTE format(
            'CREATE INDEX IF NOT EXISTS %I ON %I (organization_id, %s(custom, %L))',
            index_name, p_table,
            CASE p_cast WHEN 'FLOAT' THEN 'closeloop_json_number' WHEN 'VARCHAR' THEN 'closeloop_json_text'
                        WHEN 'INTEGER' THEN 'closeloop_json_integer' ELSE 'closeloop_json_boolean' END,
            p_key
        );
    ELSE
        EXECUTE format('DROP INDEX IF EXISTS %I', index_name);
    END IF;
END;
$$
"""


# The readers of a JSON scalar that filters, sorts and indexes use on PostgreSQL (see
# closeloop.db.functions.PG_JSON_FUNCTIONS). plpgsql, so they are not inlined: an inlined body
# would be ``->>`` and a cast again, which row-level security keeps out of index conditions.
_READERS = {
    "closeloop_json_text": ("text", "RETURN doc ->> key;"),
    "closeloop_json_number": (
        "double precision",
        "RETURN CASE WHEN jsonb_typeof(doc -> key) = 'number' THEN CAST(doc ->> key AS double precision) END;",
    ),
    "closeloop_json_integer": (
        "bigint",
        "RETURN CASE WHEN jsonb_typeof(doc -> key) = 'number' AND doc ->> key ~ '^-?[0-9]{1,18}$' "
        "THEN CAST(doc ->> key AS bigint) END;",
    ),
    "closeloop_json_boolean": (
        "boolean",
        "RETURN CASE WHEN jsonb_typeof(doc -> key) = 'boolean' THEN CAST(doc ->> key AS boolean) END;",
    ),
}


def _create_readers() -> None:
    for name, (returns, body) in _READERS.items():
        head = f"CREATE OR REPLACE FUNCTION {name}(doc jsonb, key text) RETURNS {returns} LANGUAGE plpgsql"
        tail = f"AS $f$ BEGIN {body} END $f$"
        leakproof = f"{head} IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF {tail}"
        plain = f"{head} IMMUTABLE STRICT PARALLEL SAFE {tail}"
        # LEAKPROOF needs a superuser; without one the readers work, but under row-level security
        # the planner will not use the indexes (docs/operator-guide.md says so)
        op.execute(
            "DO $do$ BEGIN EXECUTE " + _quote(leakproof) + "; "
            "EXCEPTION WHEN insufficient_privilege THEN EXECUTE " + _quote(plain) + "; END $do$"
        )


def _quote(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


def _drop_runtime_indexes() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        names = bind.execute(
            sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE 'cfx\\_%'")
        ).scalars()
    else:
        names = bind.execute(
            sa.text("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'cfx\\_%' ESCAPE '\\'")
        ).scalars()
    for name in list(names):
        op.execute(f'DROP INDEX IF EXISTS "{name}"')


#: (index, table, column) led by the organization and followed by the id, like tenant_indexes
_BOUNDARIES = (
    ("ix_activities_org_updated_at", "activities", "updated_at"),
    ("ix_contacts_org_title_confirmed_on", "contacts", "title_confirmed_on"),
    ("ix_opportunities_org_stage_changed_at", "opportunities", "stage_changed_at"),
)


def upgrade() -> None:
    for name, table, column in _BOUNDARIES:
        op.create_index(name, table, ["organization_id", column, "id"], unique=False)
    with op.batch_alter_table("custom_field_definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("indexed", sa.Boolean(), server_default=sa.false(), nullable=False))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _create_readers()
        op.execute(_FUNCTION)
        op.execute("REVOKE ALL ON FUNCTION closeloop_custom_field_index(text, bigint, text, text, boolean) FROM PUBLIC")
        assert security.APP_ROLE == "closeloop_app"  # the role the statement below names
        op.execute(
            "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'closeloop_app') THEN "
            "GRANT EXECUTE ON FUNCTION closeloop_custom_field_index(text, bigint, text, text, boolean) "
            "TO closeloop_app; END IF; END $$"
        )


def downgrade() -> None:
    for name, table, _column in _BOUNDARIES:
        op.drop_index(name, table_name=table)
    _drop_runtime_indexes()
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS closeloop_custom_field_index(text, bigint, text, text, boolean)")
        for name in _READERS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}(jsonb, text)")
    with op.batch_alter_table("custom_field_definitions", schema=None) as batch_op:
        batch_op.drop_column("indexed")
