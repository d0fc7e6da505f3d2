"""Record pages: the lists of accounts, contacts, leads, opportunities and activities (filters,
sorting, cursor pages, export), their create and edit forms (with custom fields driven by their
definitions), and the opportunity's read view.

Everything reads and writes through the same services as the API: lists through
``records.read_page`` (field masks applied: a masked field is not a column, not an input, not in
the export), writes through each aggregate's service with the API's request schemas, so a form
refuses exactly what the API refuses. The service's field problems (``name``, ``custom.<name>``)
are shown next to their inputs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from closeloop.approvals import service as approvals
from closeloop.automation import service as automation
from closeloop.core.actor import Actor, RowScope
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, DomainError, FieldProblem, NotFound, PreconditionFailed, ReadOnly
from closeloop.core.messages import CHOICE_LABELS, FIELD_LABELS, PROBLEM_MEDIA_TYPE, field_message, problem_document
from closeloop.crm import customfields, records, search
from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.schemas import AccountCreate, AccountUpdate
from closeloop.crm.activities import service as activity_service
from closeloop.crm.activities.schemas import ActivityCreate, ActivityUpdate
from closeloop.crm.contacts import service as contact_service
from closeloop.crm.contacts.schemas import ContactCreate, ContactUpdate
from closeloop.crm.contracts import service as contract_service
from closeloop.crm.contracts.schemas import ContractCreate, ContractUpdate
from closeloop.crm.customfields import Definition
from closeloop.crm.enums import (
    ActivityKind,
    CompanySize,
    ContractStatus,
    DecisionRole,
    Direction,
    LeadSource,
    LeadStatus,
    Stage,
    Tier,
)
from closeloop.crm.leads import service as lead_service
from closeloop.crm.leads.schemas import LeadCreate, LeadUpdate
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.opportunities.schemas import OpportunityCreate, OpportunityUpdate
from closeloop.crm.records import RecordType
from closeloop.db.scope import RowAccess, visibility_clause
from closeloop.forecasting.opportunities import win_probability
from closeloop.governance.customfields.types import FieldType
from closeloop.integrations import exporting
from closeloop.integrations.exporting import ExportFormat
from closeloop.org.models import Region, User
from closeloop.web import i18n
from closeloop.web.i18n import N_, translations
from closeloop.web.routes import MAX_ID, database_of, is_htmx, locale_of, render, require_csrf, require_user

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
#: options offered in a reference select (the most recently changed first)
OPTION_LIMIT = 300
#: custom fields shown as list columns (all of them are in the export)
CUSTOM_COLUMNS = 4

# --- what each page shows -------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    """One input of a record form (or of a list's filter bar)."""

    name: str
    #: text, textarea, email, tel, url, int, money, percent, date, datetime, choice, ref, refs, tristate
    kind: str = "text"
    choices: tuple[str, ...] = ()
    reference: str | None = None  # the noun of a ref: user, region, account, contact, …
    required: bool = False
    create_only: bool = False
    edit_only: bool = False
    wide: bool = False
    help: str | None = None


@dataclass(frozen=True)
class Filter:
    """A filter of a list: ``param`` is the API's (``stage``, ``amount__gte``…)."""

    param: str
    label: str
    kind: str = "text"  # text, choice, ref, date, number
    choices: tuple[str, ...] = ()
    reference: str | None = None


@dataclass(frozen=True)
class PageSpec:
    plural: str
    record_type: RecordType[Any]
    title: str
    singular: str
    new_label: str
    create_schema: type[BaseModel]
    update_schema: type[BaseModel]
    create: Callable[..., Any]
    update: Callable[..., Any]
    columns: tuple[str, ...]
    inputs: tuple[Input, ...]
    filters: tuple[Filter, ...] = ()
    #: the field that names a record (its link text in the list)
    label_field: str = "name"
    #: the records' money column's currency field
    money_fields: tuple[str, ...] = ()
    #: the service's soft delete: (session, actor, record_id, expected_version)
    delete: Callable[..., Any] | None = None
    #: this record type's own words for a field (a contract's "title" is not a person's job title)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: whether a stored record may be opened in the edit form (None: always); refused with this sentence
    editable: Callable[[Mapping[str, Any]], bool] | None = None
    not_editable: str = ""
    #: inputs not offered to this reader now (e.g. a contract's status while a flow approves it)
    withheld: Callable[[Session, Actor], frozenset[str]] | None = None

    def label(self, name: str) -> str:
        """The English source text of a field's label (translated where it is shown)."""
        return self.labels.get(name) or FIELD_LABELS.get(name, name)

    @property
    def noun(self) -> str:
        return self.record_type.noun


def _choices(enum: Iterable[Any]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


OWNER = Filter("owner_id", N_("Owner"), "ref", reference="user")

SPECS: dict[str, PageSpec] = {
    spec.plural: spec
    for spec in (
        PageSpec(
            "accounts",
            account_service.ACCOUNTS,
            N_("Accounts"),
            N_("Account"),
            N_("New account"),
            AccountCreate,
            AccountUpdate,
            create=account_service.create_account,
            update=lambda s, a, record_id, data, expected_version: account_service.update_account(
                s, a, account_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: account_service.delete_account(
                s, a, account_id=record_id, expected_version=expected_version
            ),
            columns=("name", "tier", "industry", "region_id", "city", "annual_revenue", "credit_line", "owner_id"),
            inputs=(
                Input("name", required=True, wide=True),
                Input("industry"),
                Input("tier", "choice", _choices(Tier)),
                Input("size", "choice", _choices(CompanySize)),
                Input("employees", "int"),
                Input("annual_revenue", "money"),
                Input("credit_line", "money", help=N_("Finance only: visible to the sales VP and the CFO.")),
                Input("currency", "text"),
                Input("region_id", "ref", reference="region"),
                Input("owner_id", "ref", reference="user"),
                Input("parent_account_id", "ref", reference="account"),
                Input("year_established", "int"),
                Input("country"),
                Input("province"),
                Input("city"),
                Input("address", "textarea", wide=True),
                Input("phone", "tel"),
                Input("website", "url"),
                Input("external_ref"),
            ),
            filters=(
                Filter("tier", N_("Tier"), "choice", _choices(Tier)),
                Filter("size", N_("Company size"), "choice", _choices(CompanySize)),
                Filter("region_id", N_("Region"), "ref", reference="region"),
                OWNER,
                Filter("industry__contains", N_("Industry"), "text"),
            ),
            money_fields=("annual_revenue", "credit_line"),
        ),
        PageSpec(
            "contacts",
            contact_service.CONTACTS,
            N_("Contacts"),
            N_("Contact"),
            N_("New contact"),
            ContactCreate,
            ContactUpdate,
            create=contact_service.create_contact,
            update=lambda s, a, record_id, data, expected_version: contact_service.update_contact(
                s, a, contact_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: contact_service.delete_contact(
                s, a, contact_id=record_id, expected_version=expected_version
            ),
            columns=("name", "account_id", "title", "decision_role", "mobile", "email", "owner_id"),
            inputs=(
                Input("name", required=True),
                Input("account_id", "ref", reference="account"),
                Input("title"),
                Input("title_confirmed_on", "date"),
                Input("department"),
                Input("decision_role", "choice", _choices(DecisionRole)),
                Input("mobile", "tel"),
                Input("phone", "tel"),
                Input("email", "email"),
                Input("wechat"),
                Input("owner_id", "ref", reference="user"),
                Input("external_ref"),
            ),
            filters=(
                Filter("decision_role", N_("Decision role"), "choice", _choices(DecisionRole)),
                Filter("account_id", N_("Account"), "ref", reference="account"),
                OWNER,
            ),
        ),
        PageSpec(
            "leads",
            lead_service.LEADS,
            N_("Leads"),
            N_("Lead"),
            N_("New lead"),
            LeadCreate,
            LeadUpdate,
            create=lead_service.create_lead,
            update=lambda s, a, record_id, data, expected_version: lead_service.update_lead(
                s, a, lead_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: lead_service.delete_lead(
                s, a, lead_id=record_id, expected_version=expected_version
            ),
            columns=("name", "company", "status", "source", "mobile", "region_id", "owner_id", "received_at"),
            inputs=(
                Input("name", required=True),
                Input("company"),
                Input("title"),
                Input("status", "choice", _choices(LeadStatus), edit_only=True),
                Input("source", "choice", _choices(LeadSource)),
                Input("mobile", "tel"),
                Input("phone", "tel"),
                Input("email", "email"),
                Input("industry"),
                Input("region_id", "ref", reference="region"),
                Input("product_line_id", "ref", reference="product_line"),
                Input("owner_id", "ref", reference="user", help=N_("Leave empty to keep the lead in the inbox.")),
                Input("notes", "textarea", wide=True),
                Input("disqualified_reason", "textarea", wide=True, edit_only=True),
                Input("external_ref"),
            ),
            filters=(
                Filter("status", N_("Status"), "choice", _choices(LeadStatus)),
                Filter("source", N_("Source"), "choice", _choices(LeadSource)),
                Filter("region_id", N_("Region"), "ref", reference="region"),
                OWNER,
            ),
        ),
        PageSpec(
            "opportunities",
            opportunity_service.OPPORTUNITIES,
            N_("Opportunities"),
            N_("Opportunity"),
            N_("New opportunity"),
            OpportunityCreate,
            OpportunityUpdate,
            create=opportunity_service.create_opportunity,
            update=lambda s, a, record_id, data, expected_version: opportunity_service.update_opportunity(
                s, a, opportunity_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: opportunity_service.delete_opportunity(
                s, a, opportunity_id=record_id, expected_version=expected_version
            ),
            columns=("name", "account_id", "stage", "amount", "margin", "expected_close_date", "owner_id"),
            inputs=(
                Input("name", required=True, wide=True),
                Input("account_id", "ref", reference="account"),
                Input("contact_id", "ref", reference="contact"),
                Input("stage", "choice", _choices(Stage)),
                Input("amount", "money"),
                Input("currency"),
                Input("margin", "percent", help=N_("Finance only: visible to the sales VP and the CFO.")),
                Input("expected_close_date", "date"),
                Input("owner_id", "ref", reference="user"),
                Input("product_id", "ref", reference="product"),
                Input("product_line_ids", "refs", reference="product_line", wide=True),
                Input("lost_reason", "textarea", wide=True, help=N_("Needed when the stage is Lost.")),
                Input("description", "textarea", wide=True),
                Input("external_ref"),
            ),
            filters=(
                Filter("stage", N_("Stage"), "choice", _choices(Stage)),
                OWNER,
                Filter("account_id", N_("Account"), "ref", reference="account"),
                Filter("amount__gte", N_("Amount at least"), "number"),
                Filter("expected_close_date__lte", N_("Closing by"), "date"),
            ),
            money_fields=("amount",),
        ),
        PageSpec(
            "activities",
            activity_service.ACTIVITIES,
            N_("Activities"),
            N_("Activity"),
            N_("Log an activity"),
            ActivityCreate,
            ActivityUpdate,
            create=activity_service.log_activity,
            update=lambda s, a, record_id, data, expected_version: activity_service.update_activity(
                s, a, activity_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: activity_service.delete_activity(
                s, a, activity_id=record_id, expected_version=expected_version
            ),
            columns=("occurred_at", "kind", "subject", "account_id", "contact_id", "opportunity_id", "user_id"),
            inputs=(
                Input("kind", "choice", _choices(ActivityKind), required=True),
                Input("direction", "choice", _choices(Direction)),
                Input("subject", wide=True),
                Input("occurred_at", "datetime"),
                Input("duration_minutes", "int"),
                Input("account_id", "ref", reference="account"),
                Input("contact_id", "ref", reference="contact"),
                Input("opportunity_id", "ref", reference="opportunity"),
                Input("lead_id", "ref", reference="lead"),
                Input("outcome", wide=True),
                Input("is_replied", "tristate"),
                Input("notes", "textarea", wide=True),
                Input("content_ref", "url", wide=True),
            ),
            filters=(
                Filter("kind", N_("Type"), "choice", _choices(ActivityKind)),
                Filter("direction", N_("Direction"), "choice", _choices(Direction)),
                Filter("account_id", N_("Account"), "ref", reference="account"),
                Filter("user_id", N_("By"), "ref", reference="user"),
                Filter("occurred_at__gte", N_("From"), "date"),
                Filter("occurred_at__lt", N_("Before"), "date"),
            ),
            label_field="subject",
        ),
        PageSpec(
            "contracts",
            contract_service.CONTRACTS,
            N_("Contracts"),
            N_("Contract"),
            N_("New contract"),
            ContractCreate,
            ContractUpdate,
            create=contract_service.create_contract,
            update=lambda s, a, record_id, data, expected_version: contract_service.update_contract(
                s, a, contract_id=record_id, data=data, expected_version=expected_version
            ),
            delete=lambda s, a, record_id, expected_version: contract_service.delete_contract(
                s, a, contract_id=record_id, expected_version=expected_version
            ),
            columns=("number", "title", "account_id", "status", "amount", "signed_on", "ends_on", "owner_id"),
            inputs=(
                Input("title", required=True, wide=True),
                Input("number", help=N_("Leave empty for the next number (C-…).")),
                Input("account_id", "ref", reference="account"),
                Input("opportunity_id", "ref", reference="opportunity"),
                Input("status", "choice", _choices(ContractStatus), edit_only=True),
                Input("amount", "money"),
                Input("currency"),
                Input("signed_on", "date", help=N_("Needed before the contract is in force.")),
                Input("starts_on", "date"),
                Input("ends_on", "date"),
                Input("owner_id", "ref", reference="user"),
            ),
            filters=(
                Filter("status", N_("Status"), "choice", _choices(ContractStatus)),
                OWNER,
                Filter("account_id", N_("Account"), "ref", reference="account"),
            ),
            label_field="title",
            money_fields=("amount",),
            labels={"title": N_("Contract title"), "number": N_("Contract number")},
            editable=lambda record: str(record.get("status")) == ContractStatus.DRAFT,
            not_editable=N_("Only a draft contract can be edited; this one is no longer a draft."),
            # under a contract approval flow a draft comes into force by approval, not by an edit
            withheld=lambda s, a: frozenset({"status"}) if approvals.has_flow(s, a, "contract") else frozenset(),
        ),
    )
}

#: the form's sections, in order; an input not named in SECTION_OF is in "basics"
SECTIONS: dict[str, str] = {
    "basics": N_("Basic information"),
    "contact": N_("Address and contact"),
    "related": N_("Related records"),
    "details": N_("Details"),
    "custom": N_("Custom fields"),
    "other": N_("Other"),
}
SECTION_OF: dict[str, dict[str, str]] = {
    "accounts": {
        **dict.fromkeys(("country", "province", "city", "phone", "website", "address"), "contact"),
        "external_ref": "other",
    },
    "contacts": {**dict.fromkeys(("mobile", "phone", "email", "wechat"), "contact"), "external_ref": "other"},
    "leads": {
        **dict.fromkeys(("mobile", "phone", "email"), "contact"),
        **dict.fromkeys(("notes", "disqualified_reason"), "details"),
        "external_ref": "other",
    },
    "opportunities": {**dict.fromkeys(("lost_reason", "description"), "details"), "external_ref": "other"},
    "contracts": {
        **dict.fromkeys(("account_id", "opportunity_id"), "related"),
        **dict.fromkeys(("signed_on", "starts_on", "ends_on"), "details"),
    },
    "activities": {
        **dict.fromkeys(("account_id", "contact_id", "opportunity_id", "lead_id"), "related"),
        **dict.fromkeys(("outcome", "is_replied", "notes", "content_ref"), "details"),
    },
}

SORTS: dict[str, tuple[str, ...]] = {
    "accounts": ("-id", "-updated_at", "name", "-annual_revenue", "tier"),
    "contacts": ("-id", "-updated_at", "name", "-title_confirmed_on"),
    "leads": ("-id", "-received_at", "name", "company", "status", "-updated_at"),
    "opportunities": ("-id", "-updated_at", "expected_close_date", "-amount", "name", "stage"),
    "activities": ("-occurred_at", "occurred_at", "-id"),
    "contracts": ("-id", "-updated_at", "-signed_on", "ends_on", "-amount", "number"),
}


def spec_for(plural: str) -> PageSpec:
    spec = SPECS.get(plural)
    if spec is None:
        raise NotFound("page", plural)
    return spec


# --- shared helpers -------------------------------------------------------------------------------


def masked(session: Session, actor: Actor, spec: PageSpec) -> frozenset[str]:
    """The record's fields ``actor`` may not read (so not see, set or filter), under the
    organization's configured field security."""
    return frozenset(spec.record_type.read_fields) - frozenset(records.visible_fields(session, actor, spec.record_type))


def _record_model(noun: str) -> Any:
    return records.record_type_for(noun).model


def names_of(session: Session, actor: Actor, noun: str, ids: Iterable[Any]) -> dict[int, str]:
    """The display names of the ``noun`` records with ``ids`` that ``actor`` can see."""
    wanted = sorted({i for i in ids if isinstance(i, int)})
    if not wanted:
        return {}
    if noun == "user":
        statement = select(User.id, User.display_name).where(
            visibility_clause(actor, User, access=RowAccess.READ), User.id.in_(wanted)
        )
    elif noun == "region":
        statement = select(Region.id, Region.name).where(
            visibility_clause(actor, Region, access=RowAccess.READ), Region.id.in_(wanted)
        )
    else:
        model = _record_model(noun)
        if noun == "activity":
            label = model.subject
        elif "name" in model.__table__.c:
            label = model.name
        else:  # contracts, quotes: known by their number
            label = model.number
        statement = select(model.id, label).where(
            visibility_clause(actor, model, access=RowAccess.READ), model.id.in_(wanted)
        )
    return {row[0]: str(row[1] or f"#{row[0]}") for row in session.execute(statement)}


#: the roles records are handed to (not the CFO, the IT director, administrators or partners)
SELLING_ROLES = ("rep", "manager", "director", "sales_vp")


def assignable_users(session: Session, actor: Actor) -> list[tuple[int, str]]:
    """The people ``actor`` may hand a record to, as the owner check of the record services
    (``crm.records.check_owner``) allows: active sellers within the actor's reach — themselves
    and their team or region, or the whole organization for an organization-wide scope."""
    statement = select(User.id, User.display_name).where(
        visibility_clause(actor, User, access=RowAccess.READ), User.is_active.is_(True), User.role.in_(SELLING_ROLES)
    )
    if actor.scope is not RowScope.ALL:
        statement = statement.where(User.id.in_(sorted(actor.owner_ids | {actor.user_id or 0})))
    return [(row[0], str(row[1])) for row in session.execute(statement.order_by(User.display_name))]


def options_of(
    session: Session, actor: Actor, noun: str, *, where: Mapping[str, int] | None = None
) -> list[tuple[int, str]]:
    """(id, name) choices for a select of ``noun`` records the actor can see; for people, those
    the actor may assign records to (:func:`assignable_users`)."""
    if noun == "user":
        return assignable_users(session, actor)
    if noun == "region":
        statement = (
            select(Region.id, Region.name)
            .where(visibility_clause(actor, Region, access=RowAccess.READ))
            .order_by(Region.name)
        )
    else:
        model = _record_model(noun)
        statement = select(model.id, model.name).where(visibility_clause(actor, model, access=RowAccess.READ))
        for column, value in (where or {}).items():
            statement = statement.where(getattr(model, column) == value)
        statement = statement.order_by(model.updated_at.desc()).limit(OPTION_LIMIT)
    return [(row[0], str(row[1])) for row in session.execute(statement)]


def choice_label(gettext: Callable[[str], str], value: Any) -> str:
    text = str(getattr(value, "value", value))
    label = CHOICE_LABELS.get(text)
    return gettext(label) if label else text


def custom_choice_label(definition: Definition, value: str, locale: str) -> str:
    for choice in definition.choices:
        if choice.get("value") == value:
            return choice.get("label_en" if locale == "en" else "label_zh") or value
    return value


#: a filter or sort on a field the role may not read (the forms' "may not set" would be wrong here)
LIST_FORBIDDEN = N_("Your role may not filter or sort on this field.")


def safe_next(path: str | None) -> str | None:
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None


# --- lists ----------------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    href: str | None = None
    numeric: bool = False
    badge: str | None = None


@dataclass
class Column:
    key: str
    label: str
    sort: str | None = None  # the sort parameter for this column, when sortable
    numeric: bool = False


def _list_params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if v.strip() and k not in ("fragment", "saved", "deleted")}


_BADGES = {"won": "good", "lost": "bad", "qualified": "good", "converted": "good", "disqualified": "bad", "new": "warn"}


def _format(
    spec: PageSpec,
    name: str,
    value: Any,
    row: Mapping[str, Any],
    *,
    locale: str,
    gettext: Callable[[str], str],
    lookups: Mapping[str, Mapping[int, str]],
) -> Cell:
    if value is None or value == "":
        return Cell("—", numeric=name in spec.money_fields)
    reference = REFERENCES.get(name)
    if reference is not None:
        text = lookups.get(reference, {}).get(value, "—")
        href = f"/{records.record_type_for(reference).plural}/{value}" if reference in LINKED else None
        if reference == "opportunity" and text != "—":
            href = f"/opportunities/{value}"
        return Cell(text, href if text != "—" else None)
    if name in spec.money_fields:
        return Cell(i18n.format_money(Decimal(str(value)), row.get("currency") or "CNY", locale), numeric=True)
    if name == "margin":
        return Cell(i18n.format_percent(float(Decimal(str(value)) / 100), locale), numeric=True)
    if isinstance(value, bool):
        return Cell(gettext("Yes") if value else gettext("No"))
    if isinstance(value, datetime):
        return Cell(i18n.format_datetime(value, locale))
    if isinstance(value, date):
        return Cell(i18n.format_date(value, locale))
    if isinstance(value, int | Decimal | float):
        return Cell(i18n.format_number(value, locale), numeric=True)
    text = str(getattr(value, "value", value))
    if text in CHOICE_LABELS:
        return Cell(choice_label(gettext, text), badge=_BADGES.get(text, "") if name in ("stage", "status") else None)
    return Cell(text)


#: reference columns → the noun they point at
REFERENCES = {
    "owner_id": "user",
    "user_id": "user",
    "region_id": "region",
    "account_id": "account",
    "parent_account_id": "account",
    "contact_id": "contact",
    "opportunity_id": "opportunity",
    "lead_id": "lead",
    "product_line_id": "product_line",
    "product_id": "product",
}
#: nouns whose records have a page to link to
LINKED = frozenset({"account", "opportunity"})


def _custom_cell(definition: Definition, value: Any, locale: str, gettext: Callable[[str], str]) -> Cell:
    if value is None or value == "" or value == []:
        return Cell("—")
    kind = definition.field_type
    if kind is FieldType.CHOICE:
        return Cell(custom_choice_label(definition, str(value), locale))
    if kind is FieldType.MULTI_CHOICE and isinstance(value, list):
        return Cell("、".join(custom_choice_label(definition, str(v), locale) for v in value))
    if kind is FieldType.BOOLEAN:
        return Cell(gettext("Yes") if value else gettext("No"))
    if kind is FieldType.MONEY:
        return Cell(i18n.format_money(Decimal(str(value)), "CNY", locale), numeric=True)
    if kind is FieldType.NUMBER or (kind is FieldType.FORMULA and isinstance(value, int | float | Decimal)):
        return Cell(i18n.format_number(Decimal(str(value)), locale), numeric=True)
    if kind is FieldType.DATE:
        return Cell(i18n.format_date(str(value), locale))
    return Cell(str(value))


def _sort_link(params: Mapping[str, str], current: str, name: str, sortable: set[str]) -> str | None:
    if name not in sortable:
        return None
    ascending = current != name
    return name if ascending else f"-{name}"


def list_context(request: Request, spec: PageSpec, actor: Actor) -> dict[str, Any]:
    locale = locale_of(request)
    gettext = translations(locale).gettext
    params = _list_params(request)
    params.setdefault("limit", str(PAGE_SIZE))
    error: DomainError | None = None
    with database_of(request).reading(actor) as session:
        hidden = masked(session, actor, spec)
        definitions = customfields.readable(session, actor, spec.noun) if spec.record_type.customizable else []
        try:
            page = records.read_page(session, actor, spec.record_type, params)
        except DomainError as failure:
            error = failure
            page = records.read_page(session, actor, spec.record_type, {"limit": str(PAGE_SIZE)})
        columns = [name for name in spec.columns if name not in hidden]
        shown_custom = definitions[:CUSTOM_COLUMNS]
        lookups: dict[str, dict[int, str]] = {}
        for name in columns:
            noun = REFERENCES.get(name)
            if noun is not None:
                ids = [row.get(name) for row in page.items if row.get(name) is not None]
                lookups.setdefault(noun, {}).update(names_of(session, actor, noun, ids))
        filter_options: dict[str, list[tuple[Any, str]]] = {}
        for offered in spec.filters:
            if offered.kind == "ref" and offered.reference is not None:
                offered_options = list(options_of(session, actor, offered.reference))
                chosen = str(params.get(offered.param) or "")
                # a filter on a record beyond the loaded page (a link from its page, a lookup) still shows it
                if chosen.isdecimal() and int(chosen) not in {v for v, _label in offered_options}:
                    offered_options[:0] = names_of(session, actor, offered.reference, [int(chosen)]).items()
                filter_options[offered.param] = offered_options
    sortable = {name for name, fs in spec.record_type.filters.items() if fs.sortable} | {"created_at", "updated_at"}
    sortable -= hidden
    # what the table is sorted by: the default when the asked-for filters or sort could not be applied
    current_sort = (None if error else params.get("sort")) or spec.record_type.default_sort
    table_columns = [
        Column(
            name,
            gettext(spec.label(name)),
            _sort_link(params, current_sort, name, sortable),
            numeric=name in spec.money_fields or name in ("margin", "employees"),
        )
        for name in columns
    ] + [
        Column(
            customfields.PREFIX + d.name,
            d.label(locale),
            _sort_link(params, current_sort, customfields.PREFIX + d.name, {customfields.PREFIX + d.name})
            if d.rule.sortable and d.field_type is not FieldType.FORMULA
            else None,
            numeric=d.field_type in (FieldType.NUMBER, FieldType.MONEY),
        )
        for d in shown_custom
    ]
    rows = []
    for item in page.items:
        cells = [
            _format(spec, name, item.get(name), item, locale=locale, gettext=gettext, lookups=lookups)
            for name in columns
        ]
        custom = item.get("custom") or {}
        cells += [_custom_cell(d, custom.get(d.name), locale, gettext) for d in shown_custom]
        first = spec.label_field if spec.label_field in columns else columns[0]
        index = columns.index(first)
        if cells[index].text in ("—", ""):
            cells[index].text = f"{gettext(spec.singular)} #{item['id']}"
        cells[index].href = _record_href(spec, item["id"])
        editable = (spec.editable is None or spec.editable(item)) and records.may_write_item(
            actor, spec.record_type, item
        )
        rows.append(
            {"id": item["id"], "cells": cells, "edit": f"/{spec.plural}/{item['id']}/edit" if editable else None}
        )
    filter_values = {k: v for k, v in params.items() if k not in ("limit", "cursor")}
    base_query = {k: v for k, v in params.items() if k not in ("cursor", "limit")}
    custom_filters = [d for d in definitions if d.field_type in (FieldType.CHOICE, FieldType.MULTI_CHOICE)]
    next_query = urlencode({**base_query, "cursor": page.next_cursor}) if page.next_cursor else None
    export_query = urlencode(dict(base_query.items()))
    return {
        "spec": spec,
        "columns": table_columns,
        "rows": rows,
        "next_query": next_query,
        "filters": spec.filters,
        "filter_values": filter_values,
        "filter_options": filter_options,
        "lookup_nouns": LOOKUP_NOUNS,
        "custom_filters": custom_filters,
        "sorts": SORTS.get(spec.plural, ()),
        "current_sort": current_sort,
        "sort_query": {k: v for k, v in base_query.items() if k != "sort"},
        "export_query": export_query,
        "list_error": error,
        "list_problems": [
            gettext(LIST_FORBIDDEN) if p.code == "forbidden" else field_message(gettext, p) for p in error.problems
        ]
        if error
        else [],
        "can_write": actor.can(f"{spec.plural}:write"),
        "can_export": actor.can("exports:run"),
        "filtered": bool({k for k in filter_values if k != "sort"}),
        "is_continuation": bool(params.get("cursor")),
        "choice_labels": CHOICE_LABELS,
        "field_labels": FIELD_LABELS,
    }


def _record_href(spec: PageSpec, record_id: int) -> str:
    if spec.plural in ("accounts", "opportunities", "contracts", "contacts", "leads"):
        return f"/{spec.plural}/{record_id}"
    return f"/{spec.plural}/{record_id}/edit"


def _list_handler(plural: str) -> Callable[[Request], Response]:
    def list_records(request: Request) -> Response:
        user, actor = require_user(request)
        spec = spec_for(plural)
        context = {"user": user, "actor": actor, **list_context(request, spec, actor)}
        saved = request.query_params.get("saved")
        context["saved"] = saved if saved and saved.isdecimal() else None
        deleted = request.query_params.get("deleted")
        context["deleted"] = int(deleted) if deleted and deleted.isdecimal() else None
        if is_htmx(request):
            template = "records/_rows.html" if request.query_params.get("fragment") == "rows" else "records/_table.html"
            return render(request, template, context)
        return render(request, "records/list.html", context)

    list_records.__name__ = f"list_{plural}_page"
    return list_records


# --- lookups --------------------------------------------------------------------------------------

#: the kinds of record a pick list can look up beyond the records it loaded (``OPTION_LIMIT``)
LOOKUP_NOUNS = frozenset({"account", "contact", "lead", "opportunity", "product"})


@router.get("/options/{noun}")
def lookup_options(request: Request, noun: str, q: str = "") -> Response:
    """The records of ``noun`` the reader may see whose name matches ``q`` (pinyin and initials
    too), for a pick list whose first page did not hold the one wanted: JSON
    ``{"items": [{"value": "12", "label": "…"}]}``. A refusal is a problem document naming the field
    (``q`` missing or too long, 422); the pick list's script asks only with something typed, and
    keeps its loaded options on any refusal."""
    _user, actor = require_user(request)
    try:
        if noun not in LOOKUP_NOUNS:
            raise NotFound("kind of record", noun)
        with database_of(request).reading(actor) as session:
            found = search.lookup(session, actor, noun, q)
    except DomainError as error:  # answered as the JSON it is asked for, never as a page
        document = problem_document(
            error.status, error.code, error.message, problems=error.problems, extra=error.extra,
            locale=locale_of(request),
        )  # fmt: skip
        return JSONResponse(document, status_code=error.status, media_type=PROBLEM_MEDIA_TYPE)
    return JSONResponse({"items": [{"value": str(i), "label": label} for i, label in found]})


# --- export ---------------------------------------------------------------------------------------


@router.get("/exports/{plural}")
def export_list(request: Request, plural: str, format: str = "csv") -> Response:
    """The list as filtered on screen (every page of it), as CSV or XLSX, through the export
    module: masked fields absent, formula-like text neutralized."""
    _user, actor = require_user(request)
    spec = spec_for(plural)
    try:
        fmt = ExportFormat(format)
    except ValueError:
        raise NotFound("export format", format) from None
    params = {
        k: v
        for k, v in request.query_params.items()
        if v.strip() and k not in ("format", "limit", "cursor", "saved", "deleted")
    }
    database = database_of(request)
    with database.reading(actor) as session:
        exporting.check_export(session, actor, spec.record_type, params)
    name = exporting.export_file_name(plural, fmt, utcnow().date())
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt is ExportFormat.XLSX:
        spooled = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - closed by the response
        with database.reading(actor) as session:
            exporting.write_xlsx(session, actor, spec.record_type, params, spooled)
        spooled.seek(0)

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := spooled.read(1 << 16):
                    yield chunk
            finally:
                spooled.close()

        return StreamingResponse(chunks(), media_type=exporting.MEDIA_TYPES[fmt], headers=headers)

    def csv_chunks() -> Iterator[bytes]:
        with database.reading(actor) as session:
            yield from exporting.iter_csv(session, actor, spec.record_type, params)

    return StreamingResponse(csv_chunks(), media_type=exporting.MEDIA_TYPES[fmt], headers=headers)


# --- forms ----------------------------------------------------------------------------------------


@dataclass
class FormField:
    """An input as the template draws it: its value, options, message."""

    name: str
    label: str
    kind: str
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    required: bool = False
    wide: bool = False
    help: str | None = None
    error: str | None = None
    readonly: bool = False
    multiple: bool = False
    section: str = "basics"
    #: where a pick list asks for records beyond the ones it loaded (``/options/<noun>``)
    lookup: str | None = None

    @property
    def dom_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def selected(self) -> set[str]:
        if isinstance(self.value, list):
            return {str(v) for v in self.value}
        return {str(self.value)} if self.value not in (None, "") else set()


def _input_value(kind: str, value: Any) -> Any:
    """A stored value as an input's ``value`` attribute."""
    if value is None:
        return [] if kind == "refs" else ""
    if kind == "refs":
        return [str(item) for item in value]
    if kind == "datetime":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            moment = moment.astimezone(i18n.DISPLAY_ZONE)
        return moment.strftime("%Y-%m-%dT%H:%M")
    if kind == "tristate":
        return "true" if value is True else "false" if value is False else ""
    if isinstance(value, date):
        return value.isoformat()
    return str(getattr(value, "value", value))


def _parse_datetime(text: str) -> str:
    """A ``datetime-local`` input's value, read in the display zone, as ISO 8601 with its offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # the schema names the problem
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=i18n.DISPLAY_ZONE)
    return moment.isoformat()


def _inputs(session: Session, spec: PageSpec, actor: Actor, *, creating: bool) -> list[Input]:
    hidden = masked(session, actor, spec) | (spec.withheld(session, actor) if spec.withheld else frozenset())
    return [
        item
        for item in spec.inputs
        if item.name not in hidden and not (creating and item.edit_only) and not (not creating and item.create_only)
    ]


def form_values(session: Session, spec: PageSpec, actor: Actor, form: FormData, *, creating: bool) -> dict[str, Any]:
    """The request body the form makes: on a new record, the inputs filled in; on an edit, every
    input (an emptied one clears the field)."""
    data: dict[str, Any] = {}
    for item in _inputs(session, spec, actor, creating=creating):
        if item.kind == "refs":
            chosen = [str(v).strip() for v in form.getlist(item.name) if str(v).strip()]
            if chosen or not creating:
                data[item.name] = chosen  # an emptied list on an edit clears it
            continue
        raw = form.get(item.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if not creating:
                data[item.name] = None
            continue
        if item.kind == "datetime":
            data[item.name] = _parse_datetime(text)
        elif item.kind == "tristate":
            data[item.name] = text
        else:
            data[item.name] = text
    return data


def custom_values(definitions: Sequence[Definition], form: FormData, *, creating: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in definitions:
        if definition.field_type is FieldType.FORMULA:
            continue
        key = customfields.PREFIX + definition.name
        if definition.field_type is FieldType.MULTI_CHOICE:
            chosen = [str(v) for v in form.getlist(key) if str(v).strip()]
            if chosen or not creating:
                values[definition.name] = chosen or None
            continue
        raw = form.get(key)
        text = raw.strip() if isinstance(raw, str) else ""
        if text:
            values[definition.name] = text
        elif not creating:
            values[definition.name] = None
    return values


def schema_problems(error: ValidationError) -> list[FieldProblem]:
    """pydantic's errors as field problems named as the service names them (``custom.<name>``)."""
    problems = []
    for item in error.errors(include_url=False):
        location = [str(part) for part in item["loc"]]
        if location and location[0] == "custom" and len(location) > 1:
            name = customfields.PREFIX + location[1]
        else:
            name = location[0] if location else ""
        message = str(item["msg"]).removeprefix("Value error, ")  # a validator's own sentence (e.g. the phone rule)
        problems.append(FieldProblem(name, message, str(item["type"])))
    return problems


def build_fields(
    session: Session,
    actor: Actor,
    spec: PageSpec,
    *,
    creating: bool,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    locale: str,
    definitions: Sequence[Definition],
) -> list[FormField]:
    gettext = translations(locale).gettext
    fields: list[FormField] = []
    option_cache: dict[str, list[tuple[int, str]]] = {}
    for item in _inputs(session, spec, actor, creating=creating):
        value = values.get(item.name)
        options: list[tuple[str, str]] = []
        lookup: str | None = None
        if item.kind == "choice":
            options = [(code, choice_label(gettext, code)) for code in item.choices]
        elif item.kind == "ref" and item.reference is not None:
            where = None
            if item.reference == "contact" and values.get("account_id"):
                try:
                    where = {"account_id": int(str(values["account_id"]))}
                except ValueError:
                    where = None
            key = f"{item.reference}:{where}"
            if key not in option_cache:
                option_cache[key] = options_of(session, actor, item.reference, where=where)
            found = option_cache[key]
            options = [(str(i), label) for i, label in found]
            if where is None and item.reference in LOOKUP_NOUNS:
                lookup = f"/options/{item.reference}"
            if value not in (None, "") and str(value) not in {o[0] for o in options}:
                names = names_of(session, actor, item.reference, [int(str(value))] if str(value).isdecimal() else [])
                options.insert(0, (str(value), names.get(int(str(value)), f"#{value}") if names else f"#{value}"))
        elif item.kind == "refs" and item.reference is not None:
            options = [(str(i), label) for i, label in options_of(session, actor, item.reference)]
            value = [str(v) for v in value] if isinstance(value, list) else []
        elif item.kind == "tristate":
            options = [("true", gettext("Yes")), ("false", gettext("No"))]
        fields.append(
            FormField(
                item.name,
                gettext(spec.label(item.name)),
                "multi" if item.kind == "refs" else item.kind,
                value=value if value is not None else "",
                options=options,
                required=item.required or (item.name == "name"),
                wide=item.wide,
                help=gettext(item.help) if item.help else None,
                error=errors.get(item.name),
                multiple=item.kind == "refs",
                section=SECTION_OF.get(spec.plural, {}).get(item.name, "basics"),
                lookup=lookup,
            )
        )
    for definition in definitions:
        key = customfields.PREFIX + definition.name
        kind = {
            FieldType.TEXT: "text",
            FieldType.NUMBER: "number",
            FieldType.MONEY: "money",
            FieldType.DATE: "date",
            FieldType.CHOICE: "choice",
            FieldType.MULTI_CHOICE: "multi",
            FieldType.USER: "ref",
            FieldType.RECORD_LINK: "ref",
            FieldType.BOOLEAN: "tristate",
            FieldType.FORMULA: "formula",
        }[definition.field_type]
        value = values.get(key)
        options = []
        if definition.field_type in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
            options = [
                (c["value"], c.get("label_en" if locale == "en" else "label_zh") or c["value"])
                for c in definition.choices
            ]
        elif definition.field_type is FieldType.USER:
            options = [(str(i), label) for i, label in options_of(session, actor, "user")]
        elif definition.field_type is FieldType.RECORD_LINK and definition.link_type:
            options = [(str(i), label) for i, label in options_of(session, actor, definition.link_type)]
        elif definition.field_type is FieldType.BOOLEAN:
            options = [("true", gettext("Yes")), ("false", gettext("No"))]
            value = "true" if value is True else "false" if value is False else (value or "")
        help_text = definition.help_en if locale == "en" else definition.help_zh
        rule = definition.rule
        limits = []
        if rule.min_value is not None:
            limits.append(f"≥ {rule.min_value}")
        if rule.max_value is not None:
            limits.append(f"≤ {rule.max_value}")
        if limits:
            help_text = " ".join([help_text or "", f"({', '.join(limits)})"]).strip()
        if definition.field_type is FieldType.FORMULA:
            help_text = help_text or gettext("Computed from its formula.")
        fields.append(
            FormField(
                key,
                definition.label(locale),
                kind,
                value=value if value is not None else ([] if kind == "multi" else ""),
                options=options,
                required=definition.required,
                help=help_text,
                error=errors.get(key),
                readonly=kind == "formula",
                multiple=kind == "multi",
                section="custom",
            )
        )
    return fields


def _stored_values(spec: PageSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    values = {item.name: _input_value(item.kind, record.get(item.name)) for item in spec.inputs if item.name in record}
    for name, value in (record.get("custom") or {}).items():
        values[customfields.PREFIX + name] = value
    return values


def _posted_values(spec: PageSpec, form: FormData, definitions: Sequence[Definition]) -> dict[str, Any]:
    values: dict[str, Any] = {
        item.name: [str(v) for v in form.getlist(item.name)] if item.kind == "refs" else form.get(item.name) or ""
        for item in spec.inputs
    }
    for definition in definitions:
        key = customfields.PREFIX + definition.name
        if definition.field_type is FieldType.MULTI_CHOICE:
            values[key] = [str(v) for v in form.getlist(key)]
        else:
            values[key] = form.get(key) or ""
    return values


def _render_form(
    request: Request,
    user: User,
    actor: Actor,
    spec: PageSpec,
    *,
    record: Mapping[str, Any] | None,
    values: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
    message: str | None = None,
    stale: bool = False,
    status_code: int = 200,
    next_path: str | None = None,
    heading: str | None = None,
) -> Response:
    locale = locale_of(request)
    creating = record is None
    with database_of(request).reading(actor) as session:
        definitions = customfields.readable(session, actor, spec.noun) if spec.record_type.customizable else []
        fields = build_fields(
            session,
            actor,
            spec,
            creating=creating,
            values=values,
            errors=errors or {},
            locale=locale,
            definitions=definitions
            if creating is False
            else [d for d in definitions if d.field_type is not FieldType.FORMULA],
        )
    gettext = translations(locale).gettext
    unplaced = [text for name, text in (errors or {}).items() if name not in {f.name for f in fields}]
    sections = [
        (gettext(label), [f for f in fields if f.section == key])
        for key, label in SECTIONS.items()
        if any(f.section == key for f in fields)
    ]
    context = {
        "user": user,
        "actor": actor,
        "spec": spec,
        "record": record,
        "fields": fields,
        "sections": sections,
        "message": message,
        "unplaced": unplaced,
        "stale": stale,
        "next": next_path,
        "heading": heading or (gettext(spec.new_label) if creating else None),
        "action": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "error_count": len(errors or {}),
        "can_delete": spec.delete is not None and actor.can(f"{spec.plural}:delete"),
    }
    return render(request, "records/form.html", context, status_code=status_code)


def _problems_to_errors(gettext: Callable[[str], str], problems: Iterable[FieldProblem]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in problems:
        name = problem.field.split(".")[0] if not problem.field.startswith(customfields.PREFIX) else problem.field
        if not name.startswith(customfields.PREFIX) and "." in problem.field:
            name = problem.field.split(".")[0]
        errors.setdefault(name or "_", field_message(gettext, problem))
    return errors


_PRESETS = ("account_id", "contact_id", "opportunity_id", "lead_id")
_ABOUT = _PRESETS
ABOUT_NOTHING = N_("Choose the account, contact, opportunity or lead this activity is about.")


def _presets(request: Request, actor: Actor, spec: PageSpec) -> dict[str, Any]:
    """The records a new form starts chosen from its address (``/opportunities/new?account_id=12``,
    the account page's actions): each a field of the form, and a record the reader may see — one out
    of reach (another rep's, another organization's, none at all) is left unchosen, never shown."""
    wanted: dict[str, int] = {}
    for name in _PRESETS:
        given = request.query_params.get(name, "").strip()
        if given.isdecimal() and int(given) <= MAX_ID and any(i.name == name for i in spec.inputs):
            wanted[name] = int(given)
    if not wanted:
        return {}
    with database_of(request).reading(actor) as session:
        return {
            name: str(record_id)
            for name, record_id in wanted.items()
            if actor.can(f"{records.record_type_for(name.removesuffix('_id')).plural}:read")
            and record_id in names_of(session, actor, name.removesuffix("_id"), [record_id])
        }


def _new_handler(plural: str) -> Callable[[Request], Response]:
    def new_record(request: Request) -> Response:
        user, actor = require_user(request)
        spec = spec_for(plural)
        records.require_write(actor, spec.record_type)
        values = _presets(request, actor, spec)
        kind = request.query_params.get("type")
        if plural == "activities":
            values["kind"] = kind if kind in _choices(ActivityKind) else "call"
            values["direction"] = "outbound"
            values["occurred_at"] = _input_value("datetime", utcnow())
        if plural == "accounts":
            values["currency"] = "CNY"
        if plural == "opportunities":
            values["currency"] = "CNY"
            values["stage"] = "prospecting"
        if plural == "contracts":
            values["currency"] = "CNY"
            if "opportunity_id" in values:
                values.update(_from_opportunity(request, actor, int(values["opportunity_id"])))
        if "owner_id" in {i.name for i in spec.inputs}:
            values.setdefault("owner_id", str(actor.user_id) if actor.user_id else "")
        gettext = translations(locale_of(request)).gettext
        heading = None
        if plural == "activities":
            heading = {
                "call": gettext("Log a call"),
                "email": gettext("Log an email"),
                "visit": gettext("Log a visit"),
            }.get(values["kind"], gettext("Log an activity"))
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=None,
            values=values,
            next_path=safe_next(request.query_params.get("next")),
            heading=heading,
        )

    new_record.__name__ = f"new_{plural}_page"
    return new_record


def _from_opportunity(request: Request, actor: Actor, opportunity_id: int) -> dict[str, Any]:
    """A new contract's fields taken from the deal it closes (as the rep may read it: a masked
    amount stays empty; an opportunity out of reach is 404 like everywhere else)."""
    with database_of(request).reading(actor) as session:
        deal = records.read_one(session, actor, opportunity_service.OPPORTUNITIES, opportunity_id)
    taken = {"title": deal.get("name"), "amount": deal.get("amount"), "currency": deal.get("currency")}
    if deal.get("account_id"):
        taken["account_id"] = deal["account_id"]
    return {name: _input_value("text", value) for name, value in taken.items() if value not in (None, "")}


def _check_editable(spec: PageSpec, record: Mapping[str, Any]) -> None:
    if spec.editable is not None and not spec.editable(record):
        raise Conflict(spec.not_editable, code="not_editable")


async def _posted(request: Request) -> FormData:
    return await request.form()


def _check_writable(actor: Actor, spec: PageSpec, record: Mapping[str, Any]) -> None:
    """A record read through the implicit parent read (the account of one's own deal) is not edited."""
    if not records.may_write_item(actor, spec.record_type, record):
        raise ReadOnly(spec.noun, record["id"])


def _after_save(spec: PageSpec, record_id: int, next_path: str | None) -> str:
    if next_path:
        return next_path
    if spec.plural in ("accounts", "opportunities", "contacts", "leads", "contracts"):
        return f"/{spec.plural}/{record_id}"
    return f"/{spec.plural}?saved={record_id}"


def _create_handler(plural: str) -> Callable[[Request], Any]:
    async def create_record(request: Request) -> Response:
        user, actor = require_user(request)
        spec = spec_for(plural)
        form = await _posted(request)
        require_csrf(request, str(form.get("csrf") or ""))
        return _save(request, user, actor, spec, form, record_id=None)

    create_record.__name__ = f"create_{plural}_page"
    return create_record


def _save(
    request: Request, user: User, actor: Actor, spec: PageSpec, form: FormData, *, record_id: int | None
) -> Response:
    """Validate the form with the API's schema, write through the service; on a problem, the form
    again with the user's input and each message beside its input (nothing stored)."""
    locale = locale_of(request)
    gettext = translations(locale).gettext
    creating = record_id is None
    next_path = safe_next(str(form.get("next") or ""))
    database = database_of(request)
    with database.reading(actor) as session:
        definitions = customfields.readable(session, actor, spec.noun) if spec.record_type.customizable else []
        data = form_values(session, spec, actor, form, creating=creating)
    custom = custom_values(definitions, form, creating=creating)
    if custom:
        data["custom"] = custom
    posted = _posted_values(spec, form, definitions)
    record: dict[str, Any] | None = None
    version = None
    if not creating:
        version_text = str(form.get("version") or "")
        version = int(version_text) if version_text.isdecimal() else None
        with database.reading(actor) as session:
            record = records.read_one(session, actor, spec.record_type, record_id or 0)
        _check_editable(spec, record)
        _check_writable(actor, spec, record)
    schema = spec.create_schema if creating else spec.update_schema
    try:
        body = schema.model_validate(data)
    except ValidationError as error:
        errors = _problems_to_errors(gettext, schema_problems(error))
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=_with_version(record, version),
            values=posted,
            errors=errors,
            status_code=422,
            next_path=next_path,
        )
    if not creating and spec.plural == "opportunities":
        body = _unchanged_stage_dropped(body, record)
    if spec.plural == "activities" and not any(data.get(name) for name in _ABOUT):
        # a form-logged interaction is always with someone (the API still accepts loose imports)
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=_with_version(record, version),
            values=posted,
            errors={"account_id": gettext(ABOUT_NOTHING)},
            status_code=422,
            next_path=next_path,
        )
    try:
        with database.unit_of_work(actor) as session:
            if creating:
                saved = spec.create(session, actor, data=body)
            else:
                saved = spec.update(session, actor, record_id or 0, body, version)
            saved_id = int(saved.id)
    except PreconditionFailed:
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=_with_version(record, version),
            values=posted,
            stale=True,
            status_code=409,
            next_path=next_path,
        )
    except DomainError as error:
        if not error.problems:
            if error.status == 404:
                raise
            return _render_form(
                request,
                user,
                actor,
                spec,
                record=_with_version(record, version),
                values=posted,
                message=(
                    gettext("Your role may not do this.")
                    if error.status == 403
                    # refusals that carry their own Chinese text (a duplicate account, CN-2)
                    else str(error.extra["message_zh"])
                    if locale.startswith("zh") and error.extra.get("message_zh")
                    else gettext(error.message)
                ),
                status_code=error.status,
                next_path=next_path,
            )
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=_with_version(record, version),
            values=posted,
            errors=_problems_to_errors(gettext, error.problems),
            status_code=422 if error.status in (400, 422) else error.status,
            next_path=next_path,
        )
    return RedirectResponse(_after_save(spec, saved_id, next_path), status_code=303)


def _with_version(record: Mapping[str, Any] | None, version: int | None) -> dict[str, Any] | None:
    """The record the form edits, carrying the version the user started from (a stale save keeps
    it, so saving again after reading the newer version is a deliberate act)."""
    if record is None:
        return None
    return {**record, "version": version if version is not None else record.get("version")}


def _unchanged_stage_dropped(body: BaseModel, record: Mapping[str, Any] | None) -> BaseModel:
    """An edit that leaves the stage as it was must not count as a stage move (which would ask for
    a lost reason again on a lost deal)."""
    stage = getattr(body, "stage", None)
    if record is not None and stage is not None and str(getattr(stage, "value", stage)) == str(record.get("stage")):
        return type(body).model_validate({k: v for k, v in body.model_dump(exclude_unset=True).items() if k != "stage"})
    return body


def _edit_handler(plural: str) -> Callable[[Request, int], Response]:
    def edit_record(request: Request, record_id: int) -> Response:
        user, actor = require_user(request)
        spec = spec_for(plural)
        with database_of(request).reading(actor) as session:
            record = records.read_one(session, actor, spec.record_type, record_id)
        records.require_write(actor, spec.record_type)
        _check_editable(spec, record)
        _check_writable(actor, spec, record)
        return _render_form(
            request,
            user,
            actor,
            spec,
            record=record,
            values=_stored_values(spec, record),
            next_path=safe_next(request.query_params.get("next")),
        )

    edit_record.__name__ = f"edit_{plural}_page"
    return edit_record


def _update_handler(plural: str) -> Callable[[Request, int], Any]:
    async def update_record(request: Request, record_id: int) -> Response:
        user, actor = require_user(request)
        spec = spec_for(plural)
        form = await _posted(request)
        require_csrf(request, str(form.get("csrf") or ""))
        return _save(request, user, actor, spec, form, record_id=record_id)

    update_record.__name__ = f"update_{plural}_page"
    return update_record


def _delete_handler(plural: str) -> Callable[[Request, int], Any]:
    async def delete_record(request: Request, record_id: int) -> Response:
        """Soft-delete through the service (permission, version and audit as in the API), then the
        list, which offers to undo it."""
        _, actor = require_user(request)
        spec = spec_for(plural)
        form = await _posted(request)
        require_csrf(request, str(form.get("csrf") or ""))
        if spec.delete is None:
            raise NotFound(spec.noun, record_id)
        version_text = str(form.get("version") or "")
        with database_of(request).unit_of_work(actor) as session:
            spec.delete(session, actor, record_id, int(version_text) if version_text.isdecimal() else None)
        return RedirectResponse(f"/{plural}?deleted={record_id}", status_code=303)

    delete_record.__name__ = f"delete_{plural}_page"
    return delete_record


def _restore_handler(plural: str) -> Callable[[Request, int], Any]:
    async def restore_record(request: Request, record_id: int) -> Response:
        """Undo a delete: the record comes back as it was (audited as restored)."""
        _, actor = require_user(request)
        spec = spec_for(plural)
        form = await _posted(request)
        require_csrf(request, str(form.get("csrf") or ""))
        with database_of(request).unit_of_work(actor) as session:
            records.restore(session, actor, spec.record_type, record_id)
        return RedirectResponse(_record_href(spec, record_id), status_code=303)

    restore_record.__name__ = f"restore_{plural}_page"
    return restore_record


for _plural in SPECS:
    router.add_api_route(f"/{_plural}", _list_handler(_plural), methods=["GET"])
    router.add_api_route(f"/{_plural}/new", _new_handler(_plural), methods=["GET"])
    router.add_api_route(f"/{_plural}/new", _create_handler(_plural), methods=["POST"])
    router.add_api_route(f"/{_plural}/{{record_id:int}}/edit", _edit_handler(_plural), methods=["GET"])
    router.add_api_route(f"/{_plural}/{{record_id:int}}/edit", _update_handler(_plural), methods=["POST"])
    router.add_api_route(f"/{_plural}/{{record_id:int}}/delete", _delete_handler(_plural), methods=["POST"])
    router.add_api_route(f"/{_plural}/{{record_id:int}}/restore", _restore_handler(_plural), methods=["POST"])


# --- the opportunity's read view ------------------------------------------------------------------


@router.get("/opportunities/{record_id:int}")
def opportunity_page(request: Request, record_id: int) -> Response:
    """An opportunity: its fields (masks applied), stage history, product lines and activities."""
    user, actor = require_user(request)
    spec = SPECS["opportunities"]
    locale = locale_of(request)
    gettext = translations(locale).gettext
    with database_of(request).reading(actor) as session:
        record = records.read_one(session, actor, spec.record_type, record_id)
        history = opportunity_service.stage_history(session, actor, opportunity_id=record_id)
        chance = win_probability(session, actor, record_id, locale=locale)
        decisions = automation.decisions_about(session, actor, {"opportunity": [record_id]})
        activities = records.read_page(
            session,
            actor,
            activity_service.ACTIVITIES,
            {"opportunity_id": str(record_id), "sort": "-occurred_at", "limit": "20"},
        ).items
        line_ids = list(record.get("product_line_ids") or [])
        people = names_of(
            session,
            actor,
            "user",
            [record.get("owner_id"), *(c.changed_by_id for c in history), *(a.get("user_id") for a in activities)],
        )
        lookups = {
            "user": people,
            "account": names_of(session, actor, "account", [record.get("account_id")]),
            "contact": names_of(
                session, actor, "contact", [record.get("contact_id"), *(a.get("contact_id") for a in activities)]
            ),
            "product": names_of(session, actor, "product", [record.get("product_id")]),
        }
        lines = names_of(session, actor, "product_line", line_ids)
        definitions = customfields.readable(session, actor, spec.noun)
        hidden = masked(session, actor, spec)
    shown = [  # stage and amount head the page
        "account_id",
        "contact_id",
        "margin",
        "expected_close_date",
        "owner_id",
        "product_id",
        "opened_at",
        "closed_at",
        "lost_reason",
    ]
    details = [
        (
            gettext(FIELD_LABELS[name]),
            _format(spec, name, record.get(name), record, locale=locale, gettext=gettext, lookups=lookups),
        )
        for name in shown
        if name not in hidden and name in record
    ]
    custom = record.get("custom") or {}
    details += [(d.label(locale), _custom_cell(d, custom.get(d.name), locale, gettext)) for d in definitions]
    activity_spec = SPECS["activities"]
    timeline = [
        {
            "id": a["id"],
            "kind": choice_label(gettext, a.get("kind")),
            "kind_code": str(a.get("kind")),
            "subject": a.get("subject") or "",
            "when": i18n.format_datetime(a.get("occurred_at"), locale),
            "by": people.get(a.get("user_id") or 0, ""),
            "outcome": a.get("outcome") or "",
            "edit": f"/{activity_spec.plural}/{a['id']}/edit",
        }
        for a in activities
    ]
    stages = [
        {
            "from": choice_label(gettext, c.from_stage) if c.from_stage else "—",
            "to": choice_label(gettext, c.to_stage),
            "to_code": str(c.to_stage),
            "when": i18n.format_datetime(c.changed_at, locale),
            "by": people.get(c.changed_by_id or 0, ""),
            "days": round(c.duration_seconds / 86400, 1) if c.duration_seconds is not None else None,
        }
        for c in history
    ]
    context = {
        "user": user,
        "actor": actor,
        "record": record,
        "details": details,
        "stages": stages,
        "timeline": timeline,
        "lines": [lines.get(i, f"#{i}") for i in line_ids],
        "stage_label": choice_label(gettext, record.get("stage")),
        "stage_code": str(record.get("stage")),
        "amount": _format(spec, "amount", record.get("amount"), record, locale=locale, gettext=gettext, lookups={}),
        "can_write": actor.can("opportunities:write"),
        "can_log": actor.can("activities:write"),
        "chance": chance,
        "decisions": decisions,
        "decisions_back": f"/opportunities/{record_id}",
        "decisions_log": f"/automation/decisions?record_type=opportunity&record_id={record_id}",
    }
    return render(request, "records/opportunity.html", context)
