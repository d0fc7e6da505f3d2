"""What a formula on a record type may name, for one caller: the vocabulary of the formula editor's
autocomplete (GOV-2) and of ``GET /api/v1/formulas/vocabulary/{plural}``.

Fields and lists of related records are read from :func:`closeloop.crm.formulas.schema_for` — the
same schema the checker and the compiler use, so a suggestion is always something the formula
accepts — and filtered like every other read: a field the caller's role may not read (a rep and an
opportunity's ``margin``) is never suggested, and a list of related records the caller may not
read is left out with its fields. Function names come from the checker's :data:`FUNCTIONS`; their
signatures and descriptions (Chinese and English) are :data:`FUNCTION_DOCS`, which a test keeps in
step with the checker.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from closeloop.core.actor import Actor
from closeloop.core.errors import NotFound
from closeloop.crm import formulas, records
from closeloop.governance.formulas import FUNCTIONS, FormulaSchema
from closeloop.governance.permissions import require


@dataclass(frozen=True, slots=True)
class FunctionDoc:
    """How a function is called and what it gives, in both languages."""

    signature: str
    returns: str
    zh: str
    en: str
    #: reads a list of related records (``SUM(orders.amount WHERE …)``)
    aggregate: bool = False


#: every function of the language (the checker's :data:`FUNCTIONS`): signature, result, description
FUNCTION_DOCS: dict[str, FunctionDoc] = {
    "IF": FunctionDoc(
        "IF(condition, then, otherwise)",
        "any",
        "条件成立取第二个值，否则取第三个值",
        "then if the condition holds, else otherwise",
    ),
    "COALESCE": FunctionDoc(
        "COALESCE(value, fallback, …)", "any", "第一个非空的值", "the first value that is not empty"
    ),
    "ROUND": FunctionDoc(
        "ROUND(number, digits)",
        "number",
        "四舍五入到指定小数位（默认 0 位）",
        "rounded to digits decimal places (0 if left out)",
    ),
    "ABS": FunctionDoc("ABS(number)", "number", "绝对值", "the number without its sign"),
    "MIN": FunctionDoc(
        "MIN(a, b, …) / MIN(list.field)",
        "any",
        "最小值：几个值之间，或相关记录的某字段",
        "the smallest of several values, or of a field of related records",
        True,
    ),
    "MAX": FunctionDoc(
        "MAX(a, b, …) / MAX(list.field)",
        "any",
        "最大值：几个值之间，或相关记录的某字段",
        "the largest of several values, or of a field of related records",
        True,
    ),
    "SUM": FunctionDoc(
        "SUM(list.field WHERE condition)",
        "number",
        "相关记录某字段的合计（可加 WHERE 条件）",
        "the total of a field of related records (WHERE is optional)",
        True,
    ),
    "AVG": FunctionDoc(
        "AVG(list.field WHERE condition)",
        "number",
        "相关记录某字段的平均值",
        "the average of a field of related records",
        True,
    ),
    "COUNT": FunctionDoc(
        "COUNT(list WHERE condition)", "number", "相关记录的条数", "how many related records there are", True
    ),
    "DAYS_BETWEEN": FunctionDoc(
        "DAYS_BETWEEN(start, end)", "number", "两个日期之间的天数", "the days from start to end"
    ),
    "TODAY": FunctionDoc("TODAY()", "date", "今天的日期", "today's date"),
    "DATE": FunctionDoc(
        'DATE(date-time or "YYYY-MM-DD")',
        "date",
        "日期时间的日期部分，或写出的日期",
        "the date of a date-time, or a date written out",
    ),
    "YEAR": FunctionDoc("YEAR(date)", "number", "日期的年份", "the year of a date"),
    "MONTH": FunctionDoc("MONTH(date)", "number", "日期的月份（1–12）", "the month of a date (1–12)"),
    "CONTAINS": FunctionDoc("CONTAINS(text, part)", "boolean", "文本是否包含另一段文本", "whether text contains part"),
}

#: words of the language that are not names
KEYWORDS = ("AND", "OR", "NOT", "WHERE", "IN", "IS NULL", "IS NOT NULL", "TRUE", "FALSE", "NULL")

#: what each list of related records holds, in both languages (zh, en)
RELATION_LABELS: dict[str, tuple[str, str]] = {
    "orders": ("订单", "orders"),
    "opportunities": ("商机", "opportunities"),
    "activities": ("活动（电话、邮件、拜访…）", "activities (calls, emails, visits …)"),
    "contacts": ("联系人", "contacts"),
    "quotes": ("报价", "quotes"),
    "tickets": ("服务工单", "service tickets"),
    "child_accounts": ("下级客户（经销商的终端）", "child accounts (a dealer's terminals)"),
    "child_orders": ("下级客户的订单（经销商的终端动销）", "orders of the child accounts (a dealer's sell-through)"),
    "stage_changes": ("阶段变更历史", "stage history"),
    "lines": ("明细行", "lines"),
}


@dataclass(frozen=True, slots=True)
class FieldWord:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class RelationWord:
    name: str
    record_type: str
    label_zh: str
    label_en: str
    #: ``days_ago`` may be used in its WHERE (the records have a date it counts from)
    has_age: bool
    fields: tuple[FieldWord, ...]


@dataclass(frozen=True, slots=True)
class FunctionWord:
    name: str
    signature: str
    returns: str
    description_zh: str
    description_en: str
    aggregate: bool


@dataclass(frozen=True, slots=True)
class Vocabulary:
    record_type: str
    fields: tuple[FieldWord, ...]
    relations: tuple[RelationWord, ...]
    functions: tuple[FunctionWord, ...]
    keywords: tuple[str, ...] = KEYWORDS

    def as_json(self) -> dict[str, object]:
        return {
            "record_type": self.record_type,
            "fields": [{"name": f.name, "type": f.type} for f in self.fields],
            "relations": [
                {
                    "name": r.name,
                    "record_type": r.record_type,
                    "label_zh": r.label_zh,
                    "label_en": r.label_en,
                    "days_ago": r.has_age,
                    "fields": [{"name": f.name, "type": f.type} for f in r.fields],
                }
                for r in self.relations
            ],
            "functions": [
                {
                    "name": f.name,
                    "signature": f.signature,
                    "returns": f.returns,
                    "description_zh": f.description_zh,
                    "description_en": f.description_en,
                    "aggregate": f.aggregate,
                }
                for f in self.functions
            ],
            "keywords": list(self.keywords),
        }


def _readable_fields(session: Session, actor: Actor, schema: FormulaSchema) -> tuple[FieldWord, ...]:
    """The schema's fields whose stored input ``actor`` may read under the organization's field
    security (masked inputs, custom fields included, are left out)."""
    words = []
    for name, field in sorted(schema.fields.items()):
        noun, stored = field.source
        if stored in records.masked(session, actor, noun):
            continue
        words.append(FieldWord(name, field.type.value))
    return tuple(words)


def noun_of(plural: str) -> str:
    """The record type formulas know by its plural (``accounts`` → ``account``), or 404."""
    for noun in formulas.record_types():
        if formulas.READ_PERMISSION[noun] == f"{plural}:read":
            return noun
    raise NotFound("record type for formulas", plural)


#: the record types formulas are computed on, by noun → plural (as API paths name them)
PLURALS = {noun: formulas.READ_PERMISSION[noun].split(":")[0] for noun in formulas.record_types()}


def vocabulary(session: Session, actor: Actor, noun: str) -> Vocabulary:
    """What ``actor`` may name in a formula on ``noun`` (403 without read permission on ``noun``),
    the organization's custom fields included."""
    if noun not in formulas.record_types():
        raise NotFound("record type for formulas", noun)
    require(actor, formulas.READ_PERMISSION[noun])
    schema = formulas.schema_for(actor, noun, session)
    relations = []
    for name, relation in sorted(schema.relations.items()):
        related = relation.schema.noun
        if not actor.can(formulas.READ_PERMISSION[related]):
            continue
        zh, en = RELATION_LABELS.get(name, (name, name))
        relations.append(
            RelationWord(
                name,
                related,
                zh,
                en,
                relation.age_field is not None and relation.age_field in relation.schema.fields,
                _readable_fields(session, actor, relation.schema),
            )
        )
    functions = tuple(
        FunctionWord(name, doc.signature, doc.returns, doc.zh, doc.en, doc.aggregate)
        for name in FUNCTIONS
        for doc in (FUNCTION_DOCS[name],)
    )
    return Vocabulary(noun, _readable_fields(session, actor, schema), tuple(relations), functions)
