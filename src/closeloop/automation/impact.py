"""What a schema change breaks among the rules (GOV-5): the enabled or disabled rules whose current
version has a condition on the field, or on a formula field reading it — shown as the change
request's ``impact["rules"]``. Registered with the change process when automation is imported."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from closeloop.automation.models import Rule, RuleVersion
from closeloop.crm import changerequests
from closeloop.db.scope import tenant_clause


def rules_reading(session: Session, organization_id: int, noun: str, fields: frozenset[str]) -> list[dict[str, Any]]:
    """The live rules of the organization whose current conditions read ``noun.<one of fields>``."""
    names = {f"{noun}.{field}" for field in fields}
    rows = session.execute(
        select(Rule.id, Rule.name, Rule.enabled, RuleVersion.definition)
        .join(
            RuleVersion,
            and_(
                tenant_clause(organization_id, RuleVersion),
                RuleVersion.rule_id == Rule.id,
                RuleVersion.version == Rule.current_version,
            ),
        )
        .where(tenant_clause(organization_id, Rule), Rule.deleted_at.is_(None))
        .order_by(Rule.id)
    )
    return [
        {"id": rule_id, "name": name, "enabled": enabled}
        for rule_id, name, enabled, definition in rows
        if any(str(c.get("field_or_metric")) in names for c in (definition or {}).get("conditions", []))
    ]


changerequests.register_dependents("rules", rules_reading)
