"""Organizations, users, sign-in and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from closeloop.core.actor import Actor, ActorKind, RowScope
from closeloop.core.clock import utcnow
from closeloop.core.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from closeloop.db.scope import RowAccess, tenant_clause, visible
from closeloop.governance.audit import service as audit
from closeloop.governance.grants import require_grantable, require_takeable
from closeloop.governance.permissions import ROLE_PERMISSIONS, ROLE_SCOPES, Role, require
from closeloop.org.models import ApiToken, Department, Organization, OrganizationKind, Region, User
from closeloop.org.passwords import hash_password, password_problem, verify_password
from closeloop.org.throttle import throttle

TOKEN_PREFIX = "clk_"  # noqa: S105 - the public prefix that marks a Closeloop token, not a secret
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,79}$")
_USERNAME = USERNAME


def system_actor(organization_id: int, *, label: str = "system", request_id: str | None = None) -> Actor:
    """The actor for work the product does itself (imports from the CLI, scheduled jobs, seeding)."""
    return Actor(
        organization_id=organization_id,
        role=Role.ADMIN.value,
        kind=ActorKind.SYSTEM,
        label=label,
        permissions=ROLE_PERMISSIONS[Role.ADMIN] | {"users:manage", "organization:manage"},
        scope=RowScope.ALL,
        request_id=request_id,
    )


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "org-" + secrets.token_hex(4)


def create_organization(
    session: Session,
    *,
    name: str,
    kind: OrganizationKind = OrganizationKind.SELLER,
    partner_of_id: int | None = None,
    slug: str | None = None,
    default_currency: str = "CNY",
    default_locale: str = "zh_CN",
    label: str = "system",
) -> Organization:
    """Create a tenant. Runs as the system (there is no actor inside an organization that does not exist)."""
    if not name.strip():
        raise ValidationFailed.one("name", "must not be empty")
    slug = slug or slugify(name)
    if session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        raise Conflict(f"An organization with slug '{slug}' already exists", field_name="slug")
    organization = Organization(
        name=name.strip(),
        slug=slug,
        kind=kind,
        partner_of_id=partner_of_id,
        default_currency=default_currency,
        default_locale=default_locale,
    )
    session.add(organization)
    session.flush()
    audit.record(
        session,
        system_actor(organization.id, label=label),
        "organization.created",
        subject_type="organization",
        subject_id=organization.id,
        changes=audit.diff({}, {"name": organization.name, "kind": kind, "slug": slug, "partner_of_id": partner_of_id}),
    )
    return organization


def find_organization(session: Session, reference: str) -> Organization:
    """Find an organization by slug, id or exact name (for the CLI)."""
    statement = select(Organization).where(Organization.slug == reference)
    organization = session.scalar(statement)
    if organization is None and reference.isdigit():
        organization = session.get(Organization, int(reference))
    if organization is None:
        organization = session.scalar(select(Organization).where(Organization.name == reference))
    if organization is None:
        raise NotFound("organization", reference)
    return organization


def ensure_region(session: Session, actor: Actor, *, name: str, code: str | None = None) -> Region:
    """Return the region called ``name``, creating it if needed."""
    region = session.scalar(visible(actor, Region, access=RowAccess.READ).where(Region.name == name))
    if region is None:
        region = Region(organization_id=actor.organization_id, name=name, code=code)
        session.add(region)
        session.flush()
        audit.record(
            session,
            actor,
            "region.created",
            subject_type="region",
            subject_id=region.id,
            changes=audit.diff({}, {"name": name, "code": code}),
        )
    return region


@dataclass(frozen=True, slots=True)
class NewUser:
    username: str
    display_name: str
    role: Role
    password: str | None = None
    email: str | None = None
    manager_id: int | None = None
    region_id: int | None = None
    locale: str | None = None


def role_fits(session: Session, organization_id: int, role: Role) -> bool:
    """Whether ``role`` may be held in the organization (a partner user only in a partner's)."""
    if role is not Role.PARTNER_USER:
        return True
    kind = session.scalar(select(Organization.kind).where(Organization.id == organization_id))
    return kind != OrganizationKind.SELLER


def misplaced_partner_users(session: Session, organization_id: int | None = None) -> list[tuple[User, Organization]]:
    """Active partner users in a seller's own organization (made before :func:`_require_role_fits`
    refused them), with their organization; all organizations' without ``organization_id``. Such a user may
    do nothing (:func:`actor_for`) until an administrator changes the role or moves them."""
    query = (
        select(User, Organization)
        .join(Organization, Organization.id == User.organization_id)
        .where(
            User.role == Role.PARTNER_USER.value,
            Organization.kind == OrganizationKind.SELLER,
            User.is_active.is_(True),  # a deactivated one is dealt with (the advice given for them)
        )
        .order_by(Organization.id, User.username)
    )
    if organization_id is not None:
        query = query.where(tenant_clause(organization_id, User))
    return [(row[0], row[1]) for row in session.execute(query)]


def _require_role_fits(session: Session, organization_id: int, role: Role) -> None:
    """A partner user works in a partner organization (dealer, service provider, …), which sees only
    what the seller shares with it: in the seller's own organization that role would have read and
    written every record, so it is refused there."""
    if not role_fits(session, organization_id, role):
        raise ValidationFailed.one(
            "role",
            "a partner user belongs to a partner organization (a dealer, service provider, logistics company or "
            "supplier), not the seller's own; add them there (closeloop user add --org <partner>)",
            "partner_role_in_seller",
        )


def create_user(session: Session, actor: Actor, *, data: NewUser) -> User:
    """Add a user to the actor's organization. Needs ``users:manage``."""
    require(actor, "users:manage")
    require_grantable(session, actor, data.role)
    _require_role_fits(session, actor.organization_id, data.role)
    problems = []
    if not _USERNAME.match(data.username):
        problems.append(("username", "use 2-80 letters, digits, dots, dashes, underscores or @"))
    if data.password is not None and (problem := password_problem(data.password, username=data.username)):
        problems.append(("password", problem))
    if not data.display_name.strip():
        problems.append(("display_name", "must not be empty"))
    if problems:
        field_name, message = problems[0]
        raise ValidationFailed.one(field_name, message)
    if session.scalar(select(User.id).where(User.username == data.username)) is not None:
        raise Conflict(f"The username '{data.username}' is taken", field_name="username")
    for field_name, model, value in (("manager_id", User, data.manager_id), ("region_id", Region, data.region_id)):
        if (
            value is not None
            and session.scalar(select(model.id).where(tenant_clause(actor.organization_id, model), model.id == value))
            is None
        ):
            raise ValidationFailed.one(field_name, f"no such {model.__noun__} in your organization", "not_found")
    user = User(
        organization_id=actor.organization_id,
        username=data.username,
        display_name=data.display_name.strip(),
        email=data.email,
        role=data.role.value,
        manager_id=data.manager_id,
        region_id=data.region_id,
        locale=data.locale,
        password_hash=hash_password(data.password) if data.password else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.created",
        subject_type="user",
        subject_id=user.id,
        changes=audit.diff(
            {},
            {
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
                "email": user.email,
                "manager_id": user.manager_id,
                "region_id": user.region_id,
            },
        ),
    )
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with these credentials, or ``None``. Needs a system session (spans organizations)."""
    user = session.scalar(select(User).where(User.username == username))
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.is_active:
        return None
    return user


def sign_in(session: Session, *, username: str, password: str, client: str, via: str) -> User | None:
    """:func:`authenticate`, throttled per username and client, recording the sign-in in the audit trail.

    Raises :class:`~closeloop.org.throttle.TooManyAttempts` once either failed too often lately.
    """
    throttle.check(username, client)
    user = authenticate(session, username=username, password=password)
    if user is None:
        throttle.failed(username, client)
        return None
    throttle.succeeded(username)
    user.last_login_at = utcnow()
    audit.record(
        session,
        actor_for(session, user),
        "user.signed_in",
        subject_type="user",
        subject_id=user.id,
        changes={"via": [None, via], "client": [None, client]},
    )
    return user


def subordinate_ids(session: Session, user: User) -> frozenset[int]:
    """The user and everyone who reports to them, directly or not."""
    tree = (
        select(User.id).where(tenant_clause(user.organization_id, User), User.id == user.id).cte("tree", recursive=True)
    )
    tree = tree.union(select(User.id).where(tenant_clause(user.organization_id, User), User.manager_id == tree.c.id))
    return frozenset(session.scalars(select(tree.c.id)))


def actor_for(session: Session, user: User, *, token: ApiToken | None = None, request_id: str | None = None) -> Actor:
    """Resolve what ``user`` may do: permissions and row scope from the role, team from the reporting tree."""
    role = Role(user.role)
    scope = ROLE_SCOPES[role]
    owner_ids = subordinate_ids(session, user) if scope is RowScope.TEAM else frozenset({user.id})
    permissions = ROLE_PERMISSIONS[role]
    if not role_fits(session, user.organization_id, role):
        # a partner user left in the seller's own organization (made before the role was refused
        # there): its organization-wide scope would reach every record, so it may do nothing
        # until an administrator changes the role or moves the user (``closeloop user check``)
        scope, owner_ids, permissions = RowScope.OWN, frozenset(), frozenset()
    return Actor(
        organization_id=user.organization_id,
        role=role.value,
        kind=ActorKind.TOKEN if token else ActorKind.USER,
        label=f"{user.username} (token {token.prefix})" if token else user.username,
        permissions=permissions,
        scope=scope,
        user_id=user.id,
        token_id=token.id if token else None,
        owner_ids=owner_ids,
        locale=user.locale or _default_locale(session, user.organization_id),
        request_id=request_id,
    )


def _default_locale(session: Session, organization_id: int) -> str:
    """The organization's default language, for its users who chose none."""
    found = session.scalar(select(Organization.default_locale).where(Organization.id == organization_id))
    return found or "zh_CN"


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    session: Session, actor: Actor, *, user: User, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a personal token for ``user`` and return it with its secret (shown only this once).

    Users issue tokens for themselves; issuing for someone else needs ``users:manage``.
    """
    if actor.user_id != user.id:
        require(actor, "users:manage")
    if user.organization_id != actor.organization_id:
        raise NotFound("user", user.id)
    if not name.strip():
        raise ValidationFailed.one("name", "must not be empty")
    prefix = secrets.token_hex(4)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        organization_id=user.organization_id,
        user_id=user.id,
        name=name.strip()[:100],
        prefix=prefix,
        secret_hash=_token_hash(secret),
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor,
        "api_token.created",
        subject_type="api_token",
        subject_id=token.id,
        changes=audit.diff({}, {"user_id": user.id, "name": token.name, "prefix": prefix, "expires_at": expires_at}),
    )
    return token, secret


def resolve_token(session: Session, secret: str) -> tuple[ApiToken, User] | None:
    """The live token and its active user for a bearer secret, or ``None``. Needs a system session."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.secret_hash == _token_hash(secret))
    ).first()
    if row is None:
        return None
    token, user = row
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not user.is_active:
        return None
    return token, user


def revoke_token(session: Session, actor: Actor, *, token_id: int) -> ApiToken:
    """Revoke a token: one's own, or anyone's with ``users:manage``."""
    token = session.scalar(visible(actor, ApiToken, access=RowAccess.WRITE).where(ApiToken.id == token_id))
    if token is None or (token.user_id != actor.user_id and not actor.can("users:manage")):
        raise NotFound("api_token", token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            actor,
            "api_token.revoked",
            subject_type="api_token",
            subject_id=token.id,
            changes={"revoked_at": [None, audit.json_safe(token.revoked_at)]},
        )
    return token


_SELF_SERVICE_FIELDS = frozenset({"display_name", "locale", "password", "current_password", "email"})
#: changes after which every earlier browser session and token of the user stops working
_ENDS_SESSIONS = frozenset({"password", "role", "is_active"})


def update_user(
    session: Session, actor: Actor, *, user_id: int, changes: dict[str, object], expected_version: int | None = None
) -> User:
    """Change a user. Anyone may change their own name, email, language and password (giving the
    current one); everything else (role, manager, region, active, others' passwords) needs
    ``users:manage``, and nobody grants a role — or takes over an account — above their own.

    A new password, role or deactivation ends the user's browser sessions and revokes their tokens.
    """
    user = session.scalar(visible(actor, User, access=RowAccess.WRITE).where(User.id == user_id))
    if user is None:
        raise NotFound("user", user_id)
    own = user.id == actor.user_id
    if not own or not set(changes) <= _SELF_SERVICE_FIELDS:
        require(actor, "users:manage")
    if expected_version is not None and user.version != expected_version:
        raise PreconditionFailed()
    for name in ("display_name", "role", "is_active"):
        if name in changes and changes[name] is None:
            raise ValidationFailed.one(name, "may not be empty", "required")
    current_password = changes.pop("current_password", None)
    if "role" in changes:
        role = Role(str(changes["role"]))
        if own and role.value != user.role:
            raise ValidationFailed.one("role", "you cannot change your own role")
        require_grantable(session, actor, role)
        _require_role_fits(session, actor.organization_id, role)
        if role.value != user.role:  # symmetric: a role one may not grant, one may not take away
            require_takeable(session, actor, Role(user.role))
        changes["role"] = role.value
    if not own and changes.get("is_active") is False and user.is_active:
        require_takeable(session, actor, Role(user.role), field_name="is_active")
    if not own and ("password" in changes or changes.get("is_active") is True):
        require_grantable(
            session, actor, Role(user.role), field_name="password" if "password" in changes else "is_active"
        )
    if "password" in changes:
        password = changes["password"]
        if not isinstance(password, str):
            raise ValidationFailed.one("password", "may not be empty", "required")
        if problem := password_problem(password, username=user.username):
            raise ValidationFailed.one("password", problem)
        if (
            own
            and actor.kind is not ActorKind.SYSTEM
            and not (isinstance(current_password, str) and verify_password(user.password_hash, current_password))
        ):
            raise ValidationFailed.one("current_password", "give your current password to set a new one")
    manager_id = changes.get("manager_id")
    if isinstance(manager_id, int):
        _check_manager(session, actor, user, manager_id)
    region_id = changes.get("region_id")
    if (
        isinstance(region_id, int)
        and session.scalar(
            select(Region.id).where(tenant_clause(actor.organization_id, Region), Region.id == region_id)
        )
        is None
    ):
        raise ValidationFailed.one("region_id", "no such region in your organization", "not_found")
    if own and changes.get("is_active") is False:
        raise ValidationFailed.one("is_active", "you cannot deactivate yourself")
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    for name, value in changes.items():
        if name == "password":
            user.password_hash = hash_password(str(value))
            before["password"], after["password"] = "(set)", "(changed)"
            continue
        before[name], after[name] = getattr(user, name), value
        setattr(user, name, value)
    difference = audit.diff(before, after)
    if difference:
        if _ENDS_SESSIONS & set(difference):
            user.session_version += 1
            _revoke_all_tokens(session, user)
        session.flush()
        audit.record(session, actor, "user.updated", subject_type="user", subject_id=user.id, changes=difference)
    return user


def _revoke_all_tokens(session: Session, user: User) -> None:
    now = utcnow()
    for token in session.scalars(
        select(ApiToken).where(
            tenant_clause(user.organization_id, ApiToken), ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
        )
    ):
        token.revoked_at = now


def _check_manager(session: Session, actor: Actor, user: User, manager_id: int) -> None:
    """The manager must be in the organization and must not report to ``user`` (no cycles)."""
    manager = session.scalar(select(User).where(tenant_clause(actor.organization_id, User), User.id == manager_id))
    if manager is None:
        raise ValidationFailed.one("manager_id", "no such user in your organization", "not_found")
    if manager_id in subordinate_ids(session, user):
        raise ValidationFailed.one("manager_id", "would make a reporting cycle", "cycle")


@dataclass(frozen=True, slots=True)
class DepartmentNode:
    """A department in its place in the tree: ``depth`` 0 at the top, one more per level below."""

    id: int
    name: str
    parent_id: int | None
    depth: int


def tree_order(departments: Iterable[tuple[int, str, int | None]]) -> list[DepartmentNode]:
    """``(id, name, parent_id)`` rows in tree order: every parent right before its children, siblings
    by name (then id). A department whose parent is unknown starts a tree of its own, and so does one
    caught in a cycle of parents, so every department appears exactly once."""
    rows = {department_id: (name, parent_id) for department_id, name, parent_id in departments}
    children: dict[int | None, list[int]] = defaultdict(list)
    for department_id, (_name, parent_id) in rows.items():
        children[parent_id if parent_id in rows else None].append(department_id)
    for siblings in children.values():
        siblings.sort(key=lambda department_id: (rows[department_id][0], department_id))
    ordered: list[DepartmentNode] = []
    placed: set[int] = set()

    def place(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            department_id, depth = stack.pop()
            if department_id in placed:
                continue
            placed.add(department_id)
            name, parent_id = rows[department_id]
            ordered.append(DepartmentNode(department_id, name, parent_id, depth))
            stack.extend((child, depth + 1) for child in reversed(children.get(department_id, [])))

    def by_name(department_id: int) -> tuple[str, int]:
        return (rows[department_id][0], department_id)

    for root in children.get(None, []):
        place(root)
    for department_id in sorted(rows, key=by_name):
        if department_id in placed:
            continue
        # no root reaches it: above it is a cycle of parents, headed here by its first member by name
        walk: list[int] = []
        current = department_id
        while current not in walk:
            walk.append(current)
            parent = rows[current][1]
            assert parent is not None  # a department no root reaches has its parent among the rows
            current = parent
        place(min(walk[walk.index(current) :], key=by_name))
    return ordered


def department_tree(session: Session, organization_id: int) -> list[DepartmentNode]:
    """The organization's departments in tree order (:func:`tree_order`)."""
    found = session.execute(
        select(Department.id, Department.name, Department.parent_id).where(tenant_clause(organization_id, Department))
    )
    return tree_order((int(row[0]), str(row[1]), None if row[2] is None else int(row[2])) for row in found)
