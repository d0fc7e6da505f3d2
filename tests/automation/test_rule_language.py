"""Plain-language rules (AUTO-2): sentences managers write, in Chinese and English, become the
structured rule; what the parser cannot read is named by its span, never guessed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from closeloop.automation.language import parse_rule, read_back
from closeloop.automation.language.evaluation import agreement
from tests.conftest import shared_data

DEV = [
    json.loads(line) for line in (shared_data("rules") / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line
]
INFERRED_DAILY = {"kind": "schedule", "frequency": "daily", "time": None, "inferred": True}
INFERRED_HOURLY = {"kind": "schedule", "frequency": "hourly", "time": None, "inferred": True}


def cond(field: str, op: str, value: Any, unit: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"field_or_metric": field, "op": op, "value": value, "unit": unit, **extra}


def act(type_: str, target: str, **params: Any) -> dict[str, Any]:
    return {"type": type_, "target": target, "params": params}


def parsed(text: str, lang: str | None = None) -> dict[str, Any]:
    result = parse_rule(text, lang)
    assert result.rule is not None, [(p.fragment, p.message_en) for p in result.problems]
    assert result.problems == []
    assert result.readback
    return result.rule


@pytest.mark.parametrize("item", DEV, ids=[item["id"] for item in DEV])
def test_the_labelled_set_parses_as_labelled(item: dict[str, Any]) -> None:
    result = parse_rule(item["text"])
    assert result.lang == item["lang"]
    if item["expected"] == "reject":
        assert result.rule is None
        assert result.problems, "a rejected rule names what was not understood"
        return
    assert result.rule is not None, [(p.fragment, p.message_en) for p in result.problems]
    found = agreement(result.rule, item["expected"])
    assert found.exact, (found, result.rule)


def test_the_rejections_name_the_vague_words() -> None:
    result = parse_rule("超过一段时间没跟进的商机，提醒一下销售。")
    assert [(p.start, p.end, p.fragment) for p in result.problems] == [(2, 6, "一段时间")]
    assert "时长" in result.problems[0].message_zh

    result = parse_rule("When a deal is big, tell the boss.")
    assert [p.fragment for p in result.problems] == ["big", "the boss"]
    assert "recipient" in result.problems[1].message_en


# --- the five sentences of the issue --------------------------------------------------------------


def test_issue_sentence_unreplied_emails_and_silence() -> None:
    rule = parsed("当客户连续3次未回复邮件且最近一次沟通超过14天,自动触发主管介入提醒并推送历史沟通摘要")
    assert rule == {
        "trigger": INFERRED_DAILY,
        "conditions": [cond("email_unreplied", "streak", 3, "count"), cond("time_since_last_contact", ">", 14, "day")],
        "actions": [
            act("notify", "manager", purpose="intervene"),
            act("push_summary", "manager", scope="communication_history"),
        ],
    }


def test_issue_sentence_big_opportunity_stuck_in_negotiation() -> None:
    rule = parsed(
        "If an opportunity over 500,000 stays in Negotiation for more than 21 days, notify the regional director."
    )
    assert rule["trigger"] == INFERRED_DAILY
    assert sorted(rule["conditions"], key=lambda c: c["field_or_metric"]) == [
        cond("opportunity.amount", ">", 500000, "CNY"),
        cond("opportunity.stage", "==", "negotiation"),
        cond("stage_duration", ">", 21, "day"),
    ]
    assert rule["actions"] == [act("notify", "role:regional_director")]


def test_issue_sentence_quote_approval() -> None:
    rule = parsed("商机金额超过100万且客户等级为A时,报价需区域总监审批")
    assert rule["conditions"] == [cond("opportunity.amount", ">", 1_000_000, "CNY"), cond("account.tier", "==", "A")]
    assert rule["actions"] == [act("require_approval", "role:regional_director", kind="quote")]
    assert rule["trigger"] == {"kind": "event", "event": "quote_submitted"}


def test_issue_sentence_unassigned_lead() -> None:
    assert parsed("新线索24小时内未分配,提醒销售运营") == {
        "trigger": INFERRED_HOURLY,
        "conditions": [cond("lead.unassigned_duration", ">=", 24, "hour")],
        "actions": [act("notify", "role:sales_ops")],
    }


def test_issue_sentence_repurchase_task() -> None:
    rule = parsed(
        "When a won account has not ordered for 90 days, "
        "create a repurchase follow-up task for the owner due in 3 days."
    )
    assert rule == {
        "trigger": INFERRED_DAILY,
        "conditions": [cond("account.is_customer", "==", True), cond("time_since_last_order", ">=", 90, "day")],
        "actions": [act("create_task", "owner", title="repurchase follow-up", due_in={"value": 3, "unit": "day"})],
    }


# --- beyond the file: paraphrases, word order, synonyms, numbers and units --------------------------


@pytest.mark.parametrize(
    "text",
    [
        "客户连续三次没有回复邮件，并且超过两周没有联系，通知他的主管",
        "最近一次沟通超过十四天且客户连续3次未回复邮件，提醒主管",
        "如果客户邮件连续3次没回复，同时距上次沟通已超过2周，告知直属上级",
        "Notify the owner's manager when a customer has not replied to 3 emails in a row "
        "and there has been no contact for more than 14 days.",
    ],
)
def test_paraphrases_and_reordered_clauses_of_the_seed_rule(text: str) -> None:
    rule = parsed(text)
    assert rule["trigger"] == INFERRED_DAILY
    found = agreement(
        rule,
        {
            "trigger": INFERRED_DAILY,
            "conditions": [
                cond("email_unreplied", "streak", 3, "count"),
                cond("time_since_last_contact", ">", 14, "day"),
            ],
            "actions": [act("notify", "manager")],
        },
    )
    assert found.exact, rule


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("订单金额超过1.5万美元时，需要财务总监审批", 15_000, "USD"),
        ("订单金额大于一百万时，需要财务总监审批", 1_000_000, "CNY"),
        ("订单金额超过3千万元时，需要财务总监审批", 30_000_000, "CNY"),
        ("订单金额超过2亿时，需要财务总监审批", 200_000_000, "CNY"),
        ("Any order over $2.5 million needs approval from the finance director.", 2_500_000, "USD"),
        ("Any order above ¥800k needs approval from the finance director.", 800_000, "CNY"),
        ("Orders over 1,200,000 need sign-off from the finance director.", 1_200_000, "CNY"),
    ],
)
def test_money_in_every_notation(text: str, value: int, unit: str) -> None:
    rule = parsed(text)
    assert rule["trigger"] == {"kind": "event", "event": "order_placed"}
    assert rule["conditions"] == [cond("order.amount", ">", value, unit)]
    assert rule["actions"] == [act("require_approval", "role:finance_director")]


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("A类客户三个月都没下过单，提醒客户经理", cond("time_since_last_order", ">=", 3, "month")),
        ("A类客户超过两个星期没有下单，提醒客户经理", cond("time_since_last_order", ">", 2, "week")),
        ("A类客户至少十五日没下单，提醒客户经理", cond("time_since_last_order", ">=", 15, "day")),
        ("A类客户未下单不少于20天，提醒客户经理", cond("time_since_last_order", ">=", 20, "day")),
        ("A类客户45个工作日以上没有订单，提醒客户经理", cond("time_since_last_order", ">=", 45, "business_day")),
        (
            "If a tier A account goes 45 days without ordering, remind the account owner.",
            cond("time_since_last_order", ">=", 45, "day"),
        ),
        (
            "If a tier A account has not ordered for at least 6 weeks, remind the account owner.",
            cond("time_since_last_order", ">=", 6, "week"),
        ),
        (
            "If a tier A account has had no order for over 1 year, remind the account owner.",
            cond("time_since_last_order", ">", 12, "month"),
        ),
    ],
)
def test_durations_comparators_and_units(text: str, condition: dict[str, Any]) -> None:
    rule = parsed(text)
    assert rule["trigger"] == INFERRED_DAILY
    assert rule["conditions"] == [cond("account.tier", "==", "A"), condition]
    assert rule["actions"] == [act("notify", "owner")]  # the account's own owner


@pytest.mark.parametrize(
    ("text", "condition", "trigger"),
    [
        ("工单24小时内未响应，升级给客服主管", cond("ticket.unresponded_duration", ">=", 24, "hour"), INFERRED_HOURLY),
        (
            "工单打开超过三十六个小时还没解决，升级给客服经理",
            cond("ticket.open_duration", ">", 36, "hour"),
            INFERRED_HOURLY,
        ),
        (
            "If a support ticket has no response within 8 hours, escalate it to the support manager.",
            cond("ticket.unresponded_duration", ">=", 8, "hour"),
            INFERRED_HOURLY,
        ),
        (
            "Escalate to the support manager when a ticket remains open for 3 days or more.",
            cond("ticket.open_duration", ">=", 3, "day"),
            INFERRED_DAILY,
        ),
    ],
)
def test_tickets_escalate(text: str, condition: dict[str, Any], trigger: dict[str, Any]) -> None:
    rule = parsed(text)
    assert rule["trigger"] == trigger
    assert rule["conditions"] == [condition]
    assert rule["actions"] == [act("escalate", "role:support_manager")]


def test_stage_changes_and_field_changes() -> None:
    assert parsed("当商机进入谈判阶段时，通知销售总监")["trigger"] == {
        "kind": "event",
        "event": "opportunity_stage_changed",
        "to_stage": "negotiation",
    }
    rule = parsed("When a deal over $1M moves to Negotiation, notify the sales director.")
    assert rule["conditions"] == [cond("opportunity.amount", ">", 1_000_000, "USD")]
    assert parsed("When the account tier changes from B to A, notify the key account manager.")["trigger"] == {
        "kind": "event",
        "event": "field_changed",
        "field": "account.tier",
        "from": "B",
        "to": "A",
    }
    assert parsed("客户等级变为A类时，通知销售总监和大客户部经理")["actions"] == [
        act("notify", "role:sales_director"),
        act("notify", "role:key_account_manager"),
    ]
    assert parsed("商机阶段变为赢单时，调用 https://hooks.example.com/won")["actions"] == [
        {"type": "webhook", "target": "https://hooks.example.com/won", "params": {}}
    ]


def test_schedules_with_days_and_times() -> None:
    assert parsed("每个工作日下午5点，提醒销售跟进")["trigger"] == {
        "kind": "schedule",
        "frequency": "daily",
        "time": "17:00",
        "days": "weekdays",
    }
    assert parsed("Every Friday at 5pm, send the sales VP a list of reps.") == {
        "trigger": {"kind": "schedule", "frequency": "weekly", "time": "17:00", "day": "friday"},
        "conditions": [],
        "actions": [act("notify", "role:sales_vp", content="list_of_reps")],
    }
    rule = parsed("每天上午10点半，把超过30天没有拜访的重点客户名单发给我")
    assert rule["trigger"] == {"kind": "schedule", "frequency": "daily", "time": "10:30"}
    assert rule["actions"] == [act("notify", "self", content="account_list")]
    assert parsed("Every day at 9:30, notify me about accounts with no order in 60+ days.")["conditions"] == [
        cond("time_since_last_order", ">=", 60, "day")
    ]


def test_tasks_summaries_and_recipients() -> None:
    rule = parsed("合同到期前30天，给负责人创建一个续约任务，7天内完成")
    assert rule["conditions"] == [cond("contract.time_to_expiry", "<=", 30, "day")]
    assert rule["actions"] == [act("create_task", "owner", title="续约", due_in={"value": 7, "unit": "day"})]
    rule = parsed("When a visit is logged for a VIP account, push a summary of the last 5 interactions to the manager.")
    assert rule["trigger"] == {"kind": "event", "event": "activity_logged", "activity_type": "visit"}
    assert rule["actions"] == [act("push_summary", "manager", last_n=5)]
    assert parsed("新线索24小时内未分配,提醒销售运营并抄送我")["actions"] == [
        act("notify", "role:sales_ops"),
        act("notify", "self"),
    ]
    assert parsed("华东区域的商机金额超过五十万时，通知区域总监")["conditions"] == [
        cond("account.region", "==", "华东"),
        cond("opportunity.amount", ">", 500_000, "CNY"),
    ]
    assert parsed("线索评分达到80分以上，分配给电销团队")["actions"] == [act("assign", "team:inside_sales")]
    assert parsed("连续3个月未完成业绩，通知区域总监")["conditions"] == [cond("quota_missed", "streak", 3, "month")]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("商机金额超过一百万时，通知区域总监并且抄送火星基地", ["火星基地"]),
        ("If an opportunity is gloomy for 3 days, notify the owner.", ["gloomy"]),
        ("商机在谈判阶段停留超过21，通知负责人", ["超过21"]),
        ("通知主管", ["通知主管"]),
        ("商机金额超过一百万", ["商机金额超过一百万"]),
        ("每周一早上9点提醒", ["提醒"]),
        ("When something happens, do stuff.", ["something", "happens", "stuff"]),
    ],
)
def test_what_is_not_understood_is_named_by_its_span(text: str, fragments: list[str]) -> None:
    result = parse_rule(text)
    assert result.rule is None
    assert [p.fragment for p in result.problems] == fragments
    for problem in result.problems:
        assert text[problem.start : problem.end] == problem.fragment
        assert problem.message_en
        assert problem.message_zh


def test_read_back_speaks_the_language_asked_for() -> None:
    rule = parsed("新线索24小时内未分配,提醒销售运营")
    assert read_back(rule, "zh") == "每小时检查一次（按条件推断），如果线索未分配时长不少于24小时：通知销售运营。"
    assert read_back(rule, "en") == (
        "Every hour (checked periodically, inferred from the conditions), if the time the lead has been "
        "unassigned is at least 24 hours: notify sales ops."
    )
    assert parse_rule("新线索24小时内未分配,提醒销售运营", "en").readback == read_back(rule, "en")
