"""The scanner on the real Maven CRM data: its quirks are among the defects it reports."""

from __future__ import annotations

import pytest

from closeloop.db.session import Database
from closeloop.integrations.importing.maven import import_maven_crm
from closeloop.org import service as org_service
from closeloop.quality.scanner import open_counts
from closeloop.quality.service import run_scan
from tests.conftest import shared_data

MAVEN = shared_data("maven-crm")

pytestmark = [
    pytest.mark.skipif(not MAVEN.is_dir(), reason=f"the Maven data set is not at {MAVEN}"),
    pytest.mark.slow,
]


def test_the_quirks_of_the_maven_data_set_loaded_as_is_are_reported_as_defects(db: Database) -> None:
    summary = import_maven_crm(db, MAVEN, as_is=True)
    assert summary.problems == []
    assert "as is: product 'GTXPro' is not in the product list; kept as a product of its own" in summary.quirks

    result = run_scan(db, summary.organization_id, full=True)

    with db.reading(org_service.system_actor(summary.organization_id)) as session:
        counts = open_counts(session, summary.organization_id)
    assert counts["opportunity_without_account"] == 1425  # the open deals without account
    assert counts["unknown_value"] == 13  # 12 accounts in sector 'technolgy', one in 'Philipines'
    assert counts["product_duplicate"] == 1  # 'GTXPro', a duplicate of 'GTX Pro'
    assert counts["opportunity_no_decision_role"] == 2089  # the data set has no contacts at all
    assert result.opened == sum(counts.values())
