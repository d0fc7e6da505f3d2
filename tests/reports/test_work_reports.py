"""Daily and weekly reports (CN-6): figures filled in from the day's records (worked by hand
below), submission rules by role and department, the reminder sent once to exactly those who have
not submitted, and reports seen only within reach."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from closeloop.core.clock import frozen_at
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ActivityKind, Stage
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, StageChange
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.org import service as org_service
from closeloop.org.models import Department, User
from closeloop.org.notifications import Notification
from closeloop.reports import service as reports
from closeloop.worker import tasks
from tests.factories import Tenant
from tests.samples import Api, assert_problem

#: the local (Shanghai) day 2026-11-27 runs from 2026-11-26 16:00 to 2026-11-27 16:00 UTC
DAY_START = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
BEFORE_DAY = DAY_START - timedelta(minutes=30)  # 23:30 on the 26th, local
LATE_IN_DAY = DAY_START + timedelta(hours=23, minutes=30)  # 23:30 on the 27th, local
LAST_MONTH = datetime(2026, 10, 1, tzinfo=UTC)


def _seed_day(db: Database, tenant: Tenant) -> None:
    org, rep, rep2 = tenant.organization_id, tenant["rep"].user_id, tenant["rep2"].user_id
    with db.unit_of_work(None, system=True) as session:
        old = Account(organization_id=org, name="老客户", owner_id=rep, created_at=LAST_MONTH)
        new = Account(organization_id=org, name="新客户", owner_id=rep, created_at=DAY_START + timedelta(hours=2))
        session.add_all([old, new])
        session.flush()

        def activity(kind: ActivityKind, at: datetime, user: int = rep) -> Activity:
            return Activity(organization_id=org, kind=kind, occurred_at=at, user_id=user, account_id=old.id)

        session.add_all(
            [
                activity(ActivityKind.VISIT, DAY_START + timedelta(hours=1)),
                activity(ActivityKind.VISIT, LATE_IN_DAY),
                activity(ActivityKind.VISIT, BEFORE_DAY),  # the day before: not in the daily report
                activity(ActivityKind.CALL, DAY_START + timedelta(hours=3)),
                activity(ActivityKind.CALL, DAY_START + timedelta(hours=3), rep2),  # someone else's
                Lead(organization_id=org, name="王先生", owner_id=rep, created_at=DAY_START + timedelta(hours=4)),
                Lead(organization_id=org, name="李女士", owner_id=rep, created_at=BEFORE_DAY),
            ]
        )

        def deal(name: str, amount: str, stage: Stage, opened: datetime, closed: datetime | None = None) -> Opportunity:
            return Opportunity(
                organization_id=org, name=name, account_id=old.id, owner_id=rep, stage=stage,
                amount=Decimal(amount), opened_at=opened, closed_at=closed, created_at=opened,
            )  # fmt: skip

        created = deal("新商机", "100000.00", Stage.PROSPECTING, DAY_START + timedelta(hours=5))
        won = deal("赢单", "50000.00", Stage.WON, LAST_MONTH, DAY_START + timedelta(hours=6))
        advanced = deal("推进", "30000.00", Stage.PROPOSAL, LAST_MONTH)
        backwards = deal("退回", "70000.00", Stage.QUALIFICATION, LAST_MONTH)
        session.add_all([created, won, advanced, backwards])
        session.flush()
        at = DAY_START + timedelta(hours=7)
        session.add_all(
            [
                StageChange(organization_id=org, opportunity_id=advanced.id, from_stage=Stage.PROSPECTING,
                            to_stage=Stage.QUALIFICATION, changed_at=at),
                StageChange(organization_id=org, opportunity_id=advanced.id, from_stage=Stage.QUALIFICATION,
                            to_stage=Stage.PROPOSAL, changed_at=at + timedelta(minutes=5)),
                StageChange(organization_id=org, opportunity_id=backwards.id, from_stage=Stage.NEGOTIATION,
                            to_stage=Stage.QUALIFICATION, changed_at=at),
                Contract(organization_id=org, number="HT-1", title="年度采购", account_id=old.id, owner_id=rep,
                         signed_on=date(2026, 11, 27), amount=Decimal("80000.00")),
                Contract(organization_id=org, number="HT-2", title="去年合同", account_id=old.id, owner_id=rep,
                         signed_on=date(2026, 11, 24), amount=Decimal("10000.00")),
            ]
        )  # fmt: skip


def _figure(count: int, amount: str | None = None) -> dict[str, object]:
    return {"count": count, "amounts": {"CNY": amount} if amount else {}}


def test_a_daily_report_is_filled_in_from_the_days_records(client: TestClient, db: Database, tenant: Tenant) -> None:
    _seed_day(db, tenant)
    rep = Api(client, tenant["rep"])

    with frozen_at(datetime(2026, 11, 27, 12, 0, tzinfo=UTC)):
        report = rep.request("GET", "/work-reports/mine", params={"kind": "daily", "day": "2026-11-27"})
        weekly = rep.request("GET", "/work-reports/mine", params={"kind": "weekly", "day": "2026-11-27"})

    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["period_start"], body["period_end"], body["status"], body["id"]) == (
        "2026-11-27",
        "2026-11-27",
        "draft",
        None,
    )
    assert body["figures"] == {
        "visits": _figure(2),  # 09:00 and 23:30 local; not 23:30 the day before
        "check_ins": _figure(0),
        "calls": _figure(1),  # rep2's call is not rep's
        "new_leads": _figure(1),
        "new_accounts": _figure(1),  # 新客户; 老客户 is from last month
        "opportunities_created": _figure(1, "100000.00"),
        "opportunities_advanced": _figure(1, "30000.00"),  # two moves forward, one opportunity; not the move back
        "opportunities_won": _figure(1, "50000.00"),
        "contracts_signed": _figure(1, "80000.00"),  # HT-2 was signed on Tuesday
    }
    assert [label["key"] for label in body["figure_labels"]][:3] == ["visits", "check_ins", "calls"]
    # the week (Monday 23rd … Sunday 29th) also holds the visit, lead and contract of other days
    week = weekly.json()
    assert (week["period_start"], week["period_end"]) == ("2026-11-23", "2026-11-29")
    assert (week["figures"]["visits"], week["figures"]["new_leads"], week["figures"]["contracts_signed"]) == (
        _figure(3),
        _figure(2),
        _figure(2, "90000.00"),
    )


def _departments(db: Database, tenant: Tenant) -> int:
    """销售中心 › 华东销售1组: the reps in the group, the manager in the centre; returns the centre."""
    with db.unit_of_work(None, system=True) as session:
        centre = Department(organization_id=tenant.organization_id, name="销售中心")
        session.add(centre)
        session.flush()
        group = Department(organization_id=tenant.organization_id, name="华东销售1组", parent_id=centre.id)
        session.add(group)
        session.flush()
        for key, department in [("rep", group.id), ("rep2", group.id), ("manager", centre.id)]:
            session.execute(
                update(User)
                .where(tenant_clause(tenant.organization_id, User), User.id == tenant[key].user_id)
                .values(department_id=department)
            )
        return centre.id


def _reminders(db: Database, tenant: Tenant) -> dict[int, int]:
    with db.reading(None, system=True) as session:
        rows = session.execute(
            select(Notification.user_id, func.count())
            .where(tenant_clause(tenant.organization_id, Notification), Notification.kind == "report_reminder")
            .group_by(Notification.user_id)
        )
        return {row[0]: row[1] for row in rows}


def _remind(db: Database, tenant: Tenant) -> list[int]:
    system = org_service.system_actor(tenant.organization_id, label="report reminder")
    with db.unit_of_work(system) as session:
        return reports.send_reminders(session, system)


def test_the_reminder_goes_once_to_exactly_those_who_have_not_submitted(
    client: TestClient,
    db: Database,
    tenant: Tenant,
    other_tenant: Tenant,
    partner: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    centre = _departments(db, tenant)
    ops = Api(client, tenant["sales_vp"])
    rule = ops.request(
        "PUT", "/work-reports/rules/daily", json={"deadline": "18:00", "roles": ["rep"], "department_ids": [centre]}
    )
    assert rule.status_code == 200, rule.text
    assert_problem(Api(client, tenant["rep"]).request("PUT", "/work-reports/rules/daily", json={}), 403)
    bad = ops.request("PUT", "/work-reports/rules/daily", json={"roles": ["boss"], "department_ids": [999999999]})
    assert_problem(bad, 422, field="department_ids[0]", code="not_found")

    local = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
    with frozen_at(local) as advance:
        submitted = Api(client, tenant["rep"]).request(
            "PUT", "/work-reports/mine", json={"kind": "daily", "summary": "拜访两家医院", "submit": True}
        )
        assert submitted.status_code == 200, submitted.text
        assert (submitted.json()["status"], submitted.json()["is_late"]) == ("submitted", False)
        assert _remind(db, tenant) == []  # before the deadline
        advance(timedelta(hours=1, minutes=5))  # 18:05
        # the worker's periodic job, every quarter of an hour, reminds rep2 (rep submitted; the
        # manager's role and the director's missing department are not asked to report)
        monkeypatch.setattr(tasks, "worker_database", lambda: db)
        assert tasks.remind_work_reports_task.task_class().validate_datetime(datetime(2026, 11, 27, 18, 15))  # noqa: DTZ001
        assert tasks.remind_work_reports()[tenant.organization_id] == 1
        assert _remind(db, tenant) == []  # idempotent
        advance(timedelta(hours=2))
        assert _remind(db, tenant) == []
        assert _reminders(db, tenant) == {tenant["rep2"].user_id: 1}

        status = Api(client, tenant["manager"]).request("GET", "/work-reports/status", params={"kind": "daily"})
        assert status.json()["missing"] == [tenant["rep2"].user_id]
        assert status.json()["submitted"] == 1
        assert status.json()["deadline"] == "2026-11-27T10:00:00+00:00"
        late = Api(client, tenant["rep2"]).request(
            "PUT", "/work-reports/mine", json={"kind": "daily", "summary": "补交", "submit": True}
        )
        assert late.json()["is_late"] is True

    # reports are seen within reach only
    report_id = submitted.json()["id"]
    path = f"/work-reports/{report_id}"
    assert Api(client, tenant["manager"]).request("GET", path).status_code == 200
    assert_problem(Api(client, tenant["rep2"]).request("GET", path), 404)
    assert_problem(Api(client, other_tenant["admin"]).request("GET", path), 404)
    assert_problem(Api(client, partner["partner_user"]).request("GET", path), 403)
    listed = Api(client, tenant["rep2"]).request(
        "GET", "/work-reports", params={"kind": "daily", "from": "2026-11-01", "to": "2026-11-30"}
    )
    assert [item["user_id"] for item in listed.json()["items"]] == [tenant["rep2"].user_id]
    nothing = Api(client, other_tenant["admin"]).request("GET", "/work-reports/status", params={"kind": "daily"})
    assert tenant["rep"].user_id not in [item["user_id"] for item in nothing.json()["items"]]
