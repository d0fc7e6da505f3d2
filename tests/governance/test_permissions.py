"""The permission matrix of the API (STYLE.md habit 10): every route, called by every role of the
tenant, by a partner organization's user and by another organization's admin.

For each call the expected status follows from ``governance/permissions.py`` and the row scopes:
403 for a missing permission, 404 for a record outside the caller's reach (another organization's
record is always 404, never 403), 422 for a body that points at records the caller cannot see.
Every JSON body any caller receives is searched for masked fields, and a refused write must leave
the record and the tenant's audit trail exactly as they were.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from closeloop.api.app import create_api
from closeloop.api.routers import compliance as compliance_router
from closeloop.api.routers import imports as imports_router
from closeloop.api.routers import knowledge as knowledge_router
from closeloop.api.routers import quality as quality_router
from closeloop.assistant.contracts import service as contract_service
from closeloop.assistant.knowledge import service as knowledge
from closeloop.config import settings
from closeloop.core.actor import RowScope
from closeloop.crm import changerequests, customfields
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from closeloop.governance.customfields.types import FieldType
from closeloop.governance.fields import FIELD_RULES
from closeloop.governance.permissions import Role
from closeloop.integrations.importing import jobs as import_jobs
from closeloop.integrations.importing.models import ImportMapping
from closeloop.org import notifications
from closeloop.org import service as org_service
from closeloop.org.models import User
from tests.factories import Member, Tenant
from tests.samples import SPEC_BY_PLURAL, Api, Body, RecordSpec, tag

IMPORT_CSV = "客户名称,行业\n导入医院,hospital\n".encode()
MASKED_KEYS = frozenset(name for rules in FIELD_RULES.values() for name in rules)
FINANCE = frozenset({Role.SALES_VP, Role.CFO})
CATALOGUE = frozenset({"products", "product_lines"})
TENANT_ROLES = ("rep", "rep2", "manager", "director", "sales_vp", "cfo", "it_director", "admin")
#: the one field of each masked noun that a finance role sets on the samples (so masks have something to hide)
FINANCE_FIELDS: dict[str, Body] = {
    "accounts": {"credit_line": "500000.00"},
    "opportunities": {"margin": "25.50"},
    "quotes": {"margin": "18.00"},
}


def api_routes() -> list[tuple[str, str]]:
    """(method, path) of every route the API application serves (documentation pages aside)."""
    api = create_api()
    try:
        from fastapi.routing import iter_route_contexts

        routes: list[Any] = list(iter_route_contexts(api.routes))
    except ImportError:  # FastAPI before route contexts: the routes are flat already
        routes = list(api.routes)
    found = set()
    for route in routes:
        if not getattr(route, "include_in_schema", False):
            continue
        for method in set(route.methods or ()) - {"HEAD", "OPTIONS"}:
            found.add((method, route.path))
    return sorted(found, key=lambda item: (item[1], item[0]))


ROUTES = api_routes()


# --- who calls ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    key: str
    member: Member
    #: "tenant" (the organization owning the records), "partner" or "foreign"
    organization: str

    @property
    def role(self) -> Role:
        return self.member.role

    def can(self, *permissions: str) -> bool:
        return all(self.member.actor.can(permission) for permission in permissions)

    def sees_owned_by(self, owner_id: int) -> bool:
        actor = self.member.actor
        return self.organization == "tenant" and (actor.scope is RowScope.ALL or owner_id in actor.owner_ids)


@dataclass
class World:
    """The tenant's records (owned by ``rep``, made by the sales VP so finance fields are set) and callers."""

    client: TestClient
    db: Database
    tenant: Tenant
    callers: list[Caller]
    maker: Api
    _samples: dict[str, Body] = field(default_factory=dict)
    #: records shared by the callers a route refuses
    shared: dict[str, Body] = field(default_factory=dict)
    #: the status expected of the call being prepared
    expected: dict[str, int] = field(default_factory=dict)
    #: import jobs handed to the background worker
    queued: list[int] = field(default_factory=list)

    def refuses(self, caller: Caller) -> bool:
        return self.expected.get(caller.key, 200) >= 400

    @property
    def rep(self) -> Member:
        return self.tenant["rep"]

    def api(self, caller: Caller) -> Api:
        return Api(self.client, caller.member)

    def new_record(self, plural: str) -> Body:
        spec = SPEC_BY_PLURAL[plural]
        body = {**spec.body(self.maker, 0, owner_id=self.rep.user_id), **FINANCE_FIELDS.get(plural, {})}
        return self.maker.create(plural, body)

    def sample(self, plural: str) -> Body:
        """One record of ``plural`` shared by the read-only calls of a test."""
        if plural not in self._samples:
            self._samples[plural] = self.new_record(plural)
        return self._samples[plural]

    def new_deleted_record(self, plural: str) -> Body:
        record = self.new_record(plural)
        response = self.maker.request("DELETE", f"/{plural}/{record['id']}")
        assert response.status_code == 204, response.text
        return record

    def new_token_of_rep(self) -> int:
        with self.db.unit_of_work(None, system=True) as session:
            user = session.get(User, self.rep.user_id)
            assert user is not None
            token, _ = org_service.issue_token(
                session, org_service.system_actor(self.tenant.organization_id), user=user, name="spare"
            )
            return token.id

    def import_job(self) -> int:
        """An import job of the tenant, started by its admin (straight through the service: nothing is queued)."""
        if "import_job" not in self._samples:
            admin = self.tenant["admin"].actor
            with self.db.unit_of_work(admin) as session:
                job = import_jobs.create_import_job(
                    session, admin, entity="accounts", file_name="客户.csv", data=IMPORT_CSV
                )
                self._samples["import_job"] = {"id": job.id}
        return int(self._samples["import_job"]["id"])

    def new_custom_field(self) -> int:
        """A custom field of the tenant's accounts (applied directly, as a signed-off request would)."""
        system = org_service.system_actor(self.tenant.organization_id)
        data = customfields.DefinitionCreate(
            record_type="account", name=f"f_{tag()}", field_type=FieldType.TEXT, label_zh="字段", label_en="F"
        )
        with self.db.unit_of_work(system) as session:
            return customfields.create_definition(session, system, data).id

    def change_request(self) -> int:
        """A pending change request of the tenant, asked by its admin."""
        admin = self.tenant["admin"].actor
        data = customfields.DefinitionCreate(
            record_type="lead", name=f"r_{tag()}", field_type=FieldType.NUMBER, label_zh="数", label_en="N"
        )
        with self.db.unit_of_work(admin) as session:
            return changerequests.request_create(session, admin, data).id

    def custom_field(self) -> int:
        if "custom_field" not in self._samples:
            self._samples["custom_field"] = {"id": self.new_custom_field()}
        return int(self._samples["custom_field"]["id"])

    def audit_count(self) -> int:
        with self.db.reading(None, system=True) as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(AuditEntry)
                    .where(tenant_clause(self.tenant.organization_id, AuditEntry))
                )
                or 0
            )


@pytest.fixture
def world(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    partner: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> World:
    # uploads are stored under the var directory, and a started import is handed to the worker
    monkeypatch.setattr(settings, "var_dir", tmp_path)
    queued: list[int] = []
    monkeypatch.setattr(imports_router, "enqueue_import", queued.append)
    monkeypatch.setattr(quality_router, "enqueue_scan", lambda organization_id, scan_id: queued.append(scan_id))
    monkeypatch.setattr(compliance_router, "enqueue_scan", lambda organization_id, scan_id: queued.append(scan_id))
    monkeypatch.setattr(knowledge_router, "enqueue_indexing", lambda organization_id, doc_id: queued.append(doc_id))
    callers = [Caller(key, tenant[key], "tenant") for key in TENANT_ROLES]
    callers.append(Caller("partner_user", partner["partner_user"], "partner"))
    callers.append(Caller("other_admin", other_tenant["admin"], "foreign"))
    return World(client, db, tenant, callers, Api(client, tenant["sales_vp"], reuse=True), queued=queued)


# --- what each route expects --------------------------------------------------------------------


@dataclass
class Call:
    """One prepared call: where, with what, and how to see afterwards whether anything changed."""

    path: str
    body: Any = None
    #: reads the target as the sales VP (None when the route has no single target)
    snapshot: Callable[[], Any] | None = None
    #: a multipart upload instead of a JSON body: (files, form fields)
    upload: tuple[dict[str, Any], dict[str, str]] | None = None


@dataclass(frozen=True)
class Plan:
    """How to call a route as a caller, and what it must answer."""

    writes: bool
    prepare: Callable[[World, Caller], Call]
    expect: Callable[[World, Caller], int]
    #: extra checks on a successful answer (row scope of lists, nothing foreign in them)
    verify: Callable[[World, Caller, Response], None] | None = None


def _record_snapshot(world: World, plural: str, record_id: int, *, deleted: bool = False) -> Callable[[], Any]:
    def snapshot() -> Any:
        if deleted:
            ids = world.maker.list_ids(plural)
            return record_id in ids
        response = world.maker.request("GET", f"/{plural}/{record_id}")
        return response.status_code, response.json()

    return snapshot


def _refs_visible(world: World, caller: Caller, spec: RecordSpec) -> bool:
    if not spec.references:
        return True
    return caller.sees_owned_by(world.rep.user_id)


def _record_plans(plural: str) -> dict[tuple[str, str], Plan]:
    """The seven routes every record type has."""
    spec = SPEC_BY_PLURAL[plural]
    read, write, delete = f"{plural}:read", f"{plural}:write", f"{plural}:delete"
    base, item = f"/v1/{plural}", f"/v1/{plural}/{{record_id}}"

    def sees(world: World, caller: Caller) -> bool:
        if plural in CATALOGUE:
            return caller.organization == "tenant"
        return caller.sees_owned_by(world.rep.user_id)

    def on_target(*before: str, after: tuple[str, ...] = (), success: int = 200) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can(*before):
                return 403
            if not sees(world, caller):
                return 404
            if not caller.can(*after):
                return 403
            return success

        return expect

    def shared(suffix: str = "") -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(f"{item.replace('{record_id}', str(world.sample(plural)['id']))}{suffix}")

    def fresh(body: Body | None = None, *, deleted: bool = False, suffix: str = "") -> Callable[[World, Caller], Call]:
        """A record of its own for each caller the route lets through; one shared by those it refuses
        (a refusal must change nothing, so they cannot disturb each other)."""

        def prepare(world: World, caller: Caller) -> Call:
            if world.refuses(caller):
                key = f"refused {plural} {deleted}"
                if key not in world.shared:
                    world.shared[key] = world.new_deleted_record(plural) if deleted else world.new_record(plural)
                record = world.shared[key]
            else:
                record = world.new_deleted_record(plural) if deleted else world.new_record(plural)
            path = item.replace("{record_id}", str(record["id"])) + suffix
            return Call(path, body, _record_snapshot(world, plural, record["id"], deleted=deleted))

        return prepare

    def list_expect(world: World, caller: Caller) -> int:
        return 200 if caller.can(read) else 403

    def list_verify(world: World, caller: Caller, response: Response) -> None:
        ids = [record["id"] for record in response.json()["items"]]
        assert (world.sample(plural)["id"] in ids) is sees(world, caller), (caller.key, ids)

    def list_prepare(world: World, caller: Caller) -> Call:
        world.sample(plural)
        return Call(base)

    def create_prepare(world: World, caller: Caller) -> Call:
        body = spec.body(world.maker, 0, owner_id=world.rep.user_id)
        if spec.owner_field is not None:
            body.pop(spec.owner_field)
        return Call(base, body, lambda: sorted(world.maker.list_ids(plural)))

    def create_expect(world: World, caller: Caller) -> int:
        if not caller.can(write):
            return 403
        return 201 if _refs_visible(world, caller, spec) else 422

    def create_verify(world: World, caller: Caller, response: Response) -> None:
        if response.status_code == 422:
            named = {error["field"] for error in response.json()["errors"]}
            assert named & set(spec.references), (caller.key, response.json())
            assert {error["code"] for error in response.json()["errors"]} == {"not_found"}

    return {
        ("GET", base): Plan(False, list_prepare, list_expect, list_verify),
        ("POST", base): Plan(True, create_prepare, create_expect, create_verify),
        ("GET", item): Plan(False, shared(), on_target(read)),
        ("PATCH", item): Plan(True, fresh(spec.change), on_target(read, after=(write,))),
        ("DELETE", item): Plan(True, fresh(), on_target(read, after=(delete,), success=204)),
        ("POST", f"{item}/restore"): Plan(True, fresh(deleted=True, suffix="/restore"), on_target(delete)),
        ("GET", f"{item}/history"): Plan(False, shared("/history"), on_target("history:read", read)),
    }


def _same_organization(world: World, caller: Caller) -> bool:
    return caller.organization == "tenant"


def _other_plans() -> dict[tuple[str, str], Plan]:
    def collection(*permissions: str, success: int = 200, body: Callable[[], Any] | None = None) -> Plan:
        return Plan(
            body is not None,
            lambda world, caller: Call("", body() if body else None),
            lambda world, caller: success if caller.can(*permissions) else 403,
        )

    def opportunity_route(suffix: str, *, writes: bool) -> Plan:
        def prepare(world: World, caller: Caller) -> Call:
            if not writes:
                record = world.sample("opportunities")
                return Call(f"/v1/opportunities/{record['id']}{suffix}")
            record = world.new_record("opportunities")
            return Call(
                f"/v1/opportunities/{record['id']}{suffix}",
                {"stage": "qualification"},
                _record_snapshot(world, "opportunities", record["id"]),
            )

        def expect(world: World, caller: Caller) -> int:
            if not caller.can("opportunities:read"):
                return 403
            if not caller.sees_owned_by(world.rep.user_id):
                return 404
            return 403 if writes and not caller.can("opportunities:write") else 200

        return Plan(writes, prepare, expect)

    def lead_route(suffix: str, body: Callable[[World], Body], success: int) -> Plan:
        def prepare(world: World, caller: Caller) -> Call:
            record = world.new_record("leads")
            return Call(
                f"/v1/leads/{record['id']}{suffix}", body(world), _record_snapshot(world, "leads", record["id"])
            )

        def expect(world: World, caller: Caller) -> int:
            if not caller.can("leads:read"):
                return 403
            if not caller.sees_owned_by(world.rep.user_id):
                return 404
            return success if caller.can("leads:write") else 403

        return Plan(True, prepare, expect)

    def user_get(world: World, caller: Caller) -> Call:
        return Call(f"/v1/users/{world.rep.user_id}")

    def user_patch(world: World, caller: Caller) -> Call:
        def snapshot() -> Any:
            return world.maker.request("GET", f"/v1/users/{world.rep.user_id}").json()

        return Call(f"/v1/users/{world.rep.user_id}", {"display_name": f"代表 {tag()}"}, snapshot)

    def user_patch_expect(world: World, caller: Caller) -> int:
        if not caller.can("users:read") or caller.organization != "tenant":
            return 404
        return 200 if caller.key == "rep" or caller.can("users:manage") else 403

    def users_verify(world: World, caller: Caller, response: Response) -> None:
        ids = {user["id"] for user in response.json()["items"]}
        assert (world.rep.user_id in ids) is _same_organization(world, caller)

    def audit_verify(world: World, caller: Caller, response: Response) -> None:
        tenant_users = {member.user_id for member in world.tenant.members.values()}
        for entry in response.json()["items"]:
            if caller.organization != "tenant":
                assert entry["actor_user_id"] not in tenant_users
                assert not (entry["subject_type"] == "user" and entry["subject_id"] in tenant_users)

    def token_revoke(world: World, caller: Caller) -> Call:
        token_id = world.new_token_of_rep()

        def snapshot() -> Any:
            response = world.maker.request("GET", "/v1/auth/tokens")
            return [token for token in response.json()["items"] if token["id"] == token_id]

        return Call(f"/v1/auth/tokens/{token_id}", None, snapshot)

    def token_revoke_expect(world: World, caller: Caller) -> int:
        if caller.organization == "tenant" and (caller.key == "rep" or caller.can("users:manage")):
            return 204
        return 404

    def freshness_call(world: World, caller: Caller) -> Call:
        world.new_record("leads")  # a lead's name has changed in the tenant: the feed lead.name exists

        def snapshot() -> Any:
            return world.maker.request("GET", "/quality/freshness").json()

        return Call("/v1/quality/freshness/lead.name", {"max_silent_days": 30}, snapshot)

    def me_verify(world: World, caller: Caller, response: Response) -> None:
        me = response.json()
        assert me["user_id"] == caller.member.user_id
        assert me["role"] == caller.role.value
        assert me["permissions"] == sorted(caller.member.actor.permissions)

    return {
        ("GET", "/v1/users"): Plan(
            False,
            lambda world, caller: Call(""),
            lambda world, caller: 200 if caller.can("users:read") else 403,
            users_verify,
        ),
        ("GET", "/v1/users/{record_id}"): Plan(
            False, user_get, lambda world, caller: 200 if _same_organization(world, caller) else 404
        ),
        ("POST", "/v1/users"): collection(
            "users:manage",
            success=201,
            body=lambda: {"username": f"new-{tag()}", "display_name": "新同事", "role": "rep"},
        ),
        ("PATCH", "/v1/users/{record_id}"): Plan(True, user_patch, user_patch_expect),
        ("GET", "/v1/users/me"): Plan(False, lambda world, caller: Call(""), lambda world, caller: 200, me_verify),
        ("GET", "/v1/regions"): collection("users:read"),
        ("POST", "/v1/regions"): collection("organization:manage", success=201, body=lambda: {"name": f"华南 {tag()}"}),
        ("GET", "/v1/funnel"): collection("funnel:read"),
        ("GET", "/v1/quality/defects"): collection("quality:read"),
        ("GET", "/v1/quality/kpis"): collection("quality:read"),
        ("GET", "/v1/scorecards/teams"): collection("quality:read"),
        ("GET", "/v1/quality/rules"): collection(),
        ("POST", "/v1/quality/scans"): collection("quality:scan", success=202, body=lambda: {"full": False}),
        ("GET", "/v1/quality/scans/{scan_id}"): Plan(
            False,
            lambda world, caller: Call("/v1/quality/scans/999999999"),
            lambda world, caller: 404 if caller.can("quality:read") else 403,
        ),
        ("GET", "/v1/quality/freshness"): collection("quality:read"),
        ("PUT", "/v1/quality/freshness/{feed}"): Plan(
            True,
            freshness_call,
            lambda world, caller: (
                403 if not caller.can("schema:manage") else 200 if caller.organization == "tenant" else 404
            ),
        ),
        ("GET", "/v1/audit"): Plan(
            False,
            lambda world, caller: Call(""),
            lambda world, caller: 200 if caller.can("audit:read") else 403,
            audit_verify,
        ),
        ("GET", "/v1/auth/tokens"): collection(),
        ("DELETE", "/v1/auth/tokens/{record_id}"): Plan(True, token_revoke, token_revoke_expect),
        # Public: a wrong password is refused whoever asks, and the bearer header changes nothing.
        ("POST", "/v1/auth/token"): Plan(
            True,
            lambda world, caller: Call("", {"username": caller.member.username, "password": "not-the-password"}),
            lambda world, caller: 401,
        ),
        ("POST", "/v1/opportunities/{record_id}/stage"): opportunity_route("/stage", writes=True),
        ("GET", "/v1/opportunities/{record_id}/stage-history"): opportunity_route("/stage-history", writes=False),
        ("POST", "/v1/leads/{record_id}/assign"): lead_route(
            "/assign", lambda world: {"owner_id": world.rep.user_id}, 200
        ),
        ("POST", "/v1/leads/{record_id}/convert"): lead_route("/convert", lambda world: {}, 201),
    }


def _integration_plans() -> dict[tuple[str, str], Plan]:
    """Imports (uploads handled by a background job) and exports (file downloads)."""

    def may_import(world: World, caller: Caller) -> int:
        return 0 if caller.can("imports:run", "accounts:write") else 403

    def upload(success: int, *, writes: bool) -> Plan:
        def prepare(world: World, caller: Caller) -> Call:
            def jobs_of_tenant() -> Any:
                return world.maker.request("GET", "/v1/imports").json()

            files = {"file": ("客户.csv", IMPORT_CSV, "text/csv")}
            return Call("", snapshot=jobs_of_tenant if writes else None, upload=(files, {"entity": "accounts"}))

        return Plan(writes, prepare, lambda world, caller: may_import(world, caller) or success)

    def started_the_job(world: World, caller: Caller) -> bool:
        """Import jobs are their starter's alone: a report quotes rows another importer may not read."""
        return _same_organization(world, caller) and caller.member.user_id == world.tenant["admin"].user_id

    def jobs_verify(world: World, caller: Caller, response: Response) -> None:
        ids = [job["id"] for job in response.json()["items"]]
        assert (world.import_job() in ids) is started_the_job(world, caller)

    def jobs_prepare(world: World, caller: Caller) -> Call:
        world.import_job()
        return Call("")

    def job_prepare(world: World, caller: Caller) -> Call:
        return Call(f"/v1/imports/{world.import_job()}")

    def job_expect(world: World, caller: Caller) -> int:
        if not caller.can("imports:run"):
            return 403
        return 200 if started_the_job(world, caller) else 404

    def export_prepare(world: World, caller: Caller) -> Call:
        world.sample("accounts")
        return Call("/v1/exports/accounts")

    def export_verify(world: World, caller: Caller, response: Response) -> None:
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert ("credit_line" in rows[0]) is (caller.role in FINANCE), (caller.key, rows[0])
        names = [row[rows[0].index("name")] for row in rows[1:]]
        assert (world.sample("accounts")["name"] in names) is caller.sees_owned_by(world.rep.user_id), caller.key

    return {
        ("POST", "/v1/imports"): upload(202, writes=True),
        ("POST", "/v1/imports/preview"): upload(200, writes=False),
        ("GET", "/v1/imports"): Plan(
            False,
            jobs_prepare,
            lambda world, caller: 200 if caller.can("imports:run") else 403,
            jobs_verify,
        ),
        ("GET", "/v1/imports/{job_id}"): Plan(False, job_prepare, job_expect),
        ("GET", "/v1/exports/{entity}"): Plan(
            False,
            export_prepare,
            lambda world, caller: 200 if caller.can("exports:run", "accounts:read") else 403,
            export_verify,
        ),
    }


def _formula_plans() -> dict[tuple[str, str], Plan]:
    """Formulas (GOV-2): checking one needs read permission on what it reads and tells which inputs
    are masked for the caller; a preview computes only on records the caller can see."""
    margin = "ROUND(margin * amount / 100, 2)"

    def check_verify(world: World, caller: Caller, response: Response) -> None:
        masked = response.json()["masked_inputs"]
        assert masked == ([] if caller.role in FINANCE else ["opportunity.margin"]), (caller.key, masked)

    def preview_prepare(world: World, caller: Caller) -> Call:
        record = world.sample("opportunities")
        return Call("", {"record_type": "opportunity", "expression": "amount / 2", "ids": [record["id"]]})

    def preview_verify(world: World, caller: Caller, response: Response) -> None:
        ids = [item["id"] for item in response.json()["items"]]
        assert (world.sample("opportunities")["id"] in ids) is caller.sees_owned_by(world.rep.user_id), caller.key

    def vocabulary_verify(world: World, caller: Caller, response: Response) -> None:
        names = {field["name"] for field in response.json()["fields"]}
        assert ("margin" in names) is (caller.role in FINANCE), caller.key

    def may_read(world: World, caller: Caller) -> int:
        return 200 if caller.can("opportunities:read") else 403

    return {
        ("POST", "/v1/formulas/check"): Plan(
            False,
            lambda world, caller: Call("", {"record_type": "opportunity", "expression": margin}),
            may_read,
            check_verify,
        ),
        ("POST", "/v1/formulas/preview"): Plan(False, preview_prepare, may_read, preview_verify),
        ("GET", "/v1/formulas/vocabulary/{plural}"): Plan(
            False, lambda world, caller: Call("/v1/formulas/vocabulary/opportunities"), may_read, vocabulary_verify
        ),
    }


PLANS: dict[tuple[str, str], Plan] = {}
for _plural in SPEC_BY_PLURAL:
    PLANS.update(_record_plans(_plural))


SIGNERS = frozenset({Role.SALES_VP, Role.IT_DIRECTOR})


def _custom_field_plans() -> dict[tuple[str, str], Plan]:
    """Custom-field definitions: readable with the record type, managed with schema:manage."""

    def definitions_of_tenant(world: World) -> Callable[[], Any]:
        return lambda: world.maker.request("GET", "/custom-fields").json()

    def one_prepare(world: World, caller: Caller) -> Call:
        return Call(f"/v1/custom-fields/{world.custom_field()}")

    def one_expect(world: World, caller: Caller) -> int:
        return 200 if _same_organization(world, caller) else 404

    def manage_expect(success: int) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can("schema:manage"):
                return 403
            return success if _same_organization(world, caller) else 404

        return expect

    def sign_off_expect(world: World, caller: Caller) -> int:
        if not _same_organization(world, caller):
            return 403 if not (caller.can("schema:manage") or caller.role in SIGNERS) else 404
        if not (caller.can("schema:manage") or caller.role in SIGNERS):
            return 403
        # the admin asked (and may not approve their own request); other roles do not sign off
        return 200 if caller.role in SIGNERS else 403

    def reject_expect(world: World, caller: Caller) -> int:
        return sign_off_expect(world, caller)

    def cancel_expect(world: World, caller: Caller) -> int:
        if not (caller.can("schema:manage") or caller.role in SIGNERS):
            return 403
        if not _same_organization(world, caller):
            return 404
        return 200 if caller.key == "admin" else 403

    def queue_expect(world: World, caller: Caller) -> int:
        return 200 if caller.can("schema:manage") or caller.role in SIGNERS else 403

    def request_call(suffix: str, body: Any = None) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            return Call(
                f"/v1/change-requests/{world.change_request()}{suffix}", body, snapshot=definitions_of_tenant(world)
            )

        return prepare

    def rollback_prepare(world: World, caller: Caller) -> Call:
        """An applied request of the tenant, whose rollback is a new request."""
        request_id = world.change_request()
        for key in ("sales_vp", "it_director"):
            signer = world.tenant[key].actor
            with world.db.unit_of_work(signer) as session:
                changerequests.approve(session, signer, request_id)
        return Call(f"/v1/change-requests/{request_id}/rollback", {}, snapshot=definitions_of_tenant(world))

    def patch_prepare(world: World, caller: Caller) -> Call:
        return Call(
            f"/v1/custom-fields/{world.custom_field()}",
            {"label_en": f"F {tag()}"},
            snapshot=definitions_of_tenant(world),
        )

    def delete_prepare(world: World, caller: Caller) -> Call:
        return Call(f"/v1/custom-fields/{world.new_custom_field()}", snapshot=definitions_of_tenant(world))

    def create_prepare(world: World, caller: Caller) -> Call:
        body = {"record_type": "lead", "name": f"n_{tag()}", "field_type": "number", "label_zh": "数", "label_en": "N"}
        return Call("", body, snapshot=definitions_of_tenant(world))

    def list_verify(world: World, caller: Caller, response: Response) -> None:
        ids = [item["id"] for item in response.json()["items"]]
        assert (world.custom_field() in ids) is _same_organization(world, caller), caller.key

    def list_prepare(world: World, caller: Caller) -> Call:
        world.custom_field()
        return Call("")

    def field_security_verify(world: World, caller: Caller, response: Response) -> None:
        """The matrix lists only fields the caller reads: the credit line for finance roles alone."""
        accounts = next(item for item in response.json()["items"] if item["record_type"] == "account")
        listed = {item["field"] for item in accounts["fields"]}
        assert ("credit_line" in listed) is (caller.role in FINANCE), caller.key

    return {
        ("GET", "/v1/custom-fields"): Plan(False, list_prepare, lambda world, caller: 200, list_verify),
        ("POST", "/v1/custom-fields"): Plan(
            True, create_prepare, lambda world, caller: 202 if caller.can("schema:manage") else 403
        ),
        ("GET", "/v1/custom-fields/{record_id}"): Plan(False, one_prepare, one_expect),
        ("PATCH", "/v1/custom-fields/{record_id}"): Plan(True, patch_prepare, manage_expect(202)),
        ("DELETE", "/v1/custom-fields/{record_id}"): Plan(True, delete_prepare, manage_expect(202)),
        ("GET", "/v1/change-requests"): Plan(False, lambda world, caller: Call(""), queue_expect),
        ("GET", "/v1/change-requests/{record_id}"): Plan(
            False,
            request_call(""),
            lambda world, caller: (
                queue_expect(world, caller)
                if queue_expect(world, caller) == 403
                else (200 if _same_organization(world, caller) else 404)
            ),
        ),
        ("POST", "/v1/change-requests/{record_id}/approve"): Plan(True, request_call("/approve"), sign_off_expect),
        ("POST", "/v1/change-requests/{record_id}/reject"): Plan(
            True, request_call("/reject", {"reason": "不需要"}), reject_expect
        ),
        ("POST", "/v1/change-requests/{record_id}/cancel"): Plan(True, request_call("/cancel"), cancel_expect),
        ("POST", "/v1/change-requests/{record_id}/rollback"): Plan(
            True, rollback_prepare, lambda world, caller: manage_expect(202)(world, caller)
        ),
        ("GET", "/v1/data-assets"): Plan(
            False, lambda world, caller: Call(""), lambda world, caller: 200 if caller.can("assets:read") else 403
        ),
        ("GET", "/v1/data-assets/export"): Plan(
            False, lambda world, caller: Call(""), lambda world, caller: 200 if caller.can("assets:read") else 403
        ),
        ("PUT", "/v1/data-assets/{kind}/{key}"): Plan(
            True,
            lambda world, caller: Call(
                "/v1/data-assets/record_type/lead",
                {"responsible": ["manager"]},
                snapshot=lambda: world.maker.request("GET", "/data-assets").json(),
            ),
            lambda world, caller: 200 if caller.can("schema:manage") else 403,
        ),
        ("PATCH", "/v1/data-assets/{kind}/{key}"): Plan(
            True,
            lambda world, caller: Call(
                "/v1/data-assets/record_type/lead",
                {"consulted": ["manager"]},
                snapshot=lambda: world.maker.request("GET", "/data-assets").json(),
            ),
            lambda world, caller: 200 if caller.can("schema:manage") else 403,
        ),
        ("GET", "/v1/field-security"): Plan(
            False,
            lambda world, caller: Call(""),
            lambda world, caller: 200 if caller.can("schema:manage") else 403,
            field_security_verify,
        ),
        ("PUT", "/v1/field-security/{noun}/{field}"): Plan(
            True,
            lambda world, caller: Call(
                "/v1/field-security/account/industry",
                {"roles": {"partner_user": {"read": False}}},
                snapshot=lambda: world.maker.request("GET", "/field-security").json(),
            ),
            lambda world, caller: 202 if caller.can("schema:manage") else 403,
        ),
        ("GET", "/v1/lineage/{noun}/{field}"): Plan(
            False,
            lambda world, caller: Call("/v1/lineage/account/name"),
            lambda world, caller: 200 if caller.can("accounts:read") else 403,
        ),
        ("GET", "/v1/schema/{plural}"): Plan(
            False,
            lambda world, caller: Call("/v1/schema/accounts"),
            lambda world, caller: 200 if caller.can("accounts:read") else 403,
        ),
    }


def _search_plans() -> dict[tuple[str, str], Plan]:
    """Search: everyone may search; hits are what the caller could open (scope, tenancy, masks)."""

    def prepare(world: World, caller: Caller) -> Call:
        account = world.sample("accounts")
        return Call(f"/v1/search?q={account['name']}")

    def verify(world: World, caller: Caller, response: Response) -> None:
        account = world.sample("accounts")
        found = {
            item["id"] for group in response.json()["groups"] if group["type"] == "account" for item in group["items"]
        }
        assert (account["id"] in found) is (caller.can("accounts:read") and caller.sees_owned_by(world.rep.user_id))

    return {("GET", "/v1/search"): Plan(False, prepare, lambda world, caller: 200, verify)}


def _notification_plans() -> dict[tuple[str, str], Plan]:
    """Notifications: everyone reads their own; nobody else's, not even a manager or an admin."""

    def rep_notice(world: World, caller: Caller) -> Call:
        with world.db.unit_of_work(None, system=True) as session:
            notice = notifications.notify(
                session,
                organization_id=world.rep.actor.organization_id,
                user_id=world.rep.user_id,
                message=notifications.Message("test", "提醒", "A notice"),
            )
            assert notice is not None
            notice_id = notice.id

        def snapshot() -> Any:
            with world.db.reading(None, system=True) as session:
                return session.scalar(
                    select(notifications.Notification.read_at).where(notifications.Notification.id == notice_id)
                )

        return Call(f"/v1/notifications/{notice_id}/read", None, snapshot)

    def only_own(world: World, caller: Caller, response: Response) -> None:
        assert response.json()["items"] == [] or caller.key == "rep", "someone else's notifications leaked"

    return {
        ("GET", "/v1/notifications"): Plan(False, lambda world, caller: Call(""), lambda world, caller: 200, only_own),
        ("POST", "/v1/notifications/{notification_id}/read"): Plan(
            True, rep_notice, lambda world, caller: 200 if caller.member.user_id == world.rep.user_id else 404
        ),
        ("POST", "/v1/notifications/read"): Plan(True, lambda world, caller: Call(""), lambda world, caller: 200),
    }


def _mapping_plans() -> dict[tuple[str, str], Plan]:
    """Saved import mappings: read with imports:run; every change is a change request (schema:manage)."""

    def tenant_mapping(world: World) -> int:
        if "mapping" not in world.shared:
            with world.db.unit_of_work(None, system=True) as session:
                mapping = ImportMapping(
                    organization_id=world.rep.actor.organization_id,
                    name=f"经销商周报 {tag()}",
                    entity="accounts",
                    columns={"客户名称": "name"},
                )
                session.add(mapping)
                session.flush()
                world.shared["mapping"] = {"id": mapping.id}
        return int(world.shared["mapping"]["id"])

    def requests_of_tenant(world: World) -> Callable[[], Any]:
        return lambda: world.maker.request("GET", "/change-requests").json()

    def one(suffix_body: Any = None) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            return Call(f"/v1/import-mappings/{tenant_mapping(world)}", suffix_body, requests_of_tenant(world))

        return prepare

    def read_expect(world: World, caller: Caller) -> int:
        if not caller.can("imports:run"):
            return 403
        return 200 if _same_organization(world, caller) else 404

    def change_expect(world: World, caller: Caller) -> int:
        if not caller.can("schema:manage") or not caller.can("imports:run"):
            return 403
        return 202 if _same_organization(world, caller) else 404

    def list_call(world: World, caller: Caller) -> Call:
        tenant_mapping(world)  # one mapping of the tenant exists, which only its own callers see
        return Call("")

    def no_foreign(world: World, caller: Caller, response: Response) -> None:
        ids = {item["id"] for item in response.json()["items"]}
        assert (tenant_mapping(world) in ids) is _same_organization(world, caller)

    return {
        ("GET", "/v1/import-mappings"): Plan(
            False,
            list_call,
            lambda world, caller: 200 if caller.can("imports:run") else 403,
            no_foreign,
        ),
        ("GET", "/v1/import-mappings/{record_id}"): Plan(False, one(), read_expect),
        ("POST", "/v1/import-mappings"): Plan(
            True,
            lambda world, caller: Call(
                "",
                {"name": f"展会线索 {tag()}", "entity": "accounts", "columns": {"客户名称": "name"}},
                requests_of_tenant(world),
            ),
            lambda world, caller: 202 if caller.can("schema:manage", "imports:run") else 403,
        ),
        ("PATCH", "/v1/import-mappings/{record_id}"): Plan(True, one({"columns": {"公司": "name"}}), change_expect),
        ("DELETE", "/v1/import-mappings/{record_id}"): Plan(True, one(), change_expect),
    }


def _dashboard_plans() -> dict[tuple[str, str], Plan]:
    """Performance, funnel step records, alert thresholds (each person's own) and metric lineage."""

    def reads(*permissions: str, path: str = "") -> Plan:
        return Plan(
            False,
            lambda world, caller: Call(path),
            lambda world, caller: 200 if caller.can(*permissions) else 403,
        )

    def rep_threshold(world: World, caller: Caller) -> Call:
        body = {"metric": "won_deals", "direction": "above", "value": "1000"}
        response = Api(world.client, world.rep).request("POST", "/api/v1/alert-thresholds", json=body)
        assert response.status_code == 201, response.text
        threshold_id = response.json()["id"]

        def snapshot() -> Any:
            items = Api(world.client, world.rep).request("GET", "/api/v1/alert-thresholds").json()["items"]
            return [item["id"] for item in items if item["id"] == threshold_id]

        return Call(f"/v1/alert-thresholds/{threshold_id}", None, snapshot)

    def only_own(world: World, caller: Caller, response: Response) -> None:
        assert response.json()["items"] == [] or caller.key == "rep", "someone else's thresholds leaked"

    def step_expect(world: World, caller: Caller) -> int:
        return 200 if caller.can("funnel:read", "opportunities:read") else 403

    return {
        ("GET", "/v1/performance"): reads("funnel:read", "opportunities:read", path="/v1/performance?by=owner"),
        ("GET", "/v1/funnel/{step}/records"): Plan(
            False, lambda world, caller: Call("/v1/funnel/won/records"), step_expect
        ),
        ("GET", "/v1/alert-thresholds"): Plan(
            False,
            lambda world, caller: Call(""),
            lambda world, caller: 200,
            only_own,
        ),
        ("POST", "/v1/alert-thresholds"): Plan(
            True,
            lambda world, caller: Call("", {"metric": "revenue", "direction": "below", "value": "1"}),
            lambda world, caller: 201 if caller.can("funnel:read", "opportunities:read") else 403,
        ),
        ("DELETE", "/v1/alert-thresholds/{threshold_id}"): Plan(
            True, rep_threshold, lambda world, caller: 204 if caller.member.user_id == world.rep.user_id else 404
        ),
        ("GET", "/v1/metrics"): reads("funnel:read"),
        ("GET", "/v1/lineage/metric/{key}"): reads("funnel:read", path="/v1/lineage/metric/revenue"),
        ("GET", "/v1/lineage/dashboard/{key}"): reads("funnel:read", path="/v1/lineage/dashboard/performance"),
    }


def _rule_language_plans() -> dict[tuple[str, str], Plan]:
    """Rules in plain language (AUTO-2): parsing one is rule design (rules:write); nothing is stored."""

    def verify(world: World, caller: Caller, response: Response) -> None:
        assert response.json()["rule"]["actions"] == [{"type": "notify", "target": "role:sales_ops", "params": {}}]

    return {
        ("POST", "/v1/rules/parse"): Plan(
            False,
            lambda world, caller: Call("", {"text": "新线索24小时内未分配，提醒销售运营"}),
            lambda world, caller: 200 if caller.can("rules:write") else 403,
            verify,
        )
    }


def _knowledge_plans() -> dict[tuple[str, str], Plan]:
    """Knowledge base: collections readable by knowledge managers and the roles / users their rules name
    (the tenant's collection here names the rep role); managing needs knowledge:manage; another
    organization's collection is always 404."""

    def collection(world: World, *, fresh: bool = False) -> int:
        if fresh or "knowledge" not in world.shared:
            admin = world.tenant["admin"].actor
            with world.db.unit_of_work(admin) as session:
                made = knowledge.create_collection(
                    session, admin, name=f"话术 {tag()}", rules=[knowledge.RuleSpec("role", "rep")]
                )
                made_id = made.id
            if fresh:
                return made_id
            world.shared["knowledge"] = {"id": made_id}
        return int(world.shared["knowledge"]["id"])

    def document(world: World, collection_id: int) -> int:
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            # each document its own content: the same bytes twice in a collection are refused
            content = f"# A\n\nB {tag()}\n".encode()
            return knowledge.add_document(session, admin, collection_id, filename="a.md", content=content).id

    def reads(world: World, caller: Caller) -> bool:
        return caller.organization == "tenant" and (caller.can("knowledge:manage") or caller.role is Role.REP)

    def read_expect(world: World, caller: Caller) -> int:
        if not caller.can("knowledge:read"):
            return 403
        return 200 if reads(world, caller) else 404

    def manage_expect(success: int) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can("knowledge:manage"):
                return 403
            return success if caller.organization == "tenant" else 404

        return expect

    def on_collection(suffix: str = "", body: Any = None, *, fresh: bool = False) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            cid = collection(world, fresh=fresh and not world.refuses(caller))
            return Call(f"/v1/knowledge/collections/{cid}{suffix}", body)

        return prepare

    def on_document(world: World, caller: Caller) -> Call:
        cid = collection(world)
        return Call(f"/v1/knowledge/collections/{cid}/documents/{document(world, cid)}")

    def upload(world: World, caller: Caller) -> Call:
        cid = collection(world)
        files = {"file": ("规定.md", f"# 规定\n\n第一条 广告应当真实。{tag()}\n".encode(), "text/markdown")}
        return Call(f"/v1/knowledge/collections/{cid}/documents", upload=(files, {}))

    def listed(world: World, caller: Caller, response: Response) -> None:
        ids = [item["id"] for item in response.json()["items"]]
        assert (collection(world) in ids) is reads(world, caller), (caller.key, ids)

    def search(world: World, caller: Caller) -> Call:
        return Call("/v1/knowledge/search", {"query": "广告 真实", "collection_ids": [collection(world)]})

    def passage(world: World, caller: Caller) -> Call:
        if "passage" not in world.shared:
            from closeloop.assistant.knowledge.models import KnowledgeChunk

            document_id = document(world, collection(world))
            assert knowledge.index_document(world.db, world.tenant.organization_id, document_id) == "ready"
            with world.db.reading(None, system=True) as session:
                chunk_id = session.scalars(
                    select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document_id)
                ).first()
            world.shared["passage"] = {"id": chunk_id}
        return Call(f"/v1/knowledge/passages/{world.shared['passage']['id']}")

    def partner_of(world: World) -> int:
        return next(c.member.actor.organization_id for c in world.callers if c.organization == "partner")

    def share_call(world: World, caller: Caller) -> Call:
        cid = collection(world, fresh=not world.refuses(caller))
        return Call(f"/v1/knowledge/collections/{cid}/partners/{partner_of(world)}")

    def shared_collection(world: World, caller: Caller) -> Call:
        cid = collection(world, fresh=True)
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            knowledge.share(session, admin, cid, partner_of(world))
        return Call(f"/v1/knowledge/collections/{cid}/partners/{partner_of(world)}")

    base = "/v1/knowledge/collections"

    def on_list(world: World, caller: Caller) -> Call:
        collection(world)
        return Call(base)

    item = base + "/{collection_id}"
    return {
        ("GET", base): Plan(
            False,
            on_list,
            lambda world, caller: 200 if caller.can("knowledge:read") else 403,
            listed,
        ),
        ("POST", base): Plan(
            True,
            lambda world, caller: Call(
                base, {"name": f"产品手册 {tag()}", "access": [{"kind": "role", "value": "rep"}]}
            ),
            lambda world, caller: 201 if caller.can("knowledge:manage") else 403,
        ),
        ("GET", item): Plan(False, on_collection(), read_expect),
        ("PATCH", item): Plan(True, on_collection(body={"description": "新说明"}), manage_expect(200)),
        ("DELETE", item): Plan(True, on_collection(fresh=True), manage_expect(204)),
        ("GET", item + "/documents"): Plan(False, on_collection("/documents"), read_expect),
        ("POST", item + "/documents"): Plan(True, upload, manage_expect(202)),
        ("GET", item + "/documents/{document_id}"): Plan(False, on_document, read_expect),
        ("DELETE", item + "/documents/{document_id}"): Plan(True, on_document, manage_expect(204)),
        ("POST", "/v1/knowledge/search"): Plan(False, search, read_expect),
        ("GET", "/v1/knowledge/passages/{chunk_id}"): Plan(False, passage, read_expect),
        ("GET", "/v1/knowledge/partners"): Plan(
            False,
            lambda world, caller: Call("/v1/knowledge/partners"),
            lambda world, caller: 200 if caller.can("knowledge:manage") else 403,
        ),
        ("PUT", item + "/partners/{organization_id}"): Plan(True, share_call, manage_expect(200)),
        ("DELETE", item + "/partners/{organization_id}"): Plan(True, shared_collection, manage_expect(204)),
        ("GET", "/v1/assistant/briefs/accounts/{account_id}"): Plan(
            False,
            lambda world, caller: Call(f"/v1/assistant/briefs/accounts/{world.sample('accounts')['id']}"),
            lambda world, caller: (
                403 if not caller.can("accounts:read") else 200 if caller.sees_owned_by(world.rep.user_id) else 404
            ),
        ),
    }


def _assistant_plans() -> dict[tuple[str, str], Plan]:
    """Assistants (AST-3 … AST-6): contract templates read by whoever reads contracts and kept by
    holders of contract_templates:manage; another organization's template is 404."""
    template_text = "第一条 付款方式\n甲方于验收后三十日内付款。\n第二条 保密\n双方保密。\n".encode()

    def template(world: World, *, fresh: bool = False) -> int:
        if fresh or "contract_template" not in world.shared:
            admin = world.tenant["admin"].actor
            with world.db.unit_of_work(admin) as session:
                made = contract_service.add_template(
                    session, admin, name=f"标准合同 {tag()}", filename="t.txt", content=template_text
                )
                made_id = made.id
            if fresh:
                return made_id
            world.shared["contract_template"] = {"id": made_id}
        return int(world.shared["contract_template"]["id"])

    def expect(permission: str, success: int = 200) -> Callable[[World, Caller], int]:
        def answer(world: World, caller: Caller) -> int:
            if not caller.can(permission):
                return 403
            return success if caller.organization == "tenant" else 404

        return answer

    def on_template(suffix: str = "", *, fresh: bool = False, upload: bool = False) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            tid = template(world, fresh=fresh and not world.refuses(caller))
            files = {"file": ("c.txt", template_text.replace("三十".encode(), "九十".encode()), "text/plain")}
            return Call(f"/v1/assistant/contract-templates/{tid}{suffix}", upload=(files, {}) if upload else None)

        return prepare

    def listed(world: World, caller: Caller, response: Response) -> None:
        ids = [item["id"] for item in response.json()["items"]]
        assert (template(world) in ids) is (caller.organization == "tenant"), (caller.key, ids)

    def on_list(world: World, caller: Caller) -> Call:
        template(world)
        return Call("/v1/assistant/contract-templates")

    def upload_new(world: World, caller: Caller) -> Call:
        files = {"file": ("t.txt", template_text, "text/plain")}
        return Call("/v1/assistant/contract-templates", upload=(files, {"name": f"模板 {caller.key} {tag()}"}))

    base = "/v1/assistant/contract-templates"
    item = base + "/{template_id}"
    return {
        ("GET", base): Plan(False, on_list, lambda world, caller: 200 if caller.can("contracts:read") else 403, listed),
        ("POST", base): Plan(
            True, upload_new, lambda world, caller: 201 if caller.can("contract_templates:manage") else 403
        ),
        ("GET", item): Plan(False, on_template(), expect("contracts:read")),
        ("DELETE", item): Plan(True, on_template(fresh=True), expect("contract_templates:manage", 204)),
        ("POST", item + "/compare"): Plan(False, on_template("/compare", upload=True), expect("contracts:read")),
        ("POST", "/v1/assistant/talk-tracks"): Plan(
            False,
            lambda world, caller: Call("", {"objection": "价格太贵"}),
            lambda world, caller: 200 if caller.can("knowledge:read") else 403,
        ),
        ("POST", "/v1/assistant/battlecards"): Plan(
            False, lambda world, caller: Call("", {"competitor": "迈瑞"}), lambda world, caller: 200
        ),
        ("POST", "/v1/assistant/verdicts"): Plan(
            True,
            lambda world, caller: Call(
                "", {"source": "brief", "key": f"account:{world.sample('accounts')['id']}", "verdict": "adopted"}
            ),
            # a statement about the rep's account: judged only by who may read that account
            lambda world, caller: (
                403
                if not caller.can("knowledge:read")
                else 201
                if caller.can("accounts:read") and caller.sees_owned_by(world.rep.user_id)
                else 404
            ),
        ),
        ("GET", "/v1/assistant/adoption-report"): Plan(
            False, lambda world, caller: Call(""), lambda world, caller: 200 if caller.can("assistant:report") else 403
        ),
        ("GET", "/v1/assistant/adoption-reports"): Plan(
            False, lambda world, caller: Call(""), lambda world, caller: 200 if caller.can("assistant:report") else 403
        ),
        ("GET", "/v1/assistant/workflows"): Plan(
            False, lambda world, caller: Call(""), lambda world, caller: 200 if caller.can("assistant:report") else 403
        ),
        ("POST", "/v1/assistant/workflows"): Plan(
            True,
            lambda world, caller: Call(
                "", {"name": f"wf {caller.key} {tag()}", "event_type": "activity.created", "definition": {}}
            ),
            lambda world, caller: 201 if caller.can("assistant:workflows") else 403,
        ),
        ("PATCH", "/v1/assistant/workflows/{workflow_id}"): Plan(
            True,
            lambda world, caller: Call("/v1/assistant/workflows/999999999", {"enabled": False}),
            lambda world, caller: 404 if caller.can("assistant:workflows") else 403,
        ),
    }


PLANS.update(_assistant_plans())


def _pool_plans() -> dict[tuple[str, str], Plan]:
    """Pools (CN-1): read and claim with the pool permissions; pools managed by sales ops (or a pool's
    admins); release and lock by the owner's reach; another organization never finds a pool or account."""

    def pool_id(world: World) -> int:
        if "pool" not in world.shared:
            from closeloop.pools import service as pools

            admin = world.tenant["admin"].actor
            with world.db.unit_of_work(admin) as session:
                pool = pools.create_pool(session, admin, {"name": "公海", "region_ids": [world.tenant.region_id]})
                world.shared["pool"] = {"id": pool.id}
        return int(world.shared["pool"]["id"])

    def account_id(world: World, owner_id: int | None) -> int:
        from closeloop.crm.accounts.models import Account

        with world.db.unit_of_work(None, system=True) as session:
            account = Account(
                organization_id=world.tenant.organization_id,
                name=f"公海客户 {tag()}",
                region_id=world.tenant.region_id,
                owner_id=owner_id,
            )
            session.add(account)
            session.flush()
            return account.id

    def owner_of(world: World, record_id: int) -> Callable[[], Any]:
        def snapshot() -> Any:
            from closeloop.crm.accounts.models import Account

            with world.db.reading(None, system=True) as session:
                account = session.get(Account, record_id)
                return account.owner_id if account else None

        return snapshot

    def reads(*permissions: str) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can(*permissions):
                return 403
            return 200

        return expect

    def on_pool(*permissions: str, manage: bool = False) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can(*permissions):
                return 403
            if caller.organization != "tenant":
                return 404
            return 403 if manage and not caller.can("pools:manage") else 200

        return expect

    def pool_path(suffix: str = "", body: Body | None = None) -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(f"/v1/pools/{pool_id(world)}{suffix}", body)

    def new_pool(world: World, caller: Caller) -> Call:
        from closeloop.org import service as org_service

        region_ids: list[int] = []
        if caller.organization == "tenant":
            system = org_service.system_actor(world.tenant.organization_id)
            with world.db.unit_of_work(system) as session:
                region_ids = [org_service.ensure_region(session, system, name=f"区域 {tag()}").id]
        return Call("/v1/pools", {"name": f"公海 {tag()}", "region_ids": region_ids})

    def claim(world: World, caller: Caller) -> Call:
        record = account_id(world, None)
        path = f"/v1/pools/{pool_id(world)}/accounts/{record}/claim"
        return Call(path, {}, owner_of(world, record))

    def on_rep_account(suffix: str, body: Body) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            pool_id(world)
            record = account_id(world, world.rep.user_id)
            return Call(f"/v1/pools/accounts/{record}{suffix}", body, owner_of(world, record))

        return prepare

    def by_reach(world: World, caller: Caller) -> int:
        if not caller.can("pools:claim"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    def assign_expect(world: World, caller: Caller) -> int:
        if not caller.can("pools:claim"):
            return 403
        if caller.organization != "tenant":
            return 404
        return 200 if caller.can("pools:manage") else 403

    def history(world: World, caller: Caller) -> Call:
        pool_id(world)
        if "pool_history" not in world.shared:
            world.shared["pool_history"] = {"id": account_id(world, world.rep.user_id)}
        return Call(f"/v1/pools/accounts/{world.shared['pool_history']['id']}/owner-changes")

    def history_expect(world: World, caller: Caller) -> int:
        if not caller.can("accounts:read"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    def no_foreign_pools(world: World, caller: Caller, response: Response) -> None:
        if caller.organization != "tenant":
            assert all(item["id"] != world.shared.get("pool", {}).get("id") for item in response.json()["items"])

    def rep_pool_account(world: World, caller: Caller) -> Call:
        pool_id(world)
        return Call("/v1/duplicates/check", {"name": "公海客户"})

    return {
        ("GET", "/v1/pools"): Plan(False, pool_path_list, reads("pools:read"), no_foreign_pools),
        ("POST", "/v1/pools"): Plan(True, new_pool, lambda world, caller: 201 if caller.can("pools:manage") else 403),
        ("GET", "/v1/pools/private"): Plan(False, lambda world, caller: Call(""), reads("pools:read")),
        ("GET", "/v1/pools/settings"): Plan(False, lambda world, caller: Call(""), reads("pools:read")),
        ("PUT", "/v1/pools/settings"): Plan(
            True, lambda world, caller: Call("", {"duplicate_mode": "block"}), reads("pools:manage")
        ),
        ("GET", "/v1/pools/{pool_id}"): Plan(False, pool_path(), on_pool("pools:read")),
        ("PATCH", "/v1/pools/{pool_id}"): Plan(
            True, pool_path(body={"holding_cap": 9}), on_pool("pools:read", manage=True)
        ),
        ("GET", "/v1/pools/{pool_id}/accounts"): Plan(False, pool_path("/accounts"), on_pool("pools:read")),
        ("POST", "/v1/pools/{pool_id}/accounts/{account_id}/claim"): Plan(True, claim, on_pool("pools:claim")),
        ("POST", "/v1/pools/accounts/{account_id}/release"): Plan(True, on_rep_account("/release", {}), by_reach),
        ("POST", "/v1/pools/accounts/{account_id}/lock"): Plan(
            True, on_rep_account("/lock", {"locked": True}), by_reach
        ),
        ("POST", "/v1/pools/accounts/{account_id}/assign"): Plan(
            True,
            lambda world, caller: on_rep_account("/assign", {"user_id": world.tenant["rep2"].user_id})(world, caller),
            assign_expect,
        ),
        ("GET", "/v1/pools/accounts/{account_id}/owner-changes"): Plan(False, history, history_expect),
        ("POST", "/v1/duplicates/check"): Plan(False, rep_pool_account, reads("accounts:read")),
    }


def pool_path_list(world: World, caller: Caller) -> Call:
    return Call("")


PLANS.update(_other_plans())
PLANS.update(_dashboard_plans())
PLANS.update(_notification_plans())
PLANS.update(_mapping_plans())
PLANS.update(_search_plans())
PLANS.update(_integration_plans())
PLANS.update(_custom_field_plans())
PLANS.update(_formula_plans())
PLANS.update(_rule_language_plans())


def _compliance_plans() -> dict[tuple[str, str], Plan]:
    """The compliance checker: checks and findings for every writer, scans and decisions for supervisors."""

    def collection(permission: str, *, success: int = 200, body: Any = None) -> Plan:
        return Plan(
            body is not None,
            lambda world, caller: Call("", body),
            lambda world, caller: success if caller.can(permission) else 403,
        )

    def missing(path: str, permission: str, *, writes: bool) -> Plan:
        return Plan(
            writes,
            lambda world, caller: Call(path, {} if writes else None),
            lambda world, caller: 404 if caller.can(permission) else 403,
        )

    return {
        ("POST", "/v1/compliance/check"): collection("compliance:check", body={"text": "全网最低价，保证治愈。"}),
        ("POST", "/v1/compliance/scans"): collection("compliance:scan", success=202, body={}),
        ("GET", "/v1/compliance/scans/{scan_id}"): missing(
            "/v1/compliance/scans/999999999", "compliance:read", writes=False
        ),
        ("GET", "/v1/compliance/findings"): collection("compliance:read"),
        ("GET", "/v1/compliance/reviews"): collection("compliance:read"),
        ("POST", "/v1/compliance/reviews/{review_id}/approve"): missing(
            "/v1/compliance/reviews/999999999/approve", "compliance:review", writes=True
        ),
        ("POST", "/v1/compliance/reviews/{review_id}/reject"): missing(
            "/v1/compliance/reviews/999999999/reject", "compliance:review", writes=True
        ),
    }


def _automation_plans() -> dict[tuple[str, str], Plan]:
    """Automation: rules need rules:read / rules:write; decisions are read (and reviewed, and their
    pending actions cancelled) by whoever sees the record they are about, or owns the rule."""
    from closeloop.automation import service as automation
    from closeloop.automation.models import Decision, PendingAction, ReviewRequest

    definition = {
        "trigger": {"kind": "event", "event": "lead_created"},
        "conditions": [],
        "actions": [{"type": "notify", "target": "owner", "params": {}}],
    }

    def new_rule(world: World) -> int:
        manager = world.tenant["manager"].actor
        with world.db.unit_of_work(manager) as session:
            return automation.create_rule(session, manager, name="perm", definition=definition).id

    def rule(world: World) -> int:
        if "rule" not in world.shared:
            world.shared["rule"] = {"id": new_rule(world)}
        return int(world.shared["rule"]["id"])

    def new_decision(world: World) -> tuple[int, int]:
        from closeloop.crm.leads.models import Lead

        rule_id = rule(world)
        with world.db.unit_of_work(None, system=True) as session:
            # about a lead the rep owns: decisions and pending actions show only to those who may read it
            lead = Lead(organization_id=world.tenant.organization_id, name=f"线索 {tag()}", owner_id=world.rep.user_id)
            session.add(lead)
            session.flush()
            decision = Decision(
                organization_id=world.tenant.organization_id, rule_id=rule_id, rule_version=1, rule_name="perm",
                event_type="lead.created", firing_key=f"test:{len(world.shared)}", record_type="lead",
                record_id=lead.id,
                record_owner_id=world.rep.user_id, conditions=[], actions=[], why_zh="因为", why_en="because",
            )  # fmt: skip
            session.add(decision)
            session.flush()
            pending = PendingAction(
                organization_id=world.tenant.organization_id, decision_id=decision.id, rule_id=rule_id, position=0,
                action={"type": "create_task", "target": "owner", "params": {"title": "t"}}, record_type="lead",
                record_id=lead.id, record_owner_id=world.rep.user_id, run_after=decision.created_at, status="pending",
                result={},
            )  # fmt: skip
            session.add(pending)
            session.flush()
            world.shared[f"decision {decision.id}"] = {"id": decision.id}
            return decision.id, pending.id

    def decision(world: World) -> int:
        if "decision" not in world.shared:
            world.shared["decision"] = {"id": new_decision(world)[0]}
        return int(world.shared["decision"]["id"])

    def may(*permissions: str, success: int = 200) -> Callable[[World, Caller], int]:
        return lambda world, caller: success if caller.can(*permissions) else 403

    def on_rule(permission: str, success: int = 200) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can(permission):
                return 403
            return success if caller.organization == "tenant" else 404

        return expect

    def fresh_host(world: World, caller: Caller) -> Call:
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            row, _ = automation.allow_webhook_host(session, admin, f"gone-{caller.key}-{len(world.shared)}.example.com")
        world.shared[f"host {row.id}"] = {"id": row.id}
        return Call(f"/v1/webhook-hosts/{row.id}")

    def on_host(world: World, caller: Caller) -> int:
        if not caller.can("organization:manage"):
            return 403
        return 204 if caller.organization == "tenant" else 404

    def on_decision(world: World, caller: Caller) -> int:
        if not caller.can("decisions:read"):
            return 403
        if caller.organization != "tenant":
            return 404
        sees = caller.sees_owned_by(world.rep.user_id) or caller.key == "manager"
        return 200 if sees else 404

    def review(world: World, caller: Caller) -> Call:
        if "review" not in world.shared:
            director = world.tenant["director"].user_id
            with world.db.unit_of_work(None, system=True) as session:
                row = ReviewRequest(
                    organization_id=world.tenant.organization_id, decision_id=decision(world),
                    requested_by_id=world.rep.user_id, reviewer_id=director, reason="why?", status="open",
                )  # fmt: skip
                session.add(row)
                session.flush()
                world.shared["review"] = {"id": row.id}
        return Call(f"/v1/reviews/{world.shared['review']['id']}/resolve", {"resolution": "fine"})

    def on_review(world: World, caller: Caller) -> int:
        if caller.organization != "tenant":
            return 404
        return 200 if caller.key == "director" else 403

    def rule_call(suffix: str = "", body: Any = None) -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(f"/v1/rules/{rule(world)}{suffix}", body)

    def fresh_rule(world: World, caller: Caller) -> Call:
        return Call(f"/v1/rules/{new_rule(world)}")

    def fresh_pending(world: World, caller: Caller) -> Call:
        return Call(f"/v1/pending-actions/{new_decision(world)[1]}/cancel")

    rule_body = {"name": "new", "definition": definition}
    return {
        ("GET", "/v1/rules"): Plan(False, lambda world, caller: Call(""), may("rules:read")),
        ("POST", "/v1/rules"): Plan(True, lambda world, caller: Call("", rule_body), may("rules:write", success=201)),
        ("POST", "/v1/rules/backtest"): Plan(
            False, lambda world, caller: Call("", {"definition": definition, "days": 7}), may("rules:read")
        ),
        ("GET", "/v1/rules/{rule_id}"): Plan(False, rule_call(), on_rule("rules:read")),
        ("GET", "/v1/rules/{rule_id}/versions"): Plan(False, rule_call("/versions"), on_rule("rules:read")),
        ("PATCH", "/v1/rules/{rule_id}"): Plan(True, rule_call("", {"undo_seconds": 60}), on_rule("rules:write")),
        ("DELETE", "/v1/rules/{rule_id}"): Plan(True, fresh_rule, on_rule("rules:write", 204)),
        ("POST", "/v1/rules/{rule_id}/enable"): Plan(True, rule_call("/enable"), on_rule("rules:write")),
        ("POST", "/v1/rules/{rule_id}/disable"): Plan(True, rule_call("/disable"), on_rule("rules:write")),
        ("GET", "/v1/decisions"): Plan(False, lambda world, caller: Call(""), may("decisions:read")),
        ("GET", "/v1/decisions/{decision_id}"): Plan(
            False, lambda world, caller: Call(f"/v1/decisions/{decision(world)}"), on_decision
        ),
        ("POST", "/v1/decisions/{decision_id}/review"): Plan(
            True,
            lambda world, caller: Call(f"/v1/decisions/{decision(world)}/review", {"reason": "please look"}),
            lambda world, caller: 201 if on_decision(world, caller) == 200 else on_decision(world, caller),
        ),
        ("GET", "/v1/pending-actions"): Plan(False, lambda world, caller: Call(""), may("decisions:read")),
        ("POST", "/v1/pending-actions/{pending_id}/cancel"): Plan(True, fresh_pending, on_decision),
        ("GET", "/v1/reviews"): Plan(False, lambda world, caller: Call(""), may("decisions:read")),
        ("POST", "/v1/reviews/{review_id}/resolve"): Plan(True, review, on_review),
        ("GET", "/v1/playbooks"): Plan(False, lambda world, caller: Call(""), may("rules:read")),
        ("POST", "/v1/playbooks"): Plan(
            True,
            lambda world, caller: Call(
                "", {"name": f"pb {caller.key}", "steps": [{"title": "call", "due_in_days": 1}]}
            ),
            may("rules:write", success=201),
        ),
        ("POST", "/v1/playbooks/templates"): Plan(True, lambda world, caller: Call(""), may("rules:write")),
        ("POST", "/v1/webhook-hosts"): Plan(
            True,
            lambda world, caller: Call("", {"host": f"{caller.key}.example.com"}),
            may("organization:manage", success=201),
        ),
        ("GET", "/v1/webhook-hosts"): Plan(False, lambda world, caller: Call(""), may("organization:manage")),
        ("DELETE", "/v1/webhook-hosts/{host_id}"): Plan(True, fresh_host, on_host),
        ("GET", "/v1/webhook-deliveries"): Plan(False, lambda world, caller: Call(""), may("decisions:read")),
    }


PLANS.update(_compliance_plans())

PLANS.update(_automation_plans())
PLANS.update(_knowledge_plans())
PLANS.update(_pool_plans())


def _forecasting_plans() -> dict[tuple[str, str], Plan]:
    """Win probability: whoever may open the opportunity (404 outside their reach, 403 without
    opportunities:read); a reason never names a field the caller's masks hide."""

    def prepare(world: World, caller: Caller) -> Call:
        deal = world.sample("opportunities")
        return Call(f"/v1/opportunities/{deal['id']}/win-probability")

    def expect(world: World, caller: Caller) -> int:
        if not caller.can("opportunities:read"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    def verify(world: World, caller: Caller, response: Response) -> None:
        body = response.json()
        assert body["opportunity_id"] == world.sample("opportunities")["id"]
        assert 0.0 <= body["probability"] <= 1.0

    def snapshot(world: World) -> Body:
        """The tenant's bookings snapshot (taken once, as the daily task would)."""
        if "bookings" not in world.shared:
            from closeloop.core.clock import utcnow
            from closeloop.forecasting.bookings import take_snapshot

            with world.db.unit_of_work(None, system=True) as session:
                taken = take_snapshot(session, world.tenant.organization_id, simulations=200)
                world.shared["bookings"] = {"id": taken.id, "period": utcnow().strftime("%Y-%m")}
        return world.shared["bookings"]

    def bookings(suffix: str) -> Callable[[World, Caller], Call]:
        def prepare_bookings(world: World, caller: Caller) -> Call:
            taken = snapshot(world)
            return Call(f"/v1/forecasts{suffix.format(**taken)}")

        return prepare_bookings

    def reads(world: World, caller: Caller) -> int:
        return 200 if caller.can("forecasts:read") else 403

    def reads_tenant(world: World, caller: Caller) -> int:
        if not caller.can("forecasts:read"):
            return 403
        return 200 if caller.organization == "tenant" else 404

    def whole_organization(world: World, caller: Caller) -> int:
        if not caller.can("forecasts:read"):
            return 403
        return 200 if caller.member.actor.scope is RowScope.ALL else 403

    def no_foreign_items(world: World, caller: Caller, response: Response) -> None:
        if caller.organization != "tenant":
            assert response.json()["items"] == []

    def own_snapshot_only(world: World, caller: Caller, response: Response) -> None:
        shown = response.json()["snapshot"]
        if caller.organization != "tenant":
            assert shown is None or shown["id"] != snapshot(world)["id"]
        keys = {item["key"] for item in response.json()["items"]}
        if caller.member.actor.scope is not RowScope.ALL:
            assert keys <= set(caller.member.actor.owner_ids)

    return {
        ("GET", "/v1/opportunities/{opportunity_id}/win-probability"): Plan(False, prepare, expect, verify),
        ("GET", "/v1/forecasts/bookings"): Plan(False, bookings("/bookings?dimension=owner"), reads, own_snapshot_only),
        ("GET", "/v1/forecasts/bookings/accuracy"): Plan(False, bookings("/bookings/accuracy"), reads),
        ("GET", "/v1/forecasts/bookings/attribution"): Plan(
            False, bookings("/bookings/attribution?period={period}&snapshot_id={id}"), reads_tenant
        ),
        ("GET", "/v1/forecasts/replenishment"): Plan(False, bookings("/replenishment"), reads, no_foreign_items),
        ("GET", "/v1/forecasts/incentives"): Plan(False, bookings("/incentives?pool=1000"), whole_organization),
        ("GET", "/v1/forecasts/scorecards"): Plan(False, bookings("/scorecards"), reads),
        ("GET", "/v1/forecasts/data-sources"): Plan(False, bookings("/data-sources"), reads),
    }


PLANS.update(_forecasting_plans())


def _signal_plans() -> dict[tuple[str, str], Plan]:
    """FC-4: signals are pushed by holders of signals:write (another organization's admin names an
    account it cannot see: 422); reservations are listed in the caller's account reach and released
    by holders of stock_reservations:release (404 outside their reach)."""

    def reservation(world: World) -> int:
        """A fresh reservation of 2 units for the rep's sample account (product and stock made once)."""
        from decimal import Decimal

        from closeloop.crm.products.models import Product
        from closeloop.forecasting import signals
        from closeloop.forecasting.models import DealerStock

        org = world.tenant.organization_id
        account = world.sample("accounts")
        with world.db.unit_of_work(None, system=True) as session:
            if "reserve_stock" not in world.shared:
                product = Product(organization_id=org, name="椎间孔镜配件", code=f"ZJK-{tag()}")
                session.add(product)
                session.flush()
                session.add(
                    DealerStock(organization_id=org, account_id=account["id"], product_id=product.id, on_hand=1000)
                )
                world.shared["reserve_stock"] = {"code": product.code}
            held = signals.reserve(
                session, org, account_id=account["id"], product=world.shared["reserve_stock"]["code"],
                quantity=Decimal(2), reason="matrix",
            )  # fmt: skip
            return held.id

    def status_of(world: World, reservation_id: int) -> Callable[[], Any]:
        def snapshot() -> Any:
            from closeloop.forecasting.models import StockReservation

            with world.db.reading(None, system=True) as session:
                found = session.get(StockReservation, reservation_id)
                return None if found is None else found.status

        return snapshot

    def signal_prepare(world: World, caller: Caller) -> Call:
        body = [{"account_id": world.sample("accounts")["id"], "keyword": "椎间孔镜配件", "occurred_at": "2026-11-26"}]
        return Call("", body)

    def signal_expect(world: World, caller: Caller) -> int:
        if not caller.can("signals:write"):
            return 403
        return 201 if caller.organization == "tenant" else 422

    def list_prepare(world: World, caller: Caller) -> Call:
        if "listed_reservation" not in world.shared:
            world.shared["listed_reservation"] = {"id": reservation(world)}
        return Call("")

    def list_expect(world: World, caller: Caller) -> int:
        return 200 if caller.can("accounts:read") else 403

    def list_verify(world: World, caller: Caller, response: Response) -> None:
        ids = {item["id"] for item in response.json()["items"]}
        shown = world.shared["listed_reservation"]["id"] in ids
        assert shown == caller.sees_owned_by(world.rep.user_id), caller.key
        if caller.organization != "tenant":
            assert ids == set()

    def release_prepare(world: World, caller: Caller) -> Call:
        held = reservation(world)
        return Call(f"/v1/stock-reservations/{held}/release", snapshot=status_of(world, held))

    def release_expect(world: World, caller: Caller) -> int:
        if not caller.can("stock_reservations:release"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    return {
        ("POST", "/v1/signals"): Plan(True, signal_prepare, signal_expect),
        ("GET", "/v1/stock-reservations"): Plan(False, list_prepare, list_expect, list_verify),
        ("POST", "/v1/stock-reservations/{reservation_id}/release"): Plan(True, release_prepare, release_expect),
    }


PLANS.update(_signal_plans())


def _approval_plans() -> dict[tuple[str, str], Plan]:
    """Approvals (CN-4): every seller-side user submits, managers up read flows (reps get 403); sales
    ops (the VP, admins) keep flows and see every approval; an approval is found only by its submitter, its approvers
    and sales ops (404 for anyone else, always 404 from another organization); only the approver
    whose turn it is decides; partner users have no part (403)."""
    from closeloop.approvals import flows as approval_flows
    from closeloop.approvals import service as approvals

    definition = {"branches": [{"name": "默认", "conditions": [], "steps": [
        {"name": "主管", "mode": "any", "approvers": [{"kind": "users", "user_ids": []}]}]}]}  # fmt: skip

    def flow_id(world: World) -> int:
        if "approval_flow" not in world.shared:
            admin = world.tenant["admin"].actor
            body = {"branches": [dict(definition["branches"][0])]}
            body["branches"][0]["steps"] = [
                {"name": "主管", "mode": "any", "approvers": [{"kind": "users", "user_ids": [
                    world.tenant["manager"].user_id, world.tenant["director"].user_id]}]}
            ]  # fmt: skip
            with world.db.unit_of_work(admin) as session:
                for record_type in ("contract", "account_transfer"):
                    flow = approval_flows.create_flow(
                        session, admin, {"name": record_type, "record_type": record_type, "definition": body}
                    )
                    world.shared[f"approval_flow {record_type}"] = {"id": flow.id}
                world.shared["approval_flow"] = {"id": world.shared["approval_flow contract"]["id"]}
        return int(world.shared["approval_flow"]["id"])

    def new_approval(world: World, *, reject: bool = False) -> int:
        flow_id(world)
        # a draft: under the flow a contract takes effect only through its approval
        body = SPEC_BY_PLURAL["contracts"].body(world.maker, 0, owner_id=world.rep.user_id)
        contract = world.maker.create("contracts", {**body, "status": "draft"})
        rep = world.rep.actor
        with world.db.unit_of_work(rep) as session:
            approval = approvals.submit(session, rep, record_type="contract", record_id=contract["id"])
            if reject:
                approvals.withdraw(session, rep, approval.id)
            return approval.id

    def approval_id(world: World) -> int:
        if "approval" not in world.shared:
            world.shared["approval"] = {"id": new_approval(world)}
        return int(world.shared["approval"]["id"])

    def state(world: World, approval: int) -> Callable[[], Any]:
        def snapshot() -> Any:
            with world.db.reading(None, system=True) as session:
                from closeloop.approvals.models import Approval

                row = session.get(Approval, approval)
                return (row.status, row.version) if row else None

        return snapshot

    def uses(success: int = 200) -> Callable[[World, Caller], int]:
        return lambda world, caller: success if caller.can("approvals:use") else 403

    def manages(success: int = 200, *, found: bool = True) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can("approvals:use"):
                return 403
            if found and caller.organization != "tenant":
                return 404
            return success if caller.can("approvals:manage") else 403

        return expect

    def sees(world: World, caller: Caller) -> int:
        if not caller.can("approvals:use"):
            return 403
        if caller.organization != "tenant":
            return 404
        return 200 if caller.key in ("rep", "manager", "director", "sales_vp", "admin") else 404

    def decides(success: int = 200) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            seen = sees(world, caller)
            if seen != 200:
                return seen
            return success if caller.key in ("manager", "director") else 403

        return expect

    def submitter_only(success: int = 200) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            seen = sees(world, caller)
            if seen != 200:
                return seen
            return success if caller.key == "rep" else 403

        return expect

    def fresh(suffix: str, body: Any = None, *, withdrawn: bool = False) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            approval = new_approval(world, reject=withdrawn)
            return Call(f"/v1/approvals/{approval}{suffix}", body, state(world, approval))

        return prepare

    def new_flow(world: World, caller: Caller) -> Call:
        # disabled: one enabled flow per record type and departments (a second would never be used)
        return Call("", {"name": f"流程 {caller.key}", "record_type": "quote", "is_enabled": False, "definition": {
            "branches": [{"name": "默认", "conditions": [], "steps": [
                {"name": "主管", "mode": "all", "approvers": [{"kind": "supervisor"}]}]}]}})  # fmt: skip

    def fresh_flow(world: World, caller: Caller) -> Call:
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            flow = approval_flows.create_flow(
                session, admin, {"name": f"删 {tag()}", "record_type": "expense", "is_enabled": False, "definition": {
                    "branches": [{"name": "默认", "conditions": [], "steps": [
                        {"name": "主管", "mode": "all", "approvers": [{"kind": "supervisor"}]}]}]}},
            )  # fmt: skip
            return Call(f"/v1/approval-flows/{flow.id}")

    def submission(world: World, caller: Caller) -> Call:
        flow_id(world)
        account = world.new_record("accounts")
        body = {"record_type": "account_transfer", "record_id": account["id"],
                "details": {"to_owner_id": world.tenant["rep2"].user_id}}  # fmt: skip
        return Call("", body)

    def submit_expect(world: World, caller: Caller) -> int:
        if not caller.can("approvals:use"):
            return 403
        if caller.organization != "tenant":
            return 404  # the account is not theirs to find
        return 201 if caller.sees_owned_by(world.rep.user_id) else 404

    def flow_path(suffix: str = "", body: Any = None) -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(f"/v1/approval-flows/{flow_id(world)}{suffix}", body)

    def flow_found(world: World, caller: Caller) -> int:
        if not caller.can("approval_flows:read"):
            return 403
        return 200 if caller.organization == "tenant" else 404

    def reads_flows(world: World, caller: Caller) -> int:
        return 200 if caller.can("approval_flows:read") else 403

    return {
        ("GET", "/v1/approval-flows"): Plan(False, lambda world, caller: Call(""), reads_flows),
        ("POST", "/v1/approval-flows"): Plan(True, new_flow, manages(201, found=False)),
        ("GET", "/v1/approval-flows/{flow_id}"): Plan(False, flow_path(), flow_found),
        ("PATCH", "/v1/approval-flows/{flow_id}"): Plan(True, flow_path(body={"name": "合同审批"}), manages()),
        ("DELETE", "/v1/approval-flows/{flow_id}"): Plan(True, fresh_flow, manages(204)),
        ("GET", "/v1/approvals"): Plan(False, lambda world, caller: Call(""), uses()),
        ("POST", "/v1/approvals"): Plan(True, submission, submit_expect),
        ("GET", "/v1/approvals/{approval_id}"): Plan(
            False, lambda world, caller: Call(f"/v1/approvals/{approval_id(world)}"), sees
        ),
        ("POST", "/v1/approvals/{approval_id}/approve"): Plan(True, fresh("/approve", {}), decides()),
        ("POST", "/v1/approvals/{approval_id}/reject"): Plan(True, fresh("/reject", {"reason": "不行"}), decides()),
        ("POST", "/v1/approvals/{approval_id}/add-approver"): Plan(
            True,
            lambda world, caller: fresh(
                "/add-approver", {"user_id": world.tenant["sales_vp"].user_id, "position": "after"}
            )(world, caller),
            decides(),
        ),
        ("POST", "/v1/approvals/{approval_id}/withdraw"): Plan(True, fresh("/withdraw", {}), submitter_only()),
        ("POST", "/v1/approvals/{approval_id}/resubmit"): Plan(
            True, fresh("/resubmit", {}, withdrawn=True), submitter_only(201)
        ),
    }


def _fieldwork_plans() -> dict[tuple[str, str], Plan]:
    """Field work (CN-5): a visit's check-in and photos for whoever sees the visit (404 outside
    reach, 403 without the field-work permissions); only the visit's rep checks in; plans within
    reach; another organization never finds the visit, its photos or the rep."""
    from closeloop.crm.activities.models import Activity
    from closeloop.crm.enums import ActivityKind
    from closeloop.fieldwork import service as fieldwork

    png = b"\x89PNG\r\n\x1a\n" + bytes(32)

    def new_visit(world: World) -> int:
        with world.db.unit_of_work(None, system=True) as session:
            visit = Activity(
                organization_id=world.tenant.organization_id, kind=ActivityKind.VISIT, user_id=world.rep.user_id
            )
            session.add(visit)
            session.flush()
            return visit.id

    def checked_visit(world: World) -> tuple[int, int]:
        if "checked_visit" not in world.shared:
            visit = new_visit(world)
            rep = world.rep.actor
            with world.db.unit_of_work(rep) as session:
                fieldwork.check_in(
                    session, rep, activity_id=visit, position=fieldwork.Position(31.2, 121.4, 10.0), uploads=[png]
                )
                photo = fieldwork.list_photos(session, rep, activity_id=visit)[0].id
            world.shared["checked_visit"] = {"id": visit, "photo": photo}
        return int(world.shared["checked_visit"]["id"]), int(world.shared["checked_visit"]["photo"])

    def on_visit(suffix: str) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            visit, photo = checked_visit(world)
            return Call(f"/v1/fieldwork/visits/{visit}{suffix.format(photo=photo)}")

        return prepare

    def sees_visit(*permissions: str, success: int = 200, own_only: bool = False) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can(*permissions):
                return 403
            if not caller.sees_owned_by(world.rep.user_id):
                return 404
            return 403 if own_only and caller.key != "rep" else success

        return expect

    def upload(suffix: str, fields: dict[str, str]) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            visit = new_visit(world)
            return Call(
                f"/v1/fieldwork/visits/{visit}{suffix}", upload=({"photos": ("p.png", png, "image/png")}, fields)
            )

        return prepare

    def plan_path(world: World, caller: Caller) -> Call:
        return Call(f"/v1/fieldwork/plans/{world.rep.user_id}/2026-11-27")

    def plan_put(world: World, caller: Caller) -> Call:
        account = world.sample("accounts")["id"]
        return Call(f"/v1/fieldwork/plans/{world.rep.user_id}/2026-11-27", {"items": [{"account_id": account}]})

    def may(*permissions: str) -> Callable[[World, Caller], int]:
        return lambda world, caller: 200 if caller.can(*permissions) else 403

    visit = "/v1/fieldwork/visits/{activity_id}"
    return {
        ("GET", visit + "/check-in"): Plan(False, on_visit("/check-in"), sees_visit("fieldwork:read")),
        ("POST", visit + "/check-in"): Plan(
            True,
            upload("/check-in", {"latitude": "31.2", "longitude": "121.4", "accuracy": "20"}),
            sees_visit("fieldwork:checkin", success=201, own_only=True),
        ),
        ("GET", visit + "/photos"): Plan(False, on_visit("/photos"), sees_visit("fieldwork:read")),
        ("POST", visit + "/photos"): Plan(True, upload("/photos", {}), sees_visit("fieldwork:checkin", success=201)),
        ("GET", visit + "/photos/{photo_id}"): Plan(False, on_visit("/photos/{photo}"), sees_visit("fieldwork:read")),
        ("GET", "/v1/fieldwork/plans/{user_id}/{day}"): Plan(False, plan_path, sees_visit("fieldwork:read")),
        ("PUT", "/v1/fieldwork/plans/{user_id}/{day}"): Plan(True, plan_put, sees_visit("fieldwork:plan")),
        ("GET", "/v1/fieldwork/map"): Plan(
            False, lambda world, caller: Call(""), may("fieldwork:read", "accounts:read")
        ),
        ("GET", "/v1/fieldwork/visit-report"): Plan(
            False,
            lambda world, caller: Call("/v1/fieldwork/visit-report?from=2026-11-01&to=2026-11-30"),
            may("fieldwork:read"),
        ),
    }


def _cash_plans() -> dict[tuple[str, str], Plan]:
    """Lead to cash (CN-3): everything hangs off a contract owned by the rep, so reading follows
    ``contracts:read`` and the contract's row scope, writing ``contracts:write``; a collection is
    decided by finance or the owner's manager; another organization never finds any of it."""
    from datetime import date
    from decimal import Decimal

    from closeloop.cash import service as cash
    from closeloop.cash.models import Collection, Invoice
    from closeloop.crm.contracts.models import Contract
    from closeloop.crm.enums import ContractStatus

    def contract_id(world: World) -> int:
        if "cash_contract" not in world.shared:
            with world.db.unit_of_work(None, system=True) as session:
                contract = Contract(
                    organization_id=world.tenant.organization_id,
                    number=f"CASH-{tag()}",
                    title="回款合同",
                    status=ContractStatus.ACTIVE,
                    signed_on=date(2026, 1, 5),
                    amount=Decimal("1000000.00"),
                    owner_id=world.rep.user_id,
                )
                session.add(contract)
                session.flush()
                world.shared["cash_contract"] = {"id": contract.id}
        return int(world.shared["cash_contract"]["id"])

    def instalment_id(world: World) -> int:
        if "cash_instalment" not in world.shared:
            admin = world.tenant["admin"].actor
            with world.db.unit_of_work(admin) as session:
                instalment = cash.add_instalment(
                    session, admin, contract_id=contract_id(world), amount=Decimal("1000.00"), due_on=date(2026, 2, 1)
                )
                world.shared["cash_instalment"] = {"id": instalment.id}
        return int(world.shared["cash_instalment"]["id"])

    def new_collection(world: World) -> int:
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            return cash.record_collection(
                session, admin, instalment_id=instalment_id(world), amount=Decimal("1.00"), received_on=date(2026, 1, 6)
            ).id

    def new_invoice(world: World) -> int:
        admin = world.tenant["admin"].actor
        with world.db.unit_of_work(admin) as session:
            values = {"amount": Decimal("10.00"), "title_name": "瑞金医院", "tax_id": "91350100M000100Y43"}
            return cash.create_invoice(session, admin, contract_id=contract_id(world), values=values).id

    def status_of(world: World, model: Any, record_id: int) -> Callable[[], Any]:
        def snapshot() -> Any:
            with world.db.reading(None, system=True) as session:
                record = session.get(model, record_id)
                return (record.status, record.version) if record else None

        return snapshot

    def reads(world: World, caller: Caller) -> int:
        if not caller.can("contracts:read"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    def writes(success: int) -> Callable[[World, Caller], int]:
        def expect(world: World, caller: Caller) -> int:
            if not caller.can("contracts:write"):
                return 403
            return success if caller.sees_owned_by(world.rep.user_id) else 404

        return expect

    def lists(world: World, caller: Caller) -> int:
        return 200 if caller.can("contracts:read") else 403

    def decides(world: World, caller: Caller) -> int:
        if not caller.can("contracts:read"):
            return 403
        if not caller.sees_owned_by(world.rep.user_id):
            return 404
        return 200 if caller.can("collections:approve") or caller.key == "manager" else 403

    def on_contract(suffix: str, body: Body | None = None) -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(f"/v1/cash/contracts/{contract_id(world)}{suffix}", body)

    def on_instalment(suffix: str, body: Body) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            return Call(f"/v1/cash/instalments/{instalment_id(world)}{suffix}", body)

        return prepare

    def decision(verb: str) -> Callable[[World, Caller], Call]:
        def prepare(world: World, caller: Caller) -> Call:
            if world.refuses(caller):
                world.shared.setdefault("cash_refused_collection", {"id": new_collection(world)})
                record = int(world.shared["cash_refused_collection"]["id"])
            else:
                record = new_collection(world)
            return Call(f"/v1/cash/collections/{record}/{verb}", {}, status_of(world, Collection, record))

        return prepare

    def invoice_status(world: World, caller: Caller) -> Call:
        if world.refuses(caller):
            world.shared.setdefault("cash_refused_invoice", {"id": new_invoice(world)})
            record = int(world.shared["cash_refused_invoice"]["id"])
        else:
            record = new_invoice(world)
        return Call(f"/v1/cash/invoices/{record}/status", {"status": "void"}, status_of(world, Invoice, record))

    invoice_body = {"amount": "10.00", "title_name": "瑞金医院", "tax_id": "91350100M000100Y43"}
    return {
        ("GET", "/v1/cash/contracts/{contract_id}"): Plan(False, on_contract(""), reads),
        ("POST", "/v1/cash/contracts/{contract_id}/instalments"): Plan(
            True, on_contract("/instalments", {"amount": "1.00", "due_on": "2026-06-30"}), writes(201)
        ),
        ("POST", "/v1/cash/contracts/{contract_id}/invoices"): Plan(
            True, on_contract("/invoices", invoice_body), writes(201)
        ),
        ("PATCH", "/v1/cash/instalments/{instalment_id}"): Plan(
            True, on_instalment("", {"note": "按合同第五条"}), writes(200)
        ),
        ("POST", "/v1/cash/instalments/{instalment_id}/collections"): Plan(
            True, on_instalment("/collections", {"amount": "1.00", "received_on": "2026-01-06"}), writes(201)
        ),
        ("GET", "/v1/cash/collections"): Plan(False, lambda world, caller: Call(""), lists),
        ("GET", "/v1/cash/overdue"): Plan(False, lambda world, caller: Call(""), lists),
        ("POST", "/v1/cash/collections/{collection_id}/approve"): Plan(True, decision("approve"), decides),
        ("POST", "/v1/cash/collections/{collection_id}/reject"): Plan(True, decision("reject"), decides),
        ("POST", "/v1/cash/invoices/{invoice_id}/status"): Plan(True, invoice_status, writes(200)),
    }


def _target_plans() -> dict[tuple[str, str], Plan]:
    """Targets (CN-6): every seller-side role reads targets and leaderboards, sales ops set them;
    partners have neither; another organization's admin works on its own organization only."""
    from decimal import Decimal

    from closeloop.targets import service as targets
    from closeloop.targets.models import Metric, Target, TargetScope

    def reads(world: World, caller: Caller) -> int:
        return 200 if caller.can("targets:read") else 403

    def manages(world: World, caller: Caller) -> int:
        return 200 if caller.can("targets:manage") else 403

    def new_target(world: World) -> int:
        vp = world.tenant["sales_vp"].actor
        year = 2001 + len([key for key in world.shared if key.startswith("target ")])
        with world.db.unit_of_work(vp) as session:
            target = targets.set_target(
                session, vp, scope=TargetScope.COMPANY, metric=Metric.VISITS, year=year, month=None, value=Decimal(5)
            )
            world.shared[f"target {target.id}"] = {"id": target.id}
            return target.id

    def delete_prepare(world: World, caller: Caller) -> Call:
        if world.refuses(caller):
            world.shared.setdefault("refused target", {"id": new_target(world)})
            record = int(world.shared["refused target"]["id"])
        else:
            record = new_target(world)

        def snapshot() -> Any:
            with world.db.reading(None, system=True) as session:
                return session.get(Target, record) is not None

        return Call(f"/v1/targets/{record}", None, snapshot)

    def delete_expect(world: World, caller: Caller) -> int:
        if not caller.can("targets:manage"):
            return 403
        return 204 if caller.organization == "tenant" else 404

    body = {"scope": "company", "metric": "contract_amount", "year": 2026, "month": 3, "value": "500000.00"}
    return {
        ("GET", "/v1/targets"): Plan(False, lambda world, caller: Call("/v1/targets?year=2026&month=3"), reads),
        ("PUT", "/v1/targets"): Plan(True, lambda world, caller: Call("", body), manages),
        ("DELETE", "/v1/targets/{target_id}"): Plan(True, delete_prepare, delete_expect),
        ("GET", "/v1/leaderboards"): Plan(
            False, lambda world, caller: Call("/v1/leaderboards?metric=collections&by=department"), reads
        ),
    }


def _work_report_plans() -> dict[tuple[str, str], Plan]:
    """Daily and weekly reports (CN-6): your own with reports:write, others' within reach with
    reports:read (404 outside it), rules set by sales ops (reports:manage)."""
    from closeloop.reports import service as reports
    from closeloop.reports.models import ReportKind

    def report_id(world: World) -> int:
        if "work_report" not in world.shared:
            rep = world.rep.actor
            with world.db.unit_of_work(rep) as session:
                report = reports.save_report(
                    session, rep, kind=ReportKind.DAILY, day=date(2026, 11, 27), summary="拜访", plan=None,
                    problems=None, submit=True,
                )  # fmt: skip
                world.shared["work_report"] = {"id": report.id}
        return int(world.shared["work_report"]["id"])

    def may(permission: str) -> Callable[[World, Caller], int]:
        return lambda world, caller: 200 if caller.can(permission) else 403

    def on_report(world: World, caller: Caller) -> int:
        if not caller.can("reports:read"):
            return 403
        return 200 if caller.sees_owned_by(world.rep.user_id) else 404

    def path(value: str, body: Any = None) -> Callable[[World, Caller], Call]:
        return lambda world, caller: Call(value, body)

    return {
        ("GET", "/v1/work-reports/mine"): Plan(False, path("/v1/work-reports/mine?kind=daily"), may("reports:write")),
        ("PUT", "/v1/work-reports/mine"): Plan(
            True, path("", {"kind": "weekly", "summary": "本周小结"}), may("reports:write")
        ),
        ("GET", "/v1/work-reports/status"): Plan(
            False, path("/v1/work-reports/status?kind=daily"), may("reports:read")
        ),
        ("GET", "/v1/work-reports/rules"): Plan(False, path(""), may("reports:read")),
        ("PUT", "/v1/work-reports/rules/{kind}"): Plan(
            True, path("/v1/work-reports/rules/daily", {"deadline": "18:30"}), may("reports:manage")
        ),
        ("GET", "/v1/work-reports"): Plan(False, path("/v1/work-reports?kind=daily"), may("reports:read")),
        ("GET", "/v1/work-reports/{report_id}"): Plan(
            False, lambda world, caller: Call(f"/v1/work-reports/{report_id(world)}"), on_report
        ),
    }


PLANS.update(_approval_plans())
PLANS.update(_cash_plans())
PLANS.update(_target_plans())
PLANS.update(_fieldwork_plans())
PLANS.update(_work_report_plans())


def test_every_route_is_in_the_matrix() -> None:
    missing = [f"{method} {path}" for method, path in ROUTES if (method, path) not in PLANS]
    assert not missing, f"add these routes to the permission matrix: {missing}"


# --- the matrix ---------------------------------------------------------------------------------


def masked_keys_in(value: Any, path: str = "$") -> Iterator[str]:
    """Paths of every key named like a masked field, anywhere in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in MASKED_KEYS:
                yield f"{path}.{key}"
            yield from masked_keys_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from masked_keys_in(item, f"{path}[{index}]")


def _call(world: World, caller: Caller, method: str, route: str, call: Call) -> Response:
    path = call.path or route
    if call.upload is not None:
        files, fields = call.upload
        response: Response = world.client.request(
            method, f"/api{path}", files=files, data=fields, headers=caller.member.headers
        )
        return response
    return world.api(caller).request(method, f"/api{path}", json=call.body)


@pytest.mark.parametrize(
    ("method", "route"),
    [route for route in ROUTES if route in PLANS],
    ids=[f"{m} {p}" for m, p in ROUTES if (m, p) in PLANS],
)
def test_route_answers_each_caller_as_its_permissions_say(world: World, method: str, route: str) -> None:
    plan = PLANS[(method, route)]
    outcomes: dict[str, int] = {}
    for caller in world.callers:
        expected = world.expected[caller.key] = plan.expect(world, caller)
        call = plan.prepare(world, caller)
        before = call.snapshot() if call.snapshot else None
        entries_before = world.audit_count()
        queued_before = len(world.queued)

        response = _call(world, caller, method, route, call)

        outcomes[caller.key] = response.status_code
        assert response.status_code == expected, f"{caller.key}: {response.status_code} {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
        if response.headers.get("content-type", "").endswith("json") and response.content:
            document = response.json()
            if caller.role not in FINANCE:
                assert list(masked_keys_in(document)) == [], f"{caller.key} received masked fields"
        if plan.verify is not None and response.status_code < 400:
            plan.verify(world, caller, response)
        if plan.writes and (response.status_code >= 400 or caller.organization != "tenant"):
            # a refused write, or any write from outside: the tenant's data and trail are untouched
            if call.snapshot is not None:
                assert call.snapshot() == before, f"{caller.key} changed the record"
            assert world.audit_count() == entries_before, f"{caller.key} added to the tenant's audit trail"
        if response.status_code >= 400:
            assert len(world.queued) == queued_before, f"{caller.key} queued work with a refused call"
        elif response.status_code == 202 and route.startswith("/v1/imports"):
            assert world.queued[queued_before:] == [response.json()["id"]]
    # another organization's admin holds every permission: it must never learn that a record exists
    assert outcomes["other_admin"] != 403, outcomes


def _finance_fields_case(plural: str) -> tuple[str, str]:
    return plural, next(iter(FINANCE_FIELDS[plural]))


@pytest.mark.parametrize(("plural", "field_name"), [_finance_fields_case(plural) for plural in FINANCE_FIELDS])
def test_masked_fields_reach_only_finance_roles(world: World, plural: str, field_name: str) -> None:
    record = world.sample(plural)
    assert record[field_name] == FINANCE_FIELDS[plural][field_name]
    world.maker.patch(plural, record["id"], {field_name: "1.00"})

    for caller in world.callers[: len(TENANT_ROLES)]:
        api = world.api(caller)
        single = api.request("GET", f"/{plural}/{record['id']}")
        listing = api.request("GET", f"/{plural}")
        history = api.request("GET", f"/{plural}/{record['id']}/history")
        audit = api.request("GET", "/audit", params={"subject_type": SPEC_BY_PLURAL[plural].noun})
        for response in (single, listing, history, audit):
            if response.status_code in (403, 404):
                continue
            assert response.status_code == 200, response.text
            found = list(masked_keys_in(response.json()))
            if caller.role in FINANCE:
                assert found, f"{caller.key} should see {field_name} in {response.url}"
            else:
                assert found == [], f"{caller.key} sees {found} in {response.url}"
        if caller.role in FINANCE:
            assert single.json()[field_name] == "1.00"
            changes = [item["changes"] for item in history.json()["items"] if field_name in item["changes"]]
            assert changes[0][field_name] == [FINANCE_FIELDS[plural][field_name], "1.00"]
        elif single.status_code == 200:
            updates = [item for item in history.json()["items"] if item["action"].endswith(".updated")]
            # the update touched only the masked field: the entry is left out altogether
            assert updates == []


@pytest.mark.parametrize("plural", list(FINANCE_FIELDS))
def test_writing_a_masked_field_is_refused_and_changes_nothing(world: World, plural: str) -> None:
    field_name = next(iter(FINANCE_FIELDS[plural]))
    record = world.sample(plural)
    entries = world.audit_count()

    for key in ("rep", "manager", "admin"):
        api = Api(world.client, world.tenant[key])
        patched = api.patch(plural, record["id"], {field_name: "2.00"})
        assert patched.status_code == 403, patched.text
        assert patched.json()["errors"][0]["field"] == field_name
        filtered = api.request("GET", f"/{plural}", params={f"{field_name}__gte": "0"})
        assert filtered.status_code == 403
        assert filtered.json()["errors"][0]["field"] == f"{field_name}__gte"
        sorted_by = api.request("GET", f"/{plural}", params={"sort": field_name})
        assert sorted_by.status_code == 403

    assert world.maker.read(plural, record["id"])[field_name] == FINANCE_FIELDS[plural][field_name]
    assert world.audit_count() == entries


def test_lead_conversion_result_is_masked_like_each_record(world: World) -> None:
    lead = world.new_record("leads")
    rep = Api(world.client, world.rep)

    response = rep.request("POST", f"/leads/{lead['id']}/convert", json={})

    assert response.status_code == 201, response.text
    result = response.json()
    assert set(result) == {"lead", "account", "contact", "opportunity"}
    assert list(masked_keys_in(result)) == []
    vp_view = world.maker.read("accounts", result["account"]["id"])
    assert vp_view["credit_line"] is None
    assert re.fullmatch(r"/api/v1/accounts/\d+", response.headers["location"])


def test_a_partner_user_cannot_be_made_in_the_sellers_own_organization(client: TestClient, tenant: Tenant) -> None:
    """A partner user added to the seller's organization read and wrote every account: the role is
    refused there, on creation and on a role change, and nothing is stored."""
    body = {"username": "t.partner", "display_name": "T", "role": "partner_user", "password": "a-long-enough-pass-1"}
    for who in ("it_director", "admin"):
        response = client.post("/api/v1/users", headers=tenant[who].headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "role"
        assert response.json()["errors"][0]["code"] == "partner_role_in_seller"
    listed = client.get("/api/v1/users", headers=tenant["admin"].headers, params={"limit": 200}).json()["items"]
    assert "t.partner" not in {u["username"] for u in listed}
    rep = tenant["rep"]
    changed = client.patch(
        f"/api/v1/users/{rep.user_id}", headers=tenant["admin"].headers, json={"role": "partner_user"}
    )
    assert changed.status_code == 422, changed.text
    still = client.get(f"/api/v1/users/{rep.user_id}", headers=tenant["admin"].headers).json()
    assert still["role"] == "rep"
