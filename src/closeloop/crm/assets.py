"""The data asset map (GOV-7): for each record type, field group and metric, who produces it, who
consumes it and who answers for its quality — a RACI table maintained in the product.

The catalogue of assets is derived from what exists (record types, their finance and custom
field groups, the funnel); each asset starts from defaults read off the permissions (producers:
roles that write it; consumers: roles that only read it) until sales ops maintain it. An asset
without an accountable person is flagged: somebody must answer for its quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound, PreconditionFailed, ValidationFailed
from closeloop.crm import customfields, metrics, records
from closeloop.crm.schemas import Schema
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.assets.models import DataAsset
from closeloop.governance.audit import service as audit
from closeloop.governance.fields import CUSTOM, FIELD_RULES, policy_of
from closeloop.governance.permissions import ROLE_PERMISSIONS, Role, require
from closeloop.org.models import User

_NAMES_ZH = {
    "account": "客户",
    "activity": "活动",
    "contact": "联系人",
    "contract": "合同",
    "lead": "线索",
    "opportunity": "商机",
    "order": "订单",
    "product": "产品",
    "product_line": "产品线",
    "quote": "报价",
    "referral": "转介绍",
    "task": "待办",
    "ticket": "服务工单",
}
#: record types' names in Chinese (English names are derived from the noun)
NAMES_ZH = _NAMES_ZH
COLUMNS = (
    "kind",
    "key",
    "name_zh",
    "name_en",
    "produced_by",
    "consumed_by",
    "responsible",
    "accountable",
    "consulted",
    "informed",
    "notes",
    "maintained",
)


@dataclass(frozen=True, slots=True)
class Asset:
    kind: str
    key: str
    name_zh: str
    name_en: str
    produced_by: tuple[str, ...]
    consumed_by: tuple[str, ...]


def _roles_with(permission: str) -> tuple[str, ...]:
    return tuple(role.value for role in Role if permission in ROLE_PERMISSIONS[role])


def catalogue(session: Session, actor: Actor) -> list[Asset]:
    """Every asset of the organization, in a stable order."""
    assets: list[Asset] = []
    for record_type in sorted(records.all_record_types(), key=lambda rt: rt.noun):
        noun, plural = record_type.noun, record_type.plural
        writers = _roles_with(f"{plural}:write")
        readers = tuple(r for r in _roles_with(f"{plural}:read") if r not in writers)
        english = noun.replace("_", " ")
        assets.append(
            Asset("record_type", noun, _NAMES_ZH.get(noun, noun), plural.replace("_", " ").title(), writers, readers)
        )
        if noun in FIELD_RULES:
            finance = tuple(sorted({role.value for roles in FIELD_RULES[noun].values() for role in roles}))
            names = ", ".join(sorted(FIELD_RULES[noun]))
            assets.append(
                Asset(
                    "field_group",
                    f"{noun}.finance",
                    f"{_NAMES_ZH.get(noun, noun)}财务字段（{names}）",
                    f"{english.title()} finance fields ({names})",
                    tuple(r for r in finance if r in writers),
                    tuple(r for r in finance if r not in writers),
                )
            )
        if record_type.customizable and customfields.definitions(session, actor.organization_id, noun):
            assets.append(
                Asset(
                    "field_group",
                    f"{noun}.custom",
                    f"{_NAMES_ZH.get(noun, noun)}自定义字段",
                    f"{english.title()} custom fields",
                    writers,
                    readers,
                )
            )
    assets.append(Asset("metric", "funnel", "闭环漏斗", "Closed-loop funnel", ("system",), _roles_with("funnel:read")))
    published = metrics.registry()
    matrix = policy_of(session, actor)
    for metric in published.metrics.values():
        consumers = tuple(r for r in _roles_with("funnel:read") if metric.readable_by(r, matrix))
        assets.append(Asset("metric", metric.key, metric.name_zh, metric.name_en, ("system",), consumers))
    for dashboard in published.dashboards.values():
        assets.append(
            Asset(
                "dashboard",
                dashboard.key,
                dashboard.name_zh,
                dashboard.name_en,
                ("system",),
                _roles_with("funnel:read"),
            )
        )
    return assets


def _stored(session: Session, actor: Actor) -> dict[tuple[str, str], DataAsset]:
    return {(row.kind, row.key): row for row in session.scalars(visible(actor, DataAsset, access=RowAccess.READ))}


def rows(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The map as a table: one row per asset, maintained entries over the defaults."""
    require(actor, "assets:read")
    stored = _stored(session, actor)
    users: dict[int, str] = {
        row.id: row.display_name
        for row in session.execute(select(User.id, User.display_name).where(tenant_clause(actor.organization_id, User)))
    }
    table = []
    for asset in catalogue(session, actor):
        row = stored.get((asset.kind, asset.key))
        entry: dict[str, Any] = {
            "kind": asset.kind,
            "key": asset.key,
            "name_zh": asset.name_zh,
            "name_en": asset.name_en,
            "produced_by": list(row.produced_by if row else asset.produced_by),
            "consumed_by": list(row.consumed_by if row else asset.consumed_by),
            "responsible": list(row.responsible if row else asset.produced_by),
            "accountable_user_id": row.accountable_user_id if row else None,
            "consulted": list(row.consulted if row else ()),
            "informed": list(row.informed if row else asset.consumed_by),
            "notes": row.notes if row else None,
            "maintained": row is not None,
            "version": row.version if row else None,
        }
        entry["accountable"] = users.get(entry["accountable_user_id"]) if entry["accountable_user_id"] else None
        entry["needs_owner"] = entry["accountable_user_id"] is None
        table.append(entry)
    return table


class AssetUpdate(Schema):
    """A change of an asset's entry: only the fields sent change (PATCH semantics, also for PUT);
    ``"accountable_user_id": null`` sent explicitly clears the accountable person."""

    produced_by: list[str] = Field(default_factory=list, max_length=20)
    consumed_by: list[str] = Field(default_factory=list, max_length=20)
    responsible: list[str] = Field(default_factory=list, max_length=20)
    accountable_user_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None
    consulted: list[str] = Field(default_factory=list, max_length=20)
    informed: list[str] = Field(default_factory=list, max_length=20)
    notes: Annotated[str, Field(max_length=2000)] | None = None


_PARTIES = frozenset({*(role.value for role in Role), "system"})
_LISTS = ("produced_by", "consumed_by", "responsible", "consulted", "informed")


def _check_roles(field_name: str, values: Sequence[str]) -> list[str]:
    for index, value in enumerate(values):
        if value not in _PARTIES:
            known = ", ".join(sorted(_PARTIES))
            raise ValidationFailed.one(f"{field_name}.{index}", f"'{value}' is not a role (one of: {known})", "unknown")
    return sorted(set(values))


def unseen_by(session: Session, actor: Actor, *, kind: str, key: str, role: str) -> list[str]:
    """What of the asset ``role`` may not read: the record type itself (``<plural>``), or its masked
    fields (``account.credit_line``), or the metric's masked sources; empty when it sees it all."""
    matrix = policy_of(session, actor)
    granted = ROLE_PERMISSIONS.get(Role(role), frozenset()) if role in set(Role) else frozenset()
    if kind in ("record_type", "field_group"):
        noun, _, group = key.partition(".")
        plural = records.record_type_for(noun).plural
        if f"{plural}:read" not in granted:
            return [plural]
        masked = matrix.masked(role, noun)
        if group == "finance":
            masked = masked & set(FIELD_RULES.get(noun, {}))
        elif group == "custom":
            masked = frozenset(name for name in masked if name.startswith(CUSTOM))
        return [f"{noun}.{name}" for name in sorted(masked)]
    if "funnel:read" not in granted:
        return [key]
    metric = metrics.registry().metrics.get(key) if kind == "metric" else None
    if metric is not None and not metric.readable_by(role, matrix):
        return sorted(f"{noun}.{name}" for noun, name in metric.sources() if name in matrix.masked(role, noun))
    return []


def maintain(
    session: Session, actor: Actor, *, kind: str, key: str, data: AssetUpdate, expected_version: int | None = None
) -> dict[str, Any]:
    """Record who produces, consumes and answers for an asset (needs ``schema:manage``). Only the
    fields ``data`` carries change; the others keep their value (for an asset never maintained, the
    defaults the map shows). The accountable person must be an active user who may read the whole
    asset — masked fields included (422 naming ``accountable_user_id``)."""
    require(actor, "schema:manage")
    if not any(asset.kind == kind and asset.key == key for asset in catalogue(session, actor)):
        raise NotFound("data_asset", f"{kind}/{key}")
    sent = data.model_fields_set
    current = next(entry for entry in rows(session, actor) if entry["kind"] == kind and entry["key"] == key)
    values: dict[str, Any] = {
        name: _check_roles(name, getattr(data, name)) if name in sent else list(current[name]) for name in _LISTS
    }
    accountable = data.accountable_user_id if "accountable_user_id" in sent else current["accountable_user_id"]
    if "accountable_user_id" in sent and accountable is not None:
        user = session.scalar(
            select(User).where(tenant_clause(actor.organization_id, User), User.id == accountable, User.is_active)
        )
        if user is None:
            raise ValidationFailed.one("accountable_user_id", "no active user of your organization", "not_found")
        unseen = unseen_by(session, actor, kind=kind, key=key, role=user.role)
        if unseen:
            raise ValidationFailed.one(
                "accountable_user_id",
                f"{user.display_name} ({user.role}) may not read {', '.join(unseen)}: the person accountable "
                "for an asset must see all of it",
                "cannot_read",
            )
    values["accountable_user_id"] = accountable
    values["notes"] = ((data.notes or "").strip() or None) if "notes" in sent else current["notes"]
    row = _stored(session, actor).get((kind, key))
    if expected_version is not None and (row is None or row.version != expected_version):
        raise PreconditionFailed()
    before: dict[str, Any] = {}
    if row is None:
        row = DataAsset(organization_id=actor.organization_id, kind=kind, key=key, **values)
        session.add(row)
    else:
        before = {name: getattr(row, name) for name in values}
        for name, value in values.items():
            setattr(row, name, value)
    records.flush(session)
    difference = audit.diff(before, values)
    if difference:
        audit.record(
            session, actor, "data_asset.updated", subject_type="data_asset", subject_id=row.id, changes=difference
        )
    return next(entry for entry in rows(session, actor) if entry["kind"] == kind and entry["key"] == key)


def export_rows(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """The map as flat rows for CSV/XLSX (lists joined with ``; ``)."""
    flat = []
    for entry in rows(session, actor):
        flat.append(
            {
                column: "; ".join(entry[column]) if isinstance(entry[column], list) else entry[column]
                for column in COLUMNS
            }
        )
    return flat
