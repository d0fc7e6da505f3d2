"""Account 360°: one page with the timeline, decision chain, deals, orders and repurchases,
tickets, referrals and field history — within the reader's scope and masks."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient

from closeloop.core.clock import utcnow
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api, Body, tag
from tests.web.pages import browse_as
from tests.web.test_sign_in import ENGLISH

HTMX = {**ENGLISH, "HX-Request": "true"}


def _account(client: TestClient, tenant: Tenant, **extra: object) -> dict[str, object]:
    vp = Api(client, tenant["sales_vp"])
    body = {"name": f"协和医疗 {tag()}", "industry": "Hospital", "tier": "A", "credit_line": "987654.00"}
    return vp.create("accounts", {**body, "owner_id": tenant["rep"].user_id, **extra})


def test_a_rep_sees_the_whole_account_on_one_page(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    account = _account(client, tenant)
    today = utcnow().date()
    rep.create(
        "contacts",
        {
            "name": "王决策",
            "account_id": account["id"],
            "decision_role": "decision_maker",
            "title": "院长",
            "title_confirmed_on": str(today - timedelta(days=95)),
        },
    )
    rep.create(
        "contacts",
        {
            "name": "李把关",
            "account_id": account["id"],
            "decision_role": "gatekeeper",
            "title": "采购",
            "title_confirmed_on": str(date(today.year - 3, 1, 1)),
        },
    )
    rep.create(
        "activities",
        {
            "kind": "email",
            "direction": "outbound",
            "subject": "Quote follow-up",
            "account_id": account["id"],
            "is_replied": False,
        },
    )
    rep.create("activities", {"kind": "visit", "subject": "Site visit", "account_id": account["id"]})
    won = rep.create("opportunities", {"name": f"Deal {tag()}", "account_id": account["id"], "amount": "120000.00"})
    assert rep.request("POST", f"/opportunities/{won['id']}/stage", json={"stage": "won"}).status_code == 200
    rep.patch("accounts", int(str(account["id"])), {"city": "北京"})
    browse_as(client, db, tenant["rep"])

    page = client.get(f"/accounts/{account['id']}", headers=ENGLISH)

    assert page.status_code == 200
    text = page.text
    assert str(account["name"]) in text
    assert "Quote follow-up" in text
    assert "No reply" in text
    assert "Site visit" in text
    assert "Decision maker" in text
    assert "Gatekeeper" in text
    assert "Confirmed 3 months ago" in text
    assert "stale" in text  # the gatekeeper's title is three years old
    assert won["name"] in text
    assert "Won" in text
    assert "Field history" in text
    assert "北京" in text
    assert f'href="/accounts/{account["id"]}/edit"' in text


def test_the_credit_line_is_nowhere_in_a_reps_page_but_shown_to_the_cfo(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account = _account(client, tenant)
    browse_as(client, db, tenant["rep"])

    as_rep = client.get(f"/accounts/{account['id']}", headers=ENGLISH).text

    assert "987,654" not in as_rep
    assert "987654" not in as_rep
    assert "Credit line" not in as_rep
    browse_as(client, db, tenant["cfo"])
    as_cfo = client.get(f"/accounts/{account['id']}", headers=ENGLISH).text
    assert "¥987,654.00" in as_cfo


def test_a_stored_script_renders_as_text(client: TestClient, db: Database, tenant: Tenant) -> None:
    account = _account(client, tenant, name="<script>alert('x')</script> 医院")
    browse_as(client, db, tenant["rep"])

    page = client.get(f"/accounts/{account['id']}", headers=ENGLISH)

    assert "<script>alert('x')</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def _out_of_reach(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> tuple[Body, dict[str, object]]:
    """Another organization's account and a colleague's, with the rep signed in to the pages."""
    theirs = Api(client, other_tenant["admin"]).create("accounts", {"name": f"别家 {tag()}"})
    colleague = _account(client, tenant, owner_id=tenant["rep2"].user_id)
    browse_as(client, db, tenant["rep"])
    return theirs, colleague


def test_accounts_outside_the_scope_or_the_tenant_are_not_found(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs, colleague = _out_of_reach(client, db, tenant, other_tenant)

    assert client.get(f"/accounts/{theirs['id']}", headers=ENGLISH).status_code == 404
    assert client.get(f"/accounts/{colleague['id']}", headers=ENGLISH).status_code == 404
    assert client.get(f"/accounts/{theirs['id']}/timeline", headers=HTMX).status_code == 404


def test_the_timeline_loads_more_with_htmx(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    account = _account(client, tenant)
    for number in range(20):
        rep.create("activities", {"kind": "call", "subject": f"Call number {number:02d}", "account_id": account["id"]})
    browse_as(client, db, tenant["rep"])

    first = client.get(f"/accounts/{account['id']}", headers=ENGLISH).text
    assert first.count('class="event ') == 15
    assert "Load more" in first
    cursor = first.split("timeline?cursor=")[1].split('"')[0]
    more = client.get(f"/accounts/{account['id']}/timeline?cursor={cursor}", headers=HTMX)

    assert more.status_code == 200
    assert more.text.count('class="event ') == 5
    assert "<html" not in more.text
    assert "Load more" not in more.text


CHINESE = {"Accept-Language": "zh-CN"}


def test_the_account_page_links_its_deals_and_starts_records_on_the_account(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    account = _account(client, tenant)
    deal = Api(client, tenant["rep"]).create("opportunities", {"name": f"CT 项目 {tag()}", "account_id": account["id"]})
    browse_as(client, db, tenant["rep"])

    page = client.get(f"/accounts/{account['id']}", headers=ENGLISH).text

    assert f'<a href="/opportunities/{deal["id"]}">{deal["name"]}</a>' in page
    starts = {
        "log-activity": (
            f"/activities/new?account_id={account['id']}&amp;next=/accounts/{account['id']}",
            "Log an activity",
        ),
        "new-opportunity": (f"/opportunities/new?account_id={account['id']}", "New opportunity"),
        "new-contact": (f"/contacts/new?account_id={account['id']}", "New contact"),
    }
    for anchor, (href, label) in starts.items():
        assert f'id="{anchor}" href="{href}">{label}</a>' in page, anchor
        form = client.get(href.replace("&amp;", "&"), headers=ENGLISH)
        assert form.status_code == 200, href
        assert f'<option value="{account["id"]}" selected>{account["name"]}</option>' in form.text, href
    chinese = client.get(f"/accounts/{account['id']}", headers=CHINESE).text
    for label in ("记录跟进", "新建商机", "新建联系人"):
        assert label in chinese


def test_a_new_form_does_not_preselect_an_account_out_of_reach(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs, colleague = _out_of_reach(client, db, tenant, other_tenant)

    for plural in ("activities", "opportunities", "contacts"):
        for foreign in (theirs, colleague):
            form = client.get(f"/{plural}/new", params={"account_id": foreign["id"]}, headers=ENGLISH)
            assert form.status_code == 200, form.text
            assert f'value="{foreign["id"]}" selected' not in form.text, plural
            assert str(foreign["name"]) not in form.text
            assert f"#{foreign['id']}" not in form.text
        assert client.get(f"/{plural}/new", params={"account_id": "x"}, headers=ENGLISH).status_code == 200
