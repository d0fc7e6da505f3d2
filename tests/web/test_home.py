"""Home over HTTP: my open tasks (due first), my pipeline by stage within my row scope, unread
alerts, records I touched recently — each with an empty state in both languages."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Member, Tenant
from tests.samples import Api, new_account, tag
from tests.web.test_board import deal, signed_in, with_password
from tests.web.test_notifications import tell
from tests.web.test_sign_in import ENGLISH, member

__all__ = ["member"]

CHINESE = {"Accept-Language": "zh-CN"}


def section(html: str, heading_id: str) -> str:
    found = re.search(rf'<section class="card[^"]*" aria-labelledby="{heading_id}">.*?</section>', html, re.S)
    assert found is not None, heading_id
    return found.group(0)


def stage_counts(html: str) -> dict[str, int]:
    return {
        stage: int(count)
        for stage, count in re.findall(r'<tr class="\w+" data-stage="(\w+)" data-count="(\d+)">', html)
    }


def test_a_new_person_sees_an_empty_state_on_every_card_in_both_languages(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    browser, _ = signed_in(client, with_password(db, tenant["rep2"]))

    english = browser.get("/", headers=ENGLISH)
    browser.get("/language/zh_CN")
    chinese = browser.get("/", headers=CHINESE)

    assert english.status_code == chinese.status_code == 200
    for text in (
        "No open tasks.",
        "No unread alerts.",
        "No open deals yet.",
        "Nothing yet. Accounts and deals you create or change appear here.",
    ):
        assert text in english.text
    for text in ("暂无待办", "暂无未读提醒", "暂无进行中的商机", "暂无记录"):
        assert text in chinese.text


def test_my_open_tasks_come_soonest_due_first_and_link_where_to_act(
    client: TestClient, tenant: Tenant, member: Member
) -> None:
    api = Api(client, member)
    later = api.create("tasks", {"title": f"回访 {tag()}", "due_on": "2031-03-01", "link": "/accounts/1"})
    sooner = api.create("tasks", {"title": f"补全联系人 {tag()}", "due_on": "2031-01-15"})
    undated = api.create("tasks", {"title": f"整理资料 {tag()}"})
    done = api.create("tasks", {"title": f"已完成 {tag()}", "due_on": "2030-01-01"})
    api.request("PATCH", f"/tasks/{done['id']}", json={"status": "done"})
    Api(client, tenant["rep2"]).create("tasks", {"title": f"别人的 {tag()}", "due_on": "2030-01-01"})
    browser, _ = signed_in(client, member)

    tasks = section(browser.get("/", headers=ENGLISH).text, "home-tasks")

    titles = re.findall(r"<(?:a href=\"[^\"]*\"|strong)>([^<]+)</(?:a|strong)>", tasks)
    assert titles == [sooner["title"], later["title"], undated["title"]]
    assert f'<a href="/accounts/1">{later["title"]}</a>' in tasks
    assert 'data-open-tasks="3"' in tasks


def test_a_task_about_a_record_opens_its_page_not_the_api(client: TestClient, member: Member) -> None:
    """Automation and quality tasks carry an API link (for API callers) and their subject: home links
    to the record's page, as the task list does."""
    api = Api(client, member)
    account = new_account(api)
    task = api.create(
        "tasks",
        {
            "title": f"跟进 {tag()}",
            "due_on": "2031-01-01",
            "subject_type": "account",
            "subject_id": account["id"],
            "link": f"/api/v1/accounts/{account['id']}",
        },
    )
    browser, _ = signed_in(client, member)

    tasks = section(browser.get("/", headers=ENGLISH).text, "home-tasks")

    assert f'<a href="/accounts/{account["id"]}">{task["title"]}</a>' in tasks
    assert "/api/v1/" not in tasks


def test_my_pipeline_counts_the_deals_in_my_row_scope(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    rep_api = Api(client, member)
    deal(rep_api, f"CT {tag()}", amount="1000.00")
    won = deal(rep_api, f"MRI {tag()}", amount="2000.00")
    rep_api.request("POST", f"/opportunities/{won['id']}/stage", json={"stage": "won"})
    deal(Api(client, tenant["rep2"]), f"同事 {tag()}", amount="500.00")
    rep_browser, _ = signed_in(client, member)
    manager_browser, _ = signed_in(client, with_password(db, tenant["manager"]))

    mine = section(rep_browser.get("/", headers=ENGLISH).text, "home-pipeline")
    team = section(manager_browser.get("/", headers=ENGLISH).text, "home-pipeline")

    assert stage_counts(mine) == {
        "prospecting": 1,
        "qualification": 0,
        "proposal": 0,
        "negotiation": 0,
        "won": 1,
        "lost": 0,
    }
    assert 'data-open-count="1"' in mine
    assert "¥1,000.00" in mine
    assert stage_counts(team)["prospecting"] == 2
    assert "¥1,500.00" in team


def test_alerts_show_my_latest_five_unread_notices(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    for index in range(7):
        tell(db, member, f"Win rate alert {index}")
    tell(db, tenant["rep2"], "Someone else's alert")
    browser, _ = signed_in(client, member)

    alerts = section(browser.get("/", headers=ENGLISH).text, "home-alerts")

    assert re.findall(r"Win rate alert (\d)", alerts) == ["6", "5", "4", "3", "2"]
    assert "2 more unread" in alerts
    assert "Someone else" not in alerts
    assert 'href="/notifications"' in alerts


def test_recently_touched_lists_each_record_i_changed_once_with_its_page(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    api = Api(client, member)
    account = new_account(api, name=f"协和医院 {tag()}")
    opportunity = deal(api, f"PET-CT {tag()}")
    api.request("PATCH", f"/accounts/{account['id']}", json={"industry": "clinic"})
    api.request("POST", f"/opportunities/{opportunity['id']}/stage", json={"stage": "proposal"})
    gone = new_account(api, name=f"已删除 {tag()}")
    assert Api(client, tenant["manager"]).request("DELETE", f"/accounts/{gone['id']}").status_code == 204
    not_mine = new_account(Api(client, tenant["rep2"]), name=f"同事客户 {tag()}")
    browser, _ = signed_in(client, member)

    recent = section(browser.get("/", headers=ENGLISH).text, "home-recent")

    subjects = re.findall(r'data-subject="(\w+-\d+)"', recent)
    assert subjects[:2] == [f"opportunity-{opportunity['id']}", f"account-{account['id']}"]
    assert len(subjects) == len(set(subjects))
    assert f'<a href="/opportunities/{opportunity["id"]}">{opportunity["name"]}</a>' in recent
    assert f'<a href="/accounts/{account["id"]}">{account["name"]}</a>' in recent
    assert "Moved to another stage" in recent
    assert not_mine["name"] not in recent
    assert gone["name"] not in recent


def test_home_keeps_the_closed_loop_in_one_line(client: TestClient, member: Member) -> None:
    Api(client, member).create("leads", {"name": f"网页线索 {tag()}"})
    browser, _ = signed_in(client, member)

    home = browser.get("/", headers=ENGLISH).text

    assert '<div class="funnel-step" data-step="lead" data-count="1">' in home
    assert 'href="/funnel"' in home


def test_every_link_of_a_dashboards_lineage_leads_somewhere(client: TestClient, db: Database, tenant: Tenant) -> None:
    """The funnel reads an opportunity's product lines through their link table, which has no lineage
    page of its own: the lineage page names that column without a link to nowhere."""
    browser, _ = signed_in(client, with_password(db, tenant["sales_vp"]))
    for dashboard in ("funnel", "performance"):
        page = browser.get(f"/lineage/dashboard/{dashboard}", headers=ENGLISH)
        assert page.status_code == 200
        links = set(re.findall(r'href="(/lineage/[^"]+)"', page.text))
        assert links, dashboard
        for link in sorted(links):
            assert browser.get(link, headers=ENGLISH).status_code == 200, link
