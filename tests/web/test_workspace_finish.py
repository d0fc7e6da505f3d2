"""The workspace's finishing pass (issue #3): the grouped navigation, Edit on contact and lead
pages, owner pickers limited to whom the actor may assign, the conversion's warning about records
the actor cannot see, and the asset map's cost."""

from __future__ import annotations

import html as htmlmod
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.crm import metrics
from closeloop.db.session import Database
from closeloop.web.routes import NAV, NAV_GROUPS, nav_sections
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser


def test_every_navigation_entry_sits_under_a_heading_and_the_current_one_is_marked(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    groups = {group.key for group in NAV_GROUPS}
    assert all(item.group in groups for item in NAV)
    sections = nav_sections(tenant["rep"].actor, "/accounts")
    assert [s.key for s in sections if s.current] == ["sales"]
    assert all(section.items for section in sections)  # no empty heading

    page = browser(client, db, tenant["rep"], locale="zh_CN").get("/accounts").text
    assert '<summary id="nav-sales">客户与销售</summary>' in page
    assert re.search(r'<details class="nav-group" data-group="sales" open data-current>', page)
    assert '<a href="/accounts" aria-current="page">' in page
    assert "/settings/security" not in page  # a rep does not manage field security


def test_contact_and_lead_pages_offer_edit_and_come_back(client: TestClient, db: Database, tenant: Tenant) -> None:
    api = Api(client, tenant["rep"])
    contact = api.create("contacts", {"name": "黄伟", "mobile": "13800138000"})
    lead = api.create("leads", {"name": "刘芳", "company": "南宁协和医院"})
    page = browser(client, db, tenant["rep"], locale="en")

    for plural, record in (("contacts", contact), ("leads", lead)):
        shown = page.get(f"/{plural}/{record['id']}").text
        edit = f"/{plural}/{record['id']}/edit?next=/{plural}/{record['id']}"
        assert f'href="{edit}"' in shown
        form = page.get(edit)
        assert form.status_code == 200
        values = filled_in(form.text)
        values["name"] = record["name"] + "（改）"
        saved = page.post(edit, data=values, follow_redirects=False)
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"] == f"/{plural}/{record['id']}"
        assert page.get(f"/{plural}/{record['id']}").text.count("（改）") >= 1


def filled_in(html: str) -> dict[str, str]:
    """What the browser would send for the form as shown (inputs, selected options, text areas)."""
    html = html.split('id="record-form"', 1)[-1] if 'id="record-form"' in html else html
    values: dict[str, str] = {}
    for tag in re.findall(r"<input\b[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or (re.search(r'type="(checkbox|radio|file|submit)"', tag) and "checked" not in tag):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        values[name.group(1)] = htmlmod.unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select\b[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s*selected', body)
        values[name] = htmlmod.unescape(chosen.group(1)) if chosen else ""
    for name, body in re.findall(r'<textarea\b[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        values[name] = htmlmod.unescape(body)
    return values


def _owner_options(html: str) -> set[str]:
    select = re.search(r'<select id="f-owner-id"[^>]*>(.*?)</select>', html, re.S)
    assert select, "no owner picker"
    return set(re.findall(r'<option value="(\d+)"', select.group(1)))


def test_owner_pickers_offer_only_whom_the_actor_may_assign_to(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = _owner_options(browser(client, db, tenant["rep"]).get("/accounts/new").text)
    assert rep == {str(tenant["rep"].user_id)}

    manager = _owner_options(browser(client, db, tenant["manager"]).get("/accounts/new").text)
    assert manager == {str(tenant[key].user_id) for key in ("manager", "rep", "rep2")}

    vp = _owner_options(browser(client, db, tenant["sales_vp"]).get("/accounts/new").text)
    assert str(tenant["cfo"].user_id) not in vp  # not a seller
    assert str(tenant["admin"].user_id) not in vp
    assert str(tenant["director"].user_id) in vp


def test_conversion_warns_of_an_account_the_rep_cannot_see_with_its_owner_masked(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    theirs = Api(client, tenant["rep2"]).create("accounts", {"name": "南宁协和医院有限公司"})
    lead = Api(client, tenant["rep"]).create("leads", {"name": "刘芳", "company": "南宁协和医院"})

    page = browser(client, db, tenant["rep"], locale="zh_CN").get(f"/leads/{lead['id']}/convert").text

    assert "已有记录" in page
    assert "南宁协和医院有限公司" in page
    assert f"/accounts/{theirs['id']}" not in page  # the rep may not open it
    assert "R**" in page  # rep2's name, masked
    assert tenant["rep2"].username not in page


def test_the_asset_map_reads_each_metric_s_sources_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = metrics.sources_of

    def counted(statements: Any) -> frozenset[tuple[str, str]]:
        calls.append(1)
        return real(statements)

    monkeypatch.setattr(metrics, "sources_of", counted)
    metrics._statement_sources.cache_clear()
    registry = metrics.registry()
    for _ in range(3):
        for metric in registry.metrics.values():
            metric.readable_by("rep")
    assert len(calls) == len({metric.statements for metric in registry.metrics.values()})
