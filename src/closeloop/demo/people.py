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

    def add(
        self,
        handle: str,
        role: Role,
        *,
        manager_id: int | None,
        region_id: int | None,
        department_id: int | None = None,
    ) -> tuple[int, str, str]:
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
                "department_id": department_id,
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


def add_department(
    rows: Rows,
    organization_id: int,
    name: str,
    at: datetime,
    *,
    parent_id: int | None = None,
    region_id: int | None = None,
) -> int:
    return rows.add(
        "departments",
        {
            "organization_id": organization_id,
            "name": name,
            "parent_id": parent_id,
            "region_id": region_id,
            "created_at": at,
            "updated_at": at,
        },
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

    def add(handle: str, role: Role, manager_id: int | None, region_id: int | None, department_id: int) -> int:
        user_id, username, name = users.add(
            handle, role, manager_id=manager_id, region_id=region_id, department_id=department_id
        )
        featured.setdefault(role, (username, name))
        return user_id

    sales = add_department(rows, organization_id, "销售中心", at)
    vp = add("sales_vp", Role.SALES_VP, None, None, sales)
    add("cfo", Role.CFO, None, None, add_department(rows, organization_id, "财务部", at))
    it = add_department(rows, organization_id, "信息技术部", at)
    for handle, role in (("it_director", Role.IT_DIRECTOR), ("admin", Role.ADMIN)):
        add(handle, role, None, None, it)
    territories = []
    for spec in REGIONS:
        manager_count, rep_count = teams[spec.name]
        region_id = add_region(rows, organization_id, spec, at)
        regional = add_department(rows, organization_id, f"{spec.name}销售部", at, parent_id=sales, region_id=region_id)
        director = add("director", Role.DIRECTOR, vp, region_id, regional)
        groups = [
            add_department(
                rows, organization_id, f"{spec.name}销售{number}组", at, parent_id=regional, region_id=region_id
            )
            for number in range(1, manager_count + 1)
        ]
        managers = [add("manager", Role.MANAGER, director, region_id, group) for group in groups]
        reps = [
            add("rep", Role.REP, managers[index % manager_count], region_id, groups[index % manager_count])
            for index in range(rep_count)
        ]
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
    department_id = add_department(rows, organization_id, organization_name[:100], at, region_id=region_ids[0])
    user_id, username, name = users.add(
        handle, Role.PARTNER_USER, manager_id=None, region_id=region_ids[0], department_id=department_id
    )
    territories = tuple(
        Territory(spec, region_id, (user_id,)) for spec, region_id in zip(regions, region_ids, strict=True)
    )
    return Staff(territories, [SignIn(username, Role.PARTNER_USER, organization_name, name)])
