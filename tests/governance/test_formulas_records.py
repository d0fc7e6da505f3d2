"""Formulas on real CRM records (``crm/formulas.py``): aggregates with WHERE and ``days_ago``, the
seeds' dealer example, masks, permissions, row scope and tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from closeloop.core.clock import frozen_at, utcnow
from closeloop.core.errors import Forbidden
from closeloop.crm import formulas
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.orders.models import Order
from closeloop.db.session import Database
from closeloop.governance.formulas import FormulaError
from tests.factories import Tenant

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> Iterator[None]:
    with frozen_at(NOW):
        yield


def ago(days: float) -> datetime:
    return utcnow() - timedelta(days=days)


class Records:
    """Rows of one tenant, written straight to the tables (the formulas only read them)."""

    def __init__(self, db: Database, tenant: Tenant) -> None:
        self.db = db
        self.tenant = tenant
        self.numbers = 0

    def add(self, model: type[Any], **values: Any) -> int:
        with self.db.unit_of_work(self.tenant["admin"].actor) as session:
            row = model(organization_id=self.tenant.organization_id, **values)
            session.add(row)
            session.flush()
            return int(row.id)

    def account(self, name: str, owner: str = "rep", **values: Any) -> int:
        return self.add(Account, name=name, owner_id=self.tenant[owner].user_id, **values)

    def order(self, account_id: int, total: str, days_ago: float, status: str = "delivered", owner: str = "rep") -> int:
        self.numbers += 1
        return self.add(
            Order,
            number=f"SO-{self.tenant.organization_id}-{self.numbers}",
            account_id=account_id,
            total=Decimal(total),
            ordered_at=ago(days_ago),
            status=status,
            owner_id=self.tenant[owner].user_id,
        )

    def activity(self, account_id: int, kind: str, days_ago: float, owner: str = "rep", **values: Any) -> int:
        return self.add(
            Activity,
            kind=kind,
            account_id=account_id,
            occurred_at=ago(days_ago),
            user_id=self.tenant[owner].user_id,
            **values,
        )


def values(db: Database, tenant: Tenant, member: str, noun: str, text: str, ids: list[int]) -> dict[int, Any]:
    actor = tenant[member].actor
    with db.reading(actor) as session:
        return dict(formulas.evaluate(session, actor, noun, text, ids=ids))


# --- aggregates with WHERE and days_ago ---------------------------------------------------------------


def test_aggregates_filter_related_records_by_their_fields_and_age(db: Database, tenant: Tenant) -> None:
    rows = Records(db, tenant)
    hospital = rows.account("瑞金医院", tier="A", employees=1200)
    quiet = rows.account("安静诊所", tier="C")
    rows.order(hospital, "1000.00", days_ago=10)
    rows.order(hospital, "250.50", days_ago=89.9)
    rows.order(hospital, "9999.00", days_ago=5, status="cancelled")
    rows.order(hospital, "400.00", days_ago=120)
    rows.activity(hospital, "visit", days_ago=29)
    rows.activity(hospital, "visit", days_ago=31)
    rows.activity(hospital, "call", days_ago=1)
    rows.activity(hospital, "email", days_ago=3, direction="outbound", is_replied=False)
    rows.activity(hospital, "email", days_ago=4, direction="outbound", is_replied=True)
    ids = [hospital, quiet]

    def of(text: str) -> dict[int, Any]:
        return values(db, tenant, "rep", "account", text, ids)

    assert of('SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")') == {hospital: 1250.5, quiet: 0.0}
    assert of('COUNT(activities WHERE type = "visit" AND days_ago <= 30)') == {hospital: 1.0, quiet: 0.0}
    assert of("DAYS_BETWEEN(MAX(activities.occurred_at), TODAY())") == {hospital: 1.0, quiet: None}
    assert of('COUNT(activities WHERE type = "email" AND NOT is_replied)') == {hospital: 1.0, quiet: 0.0}
    assert of("AVG(orders.amount WHERE days_ago <= 90)") == {hospital: (1000 + 250.5 + 9999) / 3, quiet: None}
    assert of('IF(tier = "A" AND employees >= 1000, "key account", "other")') == {
        hospital: "key account",
        quiet: "other",
    }


def test_a_formula_on_opportunities_reads_its_activities_and_stage_history(db: Database, tenant: Tenant) -> None:
    rows = Records(db, tenant)
    account = rows.account("华山医院")
    deal = rows.add(
        Opportunity,
        name="CT 采购",
        account_id=account,
        amount=Decimal("500000.00"),
        stage="proposal",
        opened_at=ago(40),
        stage_changed_at=ago(5),
        owner_id=tenant["rep"].user_id,
    )
    rows.add(Activity, kind="meeting", opportunity_id=deal, occurred_at=ago(2), user_id=tenant["rep"].user_id)

    result = values(
        db,
        tenant,
        "rep",
        "opportunity",
        'IF(stage IN ("proposal", "negotiation") AND COUNT(activities WHERE days_ago <= 7) = 0, "stalled", '
        '"moving") & " / " & stage',
        [deal],
    )

    assert result == {deal: "moving / proposal"}
    assert values(db, tenant, "rep", "opportunity", "DAYS_BETWEEN(opened_at, TODAY())", [deal]) == {deal: 40.0}


# --- the seeds' example: dealer inventory turnover vs. terminal sell-through match -------------------

SELL_IN_90 = 'SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")'
SELL_THROUGH_90 = 'SUM(child_orders.amount WHERE days_ago <= 90 AND status != "cancelled")'
MATCH = f"ROUND({SELL_THROUGH_90} / {SELL_IN_90}, 2)"
STOCK = 'SUM(orders.amount WHERE status != "cancelled") - SUM(child_orders.amount WHERE status != "cancelled")'
TURNOVER_DAYS = f"ROUND(({STOCK}) / ({SELL_THROUGH_90} / 90), 1)"
#: 经销商库存周转与终端动销匹配度, as one field a channel manager would put on the dealer list
DEALER_HEALTH = (
    f'IF({MATCH} < 0.8, "压货 stock building up", IF({MATCH} > 1.2, "缺货风险 running short", "匹配 matched"))'
    f' & ": match " & IF({MATCH} IS NULL, "n/a", IF({MATCH} >= 0.5, "≥ 50%", "< 50%"))'
)


def test_dealer_inventory_turnover_and_terminal_sell_through_match(
    db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    rows = Records(db, tenant)
    dealer = rows.account("华瑞医疗器械经销", industry="分销")
    hospital = rows.account("苏州明德医院", parent_account_id=dealer)
    pharmacy = rows.account("康宁大药房", parent_account_id=dealer)
    closed = rows.account("已注销诊所", parent_account_id=dealer, deleted_at=ago(1))
    elsewhere = rows.account("直销客户")
    # sell-in: what the dealer took from us
    rows.order(dealer, "60000.00", days_ago=10, status="confirmed")
    rows.order(dealer, "40000.00", days_ago=80)
    rows.order(dealer, "50000.00", days_ago=100)
    rows.order(dealer, "9999.00", days_ago=5, status="cancelled")
    # sell-through: what its terminals bought
    rows.order(hospital, "30000.00", days_ago=20)
    rows.order(hospital, "10000.00", days_ago=95)
    rows.order(pharmacy, "25000.00", days_ago=60)
    rows.order(pharmacy, "5000.00", days_ago=3, status="cancelled")
    rows.order(closed, "99000.00", days_ago=10)  # a deleted terminal does not count
    rows.order(elsewhere, "77000.00", days_ago=10)  # nor does an account that is not the dealer's
    # another organization's order pointing at our dealer's id must never be counted
    Records(db, other_tenant).add(
        Order,
        number="SO-POISON",
        account_id=dealer,
        total=Decimal("1000000.00"),
        ordered_at=ago(10),
        status="delivered",
    )
    ids = [dealer, hospital, elsewhere]

    def of(text: str) -> dict[int, Any]:
        return values(db, tenant, "rep", "account", text, ids)

    assert of(SELL_IN_90) == {dealer: 100000.0, hospital: 30000.0, elsewhere: 77000.0}
    assert of(SELL_THROUGH_90) == {dealer: 55000.0, hospital: 0.0, elsewhere: 0.0}
    assert of(MATCH) == {dealer: 0.55, hospital: 0.0, elsewhere: 0.0}
    assert of(STOCK) == {dealer: 85000.0, hospital: 40000.0, elsewhere: 77000.0}
    # 85,000 of stock sells through at 55,000 per 90 days: 139.1 days to turn over
    assert of(TURNOVER_DAYS) == {dealer: 139.1, hospital: None, elsewhere: None}
    assert of(DEALER_HEALTH) == {
        dealer: "压货 stock building up: match ≥ 50%",
        hospital: "压货 stock building up: match < 50%",
        elsewhere: "压货 stock building up: match < 50%",
    }
    assert of("COUNT(child_accounts)") == {dealer: 2.0, hospital: 0.0, elsewhere: 0.0}

    checked = formulas.check(tenant["rep"].actor, "account", TURNOVER_DAYS)
    assert checked.inputs == {("order", "total"), ("order", "ordered_at"), ("order", "status")}
    assert checked.sources == {"account", "order"}


# --- who sees what --------------------------------------------------------------------------------------


def test_a_formula_reading_a_masked_field_is_refused_to_whoever_cannot_read_it(db: Database, tenant: Tenant) -> None:
    rows = Records(db, tenant)
    account = rows.account("协和医院", credit_line=Decimal("800000.00"))
    rows.add(
        Opportunity,
        name="MRI",
        account_id=account,
        amount=Decimal("100.00"),
        margin=Decimal("32.50"),
        opened_at=ago(3),
        stage_changed_at=ago(3),
        owner_id=tenant["rep"].user_id,
    )
    text = "ROUND(AVG(opportunities.margin), 1)"

    with db.reading(tenant["rep"].actor) as session, pytest.raises(Forbidden) as refused:
        formulas.evaluate(session, tenant["rep"].actor, "account", text, ids=[account])
    assert "opportunity.margin" in refused.value.message
    assert refused.value.extra == {"masked_inputs": ["opportunity.margin"]}
    assert formulas.masked_for(tenant["rep"].actor, formulas.check(tenant["rep"].actor, "account", text))

    assert values(db, tenant, "cfo", "account", text, [account]) == {account: 32.5}
    assert values(db, tenant, "sales_vp", "account", "credit_line / 10000", [account]) == {account: 80.0}
    for member in ("rep", "manager", "admin", "it_director"):
        checked = formulas.check(tenant[member].actor, "account", "credit_line * 2")
        assert formulas.masked_inputs(tenant[member].actor, checked) == [("account", "credit_line")]
    assert not formulas.masked_for(tenant["cfo"].actor, formulas.check(tenant["cfo"].actor, "account", text))


def test_aggregates_count_only_related_records_the_caller_may_see(db: Database, tenant: Tenant) -> None:
    rows = Records(db, tenant)
    account = rows.account("共享客户")
    rows.order(account, "100.00", days_ago=1, owner="rep")
    rows.order(account, "900.00", days_ago=1, owner="rep2")
    rows.order(account, "5000.00", days_ago=1, owner="sales_vp")

    text = "SUM(orders.amount)"
    assert values(db, tenant, "rep", "account", text, [account]) == {account: 100.0}
    assert values(db, tenant, "manager", "account", text, [account]) == {account: 1000.0}
    assert values(db, tenant, "sales_vp", "account", text, [account]) == {account: 6000.0}
    # and records outside the caller's scope get no value at all
    assert values(db, tenant, "rep2", "account", text, [account]) == {}


def test_another_organization_sees_none_of_the_records_and_counts_none_of_the_rows(
    db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    ours = Records(db, tenant)
    account = ours.account("本租户客户", owner="admin")
    ours.order(account, "123.00", days_ago=1, owner="admin")
    theirs = Records(db, other_tenant)
    their_account = theirs.account("他租户客户", owner="admin")
    theirs.order(their_account, "7.00", days_ago=1, owner="admin")

    text = "SUM(orders.amount) + COUNT(orders)"
    assert values(db, other_tenant, "admin", "account", text, [account, their_account]) == {their_account: 8.0}
    assert values(db, tenant, "admin", "account", text, [account, their_account]) == {account: 124.0}
    actor = other_tenant["admin"].actor
    with db.reading(actor) as session:
        listed = formulas.evaluate(session, actor, "account", text)
    assert [record_id for record_id, _ in listed] == [their_account]


def test_a_formula_over_records_the_role_may_not_read_is_refused(db: Database, partner: Tenant) -> None:
    member = partner["partner_user"]
    with pytest.raises(Forbidden, match="quotes:read"):
        formulas.check(member.actor, "account", "COUNT(quotes)")
    with pytest.raises(Forbidden, match="quotes:read"):
        formulas.check(member.actor, "quote", "total")
    assert formulas.check(member.actor, "account", "COUNT(orders)").type.value == "number"


def test_a_value_out_of_range_is_an_error_on_both_databases(db: Database, tenant: Tenant) -> None:
    account = Records(db, tenant).account("溢出医院", employees=10)
    actor = tenant["rep"].actor
    with db.reading(actor) as session, pytest.raises(FormulaError, match="out of range"):
        formulas.evaluate(session, actor, "account", "1e308 * employees", ids=[account])


def test_formulas_work_on_every_record_type(db: Database, tenant: Tenant) -> None:
    actor = tenant["admin"].actor
    expressions = {
        "account": 'COUNT(contacts) + COUNT(tickets WHERE status = "open") + SUM(quotes.total)',
        "opportunity": "COALESCE(amount, 0) + COUNT(stage_changes) + COUNT(quotes) + SUM(orders.amount)",
        "lead": 'IF(status = "new", COUNT(activities), -1)',
        "order": "amount - SUM(lines.amount) + COUNT(lines WHERE quantity > 1)",
        "contact": "DAYS_BETWEEN(title_confirmed_on, TODAY()) + COUNT(activities)",
        "quote": "total - subtotal + discount_amount + SUM(lines.amount)",
    }
    assert set(expressions) == set(formulas.record_types())
    with db.reading(actor) as session:
        for noun, text in expressions.items():
            assert formulas.evaluate(session, actor, noun, text) == [], noun
