"""The workspace's shell in a real browser: sign in, the navigation, the language switch, the
notification bell, and sign out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import SignIn, screenshot

pytestmark = pytest.mark.ui


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_sign_in_shows_home_in_the_chosen_language(sign_in: SignIn, locale: str) -> None:
    page = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(page, Page)

    expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if locale == "zh_CN" else "en")
    expect(page.locator(".sidebar nav a[aria-current=page]")).to_have_text("首页" if locale == "zh_CN" else "Home")
    expect(page.locator(".who")).to_contain_text("销售副总裁" if locale == "zh_CN" else "Sales VP")
    screenshot(page, f"home-{locale}")


def test_switching_language_keeps_the_page(sign_in: SignIn) -> None:
    page = sign_in("demo.rep", locale="zh_CN")
    assert isinstance(page, Page)
    page.goto("/notifications")

    page.click("text=English")

    expect(page).to_have_url(re.compile(r"/notifications$"))
    expect(page.locator("h1")).to_have_text("Notifications")


def test_a_stranger_signs_in_and_lands_on_the_page_asked_for(sign_in: SignIn, served: object) -> None:
    page = sign_in("demo.rep", locale="en")
    assert isinstance(page, Page)
    page.click("text=Sign out")
    page.goto("/notifications")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    page.fill("#username", "demo.rep")
    page.fill("#password", "closeloop-demo")
    page.click("form.stacked button[type=submit]")

    expect(page.locator("h1")).to_have_text("Notifications")


def test_the_workspace_fits_a_tablet(sign_in: SignIn) -> None:
    page = sign_in("demo.manager", locale="zh_CN", width=820, height=1180)
    assert isinstance(page, Page)

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "home-tablet-zh_CN")


@pytest.mark.parametrize("path", ["/", "/accounts", "/cash", "/fieldwork"])
def test_a_phone_gets_the_menu_and_the_page_fits(sign_in: SignIn, path: str) -> None:
    page = sign_in("demo.rep", locale="en", width=390, height=844)
    assert isinstance(page, Page)
    page.goto(path)

    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.locator(".sidebar").is_hidden()  # folded into the menu, not a screen of links on top
    assert page.locator("main").bounding_box()["y"] < 150  # type: ignore[index]
    expect(page.locator("#top-search")).to_have_attribute("placeholder", "Search")
    page.locator("#phone-menu summary").click()
    expect(page.locator("#phone-menu nav a[href='/accounts']")).to_be_visible()
    screenshot(page, f"phone{path.replace('/', '-') or '-home'}-en")


def test_a_desktop_keeps_the_sidebar(sign_in: SignIn) -> None:
    page = sign_in("demo.rep", locale="zh_CN")
    assert isinstance(page, Page)

    expect(page.locator(".sidebar")).to_be_visible()
    expect(page.locator("#phone-menu")).to_be_hidden()
    assert "协和" in (page.locator("#top-search").get_attribute("placeholder") or "")
