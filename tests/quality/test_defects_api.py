"""Every defect kind, found on records made through the API, becomes a task for whoever must fix
it; fixing the record and scanning again resolves the defect and closes the task by itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from closeloop.core.clock import frozen_at
from closeloop.crm.contacts.models import Contact
from closeloop.db.session import Database
from closeloop.quality.rules import RULES
from tests.factories import Tenant
from tests.legacy import write_legacy
from tests.quality.conftest import T0, Scan
from tests.samples import Api, assert_problem

Body = dict[str, Any]


def defects(api: Api, **params: Any) -> list[Body]:
    response = api.request("GET", "/quality/defects", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[Body] = response.json()["items"]
    return items


def defect_of(api: Api, rule: str, subject_type: str, subject_id: int, status: str = "open") -> Body | None:
    found = defects(api, rule=rule, subject_type=subject_type, subject_id=subject_id, status=status)
    assert len(found) <= 1
    return found[0] if found else None


def legacy_contact(db: Database, rep: Api, body: Body, *, mobile: str) -> int:
    """A contact whose mobile an older load left invalid (the forms and the API refuse one now)."""
    contact_id = int(rep.create("contacts", {**body, "mobile": "13800138000"})["id"])
    write_legacy(db, Contact, contact_id, mobile=mobile)
    return contact_id


def craft(db: Database, rep: Api, admin: Api) -> dict[str, tuple[str, int]]:
    """One record breaking each rule (owned by the rep, except the lead inbox and the catalogue)."""
    good = rep.create(
        "accounts",
        {
            "name": "北京协和医院",
            "industry": "医院",
            "province": "北京市",
            "city": "北京",
            "address": "北京市东城区帅府园1号",
            "phone": "010-69156114",
        },
    )
    fine = {"account_id": good["id"], "title_confirmed_on": "2026-03-01", "decision_role": "decision_maker"}
    contact = {"title": "设备科主任", "mobile": "13800138000", "email": "li.wei@example.com", **fine}
    ok = {"industry": "医院", "province": "上海市", "city": "上海"}
    crafted = {
        "account_duplicate": ("account", rep.create("accounts", {"name": "北京协和医院有限公司", **ok})["id"]),
        "account_industry_missing": (
            "account",
            rep.create("accounts", {"name": "瑞金医院", "province": "上海市"})["id"],
        ),
        "address_unstandardized": (
            "account",
            rep.create("accounts", {"name": "华山医院", **ok, "address": "乌鲁木齐中路12号"})["id"],
        ),
        "unknown_value": ("account", rep.create("accounts", {"name": "中山医院", **ok, "industry": "hospitel"})["id"]),
        "contact_mobile_missing": (
            "contact",
            rep.create("contacts", {**contact, "name": "李伟", "mobile": None})["id"],
        ),
        "phone_invalid": ("contact", legacy_contact(db, rep, {**contact, "name": "王芳"}, mobile="12345678")),
        "email_invalid": (
            "contact",
            rep.create("contacts", {**contact, "name": "张敏", "email": "zhang..min@example.com"})["id"],
        ),
        "contact_title_stale": (
            "contact",
            rep.create("contacts", {**contact, "name": "赵磊", "title_confirmed_on": "2025-08-01"})["id"],
        ),
        "contact_orphan": ("contact", rep.create("contacts", {**contact, "name": "孙丽", "account_id": None})["id"]),
        "opportunity_no_decision_role": (
            "opportunity",
            rep.create(
                "opportunities",
                {"name": "DR 采购", "account_id": crafted_account(rep), "expected_close_date": "2026-06-30"},
            )["id"],
        ),
        "opportunity_close_date_past": (
            "opportunity",
            rep.create(
                "opportunities", {"name": "CT 采购", "account_id": good["id"], "expected_close_date": "2026-03-10"}
            )["id"],
        ),
        "opportunity_amount_missing": (
            "opportunity",
            rep.create(
                "opportunities",
                {
                    "name": "MRI 采购",
                    "account_id": good["id"],
                    "stage": "proposal",
                    "expected_close_date": "2026-06-30",
                },
            )["id"],
        ),
        "opportunity_stage_stale": (
            "opportunity",
            rep.create(
                "opportunities",
                {
                    "name": "超声采购",
                    "account_id": good["id"],
                    "amount": "80000.00",
                    "expected_close_date": "2026-06-30",
                },
            )["id"],
        ),
        "opportunity_without_account": (
            "opportunity",
            rep.create("opportunities", {"name": "内镜采购", "expected_close_date": "2026-06-30"})["id"],
        ),
        "lead_unassigned": ("lead", rep.create("leads", {"name": "周杰", "company": "仁济医院"})["id"]),
    }
    admin.create("products", {"name": "GTX Pro", "code": "GTX-PRO"})
    crafted["product_duplicate"] = ("product", admin.create("products", {"name": "GTXPro", "code": "GTXPRO"})["id"])
    return crafted


def crafted_account(rep: Api) -> int:
    """An account whose contacts hold no decision-chain role."""
    account = rep.create("accounts", {"name": "仁济医院", "industry": "医院", "province": "上海市", "city": "上海"})
    rep.create("contacts", {"name": "钱多", "account_id": account["id"], "mobile": "13900001111"})
    return int(account["id"])


def fix(rep: Api, admin: Api, rule: str, subject_type: str, subject_id: int, tenant: Tenant) -> None:
    plural = {"account": "accounts", "contact": "contacts", "opportunity": "opportunities", "lead": "leads"}
    changes: dict[str, Body] = {
        "account_duplicate": {"name": "北京协和医学院附属医院"},
        "account_industry_missing": {"industry": "医院"},
        "address_unstandardized": {"address": "上海市静安区乌鲁木齐中路12号"},
        "unknown_value": {"industry": "hospital"},
        "contact_mobile_missing": {"mobile": "13800138001"},
        "phone_invalid": {"mobile": "13912345678"},
        "email_invalid": {"email": "zhang.min@example.com"},
        "contact_title_stale": {"title_confirmed_on": "2026-04-01"},
        "opportunity_close_date_past": {"expected_close_date": "2026-09-30"},
        "opportunity_amount_missing": {"amount": "1200000.00"},
    }
    if rule in changes:
        response = rep.patch(plural[subject_type], subject_id, changes[rule])
    elif rule == "contact_orphan":
        account = rep.create("accounts", {"name": "长海医院", "industry": "医院"})
        response = rep.patch("contacts", subject_id, {"account_id": account["id"]})
    elif rule == "opportunity_without_account":
        account = rep.create("accounts", {"name": "东方医院", "industry": "医院"})
        response = rep.patch("opportunities", subject_id, {"account_id": account["id"]})
    elif rule == "opportunity_no_decision_role":
        account_id = rep.read("opportunities", subject_id)["account_id"]
        rep.create("contacts", {"name": "郑主任", "account_id": account_id, "decision_role": "decision_maker"})
        return
    elif rule == "opportunity_stage_stale":
        rep.create("activities", {"kind": "visit", "opportunity_id": subject_id, "subject": "方案交流"})
        return
    elif rule == "lead_unassigned":
        response = rep.request("POST", f"/leads/{subject_id}/assign", json={"owner_id": tenant["rep"].user_id})
    else:
        assert rule == "product_duplicate"
        response = admin.patch("products", subject_id, {"name": "GTX Plus Pro"})
    assert response.status_code == 200, response.text


def test_each_kind_of_defect_becomes_a_task_for_its_owner_and_closes_itself_when_fixed(
    client: TestClient, db: Database, tenant: Tenant, queued: list[tuple[int, int]], scan: Scan
) -> None:
    rep, admin, manager = Api(client, tenant["rep"]), Api(client, tenant["admin"]), Api(client, tenant["manager"])
    with frozen_at(T0) as advance:
        crafted = craft(db, rep, admin)
        assert sorted(crafted) == sorted(rule.id for rule in RULES)
        advance(timedelta(days=40))

        requested = manager.request("POST", "/quality/scans", json={"full": True})
        assert requested.status_code == 202, requested.text
        assert queued == [(tenant.organization_id, requested.json()["id"])]
        first = scan(tenant.organization_id, scan_id=requested.json()["id"])

        assert manager.request("GET", f"/quality/scans/{first.scan_id}").json()["status"] == "done"
        tasks: dict[str, Body] = {}
        for rule, (subject_type, subject_id) in crafted.items():
            defect = defect_of(admin, rule, subject_type, subject_id)
            assert defect is not None, rule
            task = admin.read("tasks", defect["task_id"])
            expected_owner = tenant["admin"] if rule in ("lead_unassigned", "product_duplicate") else tenant["rep"]
            assert (task["status"], task["owner_id"], task["source"]) == (
                "open",
                expected_owner.user_id,
                f"quality:{rule}",
            ), rule
            assert (task["subject_type"], task["subject_id"]) == (subject_type, subject_id)
            assert task["link"].endswith(f"/{subject_id}")
            tasks[rule] = task
        mine = rep.list_ids("tasks", status="open")
        assert {tasks[r]["id"] for r in crafted if r not in ("lead_unassigned", "product_duplicate")} <= set(mine)
        duplicate = defect_of(rep, "account_duplicate", *crafted["account_duplicate"])
        assert duplicate is not None
        assert duplicate["details"]["duplicate_of_name"] == "北京协和医院"

        again = scan(tenant.organization_id)
        assert again.opened == 0  # a rescan opens no second defect or task

        advance(timedelta(hours=1))
        for rule, (subject_type, subject_id) in crafted.items():
            fix(rep, admin, rule, subject_type, subject_id, tenant)
        advance(timedelta(hours=1))
        fixed = scan(tenant.organization_id)

    for rule, (subject_type, subject_id) in crafted.items():
        assert defect_of(admin, rule, subject_type, subject_id) is None, rule
        resolved = defect_of(admin, rule, subject_type, subject_id, status="resolved")
        assert resolved is not None, rule
        task = admin.read("tasks", tasks[rule]["id"])
        assert (task["status"], task["closed_by_id"]) == ("done", None), rule
    assert fixed.resolved >= len(crafted)
    history = admin.request("GET", f"/tasks/{tasks['phone_invalid']['id']}/history").json()["items"]
    assert [entry["action"] for entry in history] == ["task.closed", "task.created"]
    assert {entry["actor_label"] for entry in history} == {"data-quality scan"}


def test_a_task_marked_done_while_its_defect_remains_opens_again(
    client: TestClient, tenant: Tenant, scan: Scan
) -> None:
    rep = Api(client, tenant["rep"])
    account = rep.create("accounts", {"name": "同仁医院", "province": "北京市"})
    scan(tenant.organization_id)
    defect = defect_of(rep, "account_industry_missing", "account", account["id"])
    assert defect is not None

    done = rep.patch("tasks", defect["task_id"], {"status": "done"})
    assert done.status_code == 200, done.text
    assert done.json()["closed_by_id"] == tenant["rep"].user_id
    scan(tenant.organization_id)

    task = rep.read("tasks", defect["task_id"])
    assert (task["status"], task["closed_at"]) == ("open", None)
    assert defect_of(rep, "account_industry_missing", "account", account["id"]) == {
        **defect,
        "last_seen": task_seen(rep, account["id"]),
    }


def task_seen(api: Api, account_id: int) -> str:
    found = defect_of(api, "account_industry_missing", "account", account_id)
    assert found is not None
    return str(found["last_seen"])


def test_a_defect_follows_its_record_to_a_new_owner(
    client: TestClient, db: Database, tenant: Tenant, scan: Scan
) -> None:
    rep, manager = Api(client, tenant["rep"]), Api(client, tenant["manager"])
    contact = {"id": legacy_contact(db, rep, {"name": "吴倩"}, mobile="123")}
    scan(tenant.organization_id)
    defect = defect_of(rep, "phone_invalid", "contact", contact["id"])
    assert defect is not None

    moved = manager.patch("contacts", contact["id"], {"owner_id": tenant["rep2"].user_id})
    assert moved.status_code == 200, moved.text
    scan(tenant.organization_id)

    assert defect_of(rep, "phone_invalid", "contact", contact["id"]) is None  # out of the rep's scope now
    rep2 = Api(client, tenant["rep2"])
    now = defect_of(rep2, "phone_invalid", "contact", contact["id"])
    assert now is not None
    assert (now["id"], now["owner_id"]) == (defect["id"], tenant["rep2"].user_id)
    assert rep2.read("tasks", defect["task_id"])["owner_id"] == tenant["rep2"].user_id


def test_defects_respect_row_scopes_tenants_and_field_masks(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, scan: Scan
) -> None:
    rep, rep2, manager = Api(client, tenant["rep"]), Api(client, tenant["rep2"]), Api(client, tenant["manager"])
    mine = rep.create("accounts", {"name": "天坛医院"})
    theirs = rep2.create("accounts", {"name": "宣武医院"})
    stranger = Api(client, other_tenant["rep"]).create("accounts", {"name": "天坛医院"})  # same name, other tenant
    scan(tenant.organization_id)
    scan(other_tenant.organization_id)

    def subjects(api: Api) -> set[int]:
        return {d["subject_id"] for d in defects(api, rule="account_industry_missing")}

    assert subjects(rep) == {mine["id"]}
    assert subjects(rep2) == {theirs["id"]}
    assert subjects(manager) == {mine["id"], theirs["id"]}
    assert subjects(Api(client, other_tenant["admin"])) == {stranger["id"]}
    assert defects(Api(client, other_tenant["admin"]), rule="account_duplicate") == []
    assert defects(rep, rule="account_duplicate") == []

    from sqlalchemy import update

    from closeloop.org import service as org_service
    from closeloop.quality.models import Defect

    with db.unit_of_work(org_service.system_actor(tenant.organization_id)) as session:
        session.execute(
            update(Defect)
            .where(Defect.subject_id == mine["id"], Defect.rule == "account_industry_missing")
            .values(details={"fields": {"credit_line": "500000.00", "industry": None}})
        )
    seen_by_rep = defect_of(rep, "account_industry_missing", "account", mine["id"])
    seen_by_vp = defect_of(Api(client, tenant["sales_vp"]), "account_industry_missing", "account", mine["id"])
    assert seen_by_rep is not None
    assert seen_by_vp is not None
    assert seen_by_rep["details"]["fields"] == {"industry": None}
    assert seen_by_vp["details"]["fields"] == {"credit_line": "500000.00", "industry": None}


def test_bad_filters_and_permissions_are_refused(
    client: TestClient, tenant: Tenant, queued: list[tuple[int, int]]
) -> None:
    rep = Api(client, tenant["rep"])

    assert_problem(rep.request("GET", "/quality/defects", params={"rule": "nonsense"}), 422, field="rule")
    assert_problem(rep.request("GET", "/quality/defects", params={"status": "closed"}), 422, field="status")
    assert_problem(rep.request("POST", "/quality/scans", json={}), 403)
    assert_problem(rep.request("GET", "/quality/kpis", params={"group_by": "region"}), 403)
    assert_problem(rep.request("GET", "/quality/kpis", params={"group_by": "planet"}), 422, field="group_by")
    assert_problem(rep.request("GET", "/quality/scans/999999999"), 404)
    assert queued == []
