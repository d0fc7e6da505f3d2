"""Targets within reach (CN-6): a rep sees their own targets and their team's aggregate, a manager
their department's subtree, the sales VP and the CFO everything — on the API and on /targets, which
groups them by level and metric and pages the people; months follow the business time zone; and
``closeloop targets import / list`` (checked per row, all or nothing)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.config import settings
from closeloop.crm.activities.models import Activity
from closeloop.crm.enums import ActivityKind
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.org.models import Department
from closeloop.targets import service as targets
from closeloop.targets.models import Metric, Target, TargetScope
from tests.cash.conftest import World
from tests.cash.test_targets import _org_chart
from tests.cli.conftest import cli
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser

__all__ = ["cli"]


def _targets(world: World) -> dict[str, int]:
    """销售中心 › 华东销售部 (manager) › 华东一组 (rep, rep2), and 华南销售部 beside it; a March
    contract target for each, the company and every person."""
    east, group = _org_chart(world)
    vp = world.actor("sales_vp")
    with world.db.unit_of_work(vp) as session:
        center = session.scalar(select(Department.id).where(Department.name == "销售中心",
                                                            tenant_clause(vp.organization_id, Department)))  # fmt: skip
        south = Department(organization_id=vp.organization_id, name="华南销售部", parent_id=center)
        session.add(south)
        session.flush()
        subjects: list[dict[str, int]] = [{}, {"department_id": east}, {"department_id": group},
                                          {"department_id": south.id}]  # fmt: skip
        subjects += [{"user_id": world.tenant[key].user_id} for key in ("rep", "rep2", "manager")]
        for subject in subjects:
            scope = TargetScope.USER if "user_id" in subject else TargetScope.DEPARTMENT
            targets.set_target(
                session, vp, scope=scope if subject else TargetScope.COMPANY, metric=Metric.CONTRACT_AMOUNT,
                year=2026, month=3, value=Decimal("100000"), **subject,
            )  # fmt: skip
    return {"east": east, "group": group, "south": south.id}


def test_each_reader_sees_the_targets_within_their_reach(
    client: TestClient, db: Database, tenant: Tenant, world: World
) -> None:
    ids = _targets(world)
    rep, rep2, manager = (f"user:{tenant[key].user_id}" for key in ("rep", "rep2", "manager"))
    group, east, south = (f"department:{ids[key]}" for key in ("group", "east", "south"))

    def keys(who: str) -> set[str]:
        response = Api(client, tenant[who]).request("GET", "/targets?year=2026&month=3")
        assert response.status_code == 200, response.text
        return {item["scope"] + ":" + str(item["department_id"] or item["user_id"] or "") for item in
                response.json()["items"]}  # fmt: skip

    everything = {"company:", east, group, south, rep, rep2, manager}
    assert keys("rep") == {rep, group}
    assert keys("manager") == {east, group, rep, rep2, manager}
    assert keys("sales_vp") == everything
    assert keys("cfo") == everything

    page = browser(client, db, tenant["rep"]).get("/targets?year=2026&month=3").text
    assert f'data-subject="{group}"' in page
    assert f'data-subject="{rep}"' in page
    for hidden in (south, east, rep2, "company"):
        assert f'data-subject="{hidden}"' not in page
    vp_page = browser(client, db, tenant["sales_vp"]).get("/targets?year=2026&month=3").text
    assert 'id="level-company"' in vp_page
    assert 'id="level-department"' in vp_page
    assert 'data-level="user" data-metric="contract_amount"' in vp_page
    assert f'data-subject="{south}"' in vp_page


def test_departments_are_shown_as_their_tree(client: TestClient, db: Database, tenant: Tenant, world: World) -> None:
    """Parent before children, siblings by name, each level indented: 华东销售部 › 华东一组, then
    华南销售部 — not alphabetically (华东一组 would come first) — in the attainment table and in the
    set-a-target form's choice of departments."""
    ids = _targets(world)
    page = browser(client, db, tenant["sales_vp"]).get("/targets?year=2026&month=3").text
    table = page[page.index('data-level="department"') :]
    table = table[: table.index("</table>")]
    shown = re.findall(
        r'data-subject="department:(\d+)"[^>]*>\s*<th scope="row" class="tree" data-depth="(\d+)"', table
    )
    assert shown == [(str(ids["east"]), "1"), (str(ids["group"]), "2"), (str(ids["south"]), "1")]
    form = page[page.index('id="set-target"') :]
    options = re.findall(r'<option value="(\d+)" data-depth="(\d+)">(?:\xa0)*([^<]+)</option>', form)
    with db.reading(None, system=True) as session:
        center = session.scalar(
            select(Department.id).where(
                Department.name == "销售中心", tenant_clause(tenant.organization_id, Department)
            )
        )
    sales = [(int(i), int(depth), name) for i, depth, name in options if name.endswith(("中心", "部", "组"))]
    assert sales == [(center, 0, "销售中心"), (ids["east"], 1, "华东销售部"), (ids["group"], 2, "华东一组"),
                     (ids["south"], 1, "华南销售部")]  # fmt: skip


def test_people_are_paged(
    client: TestClient, db: Database, tenant: Tenant, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeloop.web import targets as page_module

    _targets(world)
    monkeypatch.setattr(page_module, "PEOPLE_PAGE", 2)
    vp = browser(client, db, tenant["sales_vp"])
    first = vp.get("/targets?year=2026&month=3").text
    second = vp.get("/targets?year=2026&month=3&page=2").text
    assert "1 / 2" in first
    assert 'rel="next"' in first
    assert "2 / 2" in second
    people = [f'data-subject="user:{tenant[key].user_id}"' for key in ("rep", "rep2", "manager")]
    assert sum(p in first for p in people) == 2
    assert sum(p in second for p in people) == 1


def test_a_month_begins_at_midnight_in_the_business_time_zone(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A visit at 2026-10-31T17:30Z is 01:30 on 1 November in Shanghai: one of November's."""
    vp = world.actor("sales_vp")
    rep = world.tenant["rep"].user_id
    with world.db.unit_of_work(vp) as session:
        for month in (10, 11):
            targets.set_target(session, vp, scope=TargetScope.USER, user_id=rep, metric=Metric.VISITS, year=2026,
                               month=month, value=Decimal(1))  # fmt: skip
    with world.db.unit_of_work(None, system=True) as session:
        session.add(Activity(organization_id=vp.organization_id, kind=ActivityKind.VISIT, user_id=rep,
                             occurred_at=datetime(2026, 10, 31, 17, 30, tzinfo=UTC)))  # fmt: skip

    def reached(month: int) -> Decimal:
        with world.db.reading(vp) as session:
            return targets.attainment(session, vp, year=2026, month=month, only=[f"user:{rep}"])[0].actual

    assert settings.business_timezone == "Asia/Shanghai"
    assert (reached(10), reached(11)) == (Decimal(0), Decimal(1))
    monkeypatch.setattr(settings, "business_timezone", "UTC")
    assert (reached(10), reached(11)) == (Decimal(1), Decimal(0))


@pytest.mark.committing
def test_targets_import_is_all_or_nothing_and_list_prints_them(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    org = str(tenant.organization_id)
    with db.unit_of_work(None, system=True) as session:
        session.add(Department(organization_id=tenant.organization_id, name="导入测试部"))
    rep = tenant["rep"].username
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "scope,subject,metric,year,month,value\n"
        'company,,contract_amount,2026,3,"5,000,000"\n'
        "department,不存在的部门,collections,2026,3,100\n"
        f"user,{rep},visits,2026,13,2.5\n",
        encoding="utf-8",
    )
    refused = cli.invoke(app, ["targets", "import", str(bad), "--org", org])
    assert refused.exit_code == 2, refused.output
    assert "bad.csv row 3: subject: no department named '不存在的部门'" in refused.output
    assert "bad.csv row 4: month" in refused.output
    assert "bad.csv row 4: value: a count target is a whole number" in refused.output
    with db.reading(None, system=True) as session:
        count = session.scalar(select(func.count()).select_from(Target).where(
            tenant_clause(tenant.organization_id, Target)))  # fmt: skip
    assert count == 0  # the good first row was not set either

    good = tmp_path / "good.csv"
    good.write_text(
        "scope,subject,metric,year,month,value\n"
        'company,,contract_amount,2026,,"5,000,000"\n'
        "department,导入测试部,collections,2026,3,100000\n"
        f"user,{rep},visits,2026,3,12\n",
        encoding="utf-8",
    )
    done = cli.invoke(app, ["targets", "import", str(good), "--org", org])
    assert done.exit_code == 0, done.output
    assert "3 target(s) set" in done.output
    listed = cli.invoke(app, ["targets", "list", "--year", "2026", "--month", "3", "--org", org])
    assert listed.exit_code == 0, listed.output
    assert "导入测试部" in listed.output
    assert "100,000" in listed.output
    yearly = cli.invoke(app, ["targets", "list", "--year", "2026", "--org", org])
    assert "5,000,000" in yearly.output
