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

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, or_, select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, RowScope
from closeloop.core.errors import DomainError
from closeloop.crm.accounts.models import Account
from closeloop.crm.contacts.models import Contact
from closeloop.crm.enums import LeadStatus
from closeloop.crm.leads.models import Lead
from closeloop.db.scope import tenant_clause, visibility_template
from closeloop.db.session import execute_core
from closeloop.org.models import Region, User
from closeloop.pools import service
from closeloop.pools.models import DuplicateMode
from closeloop.quality import names
from closeloop.quality.models import NameKey

#: candidate rows read per lookup before the exact comparison in Python
CANDIDATES = 200


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
        visibility_template(Account, scoped=False),
        or_(
            _ACCOUNT.id.in_(
                select(NameKey.__table__.c.subject_id).where(
                    visibility_template(NameKey, scoped=False),
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
        visibility_template(Lead, scoped=False),
        _LEAD.status != LeadStatus.CONVERTED,
        _LEAD.company.is_not(None),
        _LEAD.search_key.like(bindparam("like"), escape="\\"),
    )
    .order_by(_LEAD.id.desc())
    .limit(CANDIDATES)
)
_ACCOUNTS_BY_PHONE = (
    select(_ACCOUNT.id, _ACCOUNT.name, _ACCOUNT.owner_id, _ACCOUNT.region_id, _ACCOUNT.phone.label("number"))
    .where(visibility_template(Account, scoped=False), _digits(_ACCOUNT.phone).like(bindparam("tail"), escape="\\"))
    .limit(CANDIDATES)
)
_ACCOUNTS_BY_CONTACT_MOBILE = (
    select(_ACCOUNT.id, _ACCOUNT.name, _ACCOUNT.owner_id, _ACCOUNT.region_id, _CONTACT.mobile.label("number"))
    .select_from(Contact.__table__.join(Account.__table__, _ACCOUNT.id == _CONTACT.account_id))
    .where(
        visibility_template(Contact, scoped=False),
        visibility_template(Account, scoped=False),
        _digits(_CONTACT.mobile).like(bindparam("tail"), escape="\\"),
    )
    .limit(CANDIDATES)
)
_LEADS_BY_PHONE = (
    select(_LEAD.id, _LEAD.company, _LEAD.name, _LEAD.owner_id, _LEAD.region_id, _LEAD.mobile, _LEAD.phone)
    .where(
        visibility_template(Lead, scoped=False),
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
    key = names.name_key(name or "")
    sound = names.sound_key(key) if key else ""
    phone = names.mobile_key(mobile or "")
    found: list[tuple[str, int, str, str, int | None, int | None]] = []  # kind, id, name, on, owner, region
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
    found = found[:limit]
    labels = _owner_labels(session, org, {f[4] for f in found if f[4] is not None})
    matches: list[Match] = []
    for kind, record_id, record_name, on, owner_id, region_id in found:
        public = owner_id is None and kind == "account"
        if public:
            pool = service.pool_of_region(session, org, region_id)
            owner = f"公海 · {pool.name}" if pool else "公海"
        else:
            owner = labels.get(owner_id, "—") if owner_id is not None else "—"
        visible = _may_see(actor, owner_id, unowned_visible=kind == "lead")
        matches.append(Match(kind, record_id if visible else None, record_name, on, owner, public, owner_id))
    return matches


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
    _guard(session, actor, name=values.get("name"), mobile=values.get("phone"))


def guard_lead(session: Session, actor: Actor, values: dict[str, Any]) -> None:
    """Before a lead is created: its company or number may already be an account (owned, or in a
    public pool) or another unconverted lead — blocked (409) or warned per the organization's setting."""
    _guard(session, actor, name=values.get("company"), mobile=values.get("mobile") or values.get("phone"))


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
