"""In a real browser, in Chinese and English (screenshots): built-in approval names in the reader's
language, a new pool's impact previewed before it is created, knowledge citations that read as
document › heading with a link to the passage, a battlecard found by a competitor's English name,
and the demo's automation decisions and undo window from the first sign-in."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Served, SignIn, screenshot

PLAYBOOK = """# 异议处理手册

## 售后响应慢

我们承诺4小时响应、48小时到场。华东地区有12个服务网点。

## 竞品 迈瑞

迈瑞的中端机型价格低于我们约10%。迈瑞的售后网点在县级医院覆盖更广。
"""


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_built_in_approval_names_are_in_the_readers_language(sign_in: SignIn, locale: str) -> None:
    english = locale == "en"
    vp = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(vp, Page)
    vp.goto("/approvals/flows")
    expect(vp.locator("main")).to_contain_text("Expense claim approval" if english else "费用报销审批")
    if english:
        expect(vp.locator("main")).not_to_contain_text("费用报销审批")
    screenshot(vp, f"approval-flows-{locale}")

    manager = sign_in("demo.manager", locale=locale)
    assert isinstance(manager, Page)
    manager.goto("/approvals")
    manager.locator("#approvals tr[data-approval] a").first.click()
    steps = manager.locator("[data-step] strong")
    expect(steps.first).to_have_text("Direct supervisor" if english else "直属主管")
    screenshot(manager, f"approval-detail-builtin-names-{locale}")


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_a_new_pools_impact_is_previewed_before_it_is_created(sign_in: SignIn, locale: str) -> None:
    vp = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(vp, Page)
    vp.goto("/pools/settings")
    form = vp.locator("#pool-form-new")
    form.locator("input[name=name]").fill(f"华南公海 {locale}")
    form.get_by_label("华南", exact=True).check()
    form.locator("input[name=follow_up_days]").fill("90")
    form.get_by_role("button", name="Preview the impact" if locale == "en" else "预览影响").click()
    impact = vp.locator("#impact-new")
    expect(impact).to_contain_text("The new pool" if locale == "en" else "新公海")
    expect(impact.locator('[data-field="proposed-total"]')).to_have_text(re.compile(r"^\d+$"))
    expect(vp.locator("#pool-form-new input[name=follow_up_days]")).to_have_value("90")  # the draft is kept
    screenshot(vp, f"pool-new-preview-{locale}")


def test_citations_passages_and_an_english_battlecard(served: Served, sign_in: SignIn, tmp_path: Path) -> None:
    playbook = tmp_path / "异议处理.md"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    served.cli("knowledge", "add", "话术库", str(playbook), "--org", "demo")

    for locale in ("en", "zh_CN"):
        vp = sign_in("demo.sales_vp", locale=locale)
        assert isinstance(vp, Page)
        vp.goto("/knowledge?q=售后响应太慢")
        first = vp.locator("li.passage").first
        link = first.locator(".passage-head a")
        expect(link).to_have_text("异议处理手册 › 售后响应慢")
        expect(first).not_to_contain_text("0.0")  # the score is data, not text
        assert first.get_attribute("data-start") is not None
        screenshot(vp, f"knowledge-search-{locale}")
        link.click()
        expect(vp.locator("h1")).to_have_text("异议处理手册 › 售后响应慢")
        expect(vp.locator("#passage")).to_contain_text("我们承诺4小时响应")
        screenshot(vp, f"knowledge-passage-{locale}")

        vp.goto("/assistant/coach?competitor=Mindray")
        expect(vp.locator("#competitor-names")).to_contain_text("迈瑞")
        card = vp.locator('[data-section="knowledge"] li').first
        expect(card).to_contain_text("迈瑞的中端机型价格低于我们约10%")
        expect(card.locator("cite a")).to_have_text("异议处理手册 › 竞品 迈瑞")
        screenshot(vp, f"battlecard-english-name-{locale}")


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_the_demo_shows_decisions_and_an_open_undo_window(sign_in: SignIn, locale: str) -> None:
    vp = sign_in("demo.sales_vp", locale=locale)
    assert isinstance(vp, Page)
    vp.goto("/automation/decisions")
    expect(vp.locator("tr[data-decision]").first).to_be_visible()
    expect(vp.locator("main")).to_contain_text("商机在谈判阶段停留超过21天")
    screenshot(vp, f"automation-decisions-demo-{locale}")
    vp.goto("/automation/pending")
    expect(vp.locator("tr[data-pending]").first).to_be_visible()
    screenshot(vp, f"automation-undo-window-demo-{locale}")


def test_a_built_in_step_saved_in_english_still_reads_in_chinese(sign_in: SignIn) -> None:
    english = sign_in("demo.sales_vp", locale="en")
    assert isinstance(english, Page)
    name = f"UI names {secrets.token_hex(2)}"
    english.goto("/approvals/flows")
    english.fill("#new-flow input[name=name]", name)
    english.select_option("#new-flow select[name=record_type]", "quote")
    english.click("#new-flow button[type=submit]")
    expect(english.locator("h1")).to_have_text(name)
    expect(english.locator("input[name='b0.name']")).to_have_value("Default")
    expect(english.locator("input[name='b0.s0.name']")).to_have_value("Direct supervisor")
    english.click("#save-flow")
    expect(english.locator("input[name='b0.s0.name']")).to_have_value("Direct supervisor")
    flow_id = urlsplit(english.url).path.rstrip("/").rsplit("/", 1)[-1]  # without ?saved=1 (a 422 in the API)
    headers = json.loads(english.locator("body").get_attribute("hx-headers") or "{}")
    saved = english.request.get(f"/api/v1/approval-flows/{flow_id}", headers=headers).json()
    step = saved["definition"]["branches"][0]["steps"][0]
    assert (saved["revision"], step["name"], step["key"]) == (2, "Direct supervisor", "supervisor")  # as typed, keyed
    screenshot(english, "approval-flow-editor-builtin-en")

    flow_url = english.url
    chinese = sign_in("demo.sales_vp", locale="zh_CN")
    assert isinstance(chinese, Page)
    chinese.goto(flow_url)
    expect(chinese.locator("input[name='b0.name']")).to_have_value("默认")
    expect(chinese.locator("input[name='b0.s0.name']")).to_have_value("直属主管")
    screenshot(chinese, "approval-flow-editor-builtin-zh_CN")
