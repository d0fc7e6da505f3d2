"""The users and roles page in a real browser, as the IT director: the sidebar link, the list with
search and pages, adding a user with role, manager, region and language, refusals beside their
fields (a CFO the IT director cannot grant — nor take away), changing and deactivating a user,
and the audit trail the API would write."""

from __future__ import annotations

import re
import sqlite3
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Served, SignIn, screenshot

pytestmark = pytest.mark.ui


def test_only_those_who_manage_users_see_the_page(sign_in: SignIn) -> None:
    rep = sign_in("demo.rep", locale="en")
    assert isinstance(rep, Page)
    expect(rep.locator(".sidebar nav a[href='/settings/users']")).to_have_count(0)
    rep.goto("/settings/users")
    expect(rep.locator("h1")).not_to_have_text("Users and roles")

    it = sign_in("demo.it_director", locale="en")
    assert isinstance(it, Page)
    it.locator(".sidebar nav a[href='/settings/users']").click()
    expect(it.locator("h1")).to_have_text("Users and roles")
    expect(it.locator("#user-list tbody tr")).to_have_count(25)  # a page of 25 of the demo's 50-odd
    it.locator("a[rel=next]").click()
    expect(it).to_have_url(re.compile(r"page=2"))
    it.fill("#users-q", "demo.cfo")
    it.locator("#users button[type=submit]").click()
    expect(it.locator("#user-list tbody tr")).to_have_count(1)
    expect(it.locator("#user-list tbody tr")).to_contain_text("CFO")
    screenshot(it, "users-list-search-en")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_the_it_director_adds_and_changes_a_user(sign_in: SignIn, served: Served, locale: str) -> None:
    page = sign_in("demo.it_director", locale=locale)
    assert isinstance(page, Page)
    username = f"new.rep.{uuid.uuid4().hex[:6]}"
    page.goto("/settings/users/new")
    # the role list offers only what an IT director may grant: no CFO, no sales VP
    offered = page.locator("#user-role option").evaluate_all("options => options.map(o => o.value)")
    assert "cfo" not in offered
    assert "sales_vp" not in offered
    assert "rep" in offered

    page.fill("#user-username", "x")  # too short, and no name: both said beside their fields
    page.locator("#user-form button[type=submit]").first.click()
    expect(page.locator("#user-username-error")).to_be_visible()
    expect(page.locator("#user-display_name-error")).to_be_visible()
    expect(page.locator("#user-username")).to_have_value("x")  # what was typed is kept
    screenshot(page, f"users-new-errors-{locale}")

    page.fill("#user-username", username)
    page.fill("#user-display_name", "新同事")
    page.select_option("#user-role", "rep")
    page.select_option("#user-manager_id", index=1)
    page.select_option("#user-region_id", index=1)
    page.select_option("#user-locale", "en")
    page.locator("#user-form button[type=submit]").first.click()
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("#user-role")).to_have_value("rep")
    expect(page.locator("#user-locale")).to_have_value("en")
    screenshot(page, f"users-created-{locale}")

    page.select_option("#user-role", "manager")
    page.locator("#user-form button[type=submit]").first.click()
    expect(page.locator(".notice")).to_be_visible()
    expect(page.locator("#user-role")).to_have_value("manager")

    page.locator("#user-active button").click()
    expect(page.locator("#user-active button")).to_have_text("Reactivate" if locale == "en" else "重新启用")

    database = served.environment["CLOSELOOP_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        (user_id,) = connection.execute("SELECT id FROM users WHERE username = ?", (username,)).fetchone()
        actions = [row[0] for row in connection.execute(
            "SELECT action FROM audit_entries WHERE subject_type = 'user' AND subject_id = ? ORDER BY seq", (user_id,)
        )]  # fmt: skip
    assert actions == ["user.created", "user.updated", "user.updated"], actions  # as the API writes them


def test_a_cfo_can_be_neither_granted_nor_taken_away_by_the_it_director(sign_in: SignIn) -> None:
    page = sign_in("demo.it_director", locale="en")
    assert isinstance(page, Page)
    page.goto("/settings/users?q=demo.cfo")
    page.locator("#user-list tbody a").first.click()

    expect(page.locator("#user-role")).to_be_disabled()
    expect(page.locator("#user-role-help")).to_contain_text("could not grant it back")
    page.locator("#user-active button").click()  # deactivating takes the role away too
    expect(page.locator("#user-is_active-error")).to_contain_text("cannot deactivate")
    screenshot(page, "users-cfo-refused-en")
