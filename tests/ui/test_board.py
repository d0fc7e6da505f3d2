"""The pipeline board and home in a real browser: drag a card to the next stage, move one with the
keyboard, lose one with its reason, and screenshots of both pages in Chinese and English.

Each test makes its own deals (unique names, an early expected close so they sort first in
their column) through the API with the rep's token, so the tests do not depend on each other."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.conftest import ARTIFACTS, Served, SignIn, screenshot

pytestmark = pytest.mark.ui


class RepApi:
    """The demo rep speaking to the served API with a personal token."""

    def __init__(self, served: Served) -> None:
        secret = served.cli("token", "create", "demo.rep", "--name", f"ui-{uuid.uuid4().hex[:6]}").stdout
        token = re.findall(r"clk_\S+", secret)[-1]
        self.client = httpx.Client(base_url=f"{served.base_url}/api/v1", headers={"Authorization": f"Bearer {token}"})

    def deal(self, label: str, *, amount: str = "1234567.00") -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:6]
        account = self.client.post("/accounts", json={"name": f"界面测试医院 {suffix}", "industry": "hospital"})
        assert account.status_code == 201, account.text
        body = {
            "name": f"{label} {suffix}",
            "account_id": account.json()["id"],
            "amount": amount,
            "expected_close_date": "2020-01-01",
        }
        created = self.client.post("/opportunities", json=body)
        assert created.status_code == 201, created.text
        return dict(created.json())

    def read(self, opportunity: dict[str, Any]) -> dict[str, Any]:
        return dict(self.client.get(f"/opportunities/{opportunity['id']}").json())

    def history(self, opportunity: dict[str, Any]) -> list[tuple[str | None, str]]:
        items = self.client.get(f"/opportunities/{opportunity['id']}/stage-history").json()["items"]
        return [(item["from_stage"], item["to_stage"]) for item in items]


@pytest.fixture(scope="module")
def rep_api(served: Served) -> RepApi:
    return RepApi(served)


def column(page: Page, stage: str) -> Locator:
    return page.locator(f'section.column[data-stage="{stage}"]')


def count_of(page: Page, stage: str) -> int:
    return int(column(page, stage).locator(".column-count").get_attribute("data-count") or "0")


def card(page: Page, opportunity: dict[str, Any]) -> Locator:
    return page.locator(f'li.deal[data-id="{opportunity["id"]}"]')


def drag(page: Page, source: Locator, target: Locator) -> None:
    """Press on the card, move in steps (SortableJS follows the pointer), release over the column."""
    source.scroll_into_view_if_needed()
    start, end = source.bounding_box(), target.bounding_box()
    assert start is not None
    assert end is not None
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + 12)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 10, start["y"] + 20, steps=5)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 40, steps=20)
    page.wait_for_timeout(150)
    settled = target.bounding_box()  # the board may have scrolled under the pointer meanwhile
    assert settled is not None
    page.mouse.move(settled["x"] + settled["width"] / 2, settled["y"] + 40, steps=5)
    page.mouse.up()


def board(sign_in: SignIn, locale: str = "en") -> Page:
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    page.goto("/pipeline")
    expect(page.locator("#board")).to_be_visible()
    expect(page.locator('#board ol.cards[data-stage="lost"][data-sortable]')).to_be_attached()  # the board's script ran
    return page


def test_dragging_a_card_to_the_next_stage_moves_the_deal(sign_in: SignIn, rep_api: RepApi) -> None:
    opportunity = rep_api.deal("拖动商机")
    page = board(sign_in)
    before = {stage: count_of(page, stage) for stage in ("prospecting", "qualification")}

    drag(page, card(page, opportunity), column(page, "qualification").locator("ol.cards"))

    expect(column(page, "qualification").locator(f'li.deal[data-id="{opportunity["id"]}"]')).to_be_visible()
    expect(column(page, "qualification").locator(".column-count")).to_have_attribute(
        "data-count", str(before["qualification"] + 1)
    )
    expect(column(page, "prospecting").locator(".column-count")).to_have_attribute(
        "data-count", str(before["prospecting"] - 1)
    )
    assert rep_api.history(opportunity) == [(None, "prospecting"), ("prospecting", "qualification")]
    assert rep_api.read(opportunity)["stage"] == "qualification"


def test_the_keyboard_moves_a_focused_card(sign_in: SignIn, rep_api: RepApi) -> None:
    opportunity = rep_api.deal("键盘商机")
    page = board(sign_in)

    card(page, opportunity).focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#move-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#move-stage")).to_be_focused()
    expect(page.locator("#move-stage")).to_have_value("qualification")
    page.keyboard.press("ArrowDown")  # qualification → proposal
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(dialog).to_be_hidden()
    expect(column(page, "proposal").locator(f'li.deal[data-id="{opportunity["id"]}"]')).to_be_visible()
    expect(card(page, opportunity)).to_be_focused()
    assert rep_api.history(opportunity) == [(None, "prospecting"), ("prospecting", "proposal")]


def test_a_card_dropped_on_lost_asks_for_the_reason(sign_in: SignIn, rep_api: RepApi) -> None:
    opportunity = rep_api.deal("输单商机")
    page = board(sign_in)
    lost_before = count_of(page, "lost")

    drag(page, card(page, opportunity), column(page, "lost").locator("ol.cards"))
    expect(page.locator("#move-dialog")).to_be_visible()
    expect(page.locator("#move-lost-reason")).to_be_focused()
    page.click("#move-dialog [data-cancel]")  # changed my mind: the card goes back
    expect(column(page, "prospecting").locator(f'li.deal[data-id="{opportunity["id"]}"]')).to_be_visible()
    assert rep_api.read(opportunity)["stage"] == "prospecting"
    expect(page.locator('#board ol.cards[data-stage="lost"][data-sortable]')).to_be_attached()  # the reloaded board

    drag(page, card(page, opportunity), column(page, "lost").locator("ol.cards"))
    page.click("#move-form button[type=submit]")  # no reason: the browser refuses to send it
    expect(page.locator("#move-dialog")).to_be_visible()
    page.fill("#move-lost-reason", "预算被砍，项目取消")
    page.click("#move-form button[type=submit]")

    expect(column(page, "lost").locator(f'li.deal[data-id="{opportunity["id"]}"]')).to_be_visible()
    expect(column(page, "lost").locator(".column-count")).to_have_attribute("data-count", str(lost_before + 1))
    after = rep_api.read(opportunity)
    assert (after["stage"], after["lost_reason"]) == ("lost", "预算被砍，项目取消")


def test_a_card_changed_elsewhere_is_refused_with_a_reload_message(sign_in: SignIn, rep_api: RepApi) -> None:
    opportunity = rep_api.deal("并发商机")
    page = board(sign_in)
    changed = rep_api.client.patch(f"/opportunities/{opportunity['id']}", json={"amount": "1.00"})
    assert changed.status_code == 200

    drag(page, card(page, opportunity), column(page, "negotiation").locator("ol.cards"))

    expect(page.locator("#board .board-message")).to_contain_text("changed by someone else")
    expect(column(page, "prospecting").locator(f'li.deal[data-id="{opportunity["id"]}"]')).to_be_visible()
    assert rep_api.read(opportunity)["stage"] == "prospecting"


def _alert_for_the_rep(served: Served) -> None:
    """An unread notice for demo.rep, as the alert checks leave them."""
    script = (
        "from sqlalchemy import select\n"
        "from closeloop.config import settings\n"
        "from closeloop.db.session import connect\n"
        "from closeloop.org import notifications\n"
        "from closeloop.org.models import User\n"
        "db = connect(settings.effective_database_url)\n"
        "with db.unit_of_work(None, system=True) as s:\n"
        "    u = s.scalar(select(User).where(User.username == 'demo.rep'))\n"
        "    notifications.notify(s, organization_id=u.organization_id, user_id=u.id, message=notifications.Message(\n"
        "        'threshold', '华东区赢单率低于 25%', 'East China win rate fell below 25%',\n"
        "        '本季度赢单率 22.4%', 'This quarter: 22.4%', '/notifications'), source_key='ui-board-alert')\n"
    )
    subprocess.run([sys.executable, "-c", script], env=served.environment, check=True, timeout=120)


@pytest.fixture(scope="module")
def rep_morning(served: Served, rep_api: RepApi) -> None:
    """An alert and three tasks waiting for the rep (made once for both languages)."""
    _alert_for_the_rep(served)
    for title, due in (("回访协和医院设备科", "2026-11-20"), ("补全联系人职务", "2026-12-03"), ("准备投标资料", None)):
        made = rep_api.client.post("/tasks", json={"title": title, **({"due_on": due} if due else {})})
        assert made.status_code == 201, made.text


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_screenshots_of_home_and_the_board(sign_in: SignIn, rep_morning: None, locale: str) -> None:
    page = board(sign_in, locale)
    screenshot(page, f"board-{locale}")
    page.locator("li.deal").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#move-dialog")).to_be_visible()
    page.select_option("#move-stage", "lost")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"board-lost-dialog-{locale}.png"))  # the viewport, where the dialog is

    page.goto("/")
    expect(page.locator("#home-tasks")).to_be_visible()
    expect(page.locator("section[aria-labelledby=home-alerts] ul.alerts li").first).to_be_visible()
    screenshot(page, f"home-rep-{locale}")

    executive = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(executive, Page)
    executive.goto("/pipeline")
    expect(executive.locator("li.more button").first).to_be_visible()  # thousands of deals: capped columns
    screenshot(executive, f"board-vp-{locale}")
