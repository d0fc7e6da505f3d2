"""A rep walks the workspace in a real browser: the CFO-only fields (opportunity margin, account
credit line) appear nowhere in any page's HTML; the CFO sees them on the same pages (so the check
can fail)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.ui.conftest import SignIn

pytestmark = pytest.mark.ui

#: the fields' labels in both languages, and their names as a page or a fragment would carry them
MASKED = re.compile(r"毛利|授信|[Mm]argin\b|[Cc]redit line|credit_line|\"margin\"")


def _first_link(page: Page, prefix: str) -> str:
    """The first link in the page's content to a record under ``prefix`` (``/accounts/17``)."""
    hrefs = page.locator(f"main a[href^='{prefix}']").evaluate_all("links => links.map(l => l.getAttribute('href'))")
    records = [href for href in hrefs if re.fullmatch(re.escape(prefix) + r"\d+", href.split("?")[0])]
    assert records, f"no link to a record under {prefix} on {page.url}"
    return str(records[0])


def _walk(page: Page) -> dict[str, str]:
    """The HTML of each main page the person can open, keyed by path."""
    seen: dict[str, str] = {}
    for path in ["/", "/pipeline", "/opportunities", "/accounts", "/funnel", "/dashboard", "/search?q=yiyuan"]:
        page.goto(path)
        seen[path] = page.content()
    page.goto("/opportunities")
    opportunity = re.sub(r"\?.*$", "", _first_link(page, "/opportunities/"))
    page.goto("/accounts")
    account = re.sub(r"\?.*$", "", _first_link(page, "/accounts/"))
    for path in [opportunity, f"{opportunity}/edit", account]:
        page.goto(path)
        seen[path] = page.content()
    return seen


def test_a_rep_never_receives_a_cfo_field_in_any_page(sign_in: SignIn) -> None:
    rep = sign_in("demo.rep", locale="zh_CN")
    assert isinstance(rep, Page)

    leaks = {path: MASKED.findall(html) for path, html in _walk(rep).items() if MASKED.search(html)}

    assert leaks == {}


def test_the_cfo_sees_them_on_the_same_pages(sign_in: SignIn) -> None:
    cfo = sign_in("demo.cfo", locale="zh_CN")
    assert isinstance(cfo, Page)

    pages = _walk(cfo)

    assert any(MASKED.search(html) for path, html in pages.items() if path.startswith("/opportunities/"))
