"""The closed-loop funnel on a small hand-built loop, where every number can be worked out by hand.

Lead A (received 5 Jan) is converted four days later, won ten days after that with an order the same
day; the account orders again 30 days after the win and refers a new lead 10 days after that. Lead B
(rep's too) goes nowhere; lead D belongs to rep2.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.db.session import Database
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_product, new_product_line

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PERIOD = {"start": "2026-01-05", "end": "2026-02-03"}


def at(days: float) -> str:
    return (START + timedelta(days=days)).isoformat()


@pytest.fixture
def loop(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    admin, rep = Api(client, tenant["admin"]), Api(client, tenant["rep"])
    line, other_line = new_product_line(admin), new_product_line(admin)
    product = new_product(admin, list_price="50000.00")
    common = {"industry": "hospital", "region_id": tenant.region_id, "product_line_id": line["id"]}
    lead_a = admin.create(
        "leads",
        {"name": "王芳", "company": "仁济医院", "received_at": at(0), "owner_id": tenant["rep"].user_id, **common},
    )
    admin.create("leads", {"name": "刘洋", "received_at": at(1), "owner_id": tenant["rep"].user_id, **common})
    admin.create("leads", {"name": "陈静", "received_at": at(2), "owner_id": tenant["rep2"].user_id, **common})
    with frozen_at(START + timedelta(days=4)) as advance:
        converted = rep.request("POST", f"/leads/{lead_a['id']}/convert", json={})
        assert converted.status_code == 201, converted.text
        account, opportunity = converted.json()["account"], converted.json()["opportunity"]
        advance(timedelta(days=10))
        won = rep.request("POST", f"/opportunities/{opportunity['id']}/stage", json={"stage": "won"})
        assert won.status_code == 200, won.text
    lines = [{"product_id": product["id"], "quantity": "1"}]
    rep.create(
        "orders",
        {"account_id": account["id"], "opportunity_id": opportunity["id"], "ordered_at": at(14), "lines": lines},
    )
    rep.create("orders", {"account_id": account["id"], "ordered_at": at(44), "lines": lines})
    referred = rep.create("leads", {"name": "赵敏", "received_at": at(54), "owner_id": tenant["rep"].user_id})
    rep.create("referrals", {"referrer_account_id": account["id"], "lead_id": referred["id"], "referred_at": at(54)})
    return {"line": line, "other_line": other_line, "account": account, "opportunity": opportunity}


def steps(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.request("GET", "/funnel", params={**PERIOD, **params})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["steps"]
    return found


def numbers(found: list[dict[str, Any]]) -> list[tuple[str, int, int | None, float | None, float | None]]:
    return [
        (s["step"], s["count"], s["from_previous"], s["conversion_rate"], s["median_days_from_previous"]) for s in found
    ]


FULL_LOOP = [
    ("lead", 2, None, None, None),
    ("opportunity", 1, 1, 0.5, 4.0),
    ("won", 1, 1, 1.0, 10.0),
    ("repurchase", 1, 1, 1.0, 30.0),
    ("referral", 1, 1, 1.0, 10.0),
]
EMPTY = [
    ("lead", 0, None, None, None),
    ("opportunity", 0, 0, None, None),
    ("won", 0, 0, None, None),
    ("repurchase", 0, 0, None, None),
    ("referral", 0, 0, None, None),
]


def test_the_rep_sees_the_whole_loop_with_exact_rates_and_days(
    client: TestClient, tenant: Tenant, loop: dict[str, Any]
) -> None:
    found = steps(Api(client, tenant["rep"]))

    assert numbers(found) == FULL_LOOP
    assert found[1]["extra"] == {"from_leads": 1, "entered_directly": 0}
    assert found[2]["extra"] == {
        "lost": 0,
        "open": 0,
        "win_rate_of_closed": 1.0,
        "won_accounts": 1,
        "won_amount": "0.00",  # the deal has no amount
        "basis": "bookings",
    }
    assert found[3]["extra"] == found[4]["extra"] == {"unit": "account"}


def test_each_role_sees_its_own_slice(client: TestClient, tenant: Tenant, loop: dict[str, Any]) -> None:
    rep2 = numbers(steps(Api(client, tenant["rep2"])))
    manager = numbers(steps(Api(client, tenant["manager"])))

    assert rep2 == [("lead", 1, None, None, None), ("opportunity", 0, 0, 0.0, None), *EMPTY[2:]]
    assert manager == [("lead", 3, None, None, None), ("opportunity", 1, 1, 0.3333, 4.0), *FULL_LOOP[2:]]
    assert numbers(steps(Api(client, tenant["sales_vp"]))) == manager


@pytest.mark.parametrize(
    ("filter_name", "matching", "other"),
    [
        ("owner_id", lambda t, loop: t["rep"].user_id, lambda t, loop: t["director"].user_id),
        ("region_id", lambda t, loop: t.region_id, lambda t, loop: 987654),
        ("product_line_id", lambda t, loop: loop["line"]["id"], lambda t, loop: loop["other_line"]["id"]),
        ("industry", lambda t, loop: "hospital", lambda t, loop: "retail"),
    ],
)
def test_filters_keep_or_drop_the_loop(
    client: TestClient, tenant: Tenant, loop: dict[str, Any], filter_name: str, matching: Any, other: Any
) -> None:
    admin = Api(client, tenant["admin"])

    kept = numbers(steps(admin, **{filter_name: matching(tenant, loop)}))
    dropped = numbers(steps(admin, **{filter_name: other(tenant, loop)}))

    if filter_name == "owner_id":
        assert kept == FULL_LOOP
    else:  # rep2's lead shares the region, line and industry
        assert kept == [("lead", 3, None, None, None), ("opportunity", 1, 1, 0.3333, 4.0), *FULL_LOOP[2:]]
    assert dropped == EMPTY


def test_the_period_decides_the_cohort(client: TestClient, tenant: Tenant, loop: dict[str, Any]) -> None:
    rep = Api(client, tenant["rep"])

    later = numbers(steps(rep, start="2026-01-06"))
    everything = rep.request("GET", "/funnel").json()

    # lead B only; the opportunity opened on 9 January still counts, though its lead came before
    assert later == [("lead", 1, None, None, None), ("opportunity", 1, 0, 0.0, None), *FULL_LOOP[2:]]
    assert [step["count"] for step in everything["steps"]] == [3, 1, 1, 1, 1]
    assert everything["filters"] == {
        "start": None,
        "end": None,
        "owner_id": None,
        "region_id": None,
        "product_line_id": None,
        "industry": None,
    }


def test_a_period_ending_before_it_starts_is_refused(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])

    backwards = rep.request("GET", "/funnel", params={"start": "2026-02-01", "end": "2026-01-01"})
    open_ended = rep.request("GET", "/funnel", params={"start": "0001-01-01", "end": "9999-12-31"})

    assert_problem(backwards, 422, field="end")
    assert open_ended.status_code == 200


def test_the_funnel_page_names_how_many_of_the_periods_leads_converted(
    client: TestClient, db: Database, tenant: Tenant, loop: dict[str, Any]
) -> None:
    """Two different counts meet at the opportunity step — the period's leads that converted (the
    conversion rate's numerator) and the period's deals that came from some lead — so the page names
    the first beside "entered directly" instead of leaving a reader to subtract."""
    from tests.web.test_sign_in import ENGLISH, PASSWORD, sign_in

    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, tenant["rep"].user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    api = steps(Api(client, tenant["rep"]))
    opportunity = next(s for s in api if s["step"] == "opportunity")
    sign_in(client, tenant["rep"])
    page = client.get("/funnel", params=PERIOD, headers=ENGLISH)
    assert page.status_code == 200
    assert f"{opportunity['from_previous']} leads of the period converted" in page.text
