"""A partner's workspace: a dealer's user works their own organization's records, knowledge the
seller shared and the compliance check, and sees none of the seller's governance pages — no data
quality, team scorecards, data asset map, custom-field settings or rule reviews in the navigation,
and those pages and their API answer 403 when opened directly. A seller-side rep opens them all."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser

#: the seller's own pages, never a partner's
SELLER_PAGES = ("/quality", "/scorecards", "/settings/assets", "/settings/fields", "/automation/reviews")
#: the API behind them
SELLER_API = (
    "/quality/defects",
    "/quality/kpis",
    "/quality/freshness",
    "/scorecards/teams",
    "/data-assets",
    "/data-assets/export",
    "/reviews",
)
#: what a partner does use: its own records, shared knowledge and talk tracks from it, the compliance check
PARTNER_PAGES = (
    "/",
    "/tasks",
    "/accounts",
    "/opportunities",
    "/funnel",
    "/knowledge",
    "/assistant/coach",
    "/compliance",
)


def nav_links(page: str) -> set[str]:
    navigation = re.search(r"<nav class=\"nav-groups\" data-nav>.*?</nav>", page, re.S)
    assert navigation, "the page has no navigation"
    return set(re.findall(r'<li><a href="([^"]+)"', navigation.group(0)))


def test_a_partner_sees_no_seller_page_in_the_navigation_and_is_refused_them(
    client: TestClient, db: Database, tenant: Tenant, partner: Tenant
) -> None:
    dealer = browser(client, db, partner["partner_user"])
    links = nav_links(dealer.get("/").text)
    assert links.isdisjoint(SELLER_PAGES)
    assert set(PARTNER_PAGES) <= links
    for path in PARTNER_PAGES:
        assert dealer.get(path).status_code == 200, path
    for path in SELLER_PAGES:
        refused = dealer.get(path)
        assert refused.status_code == 403, path
        assert "您的角色无权执行此操作" in refused.text, path
    # the change-request queue: the problem page alone, not the queue's heading and help around it
    queue = dealer.get("/settings/changes")
    assert queue.status_code == 403
    assert "您的角色无权执行此操作" in queue.text
    assert "<h1>变更申请</h1>" not in queue.text
    api = Api(client, partner["partner_user"])
    for path in SELLER_API:
        answer = api.request("GET", path)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_seller_rep_has_the_same_pages_in_the_navigation_and_opens_them(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep = browser(client, db, tenant["rep"])
    links = nav_links(rep.get("/").text)
    assert set(SELLER_PAGES) <= links
    for path in SELLER_PAGES:
        assert rep.get(path).status_code == 200, path
    api = Api(client, tenant["rep"])
    for path in SELLER_API:
        assert api.request("GET", path).status_code == 200, path
