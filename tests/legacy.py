"""Records as an older version (or a direct database load) left them: values today's validation
refuses — an invalid phone number, say — written straight to the table, for the checks that look
for exactly such data (the quality scan)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from closeloop.db.session import Database


def write_legacy(db: Database, model: Any, record_id: int, **values: Any) -> None:
    with db.unit_of_work(None, system=True) as session:
        session.execute(update(model).where(model.id == record_id).values(**values))
