"""What each importable entity takes, the header spellings that mean each field, and the mapping.

A mapping is ``{file column: import field}``. Import fields are named for what a person types:
``owner`` (a username, email or display name) rather than ``owner_id``, ``account`` (an external
reference or a name) rather than ``account_id``. Headers are matched in English and Chinese,
ignoring case, spaces, underscores and marks such as ``*`` or ``(必填)``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Any

from closeloop.core.errors import FieldProblem
from closeloop.crm.enums import (
    ActivityKind,
    CompanySize,
    DecisionRole,
    Direction,
    LeadSource,
    Stage,
    TicketPriority,
    TicketStatus,
    Tier,
)
from closeloop.integrations.importing import values
from closeloop.integrations.importing.errors import UnusableMapping
from closeloop.integrations.importing.labels import label_index
from closeloop.integrations.importing.values import normalize_label


class ValueKind(StrEnum):
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    MONEY = "money"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"
    CHOICE = "choice"
    #: a reference to another record, given as one of its natural keys (name, code, email…)
    REFERENCE = "reference"
    #: a custom field: the cell as read, checked against the field's definition when rows are validated
    CUSTOM = "custom"


_PARSERS: dict[ValueKind, Callable[[Any], Any]] = {
    ValueKind.TEXT: values.parse_text,
    ValueKind.INT: values.parse_int,
    ValueKind.DECIMAL: values.parse_decimal,
    ValueKind.MONEY: values.parse_money,
    ValueKind.DATE: values.parse_date,
    ValueKind.DATETIME: values.parse_datetime,
    ValueKind.BOOL: values.parse_bool,
    ValueKind.REFERENCE: values.parse_text,
    ValueKind.CUSTOM: lambda raw: raw.strip() if isinstance(raw, str) else raw,
}


@dataclass(frozen=True)
class ImportField:
    """One field an import can fill.

    ``attribute`` is what it sets on the record (default: ``name``, or ``name_id`` for a
    reference). ``import_only`` fields are not part of the entity's Create schema (an
    opportunity's ``closed_at``); the entity's import rules use them.
    """

    name: str
    kind: ValueKind
    aliases: tuple[str, ...] = ()
    required: bool = False
    choices: type[StrEnum] | None = None
    target: str | None = None
    attribute: str | None = None
    import_only: bool = False
    description: str = ""

    @property
    def key(self) -> str:
        if self.attribute:
            return self.attribute
        return f"{self.name}_id" if self.kind is ValueKind.REFERENCE else self.name

    def parser(self) -> Callable[[Any], Any]:
        if self.kind is ValueKind.CHOICE:
            assert self.choices is not None
            return partial(
                values.parse_choice, labels=label_index(self.choices), choices=tuple(m.value for m in self.choices)
            )
        return _PARSERS[self.kind]


def _f(name: str, kind: ValueKind = ValueKind.TEXT, *aliases: str, **options: Any) -> ImportField:
    return ImportField(name, kind, tuple(aliases), **options)


TEXT, INT, DEC, MONEY = ValueKind.TEXT, ValueKind.INT, ValueKind.DECIMAL, ValueKind.MONEY
DATE, TIME, BOOL, CHOICE, REF = (
    ValueKind.DATE,
    ValueKind.DATETIME,
    ValueKind.BOOL,
    ValueKind.CHOICE,
    ValueKind.REFERENCE,
)

# fmt: off
_OWNER = _f("owner", REF, "owner_id", "负责人", "客户负责人", "所有人", "归属人", "销售", "销售代表", "业务员",
            "sales rep", "salesperson", "account owner", "assigned to", target="user")
_EXTERNAL_REF = _f("external_ref", TEXT, "外部编号", "外部ID", "原系统编号", "编号", "external id", "external ref",
                   "reference", "ref")
_CURRENCY = _f("currency", TEXT, "币种", "货币", "币别", "currency code")
_REGION = _f("region", REF, "region_id", "区域", "大区", "销售区域", "地区", "territory", target="region")
_ACCOUNT = _f("account", REF, "account_id", "客户", "客户名称", "所属客户", "公司", "公司名称", "企业名称", "单位",
              "单位名称", "account name", "company", "company name", "customer", "customer name", target="account")
_PRODUCT_LINE = _f("product_line", REF, "product_line_id", "产品线", "产品系列", "系列", "series",
                   target="product_line")
_PRODUCT = _f("product", REF, "product_id", "产品", "产品名称", "产品编码", "product name", "sku", target="product")
_PHONE = _f("phone", TEXT, "电话", "座机", "联系电话", "办公电话", "固话", "telephone", "tel", "phone number")
_MOBILE = _f("mobile", TEXT, "手机", "手机号", "手机号码", "移动电话", "mobile phone", "cell", "cell phone")
_EMAIL = _f("email", TEXT, "邮箱", "电子邮箱", "电子邮件", "邮件地址", "e-mail", "email address", "mail")
_TITLE = _f("title", TEXT, "职位", "职务", "头衔", "岗位", "job title", "position")
_INDUSTRY = _f("industry", TEXT, "行业", "所属行业", "sector", "vertical")
_NOTES = _f("notes", TEXT, "备注", "说明", "note", "comments", "comment", "remarks")

FIELDS: dict[str, tuple[ImportField, ...]] = {
    "accounts": (
        _f("name", TEXT, "客户名称", "客户", "公司名称", "公司", "企业名称", "单位名称", "account", "account name",
           "company", "company name", "customer", "customer name", required=True),
        _INDUSTRY,
        _f("size", CHOICE, "规模", "企业规模", "公司规模", "company size", choices=CompanySize),
        _f("employees", INT, "员工数", "员工人数", "人数", "员工", "headcount", "employee count",
           "number of employees"),
        _f("annual_revenue", MONEY, "年营业额", "年收入", "营业收入", "营收", "年销售额", "revenue", "annual revenue"),
        _f("tier", CHOICE, "客户等级", "等级", "客户级别", "级别", "account tier", "grade", choices=Tier),
        _REGION,
        _f("country", TEXT, "国家", "国家/地区", "office location", "hq country"),
        _f("province", TEXT, "省份", "省", "所在省份", "state"),
        _f("city", TEXT, "城市", "市", "所在城市"),
        _f("address", TEXT, "地址", "详细地址", "公司地址", "street", "street address"),
        _PHONE,
        _f("website", TEXT, "网址", "官网", "网站", "公司网址", "url", "web", "homepage"),
        _f("credit_line", MONEY, "信用额度", "授信额度", "credit limit"),
        _CURRENCY,
        _f("parent_account", REF, "parent_account_id", "上级客户", "母公司", "上级公司", "集团", "总公司", "parent",
           "parent account", "parent company", "subsidiary of", target="account"),
        _f("year_established", INT, "成立年份", "成立时间", "成立年", "founded", "year founded", "established"),
        _OWNER,
        _EXTERNAL_REF,
    ),
    "contacts": (
        _f("name", TEXT, "姓名", "联系人", "联系人姓名", "名字", "full name", "contact", "contact name",
           required=True),
        _ACCOUNT,
        _TITLE,
        _f("title_confirmed_on", DATE, "职位确认日期", "职位确认时间", "title confirmed"),
        _f("department", TEXT, "部门", "科室", "所属部门", "dept"),
        _f("decision_role", CHOICE, "决策链角色", "决策角色", "角色", "role", "buying role", choices=DecisionRole),
        _EMAIL,
        _PHONE,
        _MOBILE,
        _f("wechat", TEXT, "微信", "微信号", "wechat id", "weixin"),
        _OWNER,
        _EXTERNAL_REF,
    ),
    "leads": (
        _f("name", TEXT, "姓名", "联系人", "线索名称", "名称", "客户姓名", "full name", "lead", "lead name",
           required=True),
        _f("company", TEXT, "公司", "公司名称", "单位", "单位名称", "企业名称", "客户名称", "company name",
           "organization"),
        _TITLE,
        _EMAIL,
        _PHONE,
        _MOBILE,
        _f("source", CHOICE, "来源", "线索来源", "获客渠道", "渠道", "lead source", "channel", choices=LeadSource),
        _INDUSTRY,
        _REGION,
        _f("product_line", REF, "product_line_id", "产品线", "意向产品线", "意向产品", "interest",
           "product interest", target="product_line"),
        _OWNER,
        _f("received_at", TIME, "获取时间", "创建时间", "接收时间", "线索日期", "日期", "received", "created",
           "date"),
        _NOTES,
        _EXTERNAL_REF,
    ),
    "opportunities": (
        _f("name", TEXT, "商机名称", "名称", "机会名称", "项目名称", "opportunity", "opportunity name", "deal",
           "deal name", required=True),
        _ACCOUNT,
        _f("contact", REF, "contact_id", "联系人", "联系人姓名", "contact name", target="contact"),
        _f("stage", CHOICE, "阶段", "销售阶段", "商机阶段", "deal stage", "sales stage", choices=Stage),
        _f("amount", MONEY, "金额", "商机金额", "预计金额", "预计成交金额", "成交金额", "value", "deal value",
           "close value"),
        _CURRENCY,
        _f("margin", DEC, "毛利率", "毛利", "gross margin", "margin %"),
        _f("expected_close_date", DATE, "预计成交日期", "预计签单日期", "预计结单日期", "expected close",
           "close by"),
        _OWNER,
        _PRODUCT,
        _f("product_line", REF, "产品线", "产品系列", "series", target="product_line",
           attribute="product_line_ids"),
        _f("lost_reason", TEXT, "输单原因", "丢单原因", "失败原因", "reason lost", "loss reason"),
        _f("description", TEXT, "描述", "备注", "说明", "notes"),
        _f("external_ref", TEXT, "商机编号", "外部编号", "原系统编号", "opportunity id", "deal id", "external id"),
        _f("opened_at", TIME, "创建日期", "开始日期", "立项日期", "开始跟进日期", "engage date", "created",
           "open date"),
        _f("closed_at", TIME, "成交日期", "关闭日期", "结单日期", "签单日期", "close date", "closed", "closed date",
           import_only=True, description="When a won or lost deal closed (default: the time of the import)"),
    ),
    "products": (
        _f("name", TEXT, "产品名称", "名称", "品名", "产品", "product", "product name", required=True),
        _f("code", TEXT, "产品编码", "编码", "型号", "物料编码", "货号", "sku", "product code", "model"),
        _PRODUCT_LINE,
        _f("list_price", MONEY, "价格", "单价", "标准价", "标准价格", "目录价", "售价", "price", "sales price",
           "unit price"),
        _CURRENCY,
        _f("unit", TEXT, "单位", "计量单位", "uom", "unit of measure"),
        _f("lead_time_days", INT, "交期", "交货周期", "交期(天)", "供货周期", "lead time"),
        _f("is_active", BOOL, "是否启用", "启用", "在售", "状态", "active", "enabled"),
        _f("description", TEXT, "描述", "说明", "产品描述", "备注"),
    ),
    "product_lines": (
        _f("name", TEXT, "产品线", "产品线名称", "名称", "系列", "product line", "series", required=True),
        _f("code", TEXT, "编码", "代码", "产品线编码", "code"),
        _f("description", TEXT, "描述", "说明", "备注"),
    ),
    "activities": (
        _f("kind", CHOICE, "类型", "方式", "跟进方式", "跟进类型", "活动类型", "type", "channel", required=True,
           choices=ActivityKind),
        _f("direction", CHOICE, "方向", "呼叫方向", "in/out", choices=Direction),
        _f("subject", TEXT, "主题", "标题", "跟进主题"),
        _f("occurred_at", TIME, "时间", "跟进时间", "日期", "跟进日期", "发生时间", "活动时间", "date", "time",
           "when", required=True),
        _f("user", REF, "user_id", "跟进人", "负责人", "销售", "业务员", "owner", "rep", "sales rep", target="user"),
        _ACCOUNT,
        _f("contact", REF, "contact_id", "联系人", "contact name", target="contact"),
        _f("opportunity", REF, "opportunity_id", "商机", "商机名称", "deal", target="opportunity"),
        _f("lead", REF, "lead_id", "线索", "线索名称", target="lead"),
        _f("is_replied", BOOL, "是否回复", "已回复", "回复", "replied"),
        _f("replied_at", TIME, "回复时间", "replied on"),
        _f("duration_minutes", INT, "时长", "时长(分钟)", "通话时长", "分钟", "duration", "minutes"),
        _f("outcome", TEXT, "结果", "跟进结果", "result"),
        _f("content_ref", TEXT, "附件", "内容链接", "录音", "link", "attachment", "recording"),
        _f("notes", TEXT, "内容", "跟进内容", "备注", "记录", "纪要", "content", "note", "comments"),
    ),
    "tickets": (
        _f("subject", TEXT, "主题", "标题", "工单标题", "问题", "title", "summary", required=True),
        _f("description", TEXT, "描述", "问题描述", "详情", "details"),
        _ACCOUNT,
        _f("contact", REF, "contact_id", "联系人", "报修人", target="contact"),
        _PRODUCT,
        _f("status", CHOICE, "状态", "工单状态", choices=TicketStatus),
        _f("priority", CHOICE, "优先级", "紧急程度", "severity", choices=TicketPriority),
        _f("owner", REF, "owner_id", "处理人", "负责人", "工程师", "assignee", "assigned to", target="user"),
        _f("opened_at", TIME, "创建时间", "报修时间", "提交时间", "日期", "created", "opened", "date"),
    ),
}
# fmt: on

ENTITY_NAMES = tuple(FIELDS)

#: decorations around header text that say nothing about the field
_DECORATIONS = re.compile(r"[(（\[【]?\s*(必填|选填|可选|required|optional)\s*[)）\]】]?|[*＊]", re.IGNORECASE)


#: columns an export writes that are the system's own, never imported (ids are not natural keys)
_SYSTEM_COLUMNS = frozenset({"id", "version", "createdat", "updatedat", "deletedat", "organizationid"})


def fields_of(entity: str, extra: Sequence[ImportField] = ()) -> tuple[ImportField, ...]:
    """The fields an import of ``entity`` can fill: its own, then ``extra`` (the organization's custom fields)."""
    try:
        return (*FIELDS[entity], *extra)
    except KeyError:
        raise UnusableMapping(
            [FieldProblem("entity", f"'{entity}' cannot be imported (choose from: {', '.join(ENTITY_NAMES)})")]
        ) from None


def header_key(header: str) -> str:
    return normalize_label(_DECORATIONS.sub("", header))


def suggest_mapping(headers: Sequence[str], entity: str, extra: Sequence[ImportField] = ()) -> dict[str, str]:
    """``{header: field}`` for the headers that look like a field; each field used at most once.

    Exact matches of a field's name or alias win; then, for what is left, a Chinese header that
    ends with an alias (``客户负责人`` → ``负责人``), then one that contains it, the longest alias
    first; then English headers spelled closely to an alias (``Anual Revenue``).
    """
    fields = fields_of(entity, extra)
    exact: dict[str, str] = {}
    for field in fields:
        for alias in (field.name, field.key, *field.aliases):
            exact.setdefault(normalize_label(alias), field.name)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    keys = {header: header_key(header) for header in headers if header_key(header) not in _SYSTEM_COLUMNS}
    for header, key in keys.items():
        name = exact.get(key)
        if name is not None and name not in used:
            mapping[header] = name
            used.add(name)
    # Chinese compounds put the head noun last: 联系人手机 is a mobile number, 客户负责人 an owner.
    chinese = sorted(
        ((alias, name) for alias, name in exact.items() if not alias.isascii() and len(alias) >= 2),
        key=lambda item: -len(item[0]),
    )
    for matches in (str.endswith, str.__contains__):
        for header, key in keys.items():
            if header in mapping or not key:
                continue
            for alias, name in chinese:
                if name not in used and matches(key, alias):
                    mapping[header] = name
                    used.add(name)
                    break
    for header, key in keys.items():
        if header in mapping or not key or not key.isascii():
            continue
        candidates = [alias for alias, name in exact.items() if name not in used and alias.isascii()]
        close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.85)
        if close:
            mapping[header] = exact[close[0]]
            used.add(exact[close[0]])
    return {header: mapping[header] for header in headers if header in mapping}


def check_mapping(
    headers: Sequence[str], entity: str, mapping: Mapping[str, str], extra: Sequence[ImportField] = ()
) -> dict[str, ImportField]:
    """The mapping's columns with their fields, or :class:`UnusableMapping` naming every problem."""
    fields = {f.name: f for f in fields_of(entity, extra)}
    problems: list[FieldProblem] = []
    resolved: dict[str, ImportField] = {}
    seen: dict[str, str] = {}
    for column, name in mapping.items():
        if column not in headers:
            problems.append(
                FieldProblem(column, f"is not a column of the file (columns: {', '.join(headers)})", "unknown_column")
            )
            continue
        field = fields.get(name)
        if field is None:
            problems.append(
                FieldProblem(
                    column, f"'{name}' is not a field of {entity} (fields: {', '.join(fields)})", "unknown_field"
                )
            )
            continue
        if name in seen:
            problems.append(FieldProblem(column, f"maps to {name}, as '{seen[name]}' does already", "duplicate"))
            continue
        seen[name] = column
        resolved[column] = field
    for field in fields.values():
        if field.required and field.name not in seen:
            hint = " / ".join(field.aliases[:2])
            problems.append(
                FieldProblem(
                    field.name,
                    f"is required, but no column is mapped to it (a column named {field.name}"
                    + (f" or {hint}" if hint else "")
                    + " would be)",
                    "required",
                )
            )
    if problems:
        raise UnusableMapping(problems)
    return resolved
