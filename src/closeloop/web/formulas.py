"""The formula editor (GOV-2): write a formula on a record type with field autocomplete, see it
checked and computed on sample records as you type, and ask for it as a formula field.

Who may open it: schema managers (who also ask for the field) and the people who sign off schema
changes (read-only: they check and preview what they are asked to approve). Everyone else gets the
403 page. The autocomplete vocabulary is :func:`closeloop.crm.formula_vocabulary.vocabulary` — the
formula schema, less what the reader's role may not read — and the check and the preview run
through :mod:`closeloop.crm.formulas` like ``/api/v1/formulas/check`` and ``/preview``. Asking for
the field files the same change request as ``/settings/fields`` (two sign-offs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased
from starlette.responses import RedirectResponse, Response

from closeloop.core.actor import Actor
from closeloop.core.errors import DomainError, Forbidden
from closeloop.crm import changerequests, customfields, formula_vocabulary, formulas
from closeloop.crm.accounts.models import Account
from closeloop.crm.customfields import DefinitionCreate
from closeloop.db.scope import RowAccess, visibility_clause, visible
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.formulas import FormulaError
from closeloop.governance.formulas.syntax import MAX_LENGTH
from closeloop.org.models import User
from closeloop.web import formula_messages
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import database_of, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

#: how many sample records the preview computes on
SAMPLE_SIZE = 8

RECORD_LABELS = {
    "account": N_("Accounts"),
    "contact": N_("Contacts"),
    "lead": N_("Leads"),
    "opportunity": N_("Opportunities"),
}
TYPE_LABELS = {
    "number": N_("Number"),
    "text": N_("Text"),
    "date": N_("Date"),
    "datetime": N_("Date and time"),
    "boolean": N_("Yes / no"),
}
SAMPLES = {
    "first": N_("First records"),
    "recent": N_("Recently updated"),
    "dealers": N_("Dealers (accounts with terminals)"),
}


@dataclass(frozen=True)
class Example:
    key: str
    record_type: str
    label: str
    text: str
    sample: str = "first"


_SELL_IN_90 = 'SUM(orders.amount WHERE days_ago <= 90 AND status != "cancelled")'
_SELL_THROUGH_90 = 'SUM(child_orders.amount WHERE days_ago <= 90 AND status != "cancelled")'
_MATCH = f"ROUND({_SELL_THROUGH_90} / {_SELL_IN_90}, 2)"
_STOCK = 'SUM(orders.amount WHERE status != "cancelled") - SUM(child_orders.amount WHERE status != "cancelled")'

#: ready-to-load examples; the first three are the seeds' "dealer inventory turnover vs. terminal
#: sell-through match" as ``tests/governance/test_formulas_records.py`` builds it
EXAMPLES = [
    Example("sell_through_match", "account", N_("Dealer sell-through match (90 days)"), _MATCH, "dealers"),
    Example(
        "inventory_turnover",
        "account",
        N_("Dealer inventory turnover (days)"),
        f"ROUND(({_STOCK}) / ({_SELL_THROUGH_90} / 90), 1)",
        "dealers",
    ),
    Example(
        "dealer_health",
        "account",
        N_("Dealer turnover vs. sell-through match"),
        f'IF({_MATCH} < 0.8, "压货 stock building up", IF({_MATCH} > 1.2, "缺货风险 running short", "匹配 matched"))'
        f' & ": match " & IF({_MATCH} IS NULL, "n/a", IF({_MATCH} >= 0.5, "≥ 50%", "< 50%"))',
        "dealers",
    ),
    Example(
        "stalled_deal",
        "opportunity",
        N_("Stalled deal"),
        'IF(stage IN ("proposal", "negotiation") AND COUNT(activities WHERE days_ago <= 14) = 0, "stalled", "moving")',
    ),
    Example(
        "visits_30",
        "account",
        N_("Visits in the last 30 days"),
        'COUNT(activities WHERE type = "visit" AND days_ago <= 30)',
    ),
]
EXAMPLES_BY_KEY = {example.key: example for example in EXAMPLES}


def record_types(actor: Actor) -> list[str]:
    """Record types that carry formula fields and that ``actor`` may read."""
    nouns = set(formulas.record_types()) & set(customfields.customizable_nouns())
    return [noun for noun in RECORD_LABELS if noun in nouns and actor.can(formulas.READ_PERMISSION[noun])]


def may_open(actor: Actor) -> bool:
    return actor.can("schema:manage") or actor.role in changerequests.DEFAULT_REQUIRED_ROLES


def _open(request: Request) -> tuple[User, Actor]:
    user, actor = require_user(request)
    if not may_open(actor):
        raise Forbidden(N_("The formula editor is for people who manage or sign off schema changes."))
    return user, actor


def _noun(actor: Actor, record_type: str) -> str:
    nouns = record_types(actor)
    if record_type in nouns:
        return record_type
    return nouns[0] if nouns else "account"


def _vocabularies(session: Session, actor: Actor, locale: str) -> dict[str, Any]:
    """Each record type's vocabulary, its texts in ``locale``, for the autocomplete."""
    gettext = translations(locale).gettext
    found: dict[str, Any] = {}
    for noun in record_types(actor):
        words = formula_vocabulary.vocabulary(session, actor, noun)
        found[noun] = {
            "fields": [{"name": f.name, "type": f.type, "label": gettext(TYPE_LABELS[f.type])} for f in words.fields],
            "relations": [
                {
                    "name": r.name,
                    "label": r.label_zh if locale == "zh_CN" else r.label_en,
                    "days_ago": r.has_age,
                    "fields": [
                        {"name": f.name, "type": f.type, "label": gettext(TYPE_LABELS[f.type])} for f in r.fields
                    ],
                }
                for r in words.relations
            ],
            "functions": [
                {
                    "name": f.name,
                    "signature": f.signature,
                    "label": f.description_zh if locale == "zh_CN" else f.description_en,
                    "aggregate": f.aggregate,
                }
                for f in words.functions
            ],
            "keywords": list(words.keywords),
        }
    return found


@router.get("/settings/formulas")
def editor_page(request: Request, record_type: str = "account", example: str | None = None) -> Response:
    user, actor = _open(request)
    chosen = EXAMPLES_BY_KEY.get(example or "")
    noun = _noun(actor, chosen.record_type if chosen else record_type)
    form = {
        "record_type": noun,
        "expression": chosen.text if chosen and chosen.record_type == noun else "",
        "sample": chosen.sample if chosen else "first",
        "name": "",
        "label_zh": "",
        "label_en": "",
        "reason": "",
    }
    return _page(request, user, actor, form)


def _page(
    request: Request,
    user: User,
    actor: Actor,
    form: dict[str, Any],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    locale = locale_of(request)
    nouns = record_types(actor)
    with database_of(request).reading(actor) as session:
        vocabularies = _vocabularies(session, actor, locale)
    context = {
        "user": user,
        "actor": actor,
        "form": form,
        "error": error,
        "nouns": [(noun, RECORD_LABELS[noun]) for noun in nouns],
        "samples": SAMPLES,
        "examples": [example for example in EXAMPLES if example.record_type in nouns],
        "vocabularies": vocabularies,
        "can_request": actor.can("schema:manage"),
        "max_length": MAX_LENGTH,
    }
    return render(request, "formulas/editor.html", context, locale=locale, status_code=status_code)


def _sample_ids(session: Any, actor: Actor, noun: str, sample: str) -> list[int]:
    model = formulas.RECORDS[noun].model
    statement = visible(actor, model, access=RowAccess.READ).with_only_columns(model.id)
    if sample == "dealers" and noun == "account":
        child = aliased(Account, name="terminal")
        statement = statement.where(
            exists(
                select(child.id).where(
                    child.parent_account_id == Account.id, visibility_clause(actor, child, access=RowAccess.READ)
                )
            )
        ).order_by(model.id)
    elif sample == "recent":
        statement = statement.order_by(model.updated_at.desc(), model.id.desc())
    else:
        statement = statement.order_by(model.id)
    return [int(found) for found in session.scalars(statement.limit(SAMPLE_SIZE))]


def _names(session: Any, actor: Actor, noun: str, ids: list[int]) -> dict[int, str]:
    model = formulas.RECORDS[noun].model
    rows = session.execute(
        visible(actor, model, access=RowAccess.READ).with_only_columns(model.id, model.name).where(model.id.in_(ids))
    )
    return {int(row[0]): str(row[1]) for row in rows}


@router.post("/settings/formulas/preview")
def preview(
    request: Request,
    record_type: str = Form(""),
    expression: str = Form(""),
    sample: str = Form("first"),
    csrf: str = Form(""),
) -> Response:
    """The check and the preview of what is typed (an HTML fragment the editor swaps in)."""
    user, actor = _open(request)
    require_csrf(request, csrf)
    noun = _noun(actor, record_type)
    gettext = translations(locale_of(request)).gettext
    context: dict[str, Any] = {"user": user, "actor": actor, "expression": expression, "noun": noun}
    if not expression.strip():
        return render(request, "formulas/preview.html", {**context, "state": "empty"})
    try:
        with database_of(request).reading(actor) as session:
            compiled = formulas.compile_for(actor, noun, expression, session)
            hidden = formulas.masked_inputs(actor, compiled, session)
    except FormulaError as problem:
        line_text = expression.splitlines()[problem.line - 1] if expression.splitlines() else ""
        context.update(
            state="error",
            message=formula_messages.translate(problem.reason, gettext),
            span=problem.span,
            line_text=line_text,
        )
        return render(request, "formulas/preview.html", context)
    context.update(
        state="ok",
        type=compiled.type.value,
        type_label=TYPE_LABELS.get(compiled.type.value, compiled.type.value),
        normalized=compiled.normalized,
        inputs=sorted(f"{n}.{f}" for n, f in compiled.inputs),
        masked=[f"{n}.{f}" for n, f in hidden],
        rows=[],
    )
    if not hidden:
        with database_of(request).reading(actor) as session:
            ids = _sample_ids(session, actor, noun, sample if sample in SAMPLES else "first")
            try:
                values = dict(formulas.values_of(session, actor, noun, compiled, ids=ids, limit=len(ids) or 1))
            except FormulaError as problem:
                context.update(state="error", message=formula_messages.translate(problem.reason, gettext), span=None)
                return render(request, "formulas/preview.html", context)
            names = _names(session, actor, noun, ids)
        context["rows"] = [(record_id, names.get(record_id, ""), values.get(record_id)) for record_id in ids]
    return render(request, "formulas/preview.html", context)


@router.post("/settings/formulas/request")
def request_field(
    request: Request,
    csrf: str = Form(""),
    record_type: str = Form(""),
    expression: str = Form(""),
    sample: str = Form("first"),
    name: str = Form(""),
    label_zh: str = Form(""),
    label_en: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """File the change request for a formula field (it applies after two sign-offs)."""
    user, actor = _open(request)
    require_csrf(request, csrf)
    if not actor.can("schema:manage"):
        raise Forbidden(N_("Only a sales VP or an administrator asks for a formula field."))
    form = {
        "record_type": record_type,
        "expression": expression,
        "sample": sample,
        "name": name,
        "label_zh": label_zh,
        "label_en": label_en,
        "reason": reason,
    }
    gettext = translations(locale_of(request)).gettext
    try:
        data = DefinitionCreate.model_validate(
            {
                "record_type": record_type,
                "name": name.strip(),
                "field_type": FieldType.FORMULA,
                "label_zh": label_zh.strip(),
                "label_en": label_en.strip(),
                "formula": expression.strip() or None,
            }
        )
    except ValidationError as invalid:
        first = invalid.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return _page(request, user, actor, form, error=f"{where}: {first['msg']}", status_code=422)
    try:
        with database_of(request).unit_of_work(actor) as session:
            changerequests.request_create(session, actor, data, reason=reason.strip() or None)
    except FormulaError as problem:
        message = formula_messages.translate(problem.reason, gettext)
        return _page(request, user, actor, form, error=f"{message} ({problem.span.where()})", status_code=422)
    except DomainError as problem:
        if problem.status == 403:
            raise
        return _page(request, user, actor, form, error=gettext(str(problem)), status_code=problem.status)
    return RedirectResponse("/settings/changes", status_code=303)
