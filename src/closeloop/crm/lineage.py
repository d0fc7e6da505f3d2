"""Lineage (GOV-4, first part): for any field, where its values come from and what is computed
from it — derived from the definitions (formula fields' compiled inputs), never typed by hand.

Upstream of a formula field are the stored fields its formula reads (on the record and on the
related records it aggregates); its transformation is the normalized formula, its refresh is
"computed when read", its owner whoever asked for it. Downstream of any field are the formula
fields that read it — the answer to "what breaks if I change this?", which change requests show
as their impact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound
from closeloop.crm import customfields, formulas, metrics, records
from closeloop.crm.customfields import PREFIX, Definition
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.changes.models import ChangeRequest, ChangeStatus
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.fields import FieldPolicy, policy_of
from closeloop.governance.formulas.errors import FormulaError
from closeloop.governance.permissions import require
from closeloop.org import service as org_service


@dataclass(frozen=True, slots=True)
class FormulaNode:
    definition: Definition
    inputs: frozenset[tuple[str, str]]
    sources: frozenset[str]
    normalized: str


def formula_nodes(session: Session, organization_id: int) -> list[FormulaNode]:
    """Every formula field of the organization with what it reads (compiled as the system)."""
    system = org_service.system_actor(organization_id)
    nodes = []
    for noun in customfields.customizable_nouns():
        for definition in customfields.definitions(session, organization_id, noun):
            if definition.field_type is not FieldType.FORMULA or definition.formula is None:
                continue
            try:
                checked = formulas.check(system, noun, definition.formula, session)
            except FormulaError:
                continue  # a formula that no longer compiles reads nothing (and shows no value)
            nodes.append(FormulaNode(definition, checked.inputs, checked.sources, checked.normalized))
    return nodes


def downstream(session: Session, organization_id: int, noun: str, field: str) -> list[dict[str, Any]]:
    """The formula fields that read ``noun.field``."""
    return [
        {
            "record_type": node.definition.record_type,
            "field": PREFIX + node.definition.name,
            "label_zh": node.definition.label_zh,
            "label_en": node.definition.label_en,
        }
        for node in formula_nodes(session, organization_id)
        if (noun, field) in node.inputs
    ]


def _owner(session: Session, actor: Actor, definition: Definition) -> int | None:
    """Who asked for the field (the requester of the change request that created it)."""
    return session.scalar(
        visible(actor, ChangeRequest, access=RowAccess.READ)
        .where(
            ChangeRequest.kind == "custom_field.create",
            ChangeRequest.target_id == definition.id,
            ChangeRequest.status == ChangeStatus.APPLIED.value,
        )
        .with_only_columns(ChangeRequest.requested_by_id)
        .limit(1)
    )


def lineage(session: Session, actor: Actor, noun: str, field: str) -> dict[str, Any]:
    """The lineage of one field as ``actor`` may see it (a field they cannot read is not found)."""
    try:
        record_type = records.record_type_for(noun)
    except KeyError:
        raise NotFound("record type", noun) from None
    require(actor, f"{record_type.plural}:read")
    if field in records.masked(session, actor, noun):
        raise NotFound("field", f"{noun}.{field}")
    node: dict[str, Any] = {"record_type": noun, "field": field}
    upstream: list[dict[str, str]] = []
    if field.startswith(PREFIX):
        definition = next((d for d in customfields.readable(session, actor, noun) if PREFIX + d.name == field), None)
        if definition is None:
            raise NotFound("field", f"{noun}.{field}")
        node |= {
            "kind": definition.field_type.value,
            "label_zh": definition.label_zh,
            "label_en": definition.label_en,
            "owner_id": _owner(session, actor, definition),
        }
        if definition.field_type is FieldType.FORMULA:
            found = next(
                (n for n in formula_nodes(session, actor.organization_id) if n.definition.id == definition.id), None
            )
            node |= {
                "transformation": found.normalized if found else definition.formula,
                "refresh": "computed when the record is read",
                "sources": sorted(found.sources) if found else [],
            }
            upstream = [{"record_type": n, "field": f} for n, f in sorted(found.inputs)] if found else []
        else:
            node |= {"refresh": "entered by people and imports"}
    else:
        if field not in record_type.model.__table__.c and field not in record_type.computed:
            raise NotFound("field", f"{noun}.{field}")
        node |= {"kind": "stored", "refresh": "entered by people and imports"}
    hidden = {n: records.masked(session, actor, n) for n in {u["record_type"] for u in upstream}}
    through_metrics = metrics_downstream(noun, field, role=actor.role, matrix=policy_of(session, actor))
    _add_formula_dashboards(session, actor, noun, field, through_metrics["dashboards"])
    return {
        **node,
        "upstream": [u for u in upstream if u["field"] not in hidden[u["record_type"]]],
        "downstream": downstream(session, actor.organization_id, noun, field),
        **through_metrics,
    }


# --- metrics and dashboards ---------------------------------------------------------------------


def _accountable(session: Session, actor: Actor, kind: str, key: str) -> str | None:
    """The person the data asset map names as answering for an asset, when maintained."""
    from closeloop.governance.assets.models import DataAsset
    from closeloop.org.models import User

    row = session.scalar(
        visible(actor, DataAsset, access=RowAccess.READ).where(DataAsset.kind == kind, DataAsset.key == key)
    )
    if row is None or row.accountable_user_id is None:
        return None
    name = session.scalar(
        select(User.display_name).where(tenant_clause(actor.organization_id, User), User.id == row.accountable_user_id)
    )
    return str(name) if name is not None else None


def _owner_of(session: Session, actor: Actor, kind: str, key: str, role: str | None) -> dict[str, Any]:
    return {"role": role, "accountable": _accountable(session, actor, kind, key)}


def _sources(pairs: frozenset[tuple[str, str]]) -> list[dict[str, Any]]:
    """The fields a metric reads; ``traced`` says whether the field has a lineage of its own (a
    record's field has; a link table's column, such as an opportunity's product lines, has not)."""
    return [{"record_type": noun, "field": name, "traced": _is_record_type(noun)} for noun, name in sorted(pairs)]


def _is_record_type(noun: str) -> bool:
    try:
        records.record_type_for(noun)
    except KeyError:
        return False
    return True


def _metric_summary(metric: metrics.Metric) -> dict[str, Any]:
    return {"key": metric.key, "name_zh": metric.name_zh, "name_en": metric.name_en, "unit": metric.unit}


def metric_lineage(session: Session, actor: Actor, key: str) -> dict[str, Any]:
    """Where a published metric comes from (the record fields its SQL reads), how it is computed,
    how often, who answers for it, and which dashboards show it. A metric reading a field masked
    for the actor is not found, like the field."""
    require(actor, "funnel:read")
    published = metrics.registry()
    metric = published.metric(key)
    if not metric.readable_by(actor.role, policy_of(session, actor)):
        raise NotFound("metric", key)
    zh, en = metrics.REFRESH_LABELS[metric.refresh]
    return {
        "kind": "metric",
        **_metric_summary(metric),
        "transformation": {"zh_CN": metric.transformation_zh, "en": metric.transformation_en},
        "refresh": metric.refresh,
        "refresh_text": {"zh_CN": zh, "en": en},
        "owner": _owner_of(session, actor, "metric", key, metric.owner_role),
        "upstream": _sources(metric.sources()),
        "downstream": [
            {"key": d.key, "name_zh": d.name_zh, "name_en": d.name_en, "path": d.path}
            for d in published.dashboards.values()
            if key in d.metrics
        ],
    }


def dashboard_lineage(session: Session, actor: Actor, key: str) -> dict[str, Any]:
    """A dashboard's sources: exactly the fields its metrics, filters and dimensions read."""
    require(actor, "funnel:read")
    published = metrics.registry()
    dashboard = published.dashboard(key)
    matrix = policy_of(session, actor)
    shown = [published.metric(k) for k in dashboard.metrics if published.metric(k).readable_by(actor.role, matrix)]
    sources = set(published.dashboard_sources(key))
    formula_fields = []
    for node in dashboard_formulas(session, actor, dashboard):
        # the formula field itself, and what it reads: following a formula to its inputs
        sources.add((node.definition.record_type, PREFIX + node.definition.name))
        sources |= node.inputs
        formula_fields.append(
            {
                "record_type": node.definition.record_type,
                "field": PREFIX + node.definition.name,
                "label_zh": node.definition.label_zh,
                "label_en": node.definition.label_en,
                "transformation": node.normalized,
            }
        )
    hidden = {noun: records.masked(session, actor, noun) for noun, _ in sources}
    return {
        "kind": "dashboard",
        "key": dashboard.key,
        "name_zh": dashboard.name_zh,
        "name_en": dashboard.name_en,
        "path": dashboard.path,
        "refresh": "on_read",
        "refresh_text": {"zh_CN": metrics.REFRESH_LABELS["on_read"][0], "en": metrics.REFRESH_LABELS["on_read"][1]},
        "owner": _owner_of(session, actor, "dashboard", key, dashboard.owner_role),
        "metrics": [_metric_summary(m) for m in shown],
        "formulas": formula_fields,
        "upstream": _sources(frozenset(s for s in sources if s[1] not in hidden[s[0]])),
    }


def _add_formula_dashboards(
    session: Session, actor: Actor, noun: str, field: str, dashboards: list[dict[str, Any]]
) -> None:
    """Add the dashboards that show ``noun.field`` as a formula, or a formula reading it."""
    for dashboard in metrics.registry().dashboards.values():
        if any(d["key"] == dashboard.key for d in dashboards):
            continue
        for formula in dashboard_formulas(session, actor, dashboard):
            this = (formula.definition.record_type, PREFIX + formula.definition.name) == (noun, field)
            if this or (noun, field) in formula.inputs:
                dashboards.append(
                    {
                        "key": dashboard.key,
                        "name_zh": dashboard.name_zh,
                        "name_en": dashboard.name_en,
                        "path": dashboard.path,
                    }
                )
                break


def dashboards_reading(session: Session, actor: Actor, noun: str, field: str) -> list[dict[str, Any]]:
    """Every dashboard downstream of ``noun.field`` (a change request's impact): through published
    metrics and through the formula fields it offers."""
    dashboards = metrics_downstream(noun, field)["dashboards"]
    system = org_service.system_actor(actor.organization_id)
    _add_formula_dashboards(session, system, noun, field, dashboards)
    return dashboards


def dashboard_formulas(session: Session, actor: Actor, dashboard: metrics.Dashboard) -> list[FormulaNode]:
    """The formula fields a dashboard offers as measures and dimensions, as ``actor`` may see them
    (a formula masked for them is neither on the dashboard nor in its lineage)."""
    if dashboard.formulas_of is None:
        return []
    readable = {d.id for d in customfields.readable(session, actor, dashboard.formulas_of)}
    return [
        node
        for node in formula_nodes(session, actor.organization_id)
        if node.definition.record_type == dashboard.formulas_of and node.definition.id in readable
    ]


def metrics_downstream(
    noun: str, field: str, *, role: str | None = None, matrix: FieldPolicy | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The published metrics that read ``noun.field`` and the dashboards showing them (only the
    metrics ``role`` may read under ``matrix``, the organization's field masks, when given)."""
    published = metrics.registry()
    reading = [m for m in published.reading(noun, field) if role is None or m.readable_by(role, matrix)]
    keys = {metric.key for metric in reading}
    return {
        "metrics": [_metric_summary(metric) for metric in reading],
        "dashboards": [
            {"key": d.key, "name_zh": d.name_zh, "name_en": d.name_en, "path": d.path}
            for d in published.dashboards.values()
            if keys & set(d.metrics) or (noun, field) in metrics.sources_of(d.statements(metrics.lineage_actor()))
        ],
    }


__all__ = ["dashboard_lineage", "downstream", "formula_nodes", "lineage", "metric_lineage", "metrics_downstream"]
