"""The demo's people: the seller's sales organization (regions, directors, managers, reps and the
executives) and each partner's user, with the sign-ins a newcomer can use at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from closeloop.demo.bulk import Rows
from closeloop.demo.names import REGIONS, Namer, RegionSpec
from closeloop.demo.world import Territory
from closeloop.governance.permissions import Role

#: The password of every demo user. It is printed by ``closeloop demo``; never use demo users in production.
DEMO_PASSWORD = "closeloop-demo"  # noqa: S105 - a documented demo password

#: managers and reps per region of the normal demo (9 managers, 30 reps)
DEMO_TEAMS: dict[str, tuple[int, int]] = {
    "华东": (2, 7),
    "华南": (2, 6),
    "华北": (1, 5),
    "华中": (1, 4),
    "西南": (1, 3),
    "西北": (1, 2),
    "东北": (1, 3),
}

#: the order sign-ins are printed in
SIGN_IN_ROLES = (
    Role.REP,
    Role.MANAGER,
    Role.DIRECTOR,
    Role.SALES_VP,
    Role.CFO,
    Role.IT_DIRECTOR,
    Role.ADMIN,
    Role.PARTNER_USER,
)


@dataclass(frozen=True, slots=True)
class SignIn:
    """A demo user someone can sign in as."""

    username: str
    role: Role
    organization: str
    display_name: str
    password: str = DEMO_PASSWORD


@dataclass(slots=True)
class Staff:
    """Who works in a generated organization: its territories (with owners) and its featured sign-ins."""

    territories: tuple[Territory, ...]
    sign_ins: list[SignIn] = field(default_factory=list)


class _Users:
    """Queues user rows; the first user of each role gets the plain name (``demo.rep``), later ones a number."""

    def __init__(
        self, rows: Rows, namer: Namer, organization_id: int, prefix: str, password_hash: str, at: datetime
    ) -> None:
        self.rows = rows
        self.namer = namer
        self.organization_id = organization_id
        self.prefix = prefix
        self.password_hash = password_hash
        self.at = at
        self._numbers: Counter[str] = Counter()

    def add(self, handle: str, role: Role, *, manager_id: int | None, region_id: int | None) -> tuple[int, str, str]:
        self._numbers[handle] += 1
        number = self._numbers[handle]
        username = f"{self.prefix}.{handle}" if number == 1 else f"{self.prefix}.{handle}{number:02d}"
        person = self.namer.person()
        user_id = self.rows.add(
            "users",
            {
                "organization_id": self.organization_id,
                "username": username,
                "email": f"{person.email_local}.{number}@{self.prefix.replace('.', '-')}.example.com",
                "display_name": person.name,
                "password_hash": self.password_hash,
                "role": role.value,
                "manager_id": manager_id,
                "region_id": region_id,
                "locale": "zh_CN",
                "is_active": True,
                "last_login_at": None,
                "created_at": self.at,
                "updated_at": self.at,
                "version": 1,
            },
        )
        return user_id, username, person.name


def add_region(rows: Rows, organization_id: int, spec: RegionSpec, at: datetime) -> int:
    return rows.add(
        "regions",
        {"organization_id": organization_id, "name": spec.name, "code": spec.code, "created_at": at, "updated_at": at},
    )


def add_seller_staff(
    rows: Rows,
    namer: Namer,
    *,
    organization_id: int,
    organization_name: str,
    prefix: str,
    password_hash: str,
    at: datetime,
    teams: Mapping[str, tuple[int, int]] = DEMO_TEAMS,
) -> Staff:
    """The sales VP, CFO, IT director and admin; per region a director, its managers and their reps."""
    users = _Users(rows, namer, organization_id, prefix, password_hash, at)
    featured: dict[Role, tuple[str, str]] = {}

    def add(handle: str, role: Role, manager_id: int | None, region_id: int | None) -> int:
        user_id, username, name = users.add(handle, role, manager_id=manager_id, region_id=region_id)
        featured.setdefault(role, (username, name))
        return user_id

    vp = add("sales_vp", Role.SALES_VP, None, None)
    for handle, role in (("cfo", Role.CFO), ("it_director", Role.IT_DIRECTOR), ("admin", Role.ADMIN)):
        add(handle, role, None, None)
    territories = []
    for spec in REGIONS:
        manager_count, rep_count = teams[spec.name]
        region_id = add_region(rows, organization_id, spec, at)
        director = add("director", Role.DIRECTOR, vp, region_id)
        managers = [add("manager", Role.MANAGER, director, region_id) for _ in range(manager_count)]
        reps = [add("rep", Role.REP, managers[index % manager_count], region_id) for index in range(rep_count)]
        territories.append(Territory(spec, region_id, tuple(reps), tuple(managers)))
    sign_ins = [
        SignIn(featured[role][0], role, organization_name, featured[role][1])
        for role in SIGN_IN_ROLES
        if role in featured
    ]
    return Staff(tuple(territories), sign_ins)


def add_partner_staff(
    rows: Rows,
    namer: Namer,
    *,
    organization_id: int,
    organization_name: str,
    prefix: str,
    handle: str,
    regions: tuple[RegionSpec, ...],
    password_hash: str,
    at: datetime,
) -> Staff:
    """A partner's regions and its one partner user, who owns all its records."""
    users = _Users(rows, namer, organization_id, prefix, password_hash, at)
    region_ids = [add_region(rows, organization_id, spec, at) for spec in regions]
    user_id, username, name = users.add(handle, Role.PARTNER_USER, manager_id=None, region_id=region_ids[0])
    territories = tuple(
        Territory(spec, region_id, (user_id,)) for spec, region_id in zip(regions, region_ids, strict=True)
    )
    return Staff(territories, [SignIn(username, Role.PARTNER_USER, organization_name, name)])
