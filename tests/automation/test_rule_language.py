"""Plain-language rules (AUTO-2): sentences managers write, in Chinese and English, become the
structured rule; what the parser cannot read is named by its span, never guessed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from closeloop.automation.language import parse_rule, read_back
from closeloop.automation.language.evaluation import agreement
from closeloop.automation.language.lexicon import conflicting_phrases
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
        ("不要提醒主管，商机超过14天没有跟进", ["不要"]),
        ("If a deal has no contact for 14 days, don't notify the owner.", ["don't"]),
        ("除了A类客户，超过30天没有下单的客户提醒负责人", ["除了"]),
        ("Never escalate tickets open over 2 days.", ["Never"]),
        ("商机金额不是100万时提醒主管", ["不"]),
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "客户首次下单时，通知大客户部经理",
            {
                "trigger": {"kind": "event", "event": "order_placed"},
                "conditions": [cond("order.is_first_order", "==", True)],
                "actions": [act("notify", "role:key_account_manager")],
            },
        ),
        (
            "客户投诉工单创建时，立即通知客服经理和负责人",
            {
                "trigger": {"kind": "event", "event": "ticket_opened"},
                "conditions": [cond("ticket.type", "==", "投诉")],
                "actions": [act("notify", "role:support_manager"), act("notify", "owner")],
            },
        ),
        (
            "来自展会的线索，自动分配给电销团队",
            {
                "trigger": {"kind": "event", "event": "lead_created"},
                "conditions": [cond("lead.source", "==", "trade_show")],
                "actions": [act("assign", "team:inside_sales")],
            },
        ),
        (
            "报价发出后7天客户没有回复，提醒负责人跟进",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("time_since_quote_sent", ">=", 7, "day"), cond("customer_replied", "==", False)],
                "actions": [act("notify", "owner", purpose="follow_up")],
            },
        ),
        (
            "线索评分低于30分的，标记为无效",
            {
                "trigger": {"kind": "event", "event": "lead_created"},
                "conditions": [cond("lead.score", "<", 30, "point")],
                "actions": [{"type": "set_field", "target": "lead.status", "params": {"value": "invalid"}}],
            },
        ),
        (
            "每月1号上午9点，把业绩未达标的销售名单发给销售总监",
            {
                "trigger": {"kind": "schedule", "frequency": "monthly", "time": "09:00", "day_of_month": 1},
                "conditions": [cond("quota_missed", "==", True)],
                "actions": [act("notify", "role:sales_director", content="list_of_reps")],
            },
        ),
        (
            "商机超过一个星期没有跟进，创建跟进任务给负责人，明天到期",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("time_since_last_contact", ">", 1, "week")],
                "actions": [act("create_task", "owner", title="跟进", due_in={"value": 1, "unit": "day"})],
            },
        ),
        (
            "If an order's payment is overdue by more than 30 days, notify finance and the account owner.",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("order.payment_overdue_duration", ">", 30, "day")],
                "actions": [act("notify", "role:finance"), act("notify", "account_owner")],
            },
        ),
        (
            "When a deal's amount drops by more than 20%, alert the sales director.",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("opportunity.amount_decrease_pct", ">", 20, "percent")],
                "actions": [act("notify", "role:sales_director")],
            },
        ),
        (
            "When a complaint ticket is opened for a healthcare account, notify the support manager.",
            {
                "trigger": {"kind": "event", "event": "ticket_opened"},
                "conditions": [cond("ticket.type", "==", "complaint"), cond("account.industry", "==", "healthcare")],
                "actions": [act("notify", "role:support_manager")],
            },
        ),
        (
            "When a deal in the East region over 1M CNY reaches Proposal, notify the regional director "
            "and the presales team.",
            {
                "trigger": {"kind": "event", "event": "opportunity_stage_changed", "to_stage": "proposal"},
                "conditions": [cond("account.region", "==", "East"), cond("opportunity.amount", ">", 1_000_000, "CNY")],
                "actions": [act("notify", "role:regional_director"), act("notify", "team:presales")],
            },
        ),
        (
            "On the 1st of every month at 10:00, send sales ops the list of reps who missed quota.",
            {
                "trigger": {"kind": "schedule", "frequency": "monthly", "time": "10:00", "day_of_month": 1},
                "conditions": [cond("quota_missed", "==", True)],
                "actions": [act("notify", "role:sales_ops", content="list_of_reps")],
            },
        ),
        (
            "If a lead is still unassigned after half an hour, notify sales ops.",
            {
                "trigger": INFERRED_HOURLY,
                "conditions": [cond("lead.unassigned_duration", ">=", 30, "minute")],
                "actions": [act("notify", "role:sales_ops")],
            },
        ),
    ],
)
def test_more_records_events_and_actions(text: str, expected: dict[str, Any]) -> None:
    assert parsed(text) == expected


def test_rolling_windows_ranges_and_several_values() -> None:
    window = {"value": 30, "unit": "day"}
    for text in (
        "最近30天拜访次数少于2次的重点客户，提醒负责人",
        "If a key account has fewer than 2 visits in the last 30 days, notify the owner.",
    ):
        assert parsed(text)["conditions"] == [
            cond("account.is_key_account", "==", True),
            cond("visit_count", "<", 2, "count", window=window),
        ]
    assert parsed("A类客户近90天下单次数少于3次，通知客户经理")["conditions"][1] == cond(
        "order_count", "<", 3, "count", window={"value": 90, "unit": "day"}
    )
    assert parsed("When a deal between $10k and $50k moves to Proposal, notify the sales manager.")["conditions"] == [
        cond("opportunity.amount", ">=", 10_000, "USD"),
        cond("opportunity.amount", "<=", 50_000, "USD"),
    ]
    assert parsed("商机金额介于50万至100万之间时，需要区域总监审批")["conditions"] == [
        cond("opportunity.amount", ">=", 500_000, "CNY"),
        cond("opportunity.amount", "<=", 1_000_000, "CNY"),
    ]
    for text in (
        "A类或B类客户超过30天没有联系，提醒负责人",
        "If a tier A or B account has had no contact for 30 days, remind the owner.",
    ):
        assert parsed(text)["conditions"][0] == cond("account.tier", "in", ["A", "B"])


def test_read_back_of_any_stored_rule_never_fails() -> None:
    odd = {
        "trigger": {"kind": "event", "event": "something_new"},
        "conditions": [
            {"field_or_metric": "custom.score", "op": "~", "value": [1, 2], "unit": "parsec"},
            {"field_or_metric": "customer_replied", "op": "==", "value": False, "unit": None},
        ],
        "actions": [{"type": "dance", "target": "role:ceo", "params": {"x": 1}}, {"type": "notify"}],
    }
    for lang in ("zh", "en"):
        assert read_back(odd, lang)
    assert "客户没有回复" in read_back(odd, "zh")
    assert read_back({}, "en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Whenever an order above 200,000 yuan is placed, ask the finance team for a credit check.",
            {
                "trigger": {"kind": "event", "event": "order_placed"},
                "conditions": [cond("order.amount", ">", 200_000, "CNY")],
                "actions": [act("require_approval", "role:finance", kind="credit_review")],
            },
        ),
        (
            "If no one has touched a deal in 2 weeks, ping the owner.",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("time_since_last_contact", ">=", 2, "week")],
                "actions": [act("notify", "owner")],
            },
        ),
        (
            "When a lead is created, create a call task for the rep due within 1 day.",
            {
                "trigger": {"kind": "event", "event": "lead_created"},
                "conditions": [],
                "actions": [act("create_task", "owner", title="call", due_in={"value": 1, "unit": "day"})],
            },
        ),
        (
            "每周日晚上8点，给各区域经理发送停滞商机名单",
            {
                "trigger": {"kind": "schedule", "frequency": "weekly", "time": "20:00", "day": "sunday"},
                "conditions": [cond("opportunity.status", "==", "stalled")],
                "actions": [act("notify", "role:regional_manager", content="opportunity_list")],
            },
        ),
        (
            "If a customer misses 2 calls in a row, notify the owner.",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("call_unanswered", "streak", 2, "count")],
                "actions": [act("notify", "owner")],
            },
        ),
        (
            "如果VIP客户提交了工单，马上通知客服经理",
            {
                "trigger": {"kind": "event", "event": "ticket_opened"},
                "conditions": [cond("account.is_vip", "==", True)],
                "actions": [act("notify", "role:support_manager")],
            },
        ),
        (
            "客户超过45天没有复购，给客户经理建一个复购跟进任务，5个工作日内完成",
            {
                "trigger": INFERRED_DAILY,
                "conditions": [cond("time_since_last_order", ">", 45, "day")],
                "actions": [act("create_task", "owner", title="复购跟进", due_in={"value": 5, "unit": "business_day"})],
            },
        ),
        (
            "Mark the lead as invalid when its score is below 20.",
            {
                "trigger": {"kind": "event", "event": "lead_created"},
                "conditions": [cond("lead.score", "<", 20)],
                "actions": [{"type": "set_field", "target": "lead.status", "params": {"value": "invalid"}}],
            },
        ),
    ],
)
def test_english_and_chinese_ways_of_saying_it(text: str, expected: dict[str, Any]) -> None:
    assert parsed(text) == expected


def test_close_dates_revenue_last_orders_and_stale_leads() -> None:
    rule = parsed("商机预计成交日期已过，提醒负责人")
    assert rule["conditions"] == [cond("opportunity.close_date", "<", "today")]
    assert "预计成交日期已过" in read_back(rule, "zh")
    assert parsed("If an opportunity closes within 7 days and is still in Proposal, notify the owner.")[
        "conditions"
    ] == [cond("opportunity.time_to_close", "<=", 7, "day"), cond("opportunity.stage", "==", "proposal")]
    assert parsed("年营收超过1亿的新线索，分配给大客户部") == {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [cond("lead.annual_revenue", ">", 100_000_000, "CNY")],
        "actions": [act("assign", "role:key_account_manager")],
    }
    assert parsed("If the last order amount is over 100k, notify the key account manager.")["conditions"] == [
        cond("last_order.amount", ">", 100_000, "CNY")
    ]
    assert parsed("销售名下超过20条未跟进线索时，通知他的主管")["conditions"] == [
        cond("owner.stale_lead_count", ">", 20, "count")
    ]
    assert [p.fragment for p in parse_rule("商机预计成交日期已过但还没赢单，提醒负责人").problems] == ["没"]


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        (
            "If a new lead isn't assigned within 2 hours, alert sales ops.",
            cond("lead.unassigned_duration", ">=", 2, "hour"),
        ),
        (
            "If a new lead hasn't been assigned after 2 hours, alert sales ops.",
            cond("lead.unassigned_duration", ">=", 2, "hour"),
        ),
        (
            "If a lead is still unassigned after 120 minutes, alert sales ops.",
            cond("lead.unassigned_duration", ">=", 120, "minute"),
        ),
    ],
)
def test_english_negated_states_are_durations(text: str, condition: dict[str, Any]) -> None:
    rule = parsed(text)
    assert rule["conditions"] == [condition]
    assert rule["actions"] == [act("notify", "role:sales_ops")]
    assert agreement(rule, {"trigger": INFERRED_HOURLY, "conditions": [condition], "actions": rule["actions"]}).exact


def test_quoted_task_titles() -> None:
    assert parsed("当商机进入方案阶段时，给负责人创建任务“准备报价”，3天内完成")["actions"] == [
        act("create_task", "owner", title="准备报价", due_in={"value": 3, "unit": "day"})
    ]
    assert parsed('When a deal moves to Proposal, create a task "Send the pricing sheet" for the owner due in 2 days.')[
        "actions"
    ] == [act("create_task", "owner", title="Send the pricing sheet", due_in={"value": 2, "unit": "day"})]


def test_every_phrase_of_the_lexicon_has_one_meaning() -> None:
    assert conflicting_phrases() == []


#: other ways of writing labelled items: each must mean what the label of that item says
PARAPHRASES = {
    "r001": ["客户连续三次不回邮件，而且已经十四天以上没有沟通，提醒主管介入，推送沟通历史摘要"],
    "r002": [
        "谈判阶段的商机如果停留超过21天，就通知负责人及其经理",
        "Let the owner and their manager know when a deal has been stuck in negotiation for more than three weeks.",
    ],
    "r003": ["对于A类客户，如果30天以上没下单，请提醒客户经理跟进，同时建一个回访任务，三天内完成"],
    "r004": ["新线索两个小时内无人认领时，通知销售主管"],
    "r005": ["工单已打开超过四十八小时且仍未关闭，升级至客服经理"],
    "r006": ["每周一上午九点，把上周预测偏差大于百分之二十的销售名单发送给各区域经理"],
    "r007": ["商机金额一百万以上，阶段变为赢单时，需销售总监审批"],
    "r008": ["商机阶段变成谈判时，给负责人建一个任务，两天内到期：准备合同初稿"],
    "r009": ["医疗行业客户发来邮件时，立即通知客户负责人，并创建当天到期的回复任务"],
    "r010": ["订单金额超过50万元时，推给财务部进行信用审核"],
    "r011": ["客户等级由B类升为A类时，通知大客户部经理"],
    "r013": ["拜访记录提交后，若为重点客户，则把最近五次沟通摘要推送给大区经理"],
    "r055": ["If a support ticket is still open after 72 hours, escalate it to the support manager."],
    "r056": [
        "Create a follow-up call task for the account owner, due in two days, "
        "when a customer has ignored our last 3 emails."
    ],
}
LABELS = {item["id"]: item["expected"] for item in DEV}
ADJUSTABLE = {"time_since_last_order", "time_since_last_contact", "opportunity.amount", "stage_duration"}
ADJUSTABLE |= {"ticket.open_duration"}
# what the paraphrase says differently from the label, on purpose
ADJUSTED = {
    "If a support ticket is still open after 72 hours, escalate it to the support manager.": {"op": ">="},
    "对于A类客户，如果30天以上没下单，请提醒客户经理跟进，同时建一个回访任务，三天内完成": {"op": ">="},
    "客户连续三次不回邮件，而且已经十四天以上没有沟通，提醒主管介入，推送沟通历史摘要": {"op": ">="},
    "商机金额一百万以上，阶段变为赢单时，需销售总监审批": {"op": ">="},
    "Let the owner and their manager know when a deal has been stuck in negotiation for more than three weeks.": {
        "value": 3,
        "unit": "week",
    },
}


@pytest.mark.parametrize(
    ("item_id", "text"), [(item_id, text) for item_id, texts in PARAPHRASES.items() for text in texts]
)
def test_paraphrases_of_the_labelled_items(item_id: str, text: str) -> None:
    expected = json.loads(json.dumps(LABELS[item_id]))
    change = ADJUSTED.get(text, {})
    for condition in expected["conditions"]:
        if condition["field_or_metric"] in ADJUSTABLE:
            condition.update(change)
    found = agreement(parsed(text), expected)
    assert found.exact, (found, parsed(text))


def test_quarter_and_month_boundaries() -> None:
    for text in (
        "每季度第一天，把A类客户名单发给销售副总裁",
        "On the first day of each quarter, send the sales VP a list of tier A accounts.",
    ):
        assert parsed(text)["trigger"] == {
            "kind": "schedule",
            "frequency": "quarterly",
            "time": None,
            "day_of_month": 1,
        }
    assert parsed("At the end of each quarter, notify the sales VP.")["trigger"] == {
        "kind": "schedule",
        "frequency": "quarterly",
        "time": None,
        "day": "last_day",
    }
    assert parse_rule("每月初，提醒我").readback == "每月1日运行：通知我。"


def test_two_approvers_new_customers_and_pushed_close_dates() -> None:
    rule = parsed("当订单金额超过20万美元且客户为新客户时，需要财务总监和销售副总裁审批")
    assert rule["conditions"] == [
        cond("order.amount", ">", 200_000, "USD"),
        cond("account.is_new_customer", "==", True),
    ]
    assert rule["actions"] == [
        act("require_approval", "role:finance_director"),
        act("require_approval", "role:sales_vp"),
    ]
    assert parsed("商机连续两次推迟预计成交日期，通知他的主管")["conditions"] == [
        cond("opportunity.close_date_pushed", "streak", 2, "count")
    ]
    assert parsed("如果客户两周内没有任何互动，创建一个电话回访任务给客户经理，明天到期")["conditions"] == [
        cond("time_since_last_contact", ">=", 2, "week")
    ]
