"""The compliance API as reps and supervisors use it: check a draft (against a product's lead time),
send an outgoing draft to review, scan logged activities through the queue, decide reviews —
within each caller's reach, with masked fields left out."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.api.routers import compliance as compliance_router
from closeloop.assistant.compliance import service
from closeloop.db.session import Database
from closeloop.governance import fields
from closeloop.governance.permissions import Role
from closeloop.worker import tasks
from tests.factories import Tenant
from tests.samples import Api, assert_problem


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    handed: list[tuple[int, int]] = []
    monkeypatch.setattr(compliance_router, "enqueue_scan", lambda org, scan: handed.append((org, scan)))
    return handed


def test_a_rep_checks_a_draft_against_the_products_lead_time(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    admin = Api(client, tenant["admin"])
    product = admin.create("products", {"name": "五轴加工中心", "lead_time_days": 60})
    text = "我保证下个月10号前装机调试完，精度全国第一。"

    plain = rep.request("POST", "/compliance/check", json={"text": text}).json()
    held = rep.request("POST", "/compliance/check", json={"text": text, "product_id": product["id"]}).json()

    assert [f["category"] for f in held["findings"]] == ["overpromise", "absolute_term"]
    assert {"start", "end", "span", "level", "category", "citation", "rewrite"} <= set(held["findings"][0])
    assert held["review_id"] is None
    assert plain["findings"][1]["citation"] == "广告法第9条第3项"
    assert_problem(rep.request("POST", "/compliance/check", json={"text": text, "product_id": 999999999}), 404)
    assert_problem(rep.request("POST", "/compliance/check", json={"text": text, "lang": "fr"}), 422)


def _activity(api: Api, tenant: Tenant, notes: str, **extra: Any) -> dict[str, Any]:
    body = {"kind": "email", "direction": "outbound", "subject": "方案", "notes": notes}
    return api.create("activities", body | extra)


def test_outgoing_level_3_goes_to_the_managers_queue_who_decides(client: TestClient, tenant: Tenant) -> None:
    rep, manager, rep2 = (Api(client, tenant[key]) for key in ("rep", "manager", "rep2"))
    draft = "这款降压药有效率95%，三甲医院心内科主任都推荐。"

    answer = rep.request("POST", "/compliance/check", json={"text": draft, "outgoing": True}).json()
    mild = rep.request("POST", "/compliance/check", json={"text": "我们是行业领先品牌。", "outgoing": True}).json()

    assert answer["review_id"] is not None
    assert mild["review_id"] is None
    queue = manager.request("GET", "/compliance/reviews").json()["items"]
    assert [item["id"] for item in queue] == [answer["review_id"]]
    assert queue[0]["draft"] == draft
    assert rep2.request("GET", "/compliance/reviews").json()["items"] == []
    notices = manager.request("GET", "/notifications").json()["items"]
    assert any(n["kind"] == "compliance_review" for n in notices)

    review_id = answer["review_id"]
    assert_problem(rep.request("POST", f"/compliance/reviews/{review_id}/approve", json={}), 403)
    assert_problem(manager.request("POST", f"/compliance/reviews/{review_id}/reject", json={}), 422, field="reason")
    rejected = manager.request("POST", f"/compliance/reviews/{review_id}/reject", json={"reason": "删除有效率"})
    assert rejected.json()["status"] == "rejected"
    assert_problem(manager.request("POST", f"/compliance/reviews/{review_id}/approve", json={}), 409)
    assert rep.request("GET", "/compliance/reviews", params={"status": "rejected"}).json()["items"][0]["reason"] == (
        "删除有效率"
    )


def test_letting_a_level_3_message_go_out_needs_a_comment(client: TestClient, tenant: Tenant) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    answer = rep.request("POST", "/compliance/check", json={"text": "这款降压药有效率95%。", "outgoing": True}).json()
    path = f"/compliance/reviews/{answer['review_id']}/approve"

    assert_problem(manager.request("POST", path, json={}), 422, field="comment", code="required")
    assert_problem(manager.request("POST", path, json={"comment": "   "}), 422, field="comment")
    pending = manager.request("GET", "/compliance/reviews").json()["items"]
    assert [item["status"] for item in pending] == ["pending"]  # nothing decided by the refusals
    approved = manager.request("POST", path, json={"comment": "数据来自已批准的说明书，可以发出"})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["reason"]) == ("approved", "数据来自已批准的说明书，可以发出")


def test_a_scan_stores_findings_per_activity_within_each_callers_reach(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    queued: list[tuple[int, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rep, rep2, manager = (Api(client, tenant[key]) for key in ("rep", "rep2", "manager"))
    risky = _activity(rep, tenant, "王总，这款理财保本保息，年化12%稳赚不赔。")
    inbound = _activity(rep, tenant, "客户说：你们的产品零风险吗？", direction="inbound")
    other = _activity(rep2, tenant, "这是全网最低价，仅此一次。", kind="chat")
    _activity(rep, tenant, "最近钢材涨价，下月起报价可能调整。")
    foreign = _activity(Api(client, other_tenant["rep"]), other_tenant, "保证治愈，无效退款。")

    assert_problem(rep.request("POST", "/compliance/scans", json={}), 403)
    scan = manager.request("POST", "/compliance/scans", json={})
    assert scan.status_code == 202
    assert queued == [(tenant.organization_id, scan.json()["id"])]
    monkeypatch.setattr(tasks, "worker_database", lambda: db)
    monkeypatch.setattr(service, "SCAN_CHUNK", 3)  # several chunks, as on a large tenant
    tasks.run_compliance_scan(tenant.organization_id, scan.json()["id"])  # what the worker runs
    again = manager.request("POST", "/compliance/scans", json={}).json()
    service.run_scan(db, tenant.organization_id, again["id"])  # a second scan replaces, never duplicates

    assert manager.request("GET", f"/compliance/scans/{scan.json()['id']}").json()["activities_checked"] == 4
    assert manager.request("GET", f"/compliance/scans/{again['id']}").json()["status"] == "done"
    mine = rep.request("GET", "/compliance/findings").json()["items"]
    assert {f["activity_id"] for f in mine} == {risky["id"], inbound["id"]}
    assert all(f["activity_id"] != other["id"] for f in mine)
    team = manager.request("GET", "/compliance/findings").json()["items"]
    assert {f["activity_id"] for f in team} == {risky["id"], inbound["id"], other["id"]}
    assert len([f for f in team if f["activity_id"] == risky["id"]]) == 2
    foreign_view = Api(client, other_tenant["admin"]).request("GET", "/compliance/findings").json()["items"]
    assert all(f["activity_id"] == foreign["id"] for f in foreign_view)

    # only the outbound message with a level-3 finding is queued for review, once
    reviews = manager.request("GET", "/compliance/reviews").json()["items"]
    assert [r["activity_id"] for r in reviews] == [risky["id"]]

    # the nightly pass re-scans the last two days: same findings, no second review
    nightly = tasks.scan_compliance_nightly()
    assert nightly[tenant.organization_id] == len(team)
    assert len(manager.request("GET", "/compliance/reviews", params={"status": "all"}).json()["items"]) == 1

    # a reader who may not read activity notes sees where, never what
    monkeypatch.setitem(fields.FIELD_RULES, "activity", {"notes": frozenset({Role.SALES_VP})})
    masked = manager.request("GET", "/compliance/findings", params={"activity_id": risky["id"]}).json()["items"]
    assert masked
    assert all(f["span"] is None for f in masked)
    assert all(f["span"] is None for f in manager.request("GET", "/compliance/reviews").json()["items"][0]["findings"])
    shown = Api(client, tenant["sales_vp"]).request("GET", "/compliance/findings", params={"activity_id": risky["id"]})
    assert {f["span"] for f in shown.json()["items"]} >= {"保本保息"}


def test_offsets_count_in_the_text_as_sent(client: TestClient, tenant: Tenant) -> None:
    """A pasted mail often starts with a newline: the findings' offsets are those of the caller's
    own copy, leading white space included."""
    text = "\t\n  这款器械全国最好"
    response = client.post("/api/v1/compliance/check", headers=tenant["rep"].headers, json={"text": text})
    assert response.status_code == 200
    finding = response.json()["findings"][0]
    assert text[finding["start"] : finding["end"]] == finding["span"] == "全国最好"


def test_a_blank_or_too_long_text_is_refused_naming_text_never_cut(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    for blank in ("", "  \n "):
        problem = assert_problem(rep.request("POST", "/compliance/check", json={"text": blank}), 422, field="text")
        assert problem["errors"][0]["code"] == "required"
    long_text = "产品说明。" * 4997 + "本品根治颈椎病"
    problem = assert_problem(rep.request("POST", "/compliance/check", json={"text": long_text}), 422, field="text")
    assert problem["errors"][0]["code"] == "too_long"
    assert f"at most {service.MAX_TEXT}" in problem["errors"][0]["message"]
    assert str(len(long_text)) in problem["errors"][0]["message"]
    whole = rep.request("POST", "/compliance/check", json={"text": long_text[-service.MAX_TEXT :]})
    assert whole.status_code == 200
    assert [f["span"] for f in whole.json()["findings"]] == ["根治"]


def test_the_testers_missed_and_misfiled_claims_are_found_with_the_right_article(
    client: TestClient, tenant: Tenant
) -> None:
    rep = Api(client, tenant["rep"])

    def found(text: str) -> list[tuple[str, str, str]]:
        answer = rep.request("POST", "/compliance/check", json={"text": text})
        assert answer.status_code == 200, answer.text
        return [(f["span"], f["category"], f["citation"]) for f in answer.json()["findings"]]

    assert found("这款降压药无任何副作用，安全无毒。") == [
        ("无任何副作用", "efficacy_guarantee", "广告法第16条第1款第1项"),
        ("安全无毒", "efficacy_guarantee", "广告法第16条第1款第1项"),
    ]
    assert found("Results are 100% guaranteed.") == [
        ("100% guaranteed", "efficacy_guarantee", "反不正当竞争法第8条第1款")
    ]
    [(span, category, citation)] = found("Our scanner cures cancer.")
    assert (span, category, citation) == ("cures cancer", "efficacy_guarantee", "广告法第17条")
    answer = rep.request("POST", "/compliance/check", json={"text": "Our scanner cures cancer."}).json()
    assert "cosmetic" not in answer["findings"][0]["rewrite"]
    assert found("签了单每月给您现金返点。") == [("现金返点", "commercial_bribery", "反不正当竞争法第7条")]
    assert found("这款药副作用较小，安全性已通过检测，注册证号国药准字H20000001。") == []


def test_english_medical_claims_get_the_chinese_packs_level_and_article(client: TestClient, tenant: Tenant) -> None:
    """The eleventh session's tester: "guarantees a cure" passed, and "cures cervical spondylosis,
    100% effective" came back as one level-2 finding where 根治颈椎病，100%有效 is two level-3 ones."""
    rep = Api(client, tenant["rep"])

    def found(text: str, lang: str) -> list[tuple[str, int, str]]:
        answer = rep.request("POST", "/compliance/check", json={"text": text, "lang": lang})
        assert answer.status_code == 200, answer.text
        return [(f["span"], f["level"], f["citation"]) for f in answer.json()["findings"]]

    assert found("This device guarantees a cure.", "en") == [("guarantees a cure", 3, "广告法第16条第1款第1项")]
    english = found("It cures cervical spondylosis, 100% effective.", "en")
    chinese = found("根治颈椎病，100%有效", "zh")
    assert [span for span, _, _ in english] == ["cures cervical spondylosis", "100% effective"]
    assert [item[1:] for item in english] == [item[1:] for item in chinese] == [(3, "广告法第16条第1款第1项")] * 2
    near_miss = "The cure time of the adhesive is 24 hours; customer care will confirm the effective date."
    assert found(near_miss, "en") == []
