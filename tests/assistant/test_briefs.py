"""A visit brief: the account's facts, decision chain, open deals and tickets, orders and last
interactions the rep may see, and the knowledge passages for the open deals — each with a citation."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.api.routers import knowledge as knowledge_router
from closeloop.assistant.knowledge import service
from closeloop.db.session import Database
from tests.assistant.conftest import chapter, law
from tests.factories import Tenant
from tests.samples import Api, assert_problem
from tests.web.test_settings_pages import browser


def test_a_brief_cites_every_statement_and_shows_only_what_the_rep_may_see(
    client: TestClient, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge_router, "enqueue_indexing", lambda org, doc: None)
    rep, admin = Api(client, tenant["rep"]), Api(client, tenant["admin"])
    account = rep.create("accounts", {"name": "瑞金医院", "industry": "hospital", "province": "上海市", "city": "上海"})
    contact = rep.create(
        "contacts",
        {"name": "王主任", "account_id": account["id"], "title": "设备科主任", "decision_role": "decision_maker"},
    )
    deal = rep.create(
        "opportunities", {"name": "医疗器械 超声采购", "account_id": account["id"], "amount": "880000.00"}
    )
    ticket = rep.create("tickets", {"subject": "探头故障", "account_id": account["id"], "priority": "high"})
    call = rep.create(
        "activities",
        {
            "kind": "call",
            "subject": "确认预算",
            "account_id": account["id"],
            "occurred_at": "2026-05-01T09:00:00+00:00",
        },
    )
    laws = admin.request(
        "POST", "/knowledge/collections", json={"name": "法规", "access": [{"kind": "role", "value": "rep"}]}
    ).json()["id"]
    uploaded = client.post(
        f"/api/v1/knowledge/collections/{laws}/documents",
        files={"file": ("广告法.md", chapter(law("advertising_law"), "第二章").encode(), "text/markdown")},
        headers=admin.headers(),
    ).json()
    assert service.index_document(db, tenant.organization_id, uploaded["id"]) == "ready"

    # the brief is written in the language the request asks for (the tests' headers ask for English)
    response = rep.request("GET", f"/assistant/briefs/accounts/{account['id']}", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 200, response.text
    sections: dict[str, list[dict[str, Any]]] = {s["key"]: s["statements"] for s in response.json()["sections"]}
    cited = {(c["type"], c.get("id")) for statements in sections.values() for s in statements for c in s["citations"]}
    assert {
        ("account", account["id"]),
        ("contact", contact["id"]),
        ("opportunity", deal["id"]),
        ("ticket", ticket["id"]),
        ("activity", call["id"]),
    } <= cited
    assert all(s["citations"] for statements in sections.values() for s in statements)
    assert "王主任" in sections["decision_chain"][0]["text"]
    assert "处于 初步接洽 阶段，金额 ¥880,000.00" in sections["opportunities"][0]["text"]
    # every cited field is one the rep reads on the record itself (masks apply to the brief as to the API)
    for statements in sections.values():
        for statement in statements:
            for citation in statement["citations"]:
                if citation["type"] == "knowledge":
                    continue
                plural = {"opportunity": "opportunities", "activity": "activities"}.get(
                    citation["type"], citation["type"] + "s"
                )
                record = rep.read(plural, citation["id"])
                assert set(citation["fields"]) <= set(record), citation
    # the knowledge passages answer the open deal (a medical-device purchase), from the readable collection
    passages = sections["knowledge"]
    assert passages
    assert any("医疗器械" in p["text"] for p in passages)
    assert {p["citations"][0]["filename"] for p in passages} == {"广告法.md"}
    # another rep does not see the account at all
    assert_problem(Api(client, tenant["rep2"]).request("GET", f"/assistant/briefs/accounts/{account['id']}"), 404)

    # the same brief as a page, linked from the account's page
    page = browser(client, db, tenant["rep"])
    assert f'href="/accounts/{account["id"]}/brief"' in page.get(f"/accounts/{account['id']}").text
    shown = page.get(f"/accounts/{account['id']}/brief")
    assert shown.status_code == 200
    assert "拜访简报" in shown.text
    assert "王主任" in shown.text
    assert f'href="/opportunities/{deal["id"]}"' in shown.text
    # a passage is cited by its law and article, linked to it, with no character offsets in the text
    cited = passages[0]["citations"][0]
    assert cited["label"].startswith("中华人民共和国广告法 › ")
    assert f'<a href="/knowledge/passages/{cited["chunk_id"]}">{cited["label"]}</a>' in shown.text
    assert f'data-start="{cited["start"]}" data-end="{cited["end"]}"' in shown.text
    assert "广告法.md · " not in shown.text
    # a record's citation names the record and its fields in the reader's words, not column names
    assert f'">客户 #{account["id"]}</a>: 名称、行业' in shown.text
    assert "名称、职务、决策链角色]" in shown.text
    assert "decision_role" not in shown.text
    assert browser(client, db, tenant["rep2"]).get(f"/accounts/{account['id']}/brief").status_code == 404
