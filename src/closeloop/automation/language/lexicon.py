"""The lexicon: every word or phrase the rule language knows, in Chinese and English, with its kind
and meaning. The lexer matches the longest entry; the parser works on kinds, never on spellings, so
a synonym is one more line here.

Kinds:
  filler     carries no meaning in a rule ("的", "please", "the")
  sep        ends a clause ("且", "并", "and", "then")
  conj       joins two recipients inside a clause ("和", "及")
  entity     a record kind (商机 → opportunity)
  event      an event trigger (新线索 → lead_created); value = the trigger dict
  schedule   part of a schedule (每周一 → weekly, monday); value = the partial trigger dict
  daypart    早上 / 下午 (moves the clock to the afternoon, or sets time_of_day)
  window     a reporting window (上周 → last_week)
  metric     a measure or field (金额 → amount); attrs in MetricInfo
  value      a categorical condition (重点客户 → account.is_key_account == true)
  stage      a pipeline stage key
  change_to  "变为 / moves to": the next stage or value is where the record goes
  change_from "从 / from"
  equals     "为 / 是 / is": the next value is what the field equals
  cmp        a comparison word; attrs: position pre/post
  within     以内 / 内 / within
  unit       a unit of a quantity (天 → day)
  currency   元 / $ / USD
  plus       "+" in "30+"
  percent_of 百分之
  article    a / an / 一个 (a number that only counts the object)
  streak     连续 / in a row / consecutive
  last       最近 / last
  due_marker "due in" / "后到期" / "内完成"
  due_today  当天到期 / due today
  verb       an action; value = action type (notify, escalate, ...), attrs may add params
  weak_verb  a verb that only says "do" (创建, send, 推送): the noun decides the action
  task       任务 / task
  task_kind  what the task is about (回访 → title 回访)
  summary    沟通摘要 / summary
  content    what a notification lists (销售名单 → list_of_reps)
  purpose    介入 / 跟进 (why someone is told)
  target     a recipient; value = owner / manager / role:x / team:x / self
  vague      a word that gives no threshold or recipient; the parser asks instead of guessing
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    value: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a metric means for the parser.

    ``entity_relative``: the field belongs to whichever record the clause is about (金额 → order.amount).
    ``negated``: the measure grows while something does NOT happen (days without an order, hours
    unassigned) — "within N" and a bare duration then mean ``>=``.
    ``streakable``: counted in a row (3 unreplied emails).
    ``categorical``: compared with ``==`` to a value.
    """

    name: str
    entity_relative: bool = False
    negated: bool = False
    streakable: bool = False
    categorical: bool = False
    default_unit: str | None = None


METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        MetricInfo("amount", entity_relative=True, default_unit="CNY"),
        MetricInfo("opportunity.discount", default_unit="percent"),
        MetricInfo("stage_duration", negated=True, default_unit="day"),
        MetricInfo("time_since_last_contact", negated=True, default_unit="day"),
        MetricInfo("time_since_last_order", negated=True, default_unit="day"),
        MetricInfo("time_since_last_visit", negated=True, default_unit="day"),
        MetricInfo("time_since_quote_sent", negated=True, default_unit="day"),
        MetricInfo("contract.time_to_expiry", default_unit="day"),
        MetricInfo("ticket.open_duration", negated=True, default_unit="hour"),
        MetricInfo("ticket.unresponded_duration", negated=True, default_unit="hour"),
        MetricInfo("lead.unassigned_duration", negated=True, default_unit="hour"),
        MetricInfo("order.payment_overdue_duration", negated=True, default_unit="day"),
        MetricInfo("email_unreplied", streakable=True, default_unit="count"),
        MetricInfo("call_unanswered", streakable=True, default_unit="count"),
        MetricInfo("quota_missed", streakable=True, default_unit="month"),
        MetricInfo("forecast_deviation", default_unit="percent"),
        MetricInfo("visit_count", default_unit="count"),
        MetricInfo("lead.score", default_unit=None),
        MetricInfo("account.annual_purchase", default_unit="CNY"),
        MetricInfo("account.complaint_count", default_unit="count"),
        MetricInfo("account.ticket_count", default_unit="count"),
        MetricInfo("account.tier", categorical=True),
        MetricInfo("account.industry", categorical=True),
        MetricInfo("region", entity_relative=True, categorical=True),
        MetricInfo("opportunity.stage", categorical=True),
    )
}

#: Metrics whose value is a state that accrues over time: a rule using them is checked periodically.
DURATION_METRICS = frozenset(name for name, info in METRICS.items() if info.negated) | {"contract.time_to_expiry"}

# Phrases are lower-case; the lexer lower-cases the text (offsets are kept).
_ENTRIES: list[tuple[tuple[str, ...], Entry]] = []


def _add(words: str | tuple[str, ...], token_kind: str, value: Any = None, **attrs: Any) -> None:
    phrases = (words,) if isinstance(words, str) else words
    _ADD_LIST.append((phrases, Entry(token_kind, value, dict(attrs))))


_ADD_LIST = _ENTRIES

# --- fillers and structure -------------------------------------------------------------------
_add(
    (
        "的",
        "了",
        "时",
        "的时候",
        "之时",
        "当",
        "如果",
        "若",
        "假如",
        "一旦",
        "只要",
        "则",
        "就",
        "请",
        "要",
        "需",
        "需要",
        "须",
        "必须",
        "应",
        "应该",
        "自动",
        "自动地",
        "立刻",
        "立即",
        "马上",
        "及时",
        "第一时间",
        "一下",
        "把",
        "将",
        "给",
        "对",
        "让",
        "由",
        "被",
        "在",
        "还",
        "还是",
        "仍",
        "仍然",
        "都",
        "也",
        "个",
        "条",
        "项",
        "名",
        "位",
        "封",
        "做",
        "进行",
        "触发",
        "发起",
        "其",
        "他",
        "她",
        "它",
        "他们",
        "他的",
        "她的",
        "的话",
        "那么",
        "该",
        "此",
        "这个",
        "那个",
        "之后",
        "以后",
        "后",
        "阶段",
        "记录",
        "处于",
        "是否",
        "来自",
        "一条",
        "一个",
        "一项",
        "一份",
        "份",
        "各",
        "各个",
        "所有",
        "任何",
        "凡是",
        "且是",
        "已经",
        "已",
        "到",
        "向",
        "于",
        "经",
        "有",
        "过",
        "都是",
        "时候",
        "需经",
        "要求",
        "那些",
        "这些",
        "哪些",
        "相关",
        "对应",
        "就要",
        "一律",
        "统一",
        "会",
        "能",
    ),
    "filler",
)
_add(
    (
        "a",
        "an",
        "the",
        "it",
        "its",
        "their",
        "them",
        "they",
        "his",
        "her",
        "our",
        "we",
        "us",
        "to",
        "for",
        "of",
        "in",
        "on",
        "at",
        "by",
        "with",
        "when",
        "whenever",
        "if",
        "once",
        "after",
        "any",
        "each",
        "is",
        "are",
        "was",
        "be",
        "been",
        "has",
        "have",
        "had",
        "please",
        "automatically",
        "immediately",
        "right away",
        "that",
        "which",
        "who",
        "this",
        "so",
        "as",
        "also",
        "all",
        "still",
        "know",
        "about",
        "someone",
        "should",
        "must",
        "will",
        "gets",
        "get",
        "been",
        "being",
        "its",
        "there",
        "than",
        "do",
        "does",
        "whose",
        "where",
        "into",
        "needs",
        "need",
        "require",
        "requires",
        "required",
        "must be",
        "needed",
        "goes",
        "go",
        "stays",
        "stay",
        "remains",
        "straight away",
        "promptly",
        "auto",
        "an",
        "me know",
    ),
    "filler",
)
_add(
    (
        "，",
        ",",
        "。",
        ".",
        "；",
        ";",
        "、",
        "且",
        "并",
        "并且",
        "而且",
        "同时",
        "然后",
        "再",
        "另外",
        "此外",
        "and",
        "then",
        "also,",
        "!",
        "！",
        "\n",
    ),
    "sep",
)
_add(("和", "及", "以及", "与", "跟", "或", "或者", "&", "/", "plus", "or", "as well as", "both"), "conj")
_add(("“", "”", '"', "'", "‘", "’", "「", "」", "《", "》", "(", ")", "（", "）"), "filler")

# --- records ---------------------------------------------------------------------------------
_add(("商机", "机会", "销售机会", "opportunity", "opportunities", "deal", "deals"), "entity", "opportunity")
_add(
    ("客户", "客户公司", "account", "accounts", "customer", "customers", "client", "clients", "company"),
    "entity",
    "account",
)
_add(("线索", "潜在客户", "lead", "leads", "prospect", "prospects"), "entity", "lead")
_add(("订单", "order", "orders"), "entity", "order")
_add(
    ("工单", "服务工单", "售后工单", "ticket", "tickets", "support ticket", "support tickets", "case"),
    "entity",
    "ticket",
)
_add(("合同", "contract", "contracts"), "entity", "contract")
_add(("邮件", "客户邮件", "来往邮件"), "entity", "email")
_add(("报价", "报价单", "quote", "quotes", "quotation"), "entity", "quote")

# --- event triggers --------------------------------------------------------------------------
_add(
    (
        "新线索",
        "新的线索",
        "新增线索",
        "新建线索",
        "线索创建",
        "创建线索",
        "线索进来",
        "来了新线索",
        "新进线索",
        "new lead",
        "new leads",
        "lead is created",
        "lead gets created",
        "lead comes in",
        "lead arrives",
        "lead created",
    ),
    "event",
    {"event": "lead_created"},
)
_add(("创建后", "进来后", "进入系统后", "comes in", "come in", "arrives", "is created", "gets created"), "filler")
_add(
    (
        "来邮件",
        "来了邮件",
        "发来邮件",
        "收到邮件",
        "收到客户邮件",
        "收到来信",
        "来信",
        "发邮件过来",
        "回邮件",
        "email is received",
        "email comes in",
        "receives an email",
        "receive an email",
        "email received",
        "sends an email",
        "sends us an email",
        "emails us",
        "new email",
        "inbound email",
    ),
    "event",
    {"event": "email_received"},
)
_add(
    (
        "下单时",
        "新订单",
        "订单创建",
        "创建订单",
        "新建订单",
        "提交订单",
        "下了单",
        "下单",
        "order is placed",
        "places an order",
        "place an order",
        "order placed",
        "new order",
        "order comes in",
    ),
    "event",
    {"event": "order_placed"},
)
_add(
    (
        "新工单",
        "工单创建",
        "创建工单",
        "新建工单",
        "提交工单",
        "开工单",
        "ticket is opened",
        "ticket is created",
        "new ticket",
        "opens a ticket",
        "ticket opened",
    ),
    "event",
    {"event": "ticket_opened"},
)
_add(
    (
        "拜访记录提交",
        "提交拜访记录",
        "拜访记录",
        "录入拜访",
        "拜访结束",
        "拜访完成",
        "拜访后",
        "完成拜访",
        "visit is logged",
        "visit is recorded",
        "visit report is submitted",
        "after a visit",
        "logs a visit",
        "visit logged",
        "visit report",
    ),
    "event",
    {"event": "activity_logged", "activity_type": "visit"},
)
_add(
    ("通话记录", "电话记录", "录入电话", "call is logged", "logs a call", "call logged"),
    "event",
    {"event": "activity_logged", "activity_type": "call"},
)
_add(
    ("演示完成", "演示后", "demo is logged", "after a demo", "demo logged"),
    "event",
    {"event": "activity_logged", "activity_type": "demo"},
)
_add(("提交后", "submitted", "is submitted", "is logged"), "filler")

# --- changes ---------------------------------------------------------------------------------
_add(
    (
        "变为",
        "变成",
        "变更为",
        "改为",
        "调整为",
        "调整到",
        "更新为",
        "升为",
        "升级为",
        "降为",
        "降级为",
        "转为",
        "进入",
        "推进到",
        "推进至",
        "到达",
        "移到",
        "移至",
        "变更到",
        "moves to",
        "move to",
        "moved to",
        "is moved to",
        "changes to",
        "changed to",
        "goes to",
        "enters",
        "reaches",
        "becomes",
        "turns",
        "is set to",
        "advances to",
        "to stage",
        "changes",
        "changed",
        "is changed",
        "gets changed",
        "change",
        "is upgraded",
        "is downgraded",
    ),
    "change_to",
)
_add(("从", "由", "from"), "change_from")
_add(("等于", "是", "为", "属于", "equals", "="), "equals")

# --- schedules -------------------------------------------------------------------------------
_WEEKDAYS = {
    "monday": ("一", "mon"),
    "tuesday": ("二", "tue"),
    "wednesday": ("三", "wed"),
    "thursday": ("四", "thu"),
    "friday": ("五", "fri"),
    "saturday": ("六", "sat"),
    "sunday": ("日", "sun"),
}
for _day, (_cn, _abbr) in _WEEKDAYS.items():
    _add(
        (
            f"每周{_cn}",
            f"每个周{_cn}",
            f"每星期{_cn}",
            f"每个星期{_cn}",
            f"每礼拜{_cn}",
            f"every {_day}",
            f"each {_day}",
            f"{_day}s",
            f"every {_abbr}",
        ),
        "schedule",
        {"frequency": "weekly", "day": _day},
    )
    _add((f"周{_cn}", f"星期{_cn}", f"礼拜{_cn}", _day, f"on {_day}", f"on {_day}s"), "schedule", {"day": _day})
_add(("周日", "星期天", "礼拜天", "每周日", "每个周日"), "schedule", {"day": "sunday"})
_add(
    (
        "每天",
        "每日",
        "天天",
        "每一天",
        "daily",
        "every day",
        "each day",
        "every morning",
        "every evening",
        "每晚",
        "每天早上",
        "每早",
    ),
    "schedule",
    {"frequency": "daily"},
)
_add(("每周", "每个星期", "每星期", "每个周", "weekly", "every week", "each week"), "schedule", {"frequency": "weekly"})
_add(("每月", "每个月", "monthly", "every month", "each month"), "schedule", {"frequency": "monthly"})
_add(("每季度", "每个季度", "quarterly", "every quarter", "each quarter"), "schedule", {"frequency": "quarterly"})
_add(("每小时", "每个小时", "hourly", "every hour", "each hour"), "schedule", {"frequency": "hourly"})
_add(
    (
        "每个工作日",
        "每工作日",
        "工作日",
        "every weekday",
        "each weekday",
        "on weekdays",
        "weekdays",
        "every working day",
        "every business day",
    ),
    "schedule",
    {"frequency": "daily", "days": "weekdays"},
)
_add(
    (
        "每月最后一天",
        "每个月最后一天",
        "月底",
        "每月底",
        "月末",
        "每月末",
        "last day of the month",
        "last day of each month",
        "last day of every month",
        "end of the month",
        "end of each month",
    ),
    "schedule",
    {"frequency": "monthly", "day": "last_day"},
)
_add(("早上", "上午", "早晨", "清晨", "morning", "in the morning"), "daypart", "morning")
_add(("下午", "afternoon", "in the afternoon"), "daypart", "afternoon")
_add(("晚上", "傍晚", "evening", "in the evening", "tonight"), "daypart", "evening")
_add(("中午", "noon", "at noon", "midday"), "daypart", "noon")

# --- windows ---------------------------------------------------------------------------------
_add(("上周", "上一周", "上个星期", "上星期", "last week", "previous week", "the past week"), "window", "last_week")
_add(("本周", "这周", "这一周", "this week"), "window", "this_week")
_add(("本月", "这个月", "当月", "this month"), "window", "this_month")
_add(("本季度", "这个季度", "当季", "this quarter"), "window", "this_quarter")

# --- metrics ---------------------------------------------------------------------------------
_add(
    ("金额", "总额", "总金额", "合同额", "金额为", "价值", "amount", "value", "worth", "deal size", "size", "total"),
    "metric",
    "amount",
)
_add(("折扣", "折扣率", "discount", "discount rate"), "metric", "opportunity.discount")
_add(
    (
        "停留",
        "停滞",
        "卡在",
        "待在",
        "滞留",
        "一直在",
        "一直停在",
        "停在",
        "stays in",
        "stay in",
        "stays at",
        "stuck in",
        "is stuck in",
        "sits in",
        "remains in",
        "has been in",
        "has sat in",
        "sat in",
        "sitting in",
        "in stage",
        "stage for",
    ),
    "metric",
    "stage_duration",
)
_add(
    (
        "最近一次沟通",
        "最后一次沟通",
        "上次沟通",
        "距上次沟通",
        "距离上次沟通",
        "最近一次联系",
        "最后一次联系",
        "上次联系",
        "没有联系",
        "没联系",
        "未联系",
        "没有沟通",
        "没沟通",
        "未沟通",
        "没有跟进",
        "没跟进",
        "未跟进",
        "无跟进",
        "无沟通",
        "无联系",
        "失联",
        "没有互动",
        "未互动",
        "no contact",
        "no contact for",
        "not been contacted",
        "hasn't been contacted",
        "has not been contacted",
        "without contact",
        "without any contact",
        "since the last contact",
        "since last contact",
        "last contact",
        "no follow-up",
        "not followed up",
        "hasn't been followed up",
        "no activity",
        "without a follow-up",
        "not been touched",
        "no touch",
    ),
    "metric",
    "time_since_last_contact",
)
_add(
    (
        "没有下单",
        "没下单",
        "未下单",
        "没下过单",
        "没有下过单",
        "都没下过单",
        "没有订单",
        "无订单",
        "未复购",
        "没有复购",
        "没复购",
        "没有再下单",
        "没再下单",
        "has not ordered",
        "hasn't ordered",
        "not ordered",
        "no order",
        "no orders",
        "without ordering",
        "without an order",
        "without any order",
        "without placing an order",
        "since the last order",
        "hasn't placed an order",
        "has not placed an order",
        "not placed an order",
        "hasn't bought",
        "has not bought",
        "no purchase",
        "no purchases",
        "not repurchased",
    ),
    "metric",
    "time_since_last_order",
)
_add(
    (
        "没有拜访",
        "没拜访",
        "未拜访",
        "没去拜访",
        "未上门",
        "no visit",
        "no visits",
        "not visited",
        "hasn't been visited",
        "has not been visited",
        "without a visit",
        "since the last visit",
    ),
    "metric",
    "time_since_last_visit",
)
_add(
    (
        "报价发出",
        "报价发出后",
        "发出报价",
        "发送报价后",
        "quote was sent",
        "quote is sent",
        "since the quote",
        "quote sent",
    ),
    "metric",
    "time_since_quote_sent",
)
_add(
    (
        "到期前",
        "合同到期前",
        "合同到期",
        "到期",
        "距到期",
        "距离到期",
        "expires",
        "expiry",
        "expiring",
        "expires in",
        "before expiry",
        "before it expires",
        "to expiry",
        "until expiry",
    ),
    "metric",
    "contract.time_to_expiry",
)
_add(
    (
        "工单打开",
        "打开",
        "未关闭",
        "还没关闭",
        "没关闭",
        "没有关闭",
        "仍未关闭",
        "未解决",
        "没解决",
        "没有解决",
        "还没解决",
        "处理中",
        "stays open",
        "stay open",
        "open",
        "is open",
        "remains open",
        "been open",
        "unresolved",
        "not closed",
        "not resolved",
        "still open",
    ),
    "metric",
    "ticket.open_duration",
)
_add(
    (
        "未响应",
        "没响应",
        "没有响应",
        "无人响应",
        "无响应",
        "未回应",
        "没人处理",
        "无人处理",
        "no response",
        "not responded",
        "unanswered",
        "without a response",
        "no one responds",
        "nobody responds",
        "not been answered",
    ),
    "metric",
    "ticket.unresponded_duration",
)
_add(
    (
        "未分配",
        "没分配",
        "没有分配",
        "没人认领",
        "无人认领",
        "未认领",
        "没有认领",
        "没人跟",
        "没人接",
        "无人跟进",
        "没人跟进",
        "unassigned",
        "not assigned",
        "is unassigned",
        "stays unassigned",
        "remains unassigned",
        "has no owner",
        "not claimed",
        "unclaimed",
        "nobody claims",
        "no one claims",
        "nobody picks it up",
        "no one picks it up",
    ),
    "metric",
    "lead.unassigned_duration",
)
_add(
    ("回款逾期", "付款逾期", "逾期未付", "逾期", "payment overdue", "payment is overdue", "overdue"),
    "metric",
    "order.payment_overdue_duration",
)
_add(
    (
        "未回复邮件",
        "邮件未回复",
        "没有回复邮件",
        "没回复邮件",
        "没回邮件",
        "未回邮件",
        "不回邮件",
        "邮件没有回复",
        "邮件没回",
        "邮件不回",
        "未回复",
        "没回复",
        "没有回复",
        "不回复",
        "unreplied emails",
        "unanswered emails",
        "unreplied email",
        "emails unanswered",
        "emails unreplied",
        "emails with no reply",
        "emails without a reply",
        "emails without reply",
        "with no reply",
        "no reply",
        "hasn't replied to",
        "has not replied to",
        "have not replied to",
        "haven't replied to",
        "not replied to",
        "didn't reply to",
        "did not reply to",
        "hasn't replied",
        "has not replied",
        "ignored",
        "ignores",
        "ignore",
        "has ignored",
    ),
    "metric",
    "email_unreplied",
)
_add(
    (
        "电话未接通",
        "未接通",
        "电话没人接",
        "没接电话",
        "未接电话",
        "电话不接",
        "unanswered calls",
        "calls unanswered",
        "missed calls",
        "calls with no answer",
        "calls went unanswered",
    ),
    "metric",
    "call_unanswered",
)
_add(
    (
        "未完成业绩",
        "没完成业绩",
        "业绩未达标",
        "未达标",
        "没达标",
        "未完成指标",
        "missed quota",
        "misses quota",
        "missed their quota",
        "quota missed",
        "below quota",
    ),
    "metric",
    "quota_missed",
)
_add(
    (
        "预测偏差",
        "预测偏差率",
        "预测误差",
        "forecast deviation",
        "forecast error",
        "forecast miss",
        "forecast accuracy gap",
    ),
    "metric",
    "forecast_deviation",
)
_add(("拜访次数", "拜访数", "number of visits", "visit count", "visits"), "metric", "visit_count")
_add(("线索评分", "评分", "线索分", "分数", "lead score", "score"), "metric", "lead.score")
_add(
    ("年采购额", "年度采购额", "年采购金额", "annual purchase", "annual purchases", "annual spend"),
    "metric",
    "account.annual_purchase",
)
_add(
    ("投诉次数", "投诉数", "complaints", "complaint count", "number of complaints"), "metric", "account.complaint_count"
)
_add(("工单数", "工单数量", "ticket count", "number of tickets"), "metric", "account.ticket_count")
_add(
    ("客户等级", "等级", "客户级别", "级别", "tier", "account tier", "customer tier", "grade"), "metric", "account.tier"
)
_add(("行业", "所属行业", "industry", "sector"), "metric", "account.industry")
_add(("区域", "大区", "地区", "region", "area"), "metric", "region")
_add(("商机阶段", "阶段为", "stage"), "metric", "opportunity.stage")

# --- categorical values ----------------------------------------------------------------------
for _tier in "abcd":
    _up = _tier.upper()
    _add(
        (
            f"{_tier}类",
            f"{_tier}级",
            f"{_tier}类客户",
            f"{_tier}级客户",
            f"{_tier}等",
            f"tier {_tier}",
            f"tier-{_tier}",
            f"{_tier}-tier",
            f"{_tier}-level",
            f"tier {_tier} accounts",
            f"{_tier}-tier accounts",
        ),
        "value",
        ("account.tier", _up),
    )
_INDUSTRIES = {
    "医疗": ("医疗", "医疗行业", "医疗健康", "医院"),
    "医疗器械": ("医疗器械",),
    "制造": ("制造", "制造业"),
    "教育": ("教育", "教育行业"),
    "金融": ("金融", "金融行业", "银行"),
    "零售": ("零售", "零售业"),
    "互联网": ("互联网",),
    "政府": ("政府", "政府机构", "政企"),
    "能源": ("能源",),
    "汽车": ("汽车",),
    "房地产": ("房地产", "地产"),
    "物流": ("物流",),
    "快消": ("快消", "快消品"),
    "healthcare": ("healthcare", "health care", "medical"),
    "manufacturing": ("manufacturing",),
    "education": ("education",),
    "finance": ("financial services", "banking"),
    "retail": ("retail",),
    "government": ("government", "public sector"),
    "energy": ("energy",),
    "automotive": ("automotive",),
    "logistics": ("logistics",),
    "technology": ("technology", "tech", "software"),
}
for _industry, _words in _INDUSTRIES.items():
    _add(_words, "value", ("account.industry", _industry))
for _region in ("华东", "华南", "华北", "华中", "西南", "西北", "东北"):
    _add((_region, f"{_region}区", f"{_region}地区", f"{_region}大区", f"{_region}区域"), "value", ("region", _region))
for _region in ("east", "south", "north", "central", "southwest", "northwest", "northeast", "west"):
    _add((f"{_region} region", f"{_region} china", f"the {_region}"), "value", ("region", _region.capitalize()))
_add(
    ("重点客户", "关键客户", "战略客户", "key account", "key accounts", "strategic account", "strategic accounts"),
    "value",
    ("account.is_key_account", True),
)
_add(
    ("vip客户", "vip", "vip customer", "vip customers", "vip account", "vip accounts"),
    "value",
    ("account.is_vip", True),
)
_add(
    (
        "成交客户",
        "已成交客户",
        "赢单客户",
        "老客户",
        "won account",
        "won accounts",
        "existing customer",
        "existing customers",
        "won customer",
        "won customers",
    ),
    "value",
    ("account.is_customer", True),
)
_add(
    (
        "官网表单",
        "网站表单",
        "官网",
        "官网留言",
        "website form",
        "web form",
        "website",
        "the website form",
        "contact form",
        "landing page",
    ),
    "value",
    ("lead.source", "website_form"),
)
_add(("展会", "trade show", "trade fair", "exhibition"), "value", ("lead.source", "trade_show"))
_add(("转介绍", "老客户推荐", "referral", "referrals"), "value", ("lead.source", "referral"))
_add(("高优先级", "紧急", "high priority", "high-priority", "urgent"), "value", ("ticket.priority", "high"))
_add(("投诉", "投诉工单", "complaint", "complaint ticket"), "value", ("ticket.type", "投诉"))

_STAGES = {
    "prospecting": ("初步接洽", "接洽", "prospecting"),
    "qualification": ("需求确认", "qualification", "qualified", "qualifying"),
    "proposal": ("方案报价", "方案", "提案", "proposal"),
    "quote": ("报价阶段", "quote stage"),
    "negotiation": ("商务谈判", "谈判", "negotiation", "negotiating", "negotiations"),
    "closed_won": ("赢单", "成交", "已成交", "签约", "closed won", "closed-won", "won"),
    "closed_lost": ("输单", "丢单", "失败", "closed lost", "closed-lost", "lost"),
}
for _stage, _words in _STAGES.items():
    _add(_words, "stage", _stage)

# --- comparisons and quantities --------------------------------------------------------------
_add(
    (
        "超过",
        "超出",
        "大于",
        "多于",
        "高于",
        "长于",
        "已超过",
        "超",
        "过了",
        "above",
        "over",
        "more than",
        "greater than",
        "exceeds",
        "exceeding",
        "exceed",
        "longer than",
        "higher than",
        "bigger than",
        "larger than",
        "past",
        "beyond",
    ),
    "cmp",
    ">",
    position="pre",
)
_add(
    (
        "大于等于",
        "不少于",
        "不低于",
        "不小于",
        "至少",
        "达到",
        "满",
        "起码",
        "at least",
        "no less than",
        "not less than",
        "minimum of",
        "a minimum of",
    ),
    "cmp",
    ">=",
    position="pre",
)
_add(
    (
        "少于",
        "低于",
        "小于",
        "不足",
        "不到",
        "短于",
        "未满",
        "less than",
        "fewer than",
        "under",
        "below",
        "lower than",
        "shorter than",
    ),
    "cmp",
    "<",
    position="pre",
)
_add(
    (
        "不超过",
        "不高于",
        "不大于",
        "至多",
        "最多",
        "小于等于",
        "at most",
        "no more than",
        "not more than",
        "up to",
        "a maximum of",
    ),
    "cmp",
    "<=",
    position="pre",
)
_add(
    ("以上", "及以上", "或以上", "以上的", "or more", "or above", "or longer", "and above", "and up"),
    "cmp",
    ">=",
    position="post",
)
_add(("以下", "及以下", "或以下", "or less", "or fewer", "or below", "and below"), "cmp", "<=", position="post")
_add(("以内", "之内", "内", "within", "in under"), "within")
_add(("+",), "plus")
_add(("a day", "one day", "一天"), "unit1", "day")
_add(("a week", "one week"), "unit1", "week")
_add(("an hour", "one hour"), "unit1", "hour")
_add(("a month", "one month"), "unit1", "month")
_add(("百分之",), "percent_of")
_add(("天", "日", "自然日", "day", "days", "calendar days", "calendar day", "-day", "d"), "unit", "day")
_add(
    ("工作日", "个工作日", "business day", "business days", "working day", "working days", "workdays"),
    "unit",
    "business_day",
)
_add(("周", "个周", "星期", "个星期", "礼拜", "个礼拜", "week", "weeks", "-week", "wk", "wks"), "unit", "week")
_add(("小时", "个小时", "钟头", "个钟头", "h", "hr", "hrs", "hour", "hours", "-hour"), "unit", "hour")
_add(("分钟", "min", "mins", "minute", "minutes"), "unit", "minute")
_add(("月", "个月", "month", "months", "-month"), "unit", "month")
_add(("年", "year", "years"), "unit", "year")
_add(
    (
        "次",
        "回",
        "遍",
        "times",
        "time",
        "emails",
        "email",
        "封邮件",
        "calls",
        "call",
        "次电话",
        "个电话",
        "interactions",
        "messages",
        "months in a row",
    ),
    "unit",
    "count",
)
_add(("分", "point", "points", "pts"), "unit", "point")
_add(("%", "percent", "per cent", "个百分点", "个点"), "unit", "percent")
_add(("元", "块", "块钱", "人民币", "rmb", "cny", "yuan", "元人民币"), "currency", "CNY")
_add(("美元", "美金", "usd", "dollars", "dollar", "us$"), "currency", "USD")
_add(("连续", "连着", "接连", "in a row", "consecutive", "consecutively", "straight", "running"), "streak")
_add(("最近", "最后", "近", "last", "latest", "most recent", "recent", "past"), "last")
_add(
    (
        "due in",
        "due within",
        "due",
        "后到期",
        "内完成",
        "内到期",
        "之内完成",
        "后截止",
        "截止",
        "完成期限",
        "期限",
        "内处理完",
        "内搞定",
        "later",
        "from now",
    ),
    "due_marker",
)
_add(
    (
        "当天到期",
        "今天到期",
        "当日到期",
        "今天内",
        "当天完成",
        "当天",
        "今天",
        "due today",
        "due the same day",
        "by end of day",
        "same day",
        "today",
    ),
    "due_today",
)

# --- actions ---------------------------------------------------------------------------------
_add(
    (
        "提醒",
        "通知",
        "告知",
        "告诉",
        "抄送",
        "发给",
        "发送给",
        "知会",
        "提示",
        "预警",
        "报警",
        "通报",
        "推给",
        "推送给",
        "发消息给",
        "发邮件给",
        "提醒一下",
        "通知一下",
        "alert",
        "alerts",
        "notify",
        "notifies",
        "tell",
        "inform",
        "let",
        "remind",
        "ping",
        "message",
        "cc",
        "warn",
        "flag to",
        "send",
        "sends",
        "notification to",
        "a notification to",
        "a reminder to",
        "reminder",
    ),
    "verb",
    "notify",
)
_add(
    ("升级", "升级给", "上报", "上报给", "escalate", "escalates", "escalated", "escalate to", "escalation"),
    "verb",
    "escalate",
)
_add(
    (
        "审批",
        "批准",
        "审核",
        "核准",
        "签字",
        "签批",
        "approval",
        "approve",
        "approves",
        "approved",
        "sign-off",
        "sign off",
        "signs off",
        "sign-off from",
    ),
    "verb",
    "require_approval",
)
_add(
    ("信用审核", "信用审批", "信用评估", "credit review", "credit check", "credit approval"),
    "verb",
    "require_approval",
    approval_kind="credit_review",
)
_add(("折扣审批", "discount approval"), "verb", "require_approval", approval_kind="discount")
_add(
    (
        "分配给",
        "分给",
        "指派给",
        "派给",
        "转给",
        "分配",
        "指派",
        "assign",
        "assigns",
        "assigned to",
        "route",
        "route to",
        "routed to",
        "hand to",
        "hand it to",
    ),
    "verb",
    "assign",
)
_add(("webhook", "web hook", "回调", "callback", "hook"), "verb", "webhook")
_add(
    (
        "创建",
        "新建",
        "建",
        "生成",
        "建立",
        "安排",
        "添加",
        "加一个",
        "推送",
        "推",
        "发送",
        "发",
        "调用",
        "create",
        "creates",
        "add",
        "open a",
        "schedule",
        "set up",
        "make",
        "push",
        "post",
        "call out to",
        "fire",
        "trigger",
        "triggers",
        "raise",
        "generate",
    ),
    "weak_verb",
)
_add(("任务", "待办", "待办事项", "task", "tasks", "to-do", "todo"), "task")
_add(("跟进任务",), "task_kind", "跟进", task=True)
_add(("follow-up task", "follow up task"), "task_kind", "follow-up", task=True)
_add(("回访",), "task_kind", None)
_add(("回复", "回复邮件", "reply", "reply to the email"), "task_kind", None)
_add(("复购跟进", "复购回访", "复购", "repurchase follow-up", "repurchase follow up", "repurchase"), "task_kind", None)
_add(("电话回访", "打电话", "follow-up call", "follow up call", "call back", "callback call"), "task_kind", None)
_add(("续约", "续约跟进", "renewal", "renewal follow-up"), "task_kind", None)
_add(("催款", "回款跟进", "collection", "payment follow-up"), "task_kind", None)
_add(("准备合同", "准备合同初稿", "prepare the contract", "contract draft"), "task_kind", None)
_add(
    (
        "沟通摘要",
        "历史沟通摘要",
        "沟通历史摘要",
        "沟通记录摘要",
        "互动摘要",
        "跟进摘要",
        "沟通历史",
        "历史沟通",
        "摘要",
        "summary",
        "a summary",
        "history summary",
        "communication summary",
        "summary of the history",
        "interaction summary",
        "summary of the communication history",
        "summary of the last",
        "summary of recent interactions",
    ),
    "summary",
)
_add(
    ("销售名单", "销售人员名单", "人员名单", "list of reps", "list of the reps", "rep list", "list of salespeople"),
    "content",
    "list_of_reps",
)
_add(("名单", "清单", "列表", "list"), "content", "record_list")
_add(
    (
        "客户名单",
        "客户列表",
        "list of their accounts",
        "list of accounts",
        "account list",
        "list of accounts",
        "list of their customers",
        "list of customers",
    ),
    "content",
    "account_list",
)
_add(
    ("介入", "介入处理", "出面", "跟进处理", "step in", "to step in", "intervene", "to intervene", "take over"),
    "purpose",
    "intervene",
)
_add(("跟进", "跟进一下", "follow up", "follow-up", "to follow up", "followup"), "purpose", "follow_up")

# --- recipients ------------------------------------------------------------------------------
_add(
    (
        "负责人",
        "负责销售",
        "销售负责人",
        "商机负责人",
        "线索负责人",
        "跟进人",
        "跟进销售",
        "所属销售",
        "销售代表",
        "销售",
        "负责的销售",
        "业务员",
        "owner",
        "the owner",
        "record owner",
        "deal owner",
        "opportunity owner",
        "rep",
        "the rep",
        "each rep",
        "every rep",
        "reps",
        "sales rep",
        "the sales rep",
        "salesperson",
        "assigned rep",
        "owning rep",
        "its owner",
        "their owner",
    ),
    "target",
    "owner",
)
_add(
    (
        "客户负责人",
        "客户经理",
        "客户的负责人",
        "客户所属销售",
        "account owner",
        "the account owner",
        "account manager",
        "the account manager",
        "customer owner",
    ),
    "target",
    "account_owner",
)
_add(
    (
        "主管",
        "上级",
        "直属上级",
        "领导",
        "直属领导",
        "经理",
        "他的经理",
        "她的经理",
        "其经理",
        "负责人的经理",
        "他的主管",
        "其主管",
        "上司",
        "manager",
        "their manager",
        "the manager",
        "his manager",
        "her manager",
        "the owner's manager",
        "owner's manager",
        "line manager",
        "direct manager",
        "supervisor",
        "their supervisor",
        "the rep's manager",
    ),
    "target",
    "manager",
)
_add(("销售主管", "销售经理", "sales manager", "the sales manager"), "target", "manager_or_role")
_add(
    ("区域总监", "大区总监", "regional director", "the regional director", "region director"),
    "target",
    "role:regional_director",
)
_add(
    (
        "区域经理",
        "大区经理",
        "各区域经理",
        "各大区经理",
        "regional manager",
        "regional managers",
        "the regional manager",
        "area manager",
    ),
    "target",
    "role:regional_manager",
)
_add(("销售总监", "sales director", "the sales director", "director of sales"), "target", "role:sales_director")
_add(
    (
        "客服经理",
        "客服主管",
        "售后经理",
        "服务经理",
        "support manager",
        "the support manager",
        "customer service manager",
        "service manager",
    ),
    "target",
    "role:support_manager",
)
_add(
    (
        "财务",
        "财务部",
        "财务部门",
        "财务团队",
        "finance",
        "finance team",
        "the finance team",
        "finance department",
        "accounting",
    ),
    "target",
    "role:finance",
)
_add(("财务总监", "finance director", "the finance director", "head of finance"), "target", "role:finance_director")
_add(("cfo", "首席财务官"), "target", "role:cfo")
_add(
    ("大客户部经理", "大客户经理", "大客户部", "key account manager", "key account management"),
    "target",
    "role:key_account_manager",
)
_add(
    ("销售运营", "销售运营团队", "销售运营部", "sales ops", "sales operations", "salesops", "revops"),
    "target",
    "role:sales_ops",
)
_add(("销售副总裁", "销售vp", "销售副总", "sales vp", "vp of sales", "vp sales"), "target", "role:sales_vp")
_add(
    ("组长", "团队负责人", "团队主管", "team lead", "the team lead", "team leader", "team's lead"),
    "target",
    "role:team_lead",
)
_add(("法务", "法务部", "legal", "the legal team"), "target", "role:legal")
_add(("售前", "售前工程师", "presales", "pre-sales", "solutions engineer"), "target", "role:presales")
_add(("inbound team", "inbound", "inbound sales", "市场线索组", "inbound团队"), "target", "team:inbound")
_add(("电销团队", "电销组", "电销", "inside sales", "inside sales team"), "target", "team:inside_sales")
_add(("渠道团队", "渠道部", "channel team"), "target", "team:channel")
_add(("我", "我自己", "本人", "me", "myself"), "target", "self")

# --- things that give no threshold or no recipient ---------------------------------------------
_add(
    (
        "一段时间",
        "一阵子",
        "很久",
        "好久",
        "长时间",
        "较长时间",
        "一些时间",
        "一定时间",
        "有段时间",
        "比较久",
        "a while",
        "some time",
        "a long time",
        "for a while",
        "too long",
        "long",
    ),
    "vague",
    ("no duration is given", "没有给出具体时长"),
    role="threshold",
)
_add(
    (
        "很大",
        "大单",
        "比较大",
        "大额",
        "很多",
        "较多",
        "big",
        "large",
        "huge",
        "many",
        "a lot",
        "high value",
        "significant",
    ),
    "vague",
    ("no threshold is given", "没有给出具体数值"),
    role="threshold",
)
_add(
    (
        "老板",
        "有关人员",
        "相关人员",
        "相关人",
        "大家",
        "boss",
        "the boss",
        "someone",
        "somebody",
        "people",
        "the team",
        "whoever",
    ),
    "vague",
    ("no recipient role is named", "没有指明接收人或角色"),
    role="recipient",
)
_add(("尽快", "马上要", "soon", "asap", "shortly"), "vague", ("no due date is given", "没有给出具体期限"), role="due")


def _build() -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for phrases, entry in _ENTRIES:
        for phrase in phrases:
            key = phrase.lower()
            # the first meaning listed wins; later duplicates are synonyms of something already known
            table.setdefault(key, entry)
    return table


LEXICON: dict[str, Entry] = _build()
MAX_PHRASE = max(len(key) for key in LEXICON)
#: for each first character, the lengths of the phrases starting with it, longest first
LENGTHS_BY_FIRST: dict[str, tuple[int, ...]] = {}
for _key in LEXICON:
    LENGTHS_BY_FIRST[_key[0]] = (*LENGTHS_BY_FIRST.get(_key[0], ()), len(_key))
LENGTHS_BY_FIRST = {first: tuple(sorted(set(lengths), reverse=True)) for first, lengths in LENGTHS_BY_FIRST.items()}
