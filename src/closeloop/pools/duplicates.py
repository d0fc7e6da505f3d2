"""Duplicate check and collision protection (CN-2, 查重/撞单).

A company is the same company when its name reduces to the same key — legal-form suffixes
(有限公司, 股份有限公司, Co., Ltd., Inc. …) dropped, full-width folded to half-width, traditional
characters folded to simplified, case and punctuation ignored — or to the same toneless pinyin
(``quality.names``); a person's number is the same number when it reads as the same E.164 number.
Names are compared whole: 北京大学 and 北京大学第一医院 are different organizations, and so are
华为技术 and 华为终端 (two companies of one group, each with its own account).

The check looks across the whole organization — accounts with an owner (private pools), accounts
without one (public pools) and leads not yet converted — not only at what the caller may see: a
collision with a colleague's account is exactly what it is for. What it shows of a record the
caller cannot see is the company's name and the owner masked (张** · 华东区), never its fields.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from closeloop.config import settings
from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import DomainError
from closeloop.crm.accounts.models import Account
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import LeadStatus
from closeloop.crm.leads.models import Lead
from closeloop.db.scope import RowAccess, tenant_clause, visibility_template
from closeloop.db.session import bound_chunks, execute_core, in_bound
from closeloop.org.models import Region, User
from closeloop.pools import service
from closeloop.pools.models import DuplicateMode
from closeloop.quality import names
from closeloop.quality.models import NameKey, Scan, ScanStatus

#: candidate rows read per lookup before the exact comparison in Python
CANDIDATES = 200
#: values per IN list of the set-based check
CHUNK = 1000
#: from this many new records on, a batch is checked set-based (a few statements that read the
#: organization's unconverted leads and stored numbers once); below it, record by record (five indexed
#: lookups each), so a short import into a large tenant does not read every lead
SET_BASED_FROM = 200
#: the separators ``_digits`` removes from a written number, for the same reduction in Python
_SEPARATORS = str.maketrans("", "", " -().+\u3000")

#: one match before its owner is labelled: kind, id, name, matched on, owner id, region id
Found = tuple[str, int, str, str, int | None, int | None]


@dataclass(frozen=True)
class Keys:
    """What the check compares of one company and number: the name key, its pinyin, the E.164 number."""

    key: str
    sound: str
    phone: str


def keys_of(name: str | None, mobile: str | None) -> Keys:
    """The keys of a company name and a number (empty strings for what is not given or not readable)."""
    key = names.name_key(name or "")
    return Keys(key, names.sound_key(key) if key else "", names.mobile_key(mobile or ""))


@dataclass(frozen=True)
class Match:
    kind: str  # "account" or "lead"
    id: int | None  # only when the caller may see the record
    name: str
    matched_on: str  # "name" or "mobile"
    owner: str  # masked: "张** · 华东区", or the public pool's name
    in_public_pool: bool
    #: whose it is, for the caller's own code (never rendered to other users)
    owner_id: int | None

    def public(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("owner_id")
        return body

    def describe(self, locale: str = "en") -> str:
        kind = {"account": ("account", "客户"), "lead": ("lead", "线索")}[self.kind]
        if locale.startswith("zh"):
            return f"{kind[1]}「{self.name}」（{self.owner}）"
        return f"{kind[0]} '{self.name}' ({self.owner})"


class DuplicateFound(DomainError):
    """409: the organization blocks duplicates and this one matches an existing record."""

    def __init__(self, matches: list[Match]) -> None:
        first = matches[0]
        super().__init__(
            f"Duplicate: this matches {first.describe('en')} by {first.matched_on}",
            code="duplicate_account",
            status=409,
            extra={
                "message_zh": f"重复：与{first.describe('zh')}的{'名称' if first.matched_on == 'name' else '手机号'}"
                "相同",
                "matches": [m.public() for m in matches],
            },
        )


def mask_person(name: str | None) -> str:
    """张三丰 → 张**, "Alice Wong" → A** (the first character kept; the length not told)."""
    if not name:
        return "—"
    return name[0] + "**"


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _digits(column: Any) -> ColumnElement[str]:
    """The column with the usual separators of a written phone number removed, in SQL."""
    expression: ColumnElement[str] = column
    for character in (" ", "-", "(", ")", ".", "+", "\u3000"):
        expression = func.replace(expression, character, "")
    return expression


def _national(key: str) -> str:
    import phonenumbers

    return str(phonenumbers.parse(key).national_number)


def _owner_labels(session: Session, organization_id: int, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(User.id, User.display_name, Region.name)
        .outerjoin(Region, Region.id == User.region_id)
        .where(tenant_clause(organization_id, User), User.id.in_(sorted(user_ids)))
    )
    return {row[0]: mask_person(row[1]) + (f" · {row[2]}" if row[2] else "") for row in rows}


def _may_see(actor: Actor, owner_id: int | None, *, unowned_visible: bool) -> bool:
    if actor.scope is RowScope.ALL:
        return True
    if owner_id is None:
        return unowned_visible
    return owner_id in actor.owner_ids


# The lookups of :func:`find_matches`, built once with bound parameters (``scope_organization_id``,
# ``key``, ``sound``, ``like``, ``tail``) and run as plain Core: an import checks every new row, so
# building, cache-keying and ORM-compiling five statements per row cost more than running them.
_ACCOUNT = Account.__table__.c
_LEAD = Lead.__table__.c
_CONTACT = Contact.__table__.c
_ACCOUNTS_BY_NAME = (
    select(_ACCOUNT.id, _ACCOUNT.name, _ACCOUNT.owner_id, _ACCOUNT.region_id)
    .where(
        visibility_template(Account, scoped=False, access=RowAccess.READ),
        or_(
            _ACCOUNT.id.in_(
                select(NameKey.__table__.c.subject_id).where(
                    visibility_template(NameKey, scoped=False, access=RowAccess.READ),
                    NameKey.__table__.c.subject_type == "account",
                    or_(
                        NameKey.__table__.c.name_key == bindparam("key"),
                        NameKey.__table__.c.sound_key == bindparam("sound"),
                    ),
                )
            ),
            _ACCOUNT.search_key.like(bindparam("like"), escape="\\"),
        ),
    )
    .order_by(_ACCOUNT.id.desc())
    .limit(CANDIDATES)
)
_LEADS_BY_NAME = (
    select(_LEAD.id, _LEAD.company, _LEAD.owner_id, _LEAD.region_id)
    .where(
        visibility_template(Lead, scoped=False, access=RowAccess.READ),
        _LEAD.status != LeadStatus.CONVERTED,
        _LEAD.company.is_not(None),
        _LEAD.search_key.like(bindparam("like"), escape="\\"),
    )
    .order_by(_LEAD.id.desc())
    .limit(CANDIDATES)
)
_ACCOUNTS_BY_PHONE = (
    select(_ACCOUNT.id, _ACCOUNT.name, _ACCOUNT.owner_id, _ACCOUNT.region_id, _ACCOUNT.phone.label("number"))
    .where(
        visibility_template(Account, scoped=False, access=RowAccess.READ),
        _digits(_ACCOUNT.phone).like(bindparam("tail"), escape="\\"),
    )
    .limit(CANDIDATES)
)
_ACCOUNTS_BY_CONTACT_MOBILE = (
    select(_ACCOUNT.id, _ACCOUNT.name, _ACCOUNT.owner_id, _ACCOUNT.region_id, _CONTACT.mobile.label("number"))
    .select_from(Contact.__table__.join(Account.__table__, _ACCOUNT.id == _CONTACT.account_id))
    .where(
        visibility_template(Contact, scoped=False, access=RowAccess.READ),
        visibility_template(Account, scoped=False, access=RowAccess.READ),
        _digits(_CONTACT.mobile).like(bindparam("tail"), escape="\\"),
    )
    .limit(CANDIDATES)
)
_LEADS_BY_PHONE = (
    select(_LEAD.id, _LEAD.company, _LEAD.name, _LEAD.owner_id, _LEAD.region_id, _LEAD.mobile, _LEAD.phone)
    .where(
        visibility_template(Lead, scoped=False, access=RowAccess.READ),
        _LEAD.status != LeadStatus.CONVERTED,
        or_(
            _digits(_LEAD.mobile).like(bindparam("tail"), escape="\\"),
            _digits(_LEAD.phone).like(bindparam("tail"), escape="\\"),
        ),
    )
    .limit(CANDIDATES)
)


def find_matches(
    session: Session,
    actor: Actor,
    *,
    name: str | None = None,
    mobile: str | None = None,
    exclude_account_id: int | None = None,
    exclude_lead_id: int | None = None,
    limit: int = 5,
) -> list[Match]:
    """Accounts and unconverted leads of the actor's organization with the same company or number."""
    org = actor.organization_id
    key, sound, phone = (wanted := keys_of(name, mobile)).key, wanted.sound, wanted.phone
    found: list[Found] = []
    seen: set[tuple[str, int]] = set()

    def same_name(other: str | None) -> bool:
        other_key = names.name_key(other or "")
        return bool(other_key) and (other_key == key or names.sound_key(other_key) == sound)

    if key:
        params = {"scope_organization_id": org, "key": key[:200], "sound": sound[:400], "like": _like(sound)}
        for row in execute_core(session, _ACCOUNTS_BY_NAME, params):
            if row.id != exclude_account_id and same_name(row.name) and ("account", row.id) not in seen:
                seen.add(("account", row.id))
                found.append(("account", row.id, row.name, "name", row.owner_id, row.region_id))
        for lead in execute_core(session, _LEADS_BY_NAME, params):
            if lead.id != exclude_lead_id and same_name(lead.company) and ("lead", lead.id) not in seen:
                seen.add(("lead", lead.id))
                found.append(("lead", lead.id, lead.company or "", "name", lead.owner_id, lead.region_id))
    if phone:
        tail = _like(_national(phone))
        tail = tail[:-1]  # the number ends the written one: "%13800138000"
        params = {"scope_organization_id": org, "tail": tail}
        for query in (_ACCOUNTS_BY_PHONE, _ACCOUNTS_BY_CONTACT_MOBILE):
            for hit in execute_core(session, query, params):
                same = names.mobile_key(hit.number or "") == phone
                if hit.id != exclude_account_id and same and ("account", hit.id) not in seen:
                    seen.add(("account", hit.id))
                    found.append(("account", hit.id, hit.name, "mobile", hit.owner_id, hit.region_id))
        for person in execute_core(session, _LEADS_BY_PHONE, params):
            numbers = {names.mobile_key(person.mobile or ""), names.mobile_key(person.phone or "")}
            if person.id != exclude_lead_id and phone in numbers and ("lead", person.id) not in seen:
                seen.add(("lead", person.id))
                found.append(
                    ("lead", person.id, person.company or person.name, "mobile", person.owner_id, person.region_id)
                )
    return _as_matches(session, actor, [found[:limit]])[0]


def _as_matches(session: Session, actor: Actor, found: Sequence[Sequence[Found]]) -> list[list[Match]]:
    """Each list of found records as matches: owners labelled (masked) in one lookup, ids only of
    what ``actor`` may see."""
    org = actor.organization_id
    labels: dict[int, str] = {}
    owners = sorted({f[4] for group in found for f in group if f[4] is not None})
    for chunk in _chunks(owners):
        labels.update(_owner_labels(session, org, set(chunk)))
    pools: dict[int | None, str] = {}
    result: list[list[Match]] = []
    for group in found:
        matches: list[Match] = []
        for kind, record_id, record_name, on, owner_id, region_id in group:
            public = owner_id is None and kind == "account"
            if public:
                if region_id not in pools:
                    pool = service.pool_of_region(session, org, region_id)
                    pools[region_id] = f"公海 · {pool.name}" if pool else "公海"
                owner = pools[region_id]
            else:
                owner = labels.get(owner_id, "—") if owner_id is not None else "—"
            visible = _may_see(actor, owner_id, unowned_visible=kind == "lead")
            matches.append(Match(kind, record_id if visible else None, record_name, on, owner, public, owner_id))
        result.append(matches)
    return result


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def _unkeyed_since(session: Session, organization_id: int) -> Any:
    """Accounts changed after this moment may have stale or missing ``quality_name_keys`` rows: the
    last finished scan's watermark less the overlap the scanner itself re-checks (``None``: no scan
    has keyed the organization's accounts yet, so every account counts as unkeyed)."""
    watermark = session.scalar(
        select(Scan.watermark)
        .where(tenant_clause(organization_id, Scan), Scan.status == ScanStatus.DONE)
        .order_by(Scan.id.desc())
        .limit(1)
    )
    return None if watermark is None else watermark - timedelta(seconds=settings.quality_overlap_seconds)


def _by_keys(rows: Sequence[tuple[str, int, str, int | None, int | None]]) -> tuple[dict[str, list[Found]], ...]:
    """Named records (kind, id, name, owner, region) indexed by their name key and by their sound key."""
    by_key: dict[str, list[Found]] = defaultdict(list)
    by_sound: dict[str, list[Found]] = defaultdict(list)
    for kind, record_id, record_name, owner_id, region_id in rows:
        key = names.name_key(record_name or "")
        if key:
            entry: Found = (kind, record_id, record_name or "", "name", owner_id, region_id)
            by_key[key].append(entry)
            by_sound[names.sound_key(key)].append(entry)
    return by_key, by_sound


def _accounts_named(session: Session, organization_id: int, keys: list[str], sounds: list[str]) -> list[Any]:
    """The organization's accounts that may bear one of ``keys`` or ``sounds``: those whose stored name
    keys are equal (indexed IN lists), and every account the scanner has not keyed since it changed."""
    account, name_key = Account.__table__.c, NameKey.__table__.c
    keyed = [tenant_clause(organization_id, NameKey), name_key.subject_type == "account"]
    ids: set[int] = set()
    for column, values in ((name_key.name_key, keys), (name_key.sound_key, sounds)):
        statement = select(name_key.subject_id).where(*keyed, in_bound(session, column, "values"))
        for chunk in bound_chunks(session, column, values, CHUNK):
            ids.update(session.scalars(statement, {"values": chunk}))
    columns = (account.id, account.name, account.owner_id, account.region_id)
    alive = tenant_clause(organization_id, Account)
    rows: list[Any] = []
    by_id = select(*columns).where(alive, in_bound(session, account.id, "ids"))
    for id_chunk in bound_chunks(session, account.id, sorted(ids), CHUNK):
        rows.extend(session.execute(by_id, {"ids": id_chunk}))
    unkeyed = ~exists().where(*keyed, name_key.subject_id == account.id)
    since = _unkeyed_since(session, organization_id)
    if since is not None:
        unkeyed = or_(unkeyed, account.updated_at > since)
    rows.extend(row for row in session.execute(select(*columns).where(alive, unkeyed)) if row.id not in ids)
    return rows


def _numbers(session: Session, organization_id: int, wanted: set[str]) -> dict[str, list[Found]]:
    """Accounts (their own number or a contact's mobile) and unconverted leads whose number is one of
    ``wanted`` (E.164), by number. The candidates are those whose written number, separators removed,
    ends with a wanted national number — the condition of the per-record lookups — and then the
    number itself is compared."""
    found: dict[str, list[Found]] = defaultdict(list)
    account, contact, lead = Account.__table__.c, Contact.__table__.c, Lead.__table__.c
    own = select(account.id, account.name, account.owner_id, account.region_id, account.phone).where(
        tenant_clause(organization_id, Account), account.phone.is_not(None)
    )
    by_contact = (
        select(account.id, account.name, account.owner_id, account.region_id, contact.mobile)
        .select_from(Contact.__table__.join(Account.__table__, account.id == contact.account_id))
        .where(
            tenant_clause(organization_id, Contact),
            tenant_clause(organization_id, Account),
            contact.mobile.is_not(None),
        )
    )
    people = select(lead.id, lead.company, lead.name, lead.owner_id, lead.region_id, lead.mobile, lead.phone).where(
        tenant_clause(organization_id, Lead),
        lead.status != LeadStatus.CONVERTED,
        or_(lead.mobile.is_not(None), lead.phone.is_not(None)),
    )
    stored = [list(session.execute(statement)) for statement in (own, by_contact, people)]
    if not any(stored):
        return found
    national: dict[int, set[str]] = defaultdict(set)
    for phone in wanted:
        digits = _national(phone)
        national[len(digits)].add(digits)
    lengths = sorted(national)

    def candidate(number: str | None) -> str:
        if not number:
            return ""
        digits = number.translate(_SEPARATORS)
        if any(digits[-length:] in national[length] for length in lengths if length <= len(digits)):
            key = names.mobile_key(number)
            return key if key in wanted else ""
        return ""

    for rows in stored[:2]:  # in the per-record lookups' order: own numbers first
        hits = [(key, row) for row in rows if (key := candidate(row[4]))]
        for key, row in sorted(hits, key=lambda hit: -hit[1][0]):
            found[key].append(("account", row[0], row[1], "mobile", row[2], row[3]))
    for person in sorted(stored[2], key=lambda row: -row[0]):
        for key in {candidate(person.mobile), candidate(person.phone)} - {""}:
            found[key].append(
                ("lead", person.id, person.company or person.name, "mobile", person.owner_id, person.region_id)
            )
    return found


def find_matches_many(session: Session, actor: Actor, wanted: Sequence[Keys], *, limit: int = 5) -> list[list[Match]]:
    """:func:`find_matches` for many names and numbers at once (an import's new rows): the same
    matches in the same order — accounts by name, newest first; unconverted leads by company; accounts
    by their number, then by a contact's mobile; leads by number — found with a few set-based
    statements for the whole list instead of five lookups per entry.

    It compares with every record of the organization, where the per-record lookups read at most
    ``CANDIDATES`` rows each before comparing: when more candidates than that share a pattern, this
    finds matches that those would miss, never fewer. Names are looked up through the scanner's
    ``quality_name_keys`` (indexed IN lists); accounts changed since the last scan, and unconverted
    leads (which have no stored keys), are keyed here. Numbers are read once per kind and compared here.
    """
    org = actor.organization_id
    keys = sorted({w.key[:200] for w in wanted if w.key})
    sounds = sorted({w.sound[:400] for w in wanted if w.key})
    accounts_by_key: dict[str, list[Found]] = {}
    accounts_by_sound: dict[str, list[Found]] = {}
    leads_by_key: dict[str, list[Found]] = {}
    leads_by_sound: dict[str, list[Found]] = {}
    if keys:
        accounts = [
            ("account", row.id, row.name, row.owner_id, row.region_id)
            for row in _accounts_named(session, org, keys, sounds)
        ]
        accounts_by_key, accounts_by_sound = _by_keys(sorted(accounts, key=lambda row: -row[1]))
        lead = Lead.__table__.c
        leads = session.execute(
            select(lead.id, lead.company, lead.owner_id, lead.region_id)
            .where(tenant_clause(org, Lead), lead.status != LeadStatus.CONVERTED, lead.company.is_not(None))
            .order_by(lead.id.desc())
        )
        leads_by_key, leads_by_sound = _by_keys([("lead", *row) for row in leads])
    phones = {w.phone for w in wanted if w.phone}
    by_number = _numbers(session, org, phones) if phones else {}
    found: list[list[Found]] = []
    for w in wanted:
        group: list[Found] = []
        seen: set[tuple[str, int]] = set()
        candidates: list[list[Found]] = []
        if w.key:
            for by_key, by_sound in ((accounts_by_key, accounts_by_sound), (leads_by_key, leads_by_sound)):
                named = {entry[1]: entry for entry in (*by_key.get(w.key, ()), *by_sound.get(w.sound, ()))}
                candidates.append([named[record_id] for record_id in sorted(named, reverse=True)])
        if w.phone:
            candidates.append(by_number.get(w.phone, []))
        for entry in (entry for batch in candidates for entry in batch):
            if len(group) >= limit:
                break
            if (entry[0], entry[1]) not in seen:
                seen.add((entry[0], entry[1]))
                group.append(entry)
        found.append(group)
    return _as_matches(session, actor, found)


@dataclass(frozen=True)
class Verdict:
    """Why one new record of a batch is a possible duplicate."""

    code: str  # "duplicate_in_file" (an earlier record of the batch) or "duplicate_account"
    reason: str


def name_and_number(kind: str, values: dict[str, Any]) -> tuple[str | None, str | None]:
    """The company name and the number a new account or lead is compared by."""
    if kind == "account":
        return values.get("name"), values.get("phone")
    return values.get("company"), values.get("mobile") or values.get("phone")


def check_batch(
    session: Session, actor: Actor, kind: str, records: Sequence[tuple[int, dict[str, Any]]], *, block: bool
) -> list[Verdict | None]:
    """The duplicate check of many new accounts or leads (``kind``) created together, such as an
    import's rows: each record is compared with an earlier record of the batch (same company or same
    number, as creating them one by one would find) and with the organization's accounts and
    unconverted leads (:func:`find_matches_many`). ``records`` are (row number, values) pairs, in
    order; with ``block``, a refused record is not one that later records can duplicate. Returns a
    verdict, or ``None``, per record."""
    accounts = kind == "account"
    wanted: list[Keys] = []
    numbers: list[tuple[str, ...]] = []
    for _, values in records:
        own = (values.get("phone"),) if accounts else (values.get("mobile"), values.get("phone"))
        wanted.append(keys_of(*name_and_number(kind, values)))
        numbers.append(tuple(names.mobile_key(number) for number in own if number))
    if len(records) >= SET_BASED_FROM:
        stored = find_matches_many(session, actor, wanted, limit=1)
    else:
        stored = [
            find_matches(session, actor, name=name, mobile=mobile, limit=1)
            for name, mobile in (name_and_number(kind, values) for _, values in records)
        ]
    by_name: dict[str, int] = {}
    by_number: dict[str, int] = {}
    verdicts: list[Verdict | None] = []
    for index, (keys, matches) in enumerate(zip(wanted, stored, strict=True)):
        earlier = (by_name.get(keys.key) or by_name.get(keys.sound)) if keys.key else None
        verdict: Verdict | None = None
        if earlier is not None:
            verdict = Verdict("duplicate_in_file", f"is the same company as row {earlier}")
        elif keys.phone and keys.phone in by_number:
            verdict = Verdict("duplicate_in_file", f"has the same number as row {by_number[keys.phone]}")
        elif matches:
            verdict = Verdict("duplicate_account", f"duplicates {matches[0].describe('en')}")
        verdicts.append(verdict)
        if verdict is not None and block:
            continue
        row = records[index][0]
        if keys.key:  # the latest earlier record is the one named
            by_name[keys.key] = by_name[keys.sound] = row
        for number in numbers[index]:
            if number:
                by_number[number] = row
    return verdicts


def _guard(session: Session, actor: Actor, *, name: str | None, mobile: str | None) -> None:
    mode = service.duplicate_mode(session, actor.organization_id)
    if mode is DuplicateMode.OFF or not (name or mobile):
        return
    matches = find_matches(
        session, actor, name=name, mobile=mobile, exclude_lead_id=session.info.get("converting_lead_id")
    )
    if not matches:
        return
    if mode is DuplicateMode.BLOCK:
        raise DuplicateFound(matches)
    warnings = session.info.setdefault("duplicate_warnings", [])
    warnings.extend(m.public() for m in matches)


def guard_account(session: Session, actor: Actor, values: dict[str, Any]) -> None:
    """Before an account is created: block (409) or warn per the organization's setting."""
    name, mobile = name_and_number("account", values)
    _guard(session, actor, name=name, mobile=mobile)


def guard_lead(session: Session, actor: Actor, values: dict[str, Any]) -> None:
    """Before a lead is created: its company or number may already be an account (owned, or in a
    public pool) or another unconverted lead — blocked (409) or warned per the organization's setting."""
    name, mobile = name_and_number("lead", values)
    _guard(session, actor, name=name, mobile=mobile)


def merge_target(session: Session, actor: Actor, lead: Lead) -> int | None:
    """The existing account a converting lead joins: the first account of the same company or mobile
    that the converter may see. One it may not see blocks the conversion (409) when the
    organization blocks duplicates; otherwise a new account is created, with the warning."""
    session.info["converting_lead_id"] = lead.id
    matches = [
        m
        for m in find_matches(
            session, actor, name=lead.company or lead.name, mobile=lead.mobile or lead.phone, exclude_lead_id=lead.id
        )
        if m.kind == "account"
    ]
    for match in matches:
        if match.id is not None and not match.in_public_pool:
            session.info.setdefault("duplicate_warnings", []).append({**match.public(), "merged": True})
            return match.id
    return None
