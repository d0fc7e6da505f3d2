"""Picklist labels an import accepts, in English and Chinese (the glossary's words first).

A cell may hold the code (``won``), an English label (``Closed Won``) or a Chinese one (``赢单``);
all are compared after :func:`~closeloop.integrations.importing.values.normalize_label`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from closeloop.crm.enums import (
    ActivityKind,
    CompanySize,
    DecisionRole,
    Direction,
    LeadSource,
    LeadStatus,
    OrderStatus,
    Stage,
    TicketPriority,
    TicketStatus,
    Tier,
)
from closeloop.integrations.importing.values import normalize_label

LABELS: dict[type[StrEnum], dict[str, tuple[str, ...]]] = {
    Stage: {
        "prospecting": ("Prospecting", "Prospect", "New", "初步接洽", "初步沟通", "接洽", "线索"),
        "qualification": ("Qualification", "Qualified", "Engaging", "需求确认", "需求分析", "确认需求"),
        "proposal": ("Proposal", "Quote", "Quoting", "方案报价", "方案", "报价"),
        "negotiation": ("Negotiation", "Negotiating", "商务谈判", "谈判"),
        "won": ("Won", "Closed Won", "Win", "赢单", "成交", "已成交", "签约", "赢"),
        "lost": ("Lost", "Closed Lost", "Loss", "输单", "丢单", "失败", "输"),
    },
    Tier: {
        "A": ("A类", "A级", "重要客户", "A 类"),
        "B": ("B类", "B级", "普通客户"),
        "C": ("C类", "C级", "一般客户"),
    },
    CompanySize: {
        "micro": ("Micro", "微型", "微型企业"),
        "small": ("Small", "小型", "小型企业"),
        "medium": ("Medium", "Mid-size", "中型", "中型企业"),
        "large": ("Large", "大型", "大型企业"),
        "enterprise": ("Enterprise", "超大型", "集团", "特大型"),
    },
    DecisionRole: {
        "decision_maker": ("Decision maker", "决策者", "决策人", "拍板人"),
        "influencer": ("Influencer", "影响者", "影响人"),
        "user": ("User", "End user", "使用者", "用户"),
        "gatekeeper": ("Gatekeeper", "把关者", "把关人"),
        "champion": ("Champion", "Coach", "支持者", "内线", "教练"),
    },
    LeadSource: {
        "website": ("Website", "Web", "Online", "官网", "网站", "网络"),
        "referral": ("Referral", "Referred", "转介绍", "推荐", "口碑"),
        "event": ("Event", "Seminar", "Webinar", "活动", "会议活动", "研讨会"),
        "trade_show": ("Trade show", "Exhibition", "Expo", "展会", "展览会"),
        "cold_call": ("Cold call", "Outbound call", "陌拜", "电话陌拜", "陌生拜访", "电销"),
        "inbound_call": ("Inbound call", "Hotline", "来电", "呼入", "热线"),
        "advertising": ("Advertising", "Ads", "Ad", "广告", "投放", "广告投放"),
        "partner": ("Partner", "Dealer", "渠道", "合作伙伴", "经销商"),
        "social": ("Social", "Social media", "WeChat", "社交媒体", "微信", "公众号", "抖音", "小红书"),
        "tender": ("Tender", "Bid", "招标", "投标", "招投标"),
        "import": ("Import", "Imported", "导入"),
        "other": ("Other", "Others", "其他", "其它"),
    },
    LeadStatus: {
        "new": ("New", "新建", "新线索", "待分配"),
        "working": ("Working", "Contacted", "In progress", "跟进中", "处理中"),
        "qualified": ("Qualified", "已确认", "合格"),
        "converted": ("Converted", "已转化", "已转换"),
        "disqualified": ("Disqualified", "Unqualified", "无效", "不合格", "已关闭"),
    },
    ActivityKind: {
        "call": ("Call", "Phone", "Phone call", "Telephone", "电话", "通话", "电话沟通"),
        "email": ("Email", "E-mail", "Mail", "邮件", "电子邮件"),
        "chat": ("Chat", "Message", "WeChat", "IM", "微信", "消息", "聊天", "企业微信", "钉钉"),
        "visit": ("Visit", "On-site visit", "拜访", "上门", "上门拜访", "走访"),
        "meeting": ("Meeting", "Online meeting", "会议", "会面", "视频会议"),
    },
    Direction: {
        "inbound": ("Inbound", "In", "Incoming", "呼入", "来电", "收到", "客户发起"),
        "outbound": ("Outbound", "Out", "Outgoing", "呼出", "去电", "发出", "主动"),
    },
    TicketStatus: {
        "open": ("Open", "New", "待处理", "新建", "未处理"),
        "in_progress": ("In progress", "Working", "处理中", "进行中"),
        "resolved": ("Resolved", "Fixed", "已解决", "已处理"),
        "closed": ("Closed", "已关闭", "关闭"),
    },
    TicketPriority: {
        "low": ("Low", "低"),
        "normal": ("Normal", "Medium", "中", "普通", "一般"),
        "high": ("High", "高"),
        "urgent": ("Urgent", "Critical", "紧急", "加急"),
    },
    OrderStatus: {
        "pending": ("Pending", "待确认", "待处理"),
        "confirmed": ("Confirmed", "已确认", "确认"),
        "shipped": ("Shipped", "已发货", "发货"),
        "delivered": ("Delivered", "已签收", "已送达", "已交付"),
        "cancelled": ("Cancelled", "Canceled", "已取消", "取消"),
    },
}


@cache
def label_index(enum: type[StrEnum]) -> dict[str, str]:
    """Normalized code or label → code, for one picklist."""
    index: dict[str, str] = {}
    for member in enum:
        index[normalize_label(member.value)] = member.value
    for code, labels in LABELS.get(enum, {}).items():
        for label in labels:
            index.setdefault(normalize_label(label), code)
    return index


def chinese_label(enum: type[StrEnum], code: str) -> str | None:
    """The first Chinese label of a code (for previews and help), if there is one."""
    for label in LABELS.get(enum, {}).get(code, ()):
        if any("\u4e00" <= char <= "\u9fff" for char in label):
            return label
    return None


def display_label(enum: type[StrEnum], code: object, locale: str) -> str:
    """How a stored code reads in ``locale`` (the glossary's word: the first English or the first
    Chinese label); an unknown code is shown as stored."""
    text = str(code)
    if locale.startswith("en"):
        labels = LABELS.get(enum, {}).get(text)
        return labels[0] if labels else text
    return chinese_label(enum, text) or text
