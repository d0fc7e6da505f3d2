"""The settings pages: custom fields per record type, asking for one, and signing off the change."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Member, Tenant

PASSWORD = "correct horse battery"


def browser(client: TestClient, db: Database, member: Member, locale: str = "zh_CN") -> TestClient:
    """``client`` signed in as ``member`` through the form (a fresh cookie jar)."""
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, member.user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
        user.locale = locale
    client.cookies.clear()
    token = csrf_of(client.get("/login").text)
    signed_in = client.post(
        "/login", data={"username": member.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert signed_in.status_code == 303, signed_in.text
    return client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


def test_a_field_asked_for_on_the_page_applies_after_two_sign_offs_there(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = browser(client, db, tenant["admin"])
    page = admin.get("/settings/fields")
    assert page.status_code == 200
    assert "自定义字段" in page.text
    assert "申请新字段" in page.text

    asked = admin.post(
        "/settings/fields",
        data={
            "csrf": csrf_of(page.text),
            "record_type": "account",
            "name": "channel",
            "field_type": "choice",
            "label_zh": "渠道",
            "label_en": "Channel",
            "choices": "direct|直销|Direct\ndealer|经销|Dealer",
            "reason": "按渠道看客户",
        },
        follow_redirects=False,
    )
    assert (asked.status_code, asked.headers["location"]) == (303, "/settings/changes")
    queue = admin.get("/settings/changes").text
    assert "待审批" in queue
    assert 'data-waiting="sales_vp,it_director"' in queue
    # the request and who it waits for, in the reader's words (not the English it was filed with)
    assert "为客户新增字段“渠道”（channel）" in queue
    assert "销售副总裁、IT 总监" in queue
    english = browser(client, db, tenant["it_director"], locale="en").get("/settings/changes").text
    assert "Add the field “Channel” (channel) to Account" in english
    assert "Sales VP, IT director" in english

    for key in ("sales_vp", "it_director"):
        signer = browser(client, db, tenant[key])
        changes = signer.get("/settings/changes").text
        request_id = re.search(r"/settings/changes/(\d+)/approve", changes)
        assert request_id, changes
        decided = signer.post(
            f"/settings/changes/{request_id.group(1)}/approve", data={"csrf": csrf_of(changes)}, follow_redirects=False
        )
        assert decided.status_code == 303, decided.text

    rep = browser(client, db, tenant["rep"], locale="en")
    fields = rep.get("/settings/fields").text
    assert "custom.channel" in fields
    assert "Direct, Dealer" in fields
    assert "Ask for a new field" not in fields  # a rep reads the fields but does not ask for changes


def test_a_bad_request_on_the_page_says_what_is_wrong_and_keeps_the_form(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    admin = browser(client, db, tenant["admin"], locale="en")
    page = admin.get("/settings/fields").text

    refused = admin.post(
        "/settings/fields",
        data={
            "csrf": csrf_of(page),
            "record_type": "account",
            "name": "grade",
            "field_type": "choice",
            "label_zh": "等级",
            "label_en": "Grade",
            "choices": "",
        },
    )

    assert refused.status_code == 422
    assert "a choice field needs at least one choice" in refused.text
    assert 'value="grade"' in refused.text


def test_the_requester_cannot_approve_on_the_page_either(client: TestClient, db: Database, tenant: Tenant) -> None:
    vp = browser(client, db, tenant["sales_vp"], locale="en")
    page = vp.get("/settings/fields").text
    vp.post(
        "/settings/fields",
        data={
            "csrf": csrf_of(page),
            "record_type": "lead",
            "name": "budget",
            "field_type": "money",
            "label_zh": "预算",
            "label_en": "Budget",
        },
    )
    changes = vp.get("/settings/changes").text
    request_id = re.search(r"/settings/changes/(\d+)/approve", changes)
    assert request_id

    own = vp.post(f"/settings/changes/{request_id.group(1)}/approve", data={"csrf": csrf_of(changes)})

    assert own.status_code == 403
    assert "You cannot approve your own change request" in own.text


def test_the_sign_off_queue_is_linked_only_for_those_who_use_it(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    rep_page = browser(client, db, tenant["rep"], locale="en").get("/settings/fields").text
    it_page = browser(client, db, tenant["it_director"], locale="en").get("/settings/fields").text

    assert 'href="/settings/changes"' not in rep_page
    assert 'href="/settings/changes"' in it_page


def test_each_kind_of_change_is_summarized_in_the_readers_language() -> None:
    from closeloop.crm import changerequests
    from closeloop.web.i18n import translations
    from closeloop.web.settings import change_summary

    zh, en = translations("zh_CN").gettext, translations("en").gettext
    roles = {"cfo": {"read": True, "edit": True}, "rep": {"read": False, "edit": False}}
    payload = {"record_type": "account", "field": "credit_line", "roles": roles}
    security = {"kind": changerequests.FIELD_SECURITY, "payload": payload}
    expected = "Field security of Account · Credit line: CFO reads and edits, Sales rep hidden"
    assert change_summary(security, en, "en") == expected
    assert change_summary(security, zh, "zh_CN").endswith("的字段权限：财务总监 可读可改、销售代表 隐藏")
    update = {"kind": changerequests.UPDATE, "payload": {"label_en": "Tier", "choices": []}, "before": {},
              "target": {"name": "grade", "record_type": "account"}}  # fmt: skip
    assert change_summary(update, en, "en") == "Change choices, English label of the Account field grade"
    retire = {"kind": changerequests.DELETE, "payload": {}, "before": {"name": "grade", "record_type": "lead"}}
    assert change_summary(retire, zh, "zh_CN") == f"停用{zh('Lead')}字段 grade"
    assert change_summary({"kind": "formula.update", "summary": "as filed"}, zh, "zh_CN") == "as filed"
