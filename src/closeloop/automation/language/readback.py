"""The rule in plain words, in Chinese or English, for the author to confirm before saving."""

from __future__ import annotations

from typing import Any

EVENTS = {
    "lead_created": ("新线索创建时", "When a new lead is created"),
    "email_received": ("收到客户邮件时", "When an email is received"),
    "order_placed": ("下单时", "When an order is placed"),
    "ticket_opened": ("新工单创建时", "When a ticket is opened"),
    "quote_submitted": ("提交报价时", "When a quote is submitted"),
    "activity_logged": ("记录跟进时", "When an activity is logged"),
}
ACTIVITY = {"visit": ("拜访", "visit"), "call": ("电话", "call"), "demo": ("演示", "demo")}
STAGES = {
    "prospecting": ("初步接洽", "Prospecting"),
    "qualification": ("需求确认", "Qualification"),
    "proposal": ("方案报价", "Proposal"),
    "quote": ("报价", "Quote"),
    "negotiation": ("商务谈判", "Negotiation"),
    "closed_won": ("赢单", "Closed Won"),
    "closed_lost": ("输单", "Closed Lost"),
}
FIELDS = {
    "opportunity.amount": ("商机金额", "the opportunity amount"),
    "order.amount": ("订单金额", "the order amount"),
    "quote.amount": ("报价金额", "the quote amount"),
    "contract.amount": ("合同金额", "the contract amount"),
    "lead.amount": ("线索金额", "the lead amount"),
    "account.amount": ("客户金额", "the account amount"),
    "ticket.amount": ("工单金额", "the ticket amount"),
    "opportunity.discount": ("折扣", "the discount"),
    "opportunity.stage": ("商机阶段", "the opportunity stage"),
    "stage_duration": ("在该阶段停留时间", "the time in that stage"),
    "time_since_last_contact": ("距上次沟通", "the time since the last contact"),
    "time_since_last_order": ("距上次下单", "the time since the last order"),
    "time_since_last_visit": ("距上次拜访", "the time since the last visit"),
    "time_since_quote_sent": ("距报价发出", "the time since the quote was sent"),
    "contract.time_to_expiry": ("距合同到期", "the time to contract expiry"),
    "ticket.open_duration": ("工单未关闭时长", "the time the ticket has been open"),
    "ticket.unresponded_duration": ("工单未响应时长", "the time the ticket has had no response"),
    "lead.unassigned_duration": ("线索未分配时长", "the time the lead has been unassigned"),
    "order.payment_overdue_duration": ("回款逾期时长", "the time the payment is overdue"),
    "email_unreplied": ("未回复的邮件", "unreplied emails"),
    "call_unanswered": ("未接通的电话", "unanswered calls"),
    "quota_missed": ("未完成业绩", "missed quota"),
    "forecast_deviation": ("预测偏差", "the forecast deviation"),
    "visit_count": ("拜访次数", "the number of visits"),
    "lead.score": ("线索评分", "the lead score"),
    "account.annual_purchase": ("年采购额", "the annual purchase"),
    "account.complaint_count": ("投诉次数", "the number of complaints"),
    "account.ticket_count": ("工单数", "the number of tickets"),
    "account.tier": ("客户等级", "the account tier"),
    "account.industry": ("行业", "the industry"),
    "account.region": ("区域", "the region"),
    "lead.region": ("线索区域", "the lead region"),
    "account.is_key_account": ("重点客户", "a key account"),
    "account.is_vip": ("VIP 客户", "a VIP account"),
    "account.is_customer": ("已成交客户", "an account that has bought"),
    "lead.source": ("线索来源", "the lead source"),
    "ticket.priority": ("工单优先级", "the ticket priority"),
    "ticket.type": ("工单类型", "the ticket type"),
}
OPS = {
    ">": ("超过", "more than"),
    ">=": ("不少于", "at least"),
    "<": ("少于", "less than"),
    "<=": ("不超过", "at most"),
    "==": ("为", "is"),
    "streak": ("连续", "in a row:"),
}
UNITS = {
    "minute": ("分钟", "minute"),
    "hour": ("小时", "hour"),
    "day": ("天", "day"),
    "business_day": ("个工作日", "business day"),
    "week": ("周", "week"),
    "month": ("个月", "month"),
    "count": ("次", "time"),
    "percent": ("%", "%"),
    "CNY": ("元", "CNY"),
    "USD": ("美元", "USD"),
    "point": ("分", "point"),
}
WINDOWS = {
    "last_week": ("上周", "last week"),
    "this_week": ("本周", "this week"),
    "this_month": ("本月", "this month"),
    "this_quarter": ("本季度", "this quarter"),
}
TARGETS = {
    "owner": ("负责人", "the owner"),
    "account_owner": ("客户负责人", "the account owner"),
    "manager": ("负责人的主管", "the owner's manager"),
    "self": ("我", "me"),
}
ROLES = {
    "regional_director": ("区域总监", "the regional director"),
    "regional_manager": ("区域经理", "the regional managers"),
    "sales_director": ("销售总监", "the sales director"),
    "sales_manager": ("销售主管", "the sales manager"),
    "support_manager": ("客服经理", "the support manager"),
    "finance": ("财务部", "finance"),
    "finance_director": ("财务总监", "the finance director"),
    "cfo": ("首席财务官", "the CFO"),
    "key_account_manager": ("大客户部经理", "the key account manager"),
    "sales_ops": ("销售运营", "sales ops"),
    "sales_vp": ("销售副总裁", "the sales VP"),
    "team_lead": ("组长", "the team lead"),
    "legal": ("法务", "legal"),
    "presales": ("售前", "presales"),
}
WEEKDAYS = {
    "monday": ("周一", "Monday"),
    "tuesday": ("周二", "Tuesday"),
    "wednesday": ("周三", "Wednesday"),
    "thursday": ("周四", "Thursday"),
    "friday": ("周五", "Friday"),
    "saturday": ("周六", "Saturday"),
    "sunday": ("周日", "Sunday"),
}
FREQUENCIES = {
    "hourly": ("每小时", "Every hour"),
    "daily": ("每天", "Every day"),
    "weekly": ("每周", "Every week"),
    "monthly": ("每月", "Every month"),
    "quarterly": ("每季度", "Every quarter"),
}
PURPOSES = {"intervene": ("请其介入", "to step in"), "follow_up": ("请其跟进", "to follow up")}
CONTENTS = {
    "list_of_reps": ("销售名单", "the list of reps"),
    "account_list": ("客户名单", "the list of their accounts"),
}
APPROVALS = {
    "credit_review": ("信用审核", "credit review"),
    "quote": ("报价", "the quote"),
    "discount": ("折扣", "the discount"),
}


def _pick(pair: tuple[str, str], zh: bool) -> str:
    return pair[0] if zh else pair[1]


def _name(table: dict[str, tuple[str, str]], key: Any, zh: bool) -> str:
    pair = table.get(str(key))
    return _pick(pair, zh) if pair else str(key)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _quantity(value: Any, unit: str | None, zh: bool) -> str:
    if unit is None:
        return str(value)
    if unit == "percent":
        return f"{_number(value)}%"
    word = _name(UNITS, unit, zh)
    if zh:
        if unit == "CNY" and isinstance(value, int) and value >= 10_000 and value % 10_000 == 0:
            return f"{value // 10_000:,}万元"
        return f"{_number(value)}{word}"
    plural = "s" if value != 1 and unit not in ("CNY", "USD") else ""
    return f"{_number(value)} {word}{plural}"


def _target(target: str, zh: bool) -> str:
    if target in TARGETS:
        return _pick(TARGETS[target], zh)
    kind, _, name = target.partition(":")
    if kind == "role":
        return _name(ROLES, name, zh)
    if kind == "team":
        return f"{name} 团队" if zh else f"the {name} team"
    return target


def _trigger(trigger: dict[str, Any], zh: bool) -> str:
    if trigger.get("kind") == "schedule":
        frequency = str(trigger.get("frequency", "daily"))
        parts: list[str] = []
        if frequency == "weekly" and trigger.get("day") in WEEKDAYS:
            parts.append(("每" if zh else "Every ") + _name(WEEKDAYS, trigger["day"], zh))
        elif frequency == "monthly" and trigger.get("day") == "last_day":
            parts.append("每月最后一天" if zh else "On the last day of every month")
        elif trigger.get("days") == "weekdays":
            parts.append("每个工作日" if zh else "Every weekday")
        else:
            parts.append(_name(FREQUENCIES, frequency, zh))
        if trigger.get("time"):
            parts.append(trigger["time"] if zh else f"at {trigger['time']}")
        elif trigger.get("time_of_day"):
            parts.append(
                {
                    "morning": ("上午", "in the morning"),
                    "afternoon": ("下午", "in the afternoon"),
                    "evening": ("晚上", "in the evening"),
                }.get(trigger["time_of_day"], ("", ""))[0 if zh else 1]
            )
        text = ("" if zh else " ").join(parts) if not zh else "".join(parts)
        if trigger.get("inferred"):
            text += "检查一次（按条件推断）" if zh else " (checked periodically, inferred from the conditions)"
        else:
            text += "运行" if zh else ""
        return text
    event = str(trigger.get("event"))
    if event == "opportunity_stage_changed":
        stage = _name(STAGES, trigger.get("to_stage"), zh)
        return f"商机阶段变为“{stage}”时" if zh else f"When an opportunity moves to {stage}"
    if event == "field_changed":
        field = _name(FIELDS, trigger.get("field"), zh)
        change = ""
        if "from" in trigger:
            change = f"从{trigger['from']}" if zh else f" from {trigger['from']}"
        return (
            f"{field}{change}变为{trigger.get('to')}时"
            if zh
            else f"When {field} changes{change} to {trigger.get('to')}"
        )
    if event == "activity_logged" and trigger.get("activity_type") in ACTIVITY:
        activity = _name(ACTIVITY, trigger["activity_type"], zh)
        return f"记录{activity}时" if zh else f"When a {activity} is logged"
    return _name(EVENTS, event, zh)


def _condition(condition: dict[str, Any], zh: bool) -> str:
    field = str(condition.get("field_or_metric"))
    op = str(condition.get("op"))
    value = condition.get("value")
    unit = condition.get("unit")
    label = _name(FIELDS, field, zh)
    if value is True and op == "==":
        return f"是{label}" if zh else f"it is {label}"
    if field == "opportunity.stage":
        value = _name(STAGES, value, zh)
    if op == "streak":
        if zh:
            return f"连续{_number(value)}{'个月' if unit == 'month' else '次'}{label}"
        return f"{_number(value)} {label} in a row" if unit != "month" else f"{label} {value} months in a row"
    amount = _quantity(value, unit, zh)
    text = f"{label}{_pick(OPS[op], zh)}{amount}" if zh else f"{label} is {_pick(OPS[op], zh)} {amount}"
    if op == "==" and not zh:
        text = f"{label} is {amount}"
    window = condition.get("window")
    if isinstance(window, str):
        text = f"{_name(WINDOWS, window, zh)}{text}" if zh else f"{text} ({_name(WINDOWS, window, zh)})"
    return text


def _action(action: dict[str, Any], zh: bool) -> str:
    kind = str(action.get("type"))
    target = _target(str(action.get("target")), zh)
    params: dict[str, Any] = action.get("params") or {}
    if kind == "notify":
        extra = ""
        if "content" in params:
            extra = (
                (f"发送{_name(CONTENTS, params['content'], zh)}")
                if zh
                else f" with {_name(CONTENTS, params['content'], zh)}"
            )
            return f"向{target}{extra}" if zh else f"send {target}{extra.replace(' with', '')}"
        if "purpose" in params:
            extra = (
                ("（" + _name(PURPOSES, params["purpose"], zh) + "）")
                if zh
                else " " + _name(PURPOSES, params["purpose"], zh)
            )
        if "team" in params:
            extra += f"（{params['team']} 团队）" if zh else f" of the {params['team']} team"
        return f"通知{target}{extra}" if zh else f"notify {target}{extra}"
    if kind == "escalate":
        return f"升级给{target}" if zh else f"escalate to {target}"
    if kind == "create_task":
        title = params.get("title")
        due = ""
        if isinstance(params.get("due_in"), dict):
            due = (
                (f"，{_quantity(params['due_in'].get('value'), params['due_in'].get('unit'), zh)}内到期")
                if zh
                else (f", due in {_quantity(params['due_in'].get('value'), params['due_in'].get('unit'), zh)}")
            )
        elif params.get("due") == "today":
            due = "，当天到期" if zh else ", due today"
        named = f"“{title}”" if title else ""
        return (
            f"给{target}创建任务{named}{due}"
            if zh
            else f"create a task {named or ''} for {target}{due}".replace("  ", " ")
        )
    if kind == "push_summary":
        if "last_n" in params:
            scope = (
                f"最近{params['last_n']}次沟通的摘要"
                if zh
                else f"a summary of the last {params['last_n']} interactions"
            )
        else:
            scope = "历史沟通摘要" if zh else "a summary of the communication history"
        return f"把{scope}推送给{target}" if zh else f"send {scope} to {target}"
    if kind == "require_approval":
        what = params.get("kind")
        named = _name(APPROVALS, what, zh) if what else ""
        if zh:
            return f"需要{target}审批{('（' + named + '）') if named else ''}"
        return f"require approval from {target}{(' (' + named + ')') if named else ''}"
    if kind == "assign":
        return f"分配给{target}" if zh else f"assign it to {target}"
    if kind == "webhook":
        return f"调用 webhook {action.get('target')}" if zh else f"call the webhook {action.get('target')}"
    if kind == "set_field":
        value = params.get("value")
        return f"把{target}设为{value}" if zh else f"set {target} to {value}"
    return f"{kind} {target}"


def read_back(rule: dict[str, Any], lang: str) -> str:
    """The rule in plain words: ``lang`` is ``"zh"`` or ``"en"``."""
    zh = lang.startswith("zh")
    trigger = _trigger(rule.get("trigger") or {}, zh)
    conditions = [_condition(c, zh) for c in rule.get("conditions") or []]
    actions = [_action(a, zh) for a in rule.get("actions") or []]
    if zh:
        text = trigger
        if conditions:
            text += "，如果" + "，并且".join(conditions)
        text += "：" + "；".join(actions) + "。"
        return text
    text = trigger
    if conditions:
        text += ", if " + " and ".join(conditions)
    return text + ": " + "; ".join(actions) + "."
