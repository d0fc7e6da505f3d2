"""The automation pages: write a rule in plain words, see it read back and backtested, save and
switch it on; the decision log, the undo window's countdown and cancel, a review request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.automation import engine
from closeloop.automation.models import PendingAction, Rule, RuleVersion
from closeloop.crm.leads.schemas import LeadCreate
from closeloop.crm.leads.service import create_lead
from closeloop.db.session import Database
from tests.factories import Tenant
from tests.web.test_settings_pages import browser, csrf_of

SENTENCE = "当商机阶段变为“谈判”时，给负责人创建一个两天后到期的任务：准备合同初稿。"


def test_a_manager_writes_tries_and_switches_on_a_rule_then_a_rep_cancels_its_action(
    client: TestClient, db: Database, tenant: Tenant
) -> None:
    manager = browser(client, db, tenant["manager"])
    token = csrf_of(manager.get("/automation/rules/new").text)
    tried = manager.post(
        "/automation/rules/try", data={"csrf": token, "text": SENTENCE, "days": "7"}, headers={"HX-Request": "true"}
    )
    assert tried.status_code == 200
    assert "理解为" in tried.text
    assert "准备合同初稿" in tried.text
    assert 'data-backtest="0"' in tried.text  # no opportunity moved to negotiation in the last week
    vague = manager.post(
        "/automation/rules/try", data={"csrf": token, "text": "超过一段时间没跟进的商机，提醒一下销售。"}
    )
    assert "没有看懂" in vague.text
    assert "<mark>" in vague.text
    saved = manager.post(
        "/automation/rules",
        data={
            "csrf": token,
            "text": "新线索创建后，给负责人创建一个两天后到期的任务：首次联系。",
            "name": "首次联系",
            "enable": "1",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with db.reading(None, system=True) as session:
        rule = session.scalar(select(Rule).where(Rule.name == "首次联系"))
        assert rule is not None
        assert rule.enabled
        version = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule.id))
        assert version is not None
        assert version.definition["trigger"]["event"] == "lead_created"
    listing = manager.get("/automation/rules")
    assert "首次联系" in listing.text
    assert "已启用" in listing.text

    rep_actor = tenant["rep"].actor
    with db.unit_of_work(rep_actor) as session:
        lead_id = create_lead(session, rep_actor, data=LeadCreate(name="新客户", owner_id=rep_actor.user_id)).id
    engine.drain(db)
    rep = browser(client, db, tenant["rep"])
    pending = rep.get("/automation/pending", headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in pending.text
    assert 'class="countdown"' in pending.text
    with db.reading(None, system=True) as session:
        waiting = session.scalar(select(PendingAction).where(PendingAction.record_id == lead_id))
        assert waiting is not None
    cancelled = rep.post(
        f"/automation/pending/{waiting.id}/cancel", data={"csrf": csrf_of(pending.text)}, headers={"HX-Request": "true"}
    )
    assert cancelled.status_code == 200
    assert "已取消" in cancelled.text
    log = rep.get("/automation/decisions", params={"record_type": "lead", "record_id": str(lead_id)})
    assert "首次联系" in log.text
    assert "已取消" in log.text
    asked = rep.post(
        f"/automation/decisions/{waiting.decision_id}/review",
        data={"csrf": csrf_of(log.text), "reason": "不需要这个任务"},
        follow_redirects=False,
    )
    assert asked.status_code == 303
    director = browser(client, db, tenant["director"])
    assert "不需要这个任务" in director.get("/automation/reviews").text


def test_the_rule_list_shows_each_undo_window_in_words(client: TestClient, db: Database, tenant: Tenant) -> None:
    manager = browser(client, db, tenant["manager"])
    token = csrf_of(manager.get("/automation/rules/new").text)
    windows = {"三天": "259200", "半分钟": "30", "一个半小时": "5400", "立即": "0", "一天": "86400"}
    for name, seconds in windows.items():
        saved = manager.post(
            "/automation/rules",
            data={
                "csrf": token, "name": name, "undo_seconds": seconds,
                "text": "新线索创建后，给负责人创建一个两天后到期的任务：首次联系。",
            },
            follow_redirects=False,
        )  # fmt: skip
        assert saved.status_code == 303, saved.text

    def shown(page: str) -> dict[str, str]:
        return {
            name: page.split(f'data-undo-seconds="{seconds}">', 1)[1].split("</td>", 1)[0]
            for name, seconds in windows.items()
        }

    assert shown(manager.get("/automation/rules").text) == {
        "三天": "3 天", "半分钟": "30 秒", "一个半小时": "90 分钟", "立即": "无", "一天": "1 天",
    }  # fmt: skip
    english = browser(client, db, tenant["manager"], locale="en").get("/automation/rules").text
    assert shown(english) == {
        "三天": "3 days",
        "半分钟": "30 s",
        "一个半小时": "90 minutes",
        "立即": "None",
        "一天": "1 day",
    }
    assert "259200 s" not in english
