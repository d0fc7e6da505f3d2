"""The data-quality rules: each finds the records of an organization that break it.

A rule is a small object: an id, a severity, its label in Chinese and English, the kinds of record
it looks at, how it is re-checked, and a function that returns its findings. Three ways of
re-checking (``Recheck``):

* ``CHANGED`` — the rule reads only the record itself: an incremental scan re-checks the records
  changed since the last watermark, and only them;
* ``DUE`` — the rule depends on time passing (a close date that slipped into the past, a title not
  confirmed for 180 days, a stage without progress for N days): an incremental scan re-checks the
  changed records plus those whose due boundary was crossed since the last scan's clock (a close
  date between the two scans' days, a confirmation date that turned 180 days old in between, a
  stage change or last activity that aged past N days, an activity logged since) — the only
  records whose state can differ from what the last scan found;
* ``ALWAYS`` — the rule depends on other records (a contact whose account was deleted): every scan
  runs it whole, as one indexed query;
* ``BLOCKS`` — duplicate names: the changed records' name keys are refreshed and only the records
  sharing a key with them (their *block*) are re-checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import OPEN_STAGES, LeadStatus, Stage
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity
from closeloop.crm.products.models import Product
from closeloop.crm.records import jsonable
from closeloop.db.scope import AnySelect, tenant_clause
from closeloop.quality import checks, names
from closeloop.quality.models import NameKey

#: ids per ``IN (...)`` list
CHUNK = 5000

MODELS: dict[str, Any] = {
    "account": Account,
    "contact": Contact,
    "lead": Lead,
    "opportunity": Opportunity,
    "product": Product,
}
PLURALS = {
    "account": "accounts",
    "contact": "contacts",
    "lead": "leads",
    "opportunity": "opportunities",
    "product": "products",
}


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Recheck(StrEnum):
    CHANGED = "changed"
    DUE = "due"
    ALWAYS = "always"
    BLOCKS = "blocks"


@dataclass(frozen=True, slots=True)
class Finding:
    """One record that breaks a rule: who owns it, what to call it, and what is wrong."""

    subject_type: str
    subject_id: int
    owner_id: int | None
    label: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What a rule may use: the session, the organization, the scan's clock and thresholds."""

    session: Session
    organization_id: int
    now: datetime
    title_days: int = 180
    stage_days: int = 30
    lead_hours: int = 24
    industries: frozenset[str] = checks.INDUSTRIES
    #: an incremental scan's window: the clock of the last scan, and the watermark it re-checks from
    previous: datetime | None = None
    since: datetime | None = None

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True, slots=True)
class Check:
    """A rule's findings, and which records it looked at (``None``: every record it covers)."""

    findings: list[Finding]
    checked: dict[str, set[int]] | None


#: (context, changed ids per kind of record, or None for all) → a check
Finder = Callable[[Context, Mapping[str, Sequence[int]] | None], Check]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    label_en: str
    label_zh: str
    subjects: tuple[str, ...]
    recheck: Recheck
    find: Finder
    #: what to do about it, shown in the task
    advice_en: str = ""
    advice_zh: str = ""

    def label(self, locale: str) -> str:
        return self.label_en if locale.startswith("en") else self.label_zh

    def advice(self, locale: str) -> str:
        return self.advice_en if locale.startswith("en") else self.advice_zh

    @staticmethod
    def link(subject_type: str, subject_id: int) -> str:
        """Where the record is fixed (its API resource until the web pages for records exist)."""
        return f"/api/v1/{PLURALS[subject_type]}/{subject_id}"


# --- helpers ------------------------------------------------------------------------------------


def chunks(values: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _rows(ctx: Context, model: Any, statement: AnySelect, ids: Sequence[int] | None) -> Iterator[Any]:
    """Rows of ``statement`` over the organization's live ``model`` records (only ``ids`` when given)."""
    statement = statement.where(tenant_clause(ctx.organization_id, model))
    if ids is None:
        yield from ctx.session.execute(statement.order_by(model.id).execution_options(yield_per=CHUNK))
        return
    for chunk in chunks(sorted(ids)):
        yield from ctx.session.execute(statement.where(model.id.in_(chunk)))


def _blank(column: Any) -> Any:
    return or_(column.is_(None), func.trim(column) == "")


def _fields(**values: Any) -> dict[str, Any]:
    return {"fields": {name: jsonable(value) for name, value in values.items()}}


def _per_record(
    subject_type: str,
    select_columns: Callable[[], AnySelect],
    judge: Callable[[Any], dict[str, Any] | None],
) -> Finder:
    """A ``CHANGED`` rule over one kind of record: ``select_columns`` picks candidate rows (with
    ``id``, ``owner_id`` and ``label`` first), ``judge`` returns the details of a defect or ``None``."""

    def find(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
        ids = None if changed is None else changed.get(subject_type, ())
        model = MODELS[subject_type]
        findings = []
        if ids is None or ids:
            for row in _rows(ctx, model, select_columns(), ids):
                details = judge(row)
                if details is not None:
                    findings.append(Finding(subject_type, row.id, row.owner_id, row.label or "", details))
        return Check(findings, None if ids is None else {subject_type: set(ids)})

    return find


def _always(
    subject_type: str, statement: Callable[[Context], AnySelect], judge: Callable[[Any], dict[str, Any]]
) -> Finder:
    """An ``ALWAYS`` rule: one query (columns ``id``, ``owner_id``, ``label`` first) over all records."""

    def find(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
        model = MODELS[subject_type]
        findings = [
            Finding(subject_type, row.id, row.owner_id, row.label or "", judge(row))
            for row in _rows(ctx, model, statement(ctx), None)
        ]
        return Check(findings, None)

    return find


def _due(
    subject_type: str,
    statement: Callable[[Context], AnySelect],
    judge: Callable[[Any], dict[str, Any]],
    crossing: Callable[[Context, datetime], Iterable[AnySelect]],
) -> Finder:
    """A ``DUE`` rule: whole on a full scan; on an incremental one, over the changed records and
    those ``crossing`` selects (ids whose state can have changed since the last scan's clock, which
    it receives) — the same findings among them as a full scan, and nothing else can differ."""

    def find(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
        model = MODELS[subject_type]
        previous = ctx.previous
        if changed is None or previous is None or previous > ctx.now:
            ids: set[int] | None = None
        else:
            ids = set(changed.get(subject_type, ()))
            for candidates in crossing(ctx, previous):
                ids.update(ctx.session.scalars(candidates))
        if ids is not None and not ids:
            return Check([], {subject_type: set()})
        findings = [
            Finding(subject_type, row.id, row.owner_id, row.label or "", judge(row))
            for row in _rows(ctx, model, statement(ctx), None if ids is None else sorted(ids))
        ]
        return Check(findings, None if ids is None else {subject_type: ids})

    return find


def _combined(*finders: Finder) -> Finder:
    """One rule over several kinds of record (each finder covers one)."""

    def find(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
        findings: list[Finding] = []
        checked: dict[str, set[int]] | None = None if changed is None else {}
        for finder in finders:
            result = finder(ctx, changed)
            findings.extend(result.findings)
            if checked is not None and result.checked is not None:
                checked.update(result.checked)
        return Check(findings, checked)

    return find


# --- contact details ------------------------------------------------------------------------------


def _mobile_missing() -> Finder:
    return _per_record(
        "contact",
        lambda: select(Contact.id, Contact.owner_id, Contact.name.label("label")).where(
            Contact.deleted_at.is_(None), _blank(Contact.mobile)
        ),
        lambda row: {},
    )


def _phones(subject_type: str, model: Any, columns: tuple[str, ...]) -> Finder:
    label = model.name.label("label")

    def judge(row: Any) -> dict[str, Any] | None:
        problems = {
            column: problem
            for column in columns
            if (value := getattr(row, column)) and (problem := checks.phone_problem(value)) is not None
        }
        if not problems:
            return None
        return {**_fields(**{column: getattr(row, column) for column in problems}), "problems": problems}

    return _per_record(
        subject_type,
        lambda: select(model.id, model.owner_id, label, *(getattr(model, c) for c in columns)).where(
            model.deleted_at.is_(None), or_(*(getattr(model, c).is_not(None) for c in columns))
        ),
        judge,
    )


def _emails(subject_type: str, model: Any) -> Finder:
    def judge(row: Any) -> dict[str, Any] | None:
        problem = checks.email_problem(row.email) if row.email and row.email.strip() else None
        return None if problem is None else {**_fields(email=row.email), "problems": {"email": problem}}

    return _per_record(
        subject_type,
        lambda: select(model.id, model.owner_id, model.name.label("label"), model.email).where(
            model.deleted_at.is_(None), model.email.is_not(None)
        ),
        judge,
    )


def _addresses(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
    ids = None if changed is None else changed.get("account", ())
    statement = select(
        Account.id,
        Account.owner_id,
        Account.name.label("label"),
        Account.country,
        Account.province,
        Account.city,
        Account.address,
    ).where(Account.deleted_at.is_(None), ~_blank(Account.address))
    findings: list[Finding] = []
    if ids is None or ids:
        batch: list[Any] = []
        for row in _rows(ctx, Account, statement, ids):
            if checks.is_chinese_address(row.country):
                batch.append(row)
            if len(batch) >= 2000:
                findings.extend(_judge_addresses(batch))
                batch = []
        findings.extend(_judge_addresses(batch))
    return Check(findings, None if ids is None else {"account": set(ids)})


def _judge_addresses(rows: list[Any]) -> list[Finding]:
    parsed = checks.parse_addresses([row.address for row in rows])
    retry = [
        index
        for index, result in enumerate(parsed)
        if not result.is_standard and (rows[index].province or rows[index].city)
    ]
    if retry:
        again = checks.parse_addresses(
            [f"{rows[i].province or ''}{rows[i].city or ''}{rows[i].address}" for i in retry]
        )
        for index, result in zip(retry, again, strict=True):
            if result.is_standard:
                parsed[index] = result
    findings = []
    for row, result in zip(rows, parsed, strict=True):
        reason = None
        if not result.is_standard:
            missing = [
                name
                for name, value in (("province", result.province), ("city", result.city), ("district", result.district))
                if not value
            ]
            reason = f"{', '.join(missing)} not recognized" if missing else (result.note or result.status)
        elif row.province and not checks.same_division(row.province, result.province):
            reason = f"province {row.province} disagrees with the address ({result.province})"
        elif row.city and not checks.same_division(row.city, result.city):
            reason = f"city {row.city} disagrees with the address ({result.city})"
        if reason is not None:
            details = {
                **_fields(address=row.address, province=row.province, city=row.city),
                "parsed": {"province": result.province, "city": result.city, "district": result.district},
                "reason": reason,
            }
            findings.append(Finding("account", row.id, row.owner_id, row.label or "", details))
    return findings


# --- picklists and segmentation -------------------------------------------------------------------


def _industry_missing() -> Finder:
    return _per_record(
        "account",
        lambda: select(Account.id, Account.owner_id, Account.name.label("label")).where(
            Account.deleted_at.is_(None), _blank(Account.industry)
        ),
        lambda row: {},
    )


def _unknown_values(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
    def account(row: Any) -> dict[str, Any] | None:
        problems: dict[str, Any] = {}
        if row.industry and (found := checks.industry_problem(row.industry, ctx.industries)):
            problems["industry"] = {"reason": found[0], "suggestion": found[1]}
        if row.country and (found := checks.country_problem(row.country)):
            problems["country"] = {"reason": found[0], "suggestion": found[1]}
        if not problems:
            return None
        return {**_fields(**{name: getattr(row, name) for name in problems}), "problems": problems}

    def lead(row: Any) -> dict[str, Any] | None:
        found = checks.industry_problem(row.industry, ctx.industries) if row.industry else None
        if not found:
            return None
        return {
            **_fields(industry=row.industry),
            "problems": {"industry": {"reason": found[0], "suggestion": found[1]}},
        }

    return _combined(
        _per_record(
            "account",
            lambda: select(
                Account.id, Account.owner_id, Account.name.label("label"), Account.industry, Account.country
            ).where(Account.deleted_at.is_(None), or_(Account.industry.is_not(None), Account.country.is_not(None))),
            account,
        ),
        _per_record(
            "lead",
            lambda: select(Lead.id, Lead.owner_id, Lead.name.label("label"), Lead.industry).where(
                Lead.deleted_at.is_(None), Lead.industry.is_not(None)
            ),
            lead,
        ),
    )(ctx, changed)


# --- opportunities -----------------------------------------------------------------------------------

_LATE = (Stage.PROPOSAL.value, Stage.NEGOTIATION.value)
_OPEN = tuple(stage.value for stage in OPEN_STAGES)


def _amount_missing() -> Finder:
    return _per_record(
        "opportunity",
        lambda: select(Opportunity.id, Opportunity.owner_id, Opportunity.name.label("label"), Opportunity.stage).where(
            Opportunity.deleted_at.is_(None),
            Opportunity.stage.in_(_LATE),
            or_(Opportunity.amount.is_(None), Opportunity.amount == 0),
        ),
        lambda row: _fields(stage=row.stage, amount=None),
    )


def _close_date_past(ctx: Context) -> AnySelect:
    return select(
        Opportunity.id,
        Opportunity.owner_id,
        Opportunity.name.label("label"),
        Opportunity.stage,
        Opportunity.expected_close_date,
    ).where(
        Opportunity.deleted_at.is_(None),
        Opportunity.stage.in_(_OPEN),
        Opportunity.expected_close_date < ctx.today,
    )


def _close_date_crossed(ctx: Context, previous: datetime) -> list[AnySelect]:
    """Open opportunities whose expected close date fell between the last scan's day and today."""
    return [
        select(Opportunity.id).where(
            tenant_clause(ctx.organization_id, Opportunity),
            Opportunity.expected_close_date >= previous.date(),
            Opportunity.expected_close_date < ctx.today,
        )
    ]


def _stage_crossed(ctx: Context, previous: datetime) -> list[AnySelect]:
    """Opportunities whose stage change or an activity aged past the limit since the last scan, and
    those with an activity logged, changed or deleted since the watermark."""
    cutoff = ctx.now - timedelta(days=ctx.stage_days)
    earlier = previous - timedelta(days=ctx.stage_days)
    found = [
        select(Opportunity.id).where(
            tenant_clause(ctx.organization_id, Opportunity),
            Opportunity.stage_changed_at >= earlier,
            Opportunity.stage_changed_at < cutoff,
        ),
        select(Activity.opportunity_id).where(
            tenant_clause(ctx.organization_id, Activity),
            Activity.opportunity_id.is_not(None),
            Activity.occurred_at >= earlier,
            Activity.occurred_at < cutoff,
        ),
    ]
    if ctx.since is not None:
        found.append(
            select(Activity.opportunity_id).where(
                tenant_clause(ctx.organization_id, Activity, include_deleted=True),
                Activity.opportunity_id.is_not(None),
                Activity.updated_at > ctx.since,
            )
        )
    return found


def _stage_stale(ctx: Context) -> AnySelect:
    cutoff = ctx.now - timedelta(days=ctx.stage_days)
    # Uncorrelated on purpose: a correlated EXISTS let SQLite's planner walk the organization's recent
    # activities (by occurred_at) once per opportunity — quadratic on a large tenant. ``NOT IN`` over
    # the recent activities' opportunities is read once (an ephemeral index on SQLite, a hashed
    # subplan on PostgreSQL), so the rule grows with the records.
    recently_logged = select(Activity.opportunity_id).where(
        tenant_clause(ctx.organization_id, Activity),
        Activity.opportunity_id.is_not(None),
        Activity.occurred_at >= cutoff,
    )
    return select(
        Opportunity.id,
        Opportunity.owner_id,
        Opportunity.name.label("label"),
        Opportunity.stage,
        Opportunity.stage_changed_at,
    ).where(
        Opportunity.deleted_at.is_(None),
        Opportunity.stage.in_(_OPEN),
        Opportunity.stage_changed_at < cutoff,
        Opportunity.id.not_in(recently_logged),
    )


def _live_account(ctx: Context) -> Any:
    return exists().where(tenant_clause(ctx.organization_id, Account), Account.id == Opportunity.account_id)


def _without_account(ctx: Context) -> AnySelect:
    return select(Opportunity.id, Opportunity.owner_id, Opportunity.name.label("label"), Opportunity.stage).where(
        Opportunity.deleted_at.is_(None), Opportunity.stage.in_(_OPEN), ~_live_account(ctx)
    )


def _no_decision_role(ctx: Context) -> AnySelect:
    with_role = and_(tenant_clause(ctx.organization_id, Contact), Contact.decision_role.is_not(None))
    at_account = exists().where(with_role, Contact.account_id == Opportunity.account_id)
    named = exists().where(with_role, Contact.id == Opportunity.contact_id)
    return select(Opportunity.id, Opportunity.owner_id, Opportunity.name.label("label"), Opportunity.account_id).where(
        Opportunity.deleted_at.is_(None), Opportunity.stage.in_(_OPEN), ~at_account, ~named
    )


# --- contacts and leads ----------------------------------------------------------------------------


def _title_crossed(ctx: Context, previous: datetime) -> list[AnySelect]:
    """Contacts whose title confirmation turned ``title_days`` old between the last scan and today."""
    return [
        select(Contact.id).where(
            tenant_clause(ctx.organization_id, Contact),
            Contact.title_confirmed_on >= previous.date() - timedelta(days=ctx.title_days),
            Contact.title_confirmed_on < ctx.today - timedelta(days=ctx.title_days),
        )
    ]


def _title_stale(ctx: Context) -> AnySelect:
    cutoff = ctx.today - timedelta(days=ctx.title_days)
    return select(
        Contact.id, Contact.owner_id, Contact.name.label("label"), Contact.title, Contact.title_confirmed_on
    ).where(
        Contact.deleted_at.is_(None),
        or_(Contact.title_confirmed_on.is_(None), Contact.title_confirmed_on < cutoff),
    )


def _orphan(ctx: Context) -> AnySelect:
    live = exists().where(tenant_clause(ctx.organization_id, Account), Account.id == Contact.account_id)
    return select(Contact.id, Contact.owner_id, Contact.name.label("label"), Contact.account_id).where(
        Contact.deleted_at.is_(None), ~live
    )


def _unassigned_crossed(ctx: Context, previous: datetime) -> list[AnySelect]:
    """Leads whose wait for an owner passed the limit between the last scan and now."""
    return [
        select(Lead.id).where(
            tenant_clause(ctx.organization_id, Lead),
            Lead.received_at >= previous - timedelta(hours=ctx.lead_hours),
            Lead.received_at < ctx.now - timedelta(hours=ctx.lead_hours),
        )
    ]


def _unassigned(ctx: Context) -> AnySelect:
    cutoff = ctx.now - timedelta(hours=ctx.lead_hours)
    waiting = (LeadStatus.NEW.value, LeadStatus.WORKING.value, LeadStatus.QUALIFIED.value)
    return select(Lead.id, Lead.owner_id, Lead.name.label("label"), Lead.received_at).where(
        Lead.deleted_at.is_(None), Lead.owner_id.is_(None), Lead.status.in_(waiting), Lead.received_at < cutoff
    )


# --- duplicates ------------------------------------------------------------------------------------


def refresh_name_keys(ctx: Context, subject_type: str, ids: Sequence[int] | None) -> set[tuple[str, str]]:
    """Recompute the name keys of ``ids`` (every record when ``None``) and return the keys, old and
    new, that the change touched (``("name", key)`` / ``("sound", key)``): the blocks to re-check."""
    model = MODELS[subject_type]
    session = ctx.session
    scope = [tenant_clause(ctx.organization_id, NameKey), NameKey.subject_type == subject_type]
    touched: set[tuple[str, str]] = set()
    if ids is None:
        session.execute(delete(NameKey).where(*scope))
    else:
        for chunk in chunks(sorted(ids)):
            for name_key, sound_key in session.execute(
                select(NameKey.name_key, NameKey.sound_key).where(*scope, NameKey.subject_id.in_(chunk))
            ):
                touched.update({("name", name_key), ("sound", sound_key)})
            session.execute(delete(NameKey).where(*scope, NameKey.subject_id.in_(chunk)))
    rows = []
    statement = select(model.id, model.name).where(model.deleted_at.is_(None))
    for row in _rows(ctx, model, statement, ids):
        key = names.name_key(row.name or "")
        if not key:
            continue
        sound = names.sound_key(key)
        touched.update({("name", key), ("sound", sound)})
        rows.append(
            {
                "organization_id": ctx.organization_id,
                "subject_type": subject_type,
                "subject_id": row.id,
                "name_key": key[:200],
                "sound_key": sound[:400],
            }
        )
        if len(rows) >= CHUNK:
            session.execute(insert(NameKey), rows)
            rows = []
    if rows:
        session.execute(insert(NameKey), rows)
    return touched


def _duplicates(subject_type: str) -> Finder:
    """Records whose name key or pinyin key equals an older record's (blocking on both keys, so the
    work grows with the records in the touched blocks, not with all pairs)."""
    model = MODELS[subject_type]

    def find(ctx: Context, changed: Mapping[str, Sequence[int]] | None) -> Check:
        ids = None if changed is None else changed.get(subject_type, ())
        if ids is not None and not ids:
            return Check([], {subject_type: set()})
        touched = refresh_name_keys(ctx, subject_type, ids)
        scope = [tenant_clause(ctx.organization_id, NameKey), NameKey.subject_type == subject_type]
        groups: dict[tuple[str, str], list[int]] = {}
        members: set[int] = set(ids or ())
        for kind, column in (("name", NameKey.name_key), ("sound", NameKey.sound_key)):
            if ids is None:
                keys = list(ctx.session.scalars(select(column).where(*scope).group_by(column).having(func.count() > 1)))
            else:
                # every record in a touched block is re-checked, alone in it now or not
                keys = sorted(key for k, key in touched if k == kind)
            for chunk in chunks(keys):  # type: ignore[arg-type]
                statement = select(column, NameKey.subject_id).where(*scope, column.in_(chunk))
                for key, subject_id in ctx.session.execute(statement):
                    groups.setdefault((kind, key), []).append(subject_id)
                    members.add(subject_id)
        groups = {key: ids_ for key, ids_ in groups.items() if len(ids_) > 1}
        first: dict[int, tuple[int, str]] = {}
        for (kind, _), group in groups.items():
            oldest = min(group)
            for member in group:
                if member != oldest and (member not in first or oldest < first[member][0]):
                    first[member] = (oldest, kind)
        labels: dict[int, tuple[str, int | None]] = {}
        wanted = sorted(set(first) | {oldest for oldest, _ in first.values()})
        owner = getattr(model, "owner_id", None)
        for chunk in chunks(wanted):
            columns = [model.id, model.name] + ([owner] if owner is not None else [])
            for row in ctx.session.execute(
                select(*columns).where(tenant_clause(ctx.organization_id, model), model.id.in_(chunk))
            ):
                labels[row[0]] = (row[1], row[2] if owner is not None else None)
        findings = [
            Finding(
                subject_type,
                member,
                labels[member][1],
                labels[member][0],
                {
                    **_fields(name=labels[member][0]),
                    "duplicate_of": oldest,
                    "duplicate_of_name": labels[oldest][0],
                    "match": "name" if kind == "name" else "pinyin",
                },
            )
            for member, (oldest, kind) in sorted(first.items())
            if member in labels and oldest in labels
        ]
        return Check(findings, None if ids is None else {subject_type: members})

    return find


# --- the rule book -----------------------------------------------------------------------------------

RULES: tuple[Rule, ...] = (
    Rule(
        "contact_mobile_missing",
        Severity.MEDIUM,
        "Contact has no mobile phone",
        "联系人缺少手机号",
        ("contact",),
        Recheck.CHANGED,
        _mobile_missing(),
        "Add the contact's mobile number.",
        "补充联系人的手机号码。",
    ),
    Rule(
        "phone_invalid",
        Severity.MEDIUM,
        "Phone number is not valid",
        "电话号码格式无效",
        ("contact", "lead", "account"),
        Recheck.CHANGED,
        _combined(
            _phones("contact", Contact, ("phone", "mobile")),
            _phones("lead", Lead, ("phone", "mobile")),
            _phones("account", Account, ("phone",)),
        ),
        "Correct the number: a mobile is 1[3-9] and 9 digits; a landline needs its area code.",
        "更正号码：手机号为 1[3-9] 开头的 11 位数字；座机需带区号。",
    ),
    Rule(
        "email_invalid",
        Severity.MEDIUM,
        "E-mail address is not valid",
        "邮箱格式无效",
        ("contact", "lead"),
        Recheck.CHANGED,
        _combined(_emails("contact", Contact), _emails("lead", Lead)),
        "Correct the e-mail address.",
        "更正邮箱地址。",
    ),
    Rule(
        "opportunity_no_decision_role",
        Severity.HIGH,
        "No decision-chain role among the opportunity's contacts",
        "商机联系人中没有决策链角色",
        ("opportunity",),
        Recheck.ALWAYS,
        _always("opportunity", _no_decision_role, lambda row: _fields(account_id=row.account_id)),
        "Name the decision maker, influencers and users among the account's contacts.",
        "在客户联系人中标注决策者、影响者、使用者等决策链角色。",
    ),
    Rule(
        "address_unstandardized",
        Severity.LOW,
        "Address is not standardized (province / city / district)",
        "地址未标准化（省/市/区无法识别）",
        ("account",),
        Recheck.CHANGED,
        _addresses,
        "Write the address with its province, city and district, matching the account's province and city.",
        "按“省/市/区 + 详细地址”填写，并与客户的省份、城市一致。",
    ),
    Rule(
        "contact_title_stale",
        Severity.LOW,
        "Contact's title not confirmed for 180 days",
        "联系人职位超过 180 天未确认",
        ("contact",),
        Recheck.DUE,
        _due(
            "contact",
            _title_stale,
            lambda row: _fields(title=row.title, title_confirmed_on=row.title_confirmed_on),
            _title_crossed,
        ),
        "Confirm the contact's title and set the confirmation date.",
        "与联系人确认当前职位，并更新职位确认日期。",
    ),
    Rule(
        "opportunity_stage_stale",
        Severity.MEDIUM,
        "Open opportunity with no progress logged lately",
        "商机阶段长期无推进记录",
        ("opportunity",),
        Recheck.DUE,
        _due(
            "opportunity",
            _stage_stale,
            lambda row: _fields(stage=row.stage, stage_changed_at=row.stage_changed_at),
            _stage_crossed,
        ),
        "Log the latest activity or move the stage.",
        "记录最新跟进，或推进商机阶段。",
    ),
    Rule(
        "account_duplicate",
        Severity.HIGH,
        "Possible duplicate account",
        "疑似重复客户",
        ("account",),
        Recheck.BLOCKS,
        _duplicates("account"),
        "Merge it into the older account, or rename it if it is a different company.",
        "与较早建立的客户合并；若确为不同公司，请修改名称以示区分。",
    ),
    Rule(
        "account_industry_missing",
        Severity.LOW,
        "Account has no industry",
        "客户缺少行业",
        ("account",),
        Recheck.CHANGED,
        _industry_missing(),
        "Set the account's industry.",
        "补充客户所属行业。",
    ),
    Rule(
        "opportunity_close_date_past",
        Severity.HIGH,
        "Open opportunity's expected close date has passed",
        "未关闭商机的预计成交日期已过",
        ("opportunity",),
        Recheck.DUE,
        _due(
            "opportunity",
            _close_date_past,
            lambda row: _fields(stage=row.stage, expected_close_date=row.expected_close_date),
            _close_date_crossed,
        ),
        "Move the expected close date, or close the opportunity as won or lost.",
        "更新预计成交日期，或将商机关闭为赢单/输单。",
    ),
    Rule(
        "opportunity_amount_missing",
        Severity.HIGH,
        "Late-stage opportunity has no amount",
        "后期阶段商机缺少金额",
        ("opportunity",),
        Recheck.CHANGED,
        _amount_missing(),
        "Enter the amount quoted or negotiated.",
        "填写报价或谈判中的商机金额。",
    ),
    Rule(
        "contact_orphan",
        Severity.MEDIUM,
        "Contact belongs to no account",
        "联系人未关联客户",
        ("contact",),
        Recheck.ALWAYS,
        _always("contact", _orphan, lambda row: _fields(account_id=row.account_id)),
        "Link the contact to their account.",
        "为联系人关联所属客户。",
    ),
    Rule(
        "lead_unassigned",
        Severity.MEDIUM,
        "Lead left unassigned",
        "线索无人跟进（未分配）",
        ("lead",),
        Recheck.DUE,
        _due("lead", _unassigned, lambda row: _fields(received_at=row.received_at), _unassigned_crossed),
        "Assign the lead to a rep.",
        "将线索分配给销售代表。",
    ),
    Rule(
        "opportunity_without_account",
        Severity.HIGH,
        "Open opportunity has no account",
        "未关闭商机没有关联客户",
        ("opportunity",),
        Recheck.ALWAYS,
        _always("opportunity", _without_account, lambda row: _fields(stage=row.stage)),
        "Link the opportunity to its account.",
        "为商机关联客户。",
    ),
    Rule(
        "unknown_value",
        Severity.LOW,
        "Value outside the picklist (industry, country)",
        "取值不在选项列表中（行业、国家）",
        ("account", "lead"),
        Recheck.CHANGED,
        _unknown_values,
        "Choose a value from the list (the nearest one is suggested).",
        "从选项中选择正确的值（已给出最接近的建议）。",
    ),
    Rule(
        "product_duplicate",
        Severity.MEDIUM,
        "Product name duplicates another product's",
        "产品名称与其他产品重复",
        ("product",),
        Recheck.ALWAYS,
        _duplicates("product"),
        "Keep one product and move its deals and orders to it; deactivate the other.",
        "保留一个产品，将商机和订单改挂到该产品，并停用另一个。",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def rules_for(ids: Iterable[str] | None = None) -> list[Rule]:
    return list(RULES) if ids is None else [RULES_BY_ID[i] for i in ids]
