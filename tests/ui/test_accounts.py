"""Account 360°, the lead inbox and search in a real browser, with screenshots in both languages."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from closeloop.crm.searchkey import key_parts
from tests.ui.conftest import SignIn, screenshot

DIGITS = "零一二三四五六七八九"


def _unique_chinese() -> str:
    return "".join(DIGITS[int(digit)] for digit in str(secrets.randbelow(10**8)).zfill(8))


def _api(page: Page, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = json.loads(page.locator("body").get_attribute("hx-headers") or "{}")
    response = page.request.fetch(f"/api/v1{path}", method=method, data=body, headers=headers)
    assert response.ok, response.text()
    return response.json()


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_a_rep_opens_an_account_360(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    newest = _api(page, "GET", "/activities?limit=1&sort=-occurred_at")["items"][0]

    page.goto(f"/accounts/{newest['account_id']}")

    expect(page.locator("#timeline .event").first).to_be_visible()
    expect(page.locator("#chain-h")).to_have_text("决策链" if locale == "zh_CN" else "Decision chain")
    assert "credit_line" not in page.content()
    screenshot(page, f"account-360-{locale}")
    more = page.locator("#timeline .more button")
    if more.count():
        before = page.locator("#timeline .event").count()
        more.click()
        expect(page.locator("#timeline .event")).not_to_have_count(before)


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_converting_a_lead_warns_of_a_similar_account(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    unique = _unique_chinese()
    me = _api(page, "GET", "/users/me")
    account = _api(page, "POST", "/accounts", {"name": f"北京协和医院{unique}"})
    lead = _api(
        page,
        "POST",
        "/leads",
        {"name": "赵医生", "company": f"北京协合医院{unique}有限公司", "owner_id": me["user_id"]},
    )
    page.goto("/leads/inbox")
    screenshot(page, f"lead-inbox-{locale}")
    page.goto("/leads/inbox?tab=mine")

    page.locator(f"a[href='/leads/{lead['id']}/convert']").click()

    expect(page.locator(".duplicate-warning")).to_contain_text(account["name"])
    screenshot(page, f"lead-convert-duplicate-{locale}")
    page.locator("form.stacked button[type=submit]").click()
    expect(page).to_have_url(re.compile(f"/accounts/{account['id']}$"))
    expect(page.locator("h1")).to_have_text(account["name"])


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_search_by_pinyin_initials_lands_on_the_record(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.rep", locale=locale)
    assert isinstance(page, Page)
    unique = _unique_chinese()
    account = _api(page, "POST", "/accounts", {"name": f"北京协和医院{unique}", "industry": "医院"})
    initials = key_parts(account["name"])[2]
    page.goto("/")

    page.fill("#top-search", initials)
    page.press("#top-search", "Enter")

    expect(page.locator(".result-group").first).to_be_visible()
    page.fill("#q", "bjxh")
    page.press("#q", "Enter")
    expect(page.locator("ul.results .hit").first).to_be_visible()
    screenshot(page, f"search-results-{locale}")
    page.fill("#q", initials)
    page.press("#q", "Enter")
    page.locator(f"a.hit[href='/accounts/{account['id']}']").click()
    expect(page.locator("h1")).to_have_text(account["name"])
