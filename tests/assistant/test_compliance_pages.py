"""The compliance pages: a rep pastes a draft and sees it highlighted; the manager decides the review."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from tests.factories import Tenant
from tests.web.test_settings_pages import browser, csrf_of


def test_a_rep_checks_a_draft_and_the_manager_rejects_it(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"])
    page = rep.get("/compliance")
    assert page.status_code == 200
    assert "合规检查" in page.text
    draft = "这款降压药有效率95%，最近很多客户在用。"
    answer = rep.post(
        "/compliance/check",
        data={"csrf": csrf_of(page.text), "text": draft, "outgoing": "1"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert '<mark class="level-3"' in answer.text
    assert "广告法第16条第1款第2项" in answer.text
    assert "草稿已提交给您的主管审核" in answer.text
    assert "<mark" not in answer.text.split("最近")[0][-20:]  # the near-miss 最近 stays unmarked
    clean = rep.post("/compliance/check", data={"csrf": csrf_of(page.text), "text": "第一批样品已寄出。"})
    assert "未发现有风险的措辞" in clean.text
    manager = browser(client, db, tenant["manager"])
    queue = manager.get("/compliance/reviews")
    assert draft in queue.text
    assert "合规审核" in queue.text
    review_id = queue.text.split('id="review-')[1].split('"')[0]
    decided = manager.post(
        f"/compliance/reviews/{review_id}/reject",
        data={"csrf": csrf_of(queue.text), "reason": "删除有效率"},
        follow_redirects=False,
    )
    assert decided.status_code == 303
    assert draft not in manager.get("/compliance/reviews").text
    assert "删除有效率" in manager.get("/compliance/reviews?status=rejected").text


def test_a_draft_over_the_limit_is_refused_whole_never_cut(client: TestClient, db: Database, tenant: Tenant) -> None:
    """The tester's 25,000-character paste ending in a cure claim: the page used to cut it to 20,000
    in the browser and answer "no risky wording"; now nothing is cut and the form says why."""
    rep = browser(client, db, tenant["rep"])
    page = rep.get("/compliance")
    assert 'maxlength="20000"' not in page.text
    draft = "产品说明。" * 4997 + "本品根治颈椎病"  # 24,985 + 7 characters
    assert len(draft) > 20_000
    answer = rep.post("/compliance/check", data={"csrf": csrf_of(page.text), "text": draft})
    assert answer.status_code == 422
    assert "未发现有风险的措辞" not in answer.text
    assert f"草稿共 {len(draft):,} 个字符，单次检查最多 20,000 个字符" in answer.text
    assert draft in answer.text  # the form keeps the draft
    fragment = rep.post(
        "/compliance/check", data={"csrf": csrf_of(page.text), "text": draft}, headers={"HX-Request": "true"}
    )
    assert fragment.status_code == 422
    assert "单次检查最多 20,000 个字符" in fragment.text
    assert "未发现有风险的措辞" not in fragment.text
    rep.get("/language/en")
    english = rep.post("/compliance/check", data={"csrf": csrf_of(page.text), "text": draft})
    assert f"The draft has {len(draft):,} characters; one check takes at most 20,000" in english.text
    blank = rep.post("/compliance/check", data={"csrf": csrf_of(page.text), "text": "   "})
    assert blank.status_code == 422
    assert "Paste the draft to check." in blank.text
    assert "No risky wording found." not in blank.text
    at_limit = rep.post("/compliance/check", data={"csrf": csrf_of(page.text), "text": draft[-20_000:]})
    assert at_limit.status_code == 200
    assert "根治</a></mark>" in at_limit.text
