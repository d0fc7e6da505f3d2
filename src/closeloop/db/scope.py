"""The one door through which every query on tenant data passes (STYLE.md habit 3).

Nothing else in the code base compares ``organization_id`` with a value; a test keeps it so.
On PostgreSQL, row-level security repeats the organization filter as a second wall.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, bindparam, inspect, or_, select, true

from closeloop.core.actor import Actor, RowScope
from closeloop.db.base import SoftDeleted

T = TypeVar("T")

#: a SELECT of any columns (SQLAlchemy 2.1 types Select by its column tuple)
AnySelect = Select[*tuple[Any, ...]]


def _is_soft_deleted(model: Any) -> bool:
    """Whether ``model`` — a mapped class or an alias of one (``aliased(Account)``) — keeps deleted rows."""
    entity = inspect(model, raiseerr=False)
    mapped = getattr(entity, "class_", model)
    return isinstance(mapped, type) and issubclass(mapped, SoftDeleted)


def tenant_clause(organization_id: int, model: Any, *, include_deleted: bool = False) -> ColumnElement[bool]:
    """Rows of ``model`` (a mapped class or an alias of one) that belong to ``organization_id``
    (no ownership rule)."""
    clause: ColumnElement[bool] = model.organization_id == organization_id
    if not include_deleted and _is_soft_deleted(model):
        clause = and_(clause, model.deleted_at.is_(None))
    return clause


def visibility_clause(actor: Actor, model: Any, *, include_deleted: bool = False) -> ColumnElement[bool]:
    """Rows of ``model`` that ``actor`` may see: its organization, not deleted, within its row scope.

    A model names its ownership column in ``__owner_column__``; when ``__unowned_visible__`` is
    true, rows without an owner are visible to everyone in the organization (a lead inbox).
    """
    clause = tenant_clause(actor.organization_id, model, include_deleted=include_deleted)
    owner_column: str | None = getattr(model, "__owner_column__", None)
    if owner_column is None or actor.scope is RowScope.ALL:
        return clause
    column = getattr(model, owner_column)
    owned: ColumnElement[bool] = column.in_(sorted(actor.owner_ids)) if actor.owner_ids else ~true()
    if getattr(model, "__unowned_visible__", False):
        owned = or_(owned, column.is_(None))
    return and_(clause, owned)


def visible(actor: Actor, model: type[T], *, include_deleted: bool = False) -> Select[T]:
    """``SELECT model`` restricted to what ``actor`` may see (soft-deleted rows only when asked)."""
    return select(model).where(visibility_clause(actor, model, include_deleted=include_deleted))


def within_organization(organization_id: int, model: type[T]) -> Select[T]:
    """``SELECT model`` restricted to one organization, for system jobs that act for all its users."""
    return select(model).where(tenant_clause(organization_id, model))


def is_scoped(actor: Actor, model: Any) -> bool:
    """Whether ``actor``'s row scope narrows ``model`` below the whole organization."""
    return actor.scope is not RowScope.ALL and getattr(model, "__owner_column__", None) is not None


def visibility_template(model: Any, *, scoped: bool) -> ColumnElement[bool]:
    """:func:`visibility_clause` with bind parameters instead of values, for statements that are
    built once and reused on hot paths (their parameters come from :func:`scope_parameters`)."""
    clause: ColumnElement[bool] = model.organization_id == bindparam("scope_organization_id")
    if _is_soft_deleted(model):
        clause = and_(clause, model.deleted_at.is_(None))
    if not scoped:
        return clause
    column = getattr(model, model.__owner_column__)
    owned: ColumnElement[bool] = column.in_(bindparam("scope_owner_ids", expanding=True))
    if getattr(model, "__unowned_visible__", False):
        owned = or_(owned, column.is_(None))
    return and_(clause, owned)


def scope_parameters(actor: Actor, model: Any) -> dict[str, Any]:
    """The values for :func:`visibility_template`'s parameters."""
    parameters: dict[str, Any] = {"scope_organization_id": actor.organization_id}
    if is_scoped(actor, model):
        parameters["scope_owner_ids"] = sorted(actor.owner_ids)
    return parameters
