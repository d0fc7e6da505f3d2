"""The plain-language "why" of a decision, in Chinese and English (stored in both, like
notifications, so what a decision said stays as it said, whoever reads it later). The words of a
picklist's values and of the record forms' fields come from the catalogues the pages read, so a
notice says 商务谈判 where the opportunity page does."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from closeloop.automation.definition import canonical_stage
from closeloop.automation.language import readback
from closeloop.core.i18n import translations
from closeloop.core.messages import FIELD_LABELS, choice_text

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
    "forecast_deviation": ("预测偏差", "forecast deviation"),
    "keyword_streak": ("连续搜索天数", "days in a row the account searched"),
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
    "reserve_stock": ("预留库存", "reserve stock of"),
}
_TARGETS: dict[str, tuple[str, str]] = {
    "owner": ("负责人", "the owner"),
    "account_owner": ("客户负责人", "the account owner"),
    "manager": ("负责人的上级", "the owner's manager"),
    "self": ("规则作者", "the rule's author"),
}


def field_label(name: str, lang: str) -> str:
    """A field or measure in words: the reasons' own, else the rule read-back's (``lead.status`` →
    线索状态 / lead status), else its record's and the record forms' label (``account.credit_line`` →
    客户信用额度 / account credit line), else its name."""
    labels = _FIELDS.get(name)
    if labels is not None:
        return labels[0] if lang == "zh" else labels[1]
    words = readback.FIELDS.get(name)
    if words is not None:
        return words[0] if lang == "zh" else words[1].removeprefix("the ")
    noun, _, field_name = name.partition(".")
    label = FIELD_LABELS.get(field_name) if noun in _RECORDS else None
    if label is None:
        return name
    if lang == "zh":
        return f"{_record_label(noun, 'zh')}{translations('zh_CN').gettext(label)}"
    return f"{_record_label(noun, 'en')} {label[:1].lower()}{label[1:]}"


def _amount(value: Any, unit: Any, lang: str) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    labels = _UNITS.get(str(unit)) if unit else None
    if labels is None:
        return text
    suffix = labels[0] if lang == "zh" else labels[1]
    if not suffix:
        return text
    return f"{text}{suffix}" if lang == "zh" or suffix == "%" else f"{text} {suffix}"


#: the roles a rule can name, in the interface's words (GLOSSARY.md)
_ROLES: dict[str, tuple[str, str]] = {
    "cfo": ("财务总监", "the CFO"),
    "finance": ("财务", "finance"),
    "finance_director": ("财务总监", "the finance director"),
    "key_account_manager": ("大客户经理", "the key account manager"),
    "legal": ("法务", "legal"),
    "presales": ("售前", "presales"),
    "regional_director": ("区域总监", "the regional director"),
    "regional_manager": ("区域经理", "the regional manager"),
    "sales_director": ("销售总监", "the sales director"),
    "sales_manager": ("销售经理", "the sales manager"),
    "sales_ops": ("销售运营", "sales operations"),
    "sales_vp": ("销售副总裁", "the sales VP"),
    "support_manager": ("客服经理", "the support manager"),
    "team_lead": ("组长", "the team lead"),
}
#: the records a rule fires on
_RECORDS: dict[str, tuple[str, str]] = {
    "account": ("客户", "account"),
    "contact": ("联系人", "contact"),
    "lead": ("线索", "lead"),
    "opportunity": ("商机", "opportunity"),
    "order": ("订单", "order"),
    "ticket": ("工单", "ticket"),
    "activity": ("跟进记录", "activity"),
    "quote": ("报价", "quote"),
    "contract": ("合同", "contract"),
    "user": ("销售", "rep"),
}


#: the fields a rule sets most, in words (``set_field`` on ``lead.status`` → 线索的状态)
_SET_FIELDS: dict[str, tuple[str, str]] = {
    "status": ("状态", "status"),
    "stage": ("阶段", "stage"),
    "owner_id": ("负责人", "owner"),
    "tier": ("等级", "tier"),
    "priority": ("优先级", "priority"),
    "rating": ("评级", "rating"),
    "industry": ("行业", "industry"),
    "source": ("来源", "source"),
}


def target_label(target: str, lang: str) -> str:
    labels = _TARGETS.get(target)
    if labels is not None:
        return labels[0] if lang == "zh" else labels[1]
    noun, _, field_name = target.partition(".")
    if noun in _RECORDS and field_name in _SET_FIELDS:
        words = _SET_FIELDS[field_name]
        if lang == "zh":
            return f"{_record_label(noun, 'zh')}的{words[0]}"
        return f"{_record_label(noun, 'en')} {words[1]}"
    if target.startswith("role:"):
        role = _ROLES.get(target[5:])
        if role is not None:
            return role[0] if lang == "zh" else role[1]
        return f"角色 {target[5:]}" if lang == "zh" else f"role {target[5:]}"
    return target


def _record_label(record_type: str, lang: str) -> str:
    labels = _RECORDS.get(record_type)
    return record_type if labels is None else labels[0] if lang == "zh" else labels[1]


record_label = _record_label


#: the outbox's event types in words (what woke a rule): "因新建线索", "after a new lead"
_EVENTS: dict[str, tuple[str, str]] = {
    "schedule": ("定时检查", "the scheduled check"),
    "activity.created": ("新增跟进记录", "a new activity"),
    "opportunity.stage_changed": ("商机阶段变更", "a stage change"),
    "lead.created": ("新建线索", "a new lead"),
    "order.created": ("新建订单", "a new order"),
    "ticket.created": ("新建工单", "a new ticket"),
    "signal.recorded": ("记录询价信号", "a new inquiry signal"),
}
_VERBS: dict[str, tuple[str, str]] = {
    "created": ("新建", "a new"),
    "updated": ("修改", "a change to"),
    "assigned": ("分配", "the assignment of"),
    "transferred": ("转移", "the transfer of"),
}


def _trigger_label(event_type: str, lang: str) -> str:
    """An event type in words; an unknown one read as its record and verb (``account.updated`` → 修改客户)."""
    labels = _EVENTS.get(event_type)
    if labels is not None:
        return labels[0] if lang == "zh" else labels[1]
    noun, _, verb = event_type.partition(".")
    verbs = _VERBS.get(verb)
    if verbs is None or noun not in _RECORDS:
        return event_type
    if lang == "zh":
        return f"{verbs[0]}{_record_label(noun, 'zh')}"
    return f"{verbs[1]} {_record_label(noun, 'en')}"


event_label = _trigger_label

#: a duration's unit in seconds (to say a long one in days: 474天 rather than 11385.5小时)
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


def duration_text(value: Any, unit: Any, lang: str) -> str | None:
    """A measured duration as a person says it: days once it is two days or more, hours once two
    hours or more, else minutes; whole numbers from ten up, one decimal below. ``None``: not a
    duration this can say (business days and months are counted, not converted)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or unit not in _SECONDS:
        return None
    seconds = float(value) * _SECONDS[str(unit)]
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if abs(seconds) >= 2 * size or name == "minute":
            amount = seconds / size
            shown = f"{amount:.0f}" if abs(amount) >= 10 else f"{amount:.1f}".removesuffix(".0")
            return _amount(shown, name, lang)
    return None  # pragma: no cover - the loop always returns


def value_text(field: str, value: Any, unit: Any, lang: str) -> str:
    """A value a condition names or saw, as the reader says it: a picklist's code in its words
    (``negotiation`` → 商务谈判 / Negotiation, as the record pages show it), each of a list's
    values so, an amount with its unit; anything else (a masked ``•••`` among them) as it is."""
    if isinstance(value, list):
        return ("、" if lang == "zh" else ", ").join(value_text(field, item, unit, lang) for item in value)
    code = getattr(value, "value", value)  # a picklist's enum as its code
    if field == "opportunity.stage":
        code = canonical_stage(code)  # a rule may name a stage by an alias (closed_won)
    label = choice_text(field, code, "en" if lang == "en" else "zh_CN")
    return label if label is not None else _amount(value, unit, lang)


def condition_text(condition: Mapping[str, Any], lang: str) -> str:
    op = _OPS.get(str(condition.get("op")), (str(condition.get("op")), str(condition.get("op"))))
    field = str(condition.get("field_or_metric"))
    expected = value_text(field, condition.get("value"), condition.get("unit"), lang)
    seen = duration_text(condition.get("seen"), condition.get("unit"), lang) or value_text(
        field, condition.get("seen"), condition.get("unit"), lang
    )
    name = field_label(field, lang)
    detail = condition.get("detail")
    if isinstance(detail, Mapping) and detail.get("keyword"):
        name += f"「{detail['keyword']}」" if lang == "zh" else f" “{detail['keyword']}”"
    if isinstance(detail, Mapping) and "period" in detail:  # a forecast deviation: over which period, from what
        if lang == "zh":
            seen += f"，{detail['period']}期初预测{detail['expected']}，实际成交{detail['actual']}"
        else:
            seen += f"; {detail['period']}: forecast at its start {detail['expected']}, booked {detail['actual']}"
    if lang == "zh":
        return f"{name}{op[0]}{expected}（看到的值：{seen}）"
    return f"{name} {op[1]} {expected} (value seen: {seen})"


def action_text(action: Mapping[str, Any], lang: str) -> str:
    labels = _ACTIONS.get(str(action.get("type")), (str(action.get("type")), str(action.get("type"))))
    verb = labels[0] if lang == "zh" else labels[1]
    target = target_label(str(action.get("target") or ""), lang)
    params = action.get("params") or {}
    if isinstance(params.get("quantity"), int | float) and not isinstance(params.get("quantity"), bool):
        target += f" ×{params['quantity']:g}"
    title = params.get("title")
    text = f"{verb}{target}" if lang == "zh" else f"{verb} {target}"
    if lang == "zh" and action.get("type") == "create_task":  # 给负责人创建任务, not 创建任务负责人
        text = f"给{target}{verb}"
    if title:
        text += f"「{title}」" if lang == "zh" else f" “{title}”"
    return text


#: what a record is called, by the first of these it has
_NAME_ATTRIBUTES = ("display_name", "name", "subject", "number")


def name_of(record: Any) -> str | None:
    """A record's name for a reason (an account's, a person's display name, a ticket's subject)."""
    for attribute in _NAME_ATTRIBUTES:
        value = getattr(record, attribute, None) if record is not None else None
        if isinstance(value, str) and value.strip():
            return value.strip()[:80]
    return None


def record_text(record_type: str, record_id: int, name: str | None, lang: str) -> str:
    """A record as a reason names it: 客户「华东医院」, or 客户 #46 when its name is not known."""
    label = _record_label(record_type, lang)
    if name:
        return f"{label}「{name}」" if lang == "zh" else f"{label} “{name}”"
    return f"{label} #{record_id}"


def why(
    *,
    rule_name: str,
    version: int,
    event_type: str,
    record_type: str,
    record_id: int,
    conditions: Sequence[Mapping[str, Any]],
    actions: Sequence[Mapping[str, Any]],
    record_name: str | None = None,
) -> tuple[str, str]:
    """The reason for a firing, in Chinese (full-width punctuation) and in English. Version 0 is
    a rule being tried before it is saved: its reason reads "试运行" / "Trial run"."""
    zh_conditions = "；".join(condition_text(c, "zh") for c in conditions) or "无附加条件"
    en_conditions = "; ".join(condition_text(c, "en") for c in conditions) or "no further conditions"
    zh_actions = "、".join(action_text(a, "zh") for a in actions)
    en_actions = ", ".join(action_text(a, "en") for a in actions)
    zh_record, en_record = (
        record_text(record_type, record_id, record_name, "zh"),
        record_text(record_type, record_id, record_name, "en"),
    )
    zh_event, en_event = _trigger_label(event_type, "zh"), _trigger_label(event_type, "en")
    if version == 0:
        zh = f"试运行：因{zh_event}对{zh_record}生效：{zh_conditions}。因此将：{zh_actions}。"
        en = f"Trial run: would fire on {en_record} after {en_event}: {en_conditions}. So: {en_actions}."
        return zh, en
    zh = f"规则「{rule_name}」（第{version}版）因{zh_event}对{zh_record}生效：{zh_conditions}。因此：{zh_actions}。"
    en = (
        f"Rule “{rule_name}” (version {version}) fired on {en_record} "
        f"after {en_event}: {en_conditions}. So: {en_actions}."
    )
    return zh, en


_NOT_FOUND = re.compile(r"^(?P<noun>[a-z_ ]+?) (?P<id>\d+) not found$")


def error_text(error: Any, lang: str) -> str | None:
    """Why an action failed, for the decision log and the undo window: the common failures in the
    reader's words (a record gone or out of reach, nobody to give a task to), anything else as raised."""
    if not error:
        return None
    text = str(error)
    found = _NOT_FOUND.match(text)
    if found is not None:
        record = record_text(found["noun"], int(found["id"]), None, lang)
        if lang == "zh":
            return f"找不到{record}（已删除或无权访问）"
        return f"{record} not found (deleted or out of reach)"
    if text.startswith("nobody to give the task to"):
        return "没有可以接收任务的人：记录没有负责人，规则作者也已停用" if lang == "zh" else text
    if text.startswith("nobody to assign to"):
        return "没有可以分配的人" if lang == "zh" else text
    return text
