"""The Maven CRM Sales Opportunities data set, imported for real."""

from __future__ import annotations

import pytest
from sqlalchemy import ColumnElement, func, select

from closeloop.crm.accounts.models import Account
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine, StageChange
from closeloop.crm.products.models import Product, ProductLine
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.integrations.importing.maven import import_maven_crm
from closeloop.org import service as org_service
from closeloop.org.models import Organization, Region, User
from tests.conftest import shared_data

MAVEN = shared_data("maven-crm")

pytestmark = pytest.mark.skipif(not MAVEN.is_dir(), reason=f"the Maven data set is not at {MAVEN}")


def test_the_maven_data_set_loads_with_its_quirks_handled_and_loads_again_as_nothing_new(db: Database) -> None:
    summary = import_maven_crm(db, MAVEN)

    assert summary.organization == "maventech"
    assert summary.organization_created is True
    assert summary.counts == {
        "regions": {"created": 3, "updated": 0, "unchanged": 0, "invalid": 0},
        "users": {"created": 41, "updated": 0, "unchanged": 0, "invalid": 0},
        "product_lines": {"created": 3, "updated": 0, "unchanged": 0, "invalid": 0},
        "products": {"created": 7, "updated": 0, "unchanged": 0, "invalid": 0},
        "accounts": {"created": 85, "updated": 0, "unchanged": 0, "invalid": 0},
        "opportunities": {"created": 8800, "updated": 0, "unchanged": 0, "invalid": 0},
    }
    assert summary.problems == []
    assert "product 'GTXPro' read as 'GTX Pro' on 1480 deals" in summary.quirks
    assert "sector 'technolgy' corrected to 'technology' on 12 accounts" in summary.quirks
    assert "1425 open deals have no account and were imported without one" in summary.quirks
    org = summary.organization_id
    actor = org_service.system_actor(org)
    with db.reading(actor) as session:
        organization = session.get(Organization, org)
        assert organization is not None
        assert (organization.name, organization.kind, organization.default_currency) == ("MavenTech", "seller", "USD")

        def count(model: type, *where: ColumnElement[bool]) -> int:
            statement = select(func.count()).select_from(model).where(tenant_clause(org, model), *where)
            return int(session.scalar(statement) or 0)

        assert count(Account) == 85
        assert count(Product) == 7
        assert count(ProductLine) == 3
        assert sorted(session.scalars(select(Region.name).where(tenant_clause(org, Region)))) == [
            "Central",
            "East",
            "West",
        ]
        roles = session.execute(
            select(User.role, func.count()).where(tenant_clause(org, User)).group_by(User.role).order_by(User.role)
        ).all()
        assert [tuple(r) for r in roles] == [("manager", 6), ("rep", 35)]
        assert (
            session.scalar(
                select(func.count()).select_from(User).where(tenant_clause(org, User), User.password_hash.is_not(None))
            )
            == 0
        )
        agent = session.scalar(select(User).where(tenant_clause(org, User), User.display_name == "Moses Frase"))
        manager = session.scalar(select(User).where(tenant_clause(org, User), User.display_name == "Dustin Brinkmann"))
        assert agent is not None
        assert manager is not None
        assert (agent.username, agent.role, agent.manager_id) == ("moses.frase", "rep", manager.id)

        stages = session.execute(
            select(Opportunity.stage, func.count())
            .where(tenant_clause(org, Opportunity))
            .group_by(Opportunity.stage)
            .order_by(Opportunity.stage)
        ).all()
        assert [tuple(s) for s in stages] == [
            ("lost", 2473),
            ("prospecting", 500),
            ("qualification", 1589),
            ("won", 4238),
        ]
        assert count(Opportunity, Opportunity.account_id.is_(None)) == 1425
        assert count(Opportunity, Opportunity.currency != "USD") == 0
        gtx_pro = session.scalar(select(Product).where(tenant_clause(org, Product), Product.name == "GTX Pro"))
        assert gtx_pro is not None
        assert count(Opportunity, Opportunity.product_id == gtx_pro.id) == 1480
        assert count(OpportunityProductLine) == 8800
        assert count(StageChange) == 500 + 1589 * 2 + (4238 + 2473) * 3

        technology = session.scalar(
            select(func.count())
            .select_from(Account)
            .where(tenant_clause(org, Account), Account.industry == "technology")
        )
        assert technology == 12
        acme = session.scalar(select(Account).where(tenant_clause(org, Account), Account.name == "Acme Corporation"))
        bluth = session.scalar(select(Account).where(tenant_clause(org, Account), Account.name == "Bluth Company"))
        assert acme is not None
        assert bluth is not None
        assert (str(acme.annual_revenue), acme.employees, acme.country, acme.year_established) == (
            "1100040000.00",
            2822,
            "United States",
            1996,
        )
        assert bluth.parent_account_id == acme.id

        won = session.scalar(
            select(Opportunity).where(tenant_clause(org, Opportunity), Opportunity.external_ref == "1C1I7A6R")
        )
        assert won is not None
        assert (won.name, won.stage, str(won.amount), won.owner_id) == (
            "Cancity · GTX Plus Basic",
            "won",
            "1054.00",
            agent.id,
        )
        assert (won.opened_at.date().isoformat(), won.closed_at and won.closed_at.date().isoformat()) == (
            "2016-10-20",
            "2017-03-01",
        )
        history = session.execute(
            select(StageChange.from_stage, StageChange.to_stage, StageChange.duration_seconds)
            .where(tenant_clause(org, StageChange), StageChange.opportunity_id == won.id)
            .order_by(StageChange.id)
        ).all()
        assert [tuple(h) for h in history] == [
            (None, "prospecting", None),
            ("prospecting", "qualification", None),
            ("qualification", "won", 132 * 86400),
        ]
        lost = session.scalar(select(Opportunity).where(tenant_clause(org, Opportunity), Opportunity.stage == "lost"))
        assert lost is not None
        assert lost.lost_reason == "not recorded in source data"
        entries = count(AuditEntry)
        assert list(audit.verify(session, org)) == []

    again = import_maven_crm(db, MAVEN)

    assert again.organization_created is False
    assert again.created == 0
    assert {entity: c["unchanged"] for entity, c in again.counts.items()} == {
        "regions": 3,
        "users": 41,
        "product_lines": 3,
        "products": 7,
        "accounts": 85,
        "opportunities": 8800,
    }
    with db.reading(actor) as session:
        assert (
            session.scalar(select(func.count()).select_from(AuditEntry).where(tenant_clause(org, AuditEntry)))
            == entries
        )
        assert (
            session.scalar(select(func.count()).select_from(Opportunity).where(tenant_clause(org, Opportunity))) == 8800
        )
