"""Field masks in the one serializer: a masked field is absent for the roles that may not read it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from closeloop.core.errors import Forbidden
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.models import Account
from closeloop.db.session import Database
from closeloop.governance.fields import DEFAULTS, FIELD_RULES, can_read_field, check_writable
from closeloop.governance.permissions import Role
from tests.factories import Tenant

FINANCE = {Role.SALES_VP, Role.CFO}


def test_the_rules_hide_margin_and_credit_line_from_all_but_finance() -> None:
    assert {noun: set(rules) for noun, rules in FIELD_RULES.items()} == {
        "opportunity": {"margin"},
        "account": {"credit_line"},
        "quote": {"margin"},
    }
    for role in Role:
        expected = frozenset() if role in FINANCE else frozenset({"credit_line"})
        assert DEFAULTS.masked(role.value, "account") == expected, role
        assert DEFAULTS.masked(role.value, "contact") == frozenset()


@pytest.mark.parametrize("key", ["rep", "manager", "director", "sales_vp", "cfo", "it_director", "admin"])
def test_the_serializer_leaves_masked_fields_out_not_empty(db: Database, tenant: Tenant, key: str) -> None:
    vp = tenant["sales_vp"].actor
    with db.unit_of_work(vp) as session:
        account = records.create(
            session, vp, account_service.ACCOUNTS, {"name": "授信医院", "credit_line": Decimal("800000.00")}
        )
        account_id = account.id
    actor = tenant[key].actor

    with db.reading(actor) as session:
        loaded = session.get(Account, account_id)
        body = records.serialize(session, actor, account_service.ACCOUNTS, loaded)

    if actor.role in FINANCE:
        assert body["credit_line"] == Decimal("800000.00")
        assert can_read_field(None, actor, "account", "credit_line")
    else:
        assert "credit_line" not in body
        assert not can_read_field(None, actor, "account", "credit_line")
    assert body["name"] == "授信医院"


def test_a_write_naming_a_masked_field_is_refused_with_its_name(tenant: Tenant) -> None:
    with pytest.raises(Forbidden) as refused:
        check_writable(None, tenant["admin"].actor, "opportunity", ["amount", "margin"])

    assert refused.value.problems[0].field == "margin"
    check_writable(None, tenant["cfo"].actor, "opportunity", ["amount", "margin"])
