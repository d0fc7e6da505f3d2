"""The Chinese workspace shows no English: every page of the navigation, the record pages and the
not-found pages, as a rep, a manager and the sales VP, are searched for English words outside
code, scripts and the few names that are the same in both languages (issue #3)."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org.models import Organization, User
from closeloop.web.routes import NAV
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser

#: words that read the same in both interfaces (names, formats, standards, keys of the formula
#: editor), the search box's pinyin examples and the query searched for
SAME_IN_BOTH = {
    "Closeloop", "English", "API", "CSV", "XLSX", "Excel", "UTF", "GBK", "RACI", "SLA", "CFO", "IT", "Webhook", "JSON",
    "xiehe", "bjxh", "nnxh", "custom", "Tab", "Enter", "Esc", "Ctrl", "Shift",
    "SUM", "AND", "WHERE", "IF", "ROUND", "OR", "NOT",
}  # fmt: skip
_WORD = re.compile(r"\b[A-Za-z][A-Za-z']{2,}\b")


def english_words(page: str) -> set[str]:
    """English words a reader sees: text and the placeholder / title / aria-label attributes,
    without scripts, styles and <code> (field keys and formulas are code in both languages), and
    without elements marked ``lang="en"`` (the English label's input shows an English example)."""
    page = re.sub(r"(?is)<(script|style|code|pre|textarea)\b.*?</\1>", " ", page)
    page = re.sub(r'<[^>]*\blang="en"[^>]*>', " ", page)  # an input for English text, marked as such
    attributes = " ".join(re.findall(r'(?:placeholder|title|aria-label|alt)="([^"]*)"', page))
    text = html.unescape(re.sub(r"(?s)<[^>]+>", " ", page) + " " + attributes)
    return {word for word in _WORD.findall(text) if word not in SAME_IN_BOTH}


@pytest.fixture
def chinese_names(db: Database, tenant: Tenant) -> None:
    """The test organization and its people named in Chinese, as a Chinese customer's are."""
    names = iter(["王建国", "李明", "张伟", "刘洋", "陈静", "赵磊", "孙丽", "周强"])
    with db.unit_of_work(None, system=True) as session:
        organization = session.get(Organization, tenant.organization_id)
        assert organization is not None
        organization.name = "华东医疗器械有限公司"
        for member in tenant.members.values():
            user = session.get(User, member.user_id)
            assert user is not None
            user.display_name = next(names)


@pytest.mark.parametrize("role", ["rep", "manager", "sales_vp"])
def test_the_chinese_pages_hold_no_english(
    client: TestClient, db: Database, tenant: Tenant, chinese_names: None, role: str
) -> None:
    api = Api(client, tenant["rep"])
    account = api.create("accounts", {"name": "南宁协和医院", "industry": "医院", "phone": "0771-2399445"})
    contact = api.create("contacts", {"name": "黄伟", "account_id": account["id"], "mobile": "13800138000"})
    lead = api.create("leads", {"name": "刘芳", "company": "南宁协和医院有限公司", "mobile": "13900139000"})
    deal = api.create("opportunities", {"name": "超声设备采购", "account_id": account["id"], "amount": "1933250.00"})
    page = browser(client, db, tenant[role], locale="zh_CN")
    paths = [item.path for item in NAV if not item.path.startswith("/api")]
    paths += [
        f"/accounts/{account['id']}",
        f"/accounts/{account['id']}/edit",
        f"/contacts/{contact['id']}",
        f"/contacts/{contact['id']}/edit",
        f"/leads/{lead['id']}",
        f"/leads/{lead['id']}/convert",
        f"/opportunities/{deal['id']}",
        "/accounts/new",
        f"/contracts/new?opportunity_id={deal['id']}",
        "/notifications",
        "/search?q=nnxh",
        "/accounts/999999",  # not found
        "/no/such/page",
    ]
    found = {}
    for path in paths:
        response = page.get(path)
        assert response.status_code in (200, 403, 404), (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), path
        words = english_words(response.text)
        if words:
            found[path] = sorted(words)
    assert not found, f"English in the Chinese pages of the {role}: {found}"


def test_the_check_sees_english() -> None:
    assert english_words("<p>客户 Save changes</p>") == {"Save", "changes"}
    assert english_words('<input placeholder="Search">') == {"Search"}
    assert english_words("<code>annual_revenue</code><script>var x;</script>") == set()
