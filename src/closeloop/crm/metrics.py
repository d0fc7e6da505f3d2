"""The metric registry (GOV-4): every number a dashboard shows is a published metric whose lineage
is derived from its definition.

A metric is defined by the SQL statement that computes it (built by the same function the page and
the API run), a readable transformation, a refresh frequency and the role that answers for it. Its
*sources* — the record types and fields it reads — are not typed by hand: they are read off the
statement's expression tree. :func:`Registry.publish` refuses a metric whose lineage is incomplete
(no source, no transformation, no refresh, no owner), so an unexplained number never reaches a
dashboard. A dashboard is a set of metrics plus the statements of its filters and dimensions; its
lineage is the union of theirs.

Masks follow from lineage: a metric that reads a field masked for a role is not shown to that role
(the average margin of won deals is for finance roles only, like ``opportunity.margin`` itself).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

from sqlalchemy import Column, Table
from sqlalchemy.sql import visitors

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, NotFound
from closeloop.db.base import Base
from closeloop.db.scope import AnySelect
from closeloop.governance.fields import FieldPolicy, policy
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service

#: columns that carry no business meaning of their own (keys, tenancy, soft delete)
_TECHNICAL = frozenset({"id", "organization_id", "deleted_at", "version"})
#: the organization id used when a definition's statement is built only to be read, never run
_LINEAGE_ORGANIZATION = 0

Source = tuple[str, str]
StatementBuilder = Callable[[Actor], Iterable[AnySelect]]


class IncompleteLineage(DomainError):
    """A metric or dashboard whose lineage is incomplete cannot be published."""

    def __init__(self, key: str, missing: list[str]) -> None:
        super().__init__(
            f"Metric '{key}' cannot be published: its lineage lacks {', '.join(missing)}",
            code="incomplete_lineage",
            status=422,
        )
        self.key = key
        self.missing = missing


@cache
def _nouns_by_table() -> dict[str, str]:
    found: dict[str, str] = {}
    for mapper in Base.registry.mappers:
        table = mapper.local_table
        if isinstance(table, Table):
            found[table.name] = str(getattr(mapper.class_, "__noun__", None) or table.name.removesuffix("s"))
    return found


def sources_of(statements: Iterable[AnySelect]) -> frozenset[Source]:
    """``(noun, field)`` of every stored column the statements read, anywhere in their trees
    (selected, filtered, joined, grouped, inside subqueries)."""
    nouns = _nouns_by_table()
    found: set[Source] = set()
    for statement in statements:
        for element in visitors.iterate(statement):
            if isinstance(element, Column) and isinstance(element.table, Table) and element.name not in _TECHNICAL:
                noun = nouns.get(element.table.name)
                if noun is not None:
                    found.add((noun, element.name))
    return frozenset(found)


@cache
def _statement_sources(statements: StatementBuilder) -> frozenset[Source]:
    """The sources of a metric's statements, built once per process: they depend on the statements'
    shape only (built as :func:`lineage_actor`), and walking the SQL trees again for every metric ×
    role made the asset map and the quality page spend ~0.4 s on it per view."""
    return sources_of(statements(lineage_actor()))


def lineage_actor() -> Actor:
    """The actor a definition's statement is built as when only its shape matters (row scope ALL)."""
    return org_service.system_actor(_LINEAGE_ORGANIZATION, label="lineage")


@dataclass(frozen=True)
class Metric:
    """One published number. ``statements`` builds the SQL that computes it, as ``actor``."""

    key: str
    name_zh: str
    name_en: str
    unit: str  # money | ratio | count | days | percent
    transformation_zh: str
    transformation_en: str
    refresh: str  # refresh key: on_read | hourly | nightly
    owner_role: str | None
    statements: StatementBuilder
    dashboards: tuple[str, ...] = ()

    def sources(self) -> frozenset[Source]:
        return _statement_sources(self.statements)

    def readable_by(self, role: str, matrix: FieldPolicy | None = None) -> bool:
        """Whether ``role`` may see this metric: none of its sources is masked for it under
        ``matrix`` (an organization's configured field masks; the built-in ones when ``None``)."""
        masks = matrix if matrix is not None else policy(None, 0)
        return not any(name in masks.masked(role, noun) for noun, name in self.sources())


@dataclass(frozen=True)
class Dashboard:
    """A page of metrics; ``statements`` adds what its filters and dimensions read."""

    key: str
    name_zh: str
    name_en: str
    path: str
    metrics: tuple[str, ...]
    owner_role: str | None
    statements: StatementBuilder = field(default=lambda actor: ())
    #: the record type whose formula fields the dashboard offers as measures and dimensions (its
    #: lineage then follows each formula to its inputs: :func:`closeloop.crm.lineage.dashboard_lineage`)
    formulas_of: str | None = None


REFRESH_LABELS = {
    "on_read": ("每次打开页面时从记录实时计算", "computed from the records each time the page is read"),
    "hourly": ("每小时由后台任务检查", "checked hourly by the background worker"),
    "nightly": ("每晚由后台任务计算", "computed nightly by the background worker"),
}


def _missing(owner_role: str | None, sources: frozenset[Source], transformation: str, refresh: str) -> list[str]:
    missing = []
    if not sources:
        missing.append("sources")
    if not transformation.strip():
        missing.append("transformation")
    if refresh not in REFRESH_LABELS:
        missing.append("refresh")
    if owner_role not in {role.value for role in Role}:
        missing.append("owner")
    return missing


class Registry:
    """The published metrics and dashboards, in publication order."""

    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}
        self.dashboards: dict[str, Dashboard] = {}

    def publish(self, metric: Metric) -> Metric:
        """Add ``metric``; refused (:class:`IncompleteLineage`) when its lineage is incomplete."""
        both = metric.transformation_en if metric.transformation_zh.strip() else ""
        missing = _missing(metric.owner_role, metric.sources(), both, metric.refresh)
        if missing:
            raise IncompleteLineage(metric.key, missing)
        self.metrics[metric.key] = metric
        return metric

    def publish_dashboard(self, dashboard: Dashboard) -> Dashboard:
        """Add ``dashboard``; every metric on it must be published, and it needs an owner."""
        missing = [f"published metric '{key}'" for key in dashboard.metrics if key not in self.metrics]
        if not dashboard.metrics:
            missing.append("metrics")
        if dashboard.owner_role not in {role.value for role in Role}:
            missing.append("owner")
        if missing:
            raise IncompleteLineage(dashboard.key, missing)
        self.dashboards[dashboard.key] = dashboard
        return dashboard

    def metric(self, key: str) -> Metric:
        found = self.metrics.get(key)
        if found is None:
            raise NotFound("metric", key)
        return found

    def dashboard(self, key: str) -> Dashboard:
        found = self.dashboards.get(key)
        if found is None:
            raise NotFound("dashboard", key)
        return found

    def dashboard_sources(self, key: str) -> frozenset[Source]:
        dashboard = self.dashboard(key)
        found: set[Source] = set(_statement_sources(dashboard.statements))
        for metric_key in dashboard.metrics:
            found |= self.metrics[metric_key].sources()
        return frozenset(found)

    def reading(self, noun: str, name: str) -> list[Metric]:
        """The metrics that read ``noun.name`` (downstream of a field)."""
        return [metric for metric in self.metrics.values() if (noun, name) in metric.sources()]


REGISTRY = Registry()


def registry() -> Registry:
    """The registry with every built-in metric and dashboard published."""
    from closeloop.crm import performance
    from closeloop.crm.funnel import service as funnel

    if not REGISTRY.dashboards:
        funnel.publish_metrics(REGISTRY)
        performance.publish_metrics(REGISTRY)
    return REGISTRY


__all__ = ["REGISTRY", "Dashboard", "IncompleteLineage", "Metric", "Registry", "registry", "sources_of"]
