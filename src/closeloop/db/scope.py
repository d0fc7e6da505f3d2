"""The one door through which every query on tenant data passes (STYLE.md habit 3).

Nothing else in the code base compares ``organization_id`` with a value; a test keeps it so.
On PostgreSQL, row-level security repeats the organization filter as a second wall.

**Read and write scopes.** Every caller says which it asks for (:class:`RowAccess`). The *write*
scope is the row scope itself: a scoped actor changes the records its ``owner_ids`` own. The
*read* scope adds the **implicit parent read** (as in Salesforce): the owner of a live child record
that declares ``__grants_parent_read__`` (an opportunity, a contact or a ticket naming an account)
may read that parent — read only; writes keep the owner rule. Organization and soft-deletion apply
to both sides of the implicit read, so a deleted deal grants nothing and nothing crosses tenants.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, inspect, or_, select, true, union_all

from closeloop.core.actor import Actor, RowScope
from closeloop.db.base import Base, SoftDeleted

T = TypeVar("T")

#: a SELECT of any columns (SQLAlchemy 2.1 types Select by its column tuple)
AnySelect = Select[*tuple[Any, ...]]


class RowAccess(StrEnum):
    """What a query is for: reading rows, or finding the rows a change may touch."""

    #: rows the actor may see: its own reach plus the parents its own live children grant
    READ = "read"
    #: rows the actor may change (or delete, assign, convert …): its own reach only
    WRITE = "write"


def parent_read_grants(model: Any) -> tuple[tuple[Any, str], ...]:
    """The (child model, column) pairs whose owners may read a row of ``model`` (a mapped class or
    an alias of one): every mapped model naming, in ``__grants_parent_read__``, a foreign-key column
    that points at ``model``'s table."""
    entity = inspect(model, raiseerr=False)
    mapped = getattr(entity, "class_", model)
    return _grants_of(mapped) if isinstance(mapped, type) else ()


@cache  # keyed by the mapped class, never by an alias (aliases may be made per request)
def _grants_of(mapped: type) -> tuple[tuple[Any, str], ...]:
    table = getattr(mapped, "__table__", None)
    if table is None:
        return ()
    grants: list[tuple[Any, str]] = []
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__name__):
        child = mapper.class_
        for column_name in getattr(child, "__grants_parent_read__", ()):
            column = child.__table__.c[column_name]
            if any(key.column.table is table for key in column.foreign_keys):
                grants.append((child, column_name))
    return tuple(grants)


def _owned_clause(model: Any, owner_ids: BindParameter[Any] | ColumnElement[Any] | list[int]) -> ColumnElement[bool]:
    column = getattr(model, model.__owner_column__)
    owned: ColumnElement[bool] = column.in_(owner_ids)
    if getattr(model, "__unowned_visible__", False):
        owned = or_(owned, column.is_(None))
    return owned


def _readable(
    model: Any, organization_id: Any, owner_ids: BindParameter[Any] | list[int], *, one_row: bool = False
) -> ColumnElement[bool] | None:
    """Rows of ``model`` owned within ``owner_ids`` or parent to a live child owned within them, as
    one ``id IN (own ids UNION ALL the children's parent ids)`` — a set of primary keys the database
    looks rows up by, rather than an ``OR`` that turns an index search on the owner into a scan
    (``None`` when no child grants a read of ``model``). For a statement that reads ``one_row`` by
    its primary key the ``OR`` is the cheaper shape (the owner test settles an own row without the
    union): the same rows either way."""
    grants = parent_read_grants(model)
    if not grants:
        return None
    # never correlated: inside a statement that reads the same tables (a deal and its account's
    # name), each subquery must still read its own rows, not the outer one
    owned = _owned_clause(model, owner_ids)
    ids = [] if one_row else [select(model.id).where(model.organization_id == organization_id, owned).correlate(None)]
    for child, column_name in grants:
        column = getattr(child, column_name)
        condition: ColumnElement[bool] = and_(
            child.organization_id == organization_id,
            _owned_clause(child, owner_ids),
            column.is_not(None),
        )
        if _is_soft_deleted(child):
            condition = and_(condition, child.deleted_at.is_(None))
        ids.append(select(column).where(condition).correlate(None))
    readable: ColumnElement[bool] = model.id.in_(ids[0] if len(ids) == 1 else union_all(*ids))
    return or_(owned, readable) if one_row else readable


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


def visibility_clause(
    actor: Actor, model: Any, *, access: RowAccess, include_deleted: bool = False
) -> ColumnElement[bool]:
    """Rows of ``model`` that ``actor`` may read or write (``access``): its organization, not
    deleted, within its row scope — for reads, also the parents its own children grant.

    A model names its ownership column in ``__owner_column__``; when ``__unowned_visible__`` is
    true, rows without an owner are visible to everyone in the organization (a lead inbox).
    """
    clause = tenant_clause(actor.organization_id, model, include_deleted=include_deleted)
    if not is_scoped(actor, model):
        return clause
    if not actor.owner_ids:
        owned: ColumnElement[bool] = ~true()
        if getattr(model, "__unowned_visible__", False):
            owned = getattr(model, model.__owner_column__).is_(None)
        return and_(clause, owned)
    owner_ids = sorted(actor.owner_ids)
    readable = _readable(model, actor.organization_id, owner_ids) if access is RowAccess.READ else None
    return and_(clause, _owned_clause(model, owner_ids) if readable is None else readable)


def visible(actor: Actor, model: type[T], *, access: RowAccess, include_deleted: bool = False) -> Select[T]:
    """``SELECT model`` restricted to what ``actor`` may read or write (soft-deleted rows only when asked)."""
    return select(model).where(visibility_clause(actor, model, access=access, include_deleted=include_deleted))


def may_write(actor: Actor, record: Any) -> bool:
    """Whether ``actor``'s write scope holds ``record`` (a loaded row): the in-memory twin of
    ``visibility_clause(actor, type(record), access=RowAccess.WRITE)``, a last check before a change
    whatever query found the row."""
    model = type(record)
    if record.organization_id != actor.organization_id:
        return False
    owner_column: str | None = getattr(model, "__owner_column__", None)
    return owner_may_write(actor, model, getattr(record, owner_column) if owner_column else None)


def owner_may_write(actor: Actor, model: Any, owner_id: int | None) -> bool:
    """Whether ``actor``'s write scope holds a row of ``model`` (of its organization) owned by ``owner_id``."""
    if not is_scoped(actor, model):
        return True
    if owner_id is None:
        return bool(getattr(model, "__unowned_visible__", False))
    return owner_id in actor.owner_ids


def within_organization(organization_id: int, model: type[T]) -> Select[T]:
    """``SELECT model`` restricted to one organization, for system jobs that act for all its users."""
    return select(model).where(tenant_clause(organization_id, model))


def is_scoped(actor: Actor, model: Any) -> bool:
    """Whether ``actor``'s row scope narrows ``model`` below the whole organization."""
    return actor.scope is not RowScope.ALL and getattr(model, "__owner_column__", None) is not None


def visibility_template(model: Any, *, scoped: bool, access: RowAccess, one_row: bool = False) -> ColumnElement[bool]:
    """:func:`visibility_clause` with bind parameters instead of values, for statements that are
    built once and reused on hot paths (their parameters come from :func:`scope_parameters`).
    ``one_row``: the statement reads a single row by its primary key (the SQL's shape, not the rows)."""
    organization_id: BindParameter[Any] = bindparam("scope_organization_id")
    clause: ColumnElement[bool] = model.organization_id == organization_id
    if _is_soft_deleted(model):
        clause = and_(clause, model.deleted_at.is_(None))
    if not scoped:
        return clause
    owner_ids: BindParameter[Any] = bindparam("scope_owner_ids", expanding=True)
    readable = _readable(model, organization_id, owner_ids, one_row=one_row) if access is RowAccess.READ else None
    return and_(clause, _owned_clause(model, owner_ids) if readable is None else readable)


def scope_parameters(actor: Actor, model: Any) -> dict[str, Any]:
    """The values for :func:`visibility_template`'s parameters."""
    parameters: dict[str, Any] = {"scope_organization_id": actor.organization_id}
    if is_scoped(actor, model):
        parameters["scope_owner_ids"] = sorted(actor.owner_ids)
    return parameters
