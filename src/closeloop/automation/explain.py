"""The plain-language "why" of a decision, in Chinese and English (stored in both, like
notifications, so the worker needs no catalogue and what a decision said stays as it said)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_FIELDS: dict[str, tuple[str, str]] = {
    "email_unreplied": ("连续未回复的邮件", "emails in a row without a reply"),
    "call_unanswered": ("连续未接通的电话", "calls in a row without an answer"),
    "customer_replied": ("客户已回复", "customer replied"),
    "time_since_last_contact": ("距最近一次沟通", "time since the last contact"),
    "time_since_last_visit": ("距最近一次拜访", "time since the last visit"),
    "time_since_last_order": ("距最近一次下单", "time since the last order"),
    "stage_duration": ("在当前阶段停留", "time in the current stage"),
    "lead.unassigned_duration": ("线索未分配时长", "time the lead has been unassigned"),
    "ticket.open_duration": ("工单未关闭时长", "time the ticket has been open"),
    "order_count": ("订单数", "orders"),
    "visit_count": ("拜访次数", "visits"),
    "opportunity.amount": ("商机金额", "opportunity amount"),
    "opportunity.stage": ("商机阶段", "opportunity stage"),
    "order.amount": ("订单金额", "order amount"),
    "account.tier": ("客户等级", "account tier"),
    "account.industry": ("客户行业", "account industry"),
    "account.region": ("客户区域", "account region"),
    "account.is_key_account": ("是否重点客户", "key account"),
}
_UNITS: dict[str, tuple[str, str]] = {
    "minute": ("分钟", "minutes"),
    "hour": ("小时", "hours"),
    "day": ("天", "days"),
    "business_day": ("个工作日", "business days"),
    "week": ("周", "weeks"),
    "month": ("个月", "months"),
    "count": ("次", ""),
    "CNY": ("元", "CNY"),
    "USD": ("美元", "USD"),
    "percent": ("%", "%"),
    "point": ("分", "points"),
}
_OPS: dict[str, tuple[str, str]] = {
    ">": ("超过", "over"),
    ">=": ("至少", "at least"),
    "<": ("少于", "under"),
    "<=": ("不超过", "at most"),
    "==": ("为", "is"),
    "in": ("属于", "is one of"),
    "streak": ("连续达到", "reached a streak of"),
}
_ACTIONS: dict[str, tuple[str, str]] = {
    "notify": ("提醒", "notify"),
    "create_task": ("创建任务", "create a task for"),
    "escalate": ("升级给", "escalate to"),
    "push_summary": ("推送沟通摘要给", "send a summary of recent interactions to"),
    "webhook": ("调用外部接口", "call the webhook"),
    "set_field": ("设置字段", "set the field"),
    "require_approval": ("请求审批", "ask for approval by"),
    "assign": ("分配给", "assign to"),
}
_TARGETS: dict[str, tuple[str, str]] = {
    "owner": ("负责人", "the owner"),
    "account_owner": ("客户负责人", "the account owner"),
    "manager": ("负责人的上级", "the owner's manager"),
    "self": ("规则作者", "the rule's author"),
}


def field_label(name: str, lang: str) -> str:
    labels = _FIELDS.get(name)
    if labels is None:
        return name
    return labels[0] if lang == "zh" else labels[1]


def _amount(value: Any, unit: Any, lang: str) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    labels = _UNITS.get(str(unit)) if unit else None
    if labels is None:
        return text
    suffix = labels[0] if lang == "zh" else labels[1]
    if not suffix:
        return text
    return f"{text}{suffix}" if lang == "zh" or suffix == "%" else f"{text} {suffix}"


def target_label(target: str, lang: str) -> str:
    labels = _TARGETS.get(target)
    if labels is not None:
        return labels[0] if lang == "zh" else labels[1]
    if target.startswith("role:"):
        return f"角色 {target[5:]}" if lang == "zh" else f"role {target[5:]}"
    return target


def condition_text(condition: Mapping[str, Any], lang: str) -> str:
    op = _OPS.get(str(condition.get("op")), (str(condition.get("op")), str(condition.get("op"))))
    expected = _amount(condition.get("value"), condition.get("unit"), lang)
    seen = _amount(condition.get("seen"), condition.get("unit"), lang)
    name = field_label(str(condition.get("field_or_metric")), lang)
    if lang == "zh":
        return f"{name}{op[0]}{expected}(看到的值:{seen})"
    return f"{name} {op[1]} {expected} (value seen: {seen})"


def action_text(action: Mapping[str, Any], lang: str) -> str:
    labels = _ACTIONS.get(str(action.get("type")), (str(action.get("type")), str(action.get("type"))))
    verb = labels[0] if lang == "zh" else labels[1]
    target = target_label(str(action.get("target") or ""), lang)
    title = (action.get("params") or {}).get("title")
    text = f"{verb}{target}" if lang == "zh" else f"{verb} {target}"
    if title:
        text += f"「{title}」" if lang == "zh" else f" “{title}”"
    return text


def why(
    *,
    rule_name: str,
    version: int,
    event_type: str,
    record_type: str,
    record_id: int,
    conditions: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
) -> tuple[str, str]:
    """The reason for a firing, in Chinese and in English."""
    zh_conditions = ";".join(condition_text(c, "zh") for c in conditions) or "无附加条件"
    en_conditions = "; ".join(condition_text(c, "en") for c in conditions) or "no further conditions"
    zh_actions = "、".join(action_text(a, "zh") for a in actions)
    en_actions = ", ".join(action_text(a, "en") for a in actions)
    zh = (
        f"规则「{rule_name}」(第{version}版)因 {event_type} 对 {record_type} #{record_id} 生效:"
        f"{zh_conditions}。因此:{zh_actions}。"
    )
    en = (
        f"Rule “{rule_name}” (version {version}) fired on {record_type} #{record_id} after {event_type}: "
        f"{en_conditions}. So: {en_actions}."
    )
    return zh, en
