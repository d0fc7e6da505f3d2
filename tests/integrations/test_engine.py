"""The import engine: valid rows land in one transaction with their audit entries, invalid rows are
reported by row and column, a second import of the same file creates nothing, a dry run stores
nothing, and a failure midway leaves nothing behind."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from closeloop.core.actor import Actor
from closeloop.core.errors import Forbidden
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.crm.contacts.models import Contact
from closeloop.crm.leads.models import Lead
from closeloop.crm.opportunities.models import Opportunity, OpportunityProductLine, StageChange
from closeloop.crm.products.models import Product, ProductLine
from closeloop.crm.searchkey import search_key
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit import service as audit
from closeloop.governance.audit.models import AuditEntry
from closeloop.integrations.importing import writer
from closeloop.integrations.importing.engine import run_import
from closeloop.integrations.importing.errors import UnusableMapping
from closeloop.integrations.importing.readers import SourceTable, read_table
from closeloop.integrations.importing.report import ImportReport
from tests.factories import Tenant


def csv_file(rows: list[list[Any]], *, encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode(encoding)


def table_of(rows: list[list[Any]], name: str = "file.csv") -> SourceTable:
    return read_table(csv_file(rows), name=name)


def import_rows(
    db: Database, actor: Actor, entity: str, rows: list[list[Any]], *, dry_run: bool = False, **kwargs: Any
) -> ImportReport:
    with db.unit_of_work(actor) as session:
        return run_import(session, actor, entity=entity, table=table_of(rows), dry_run=dry_run, **kwargs)


def count(db: Database, actor: Actor, model: Any) -> int:
    with db.reading(actor) as session:
        return int(
            session.scalar(select(func.count()).select_from(model).where(tenant_clause(actor.organization_id, model)))
            or 0
        )


def audit_count(db: Database, actor: Actor) -> int:
    return count(db, actor, AuditEntry)


def verify(db: Database, organization_id: int) -> list[audit.ChainProblem]:
    with db.reading(None, system=True) as session:
        return list(audit.verify(session, organization_id))


def account_rows(total: int, bad: dict[int, tuple[int, str]]) -> Iterator[list[Any]]:
    """``total`` account rows; ``bad`` maps a data-row index to (column index, bad value)."""
    tiers = ["A", "B", "C"]
    for index in range(total):
        row: list[Any] = [
            f"客户{index:05d}有限公司",
            ["医疗", "制造", "零售"][index % 3],
            str(50 + index % 5000),
            f"{(index % 997) * 1000 + 0.5:,.2f}",
            tiers[index % 3],
            f"+86 571 8{index % 10_000_000:07d}",
            f"EXT-{index:05d}",
        ]
        if index in bad:
            column, value = bad[index]
            row[column] = value
        yield row


ACCOUNT_HEADER = ["客户名称", "行业", "员工数", "年营业额", "客户等级", "电话", "外部编号"]


def test_ten_thousand_rows_with_three_bad_ones(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    bad = {99: (2, "很多"), 4_999: (4, "Z类"), 9_998: (5, "call me!")}
    rows = [ACCOUNT_HEADER, *account_rows(10_000, bad)]
    entries_before = audit_count(db, manager)

    report = import_rows(db, manager, "accounts", rows)

    assert (report.total_rows, report.created, report.updated, report.unchanged, report.invalid) == (
        10_000,
        9_997,
        0,
        0,
        3,
    )
    assert [(p.row, p.column, p.value, p.code) for p in report.problems] == [
        (101, "员工数", "很多", "bad_value"),
        (5_001, "客户等级", "Z类", "bad_value"),
        (10_000, "电话", "call me!", "value_error"),  # the one phone rule (closeloop.core.phones)
    ]
    assert report.problems[1].reason == "is not one of: A, B, C"
    assert count(db, manager, Account) == 9_997
    assert audit_count(db, manager) == entries_before + 9_997
    assert verify(db, tenant.organization_id) == []
    with db.reading(manager) as session:
        account = session.scalar(select(Account).where(Account.external_ref == "EXT-00001"))
        assert account is not None
        assert (account.name, account.industry, account.employees, account.size, account.tier) == (
            "客户00001有限公司",
            "制造",
            51,
            "small",
            "B",
        )
        assert (account.annual_revenue, account.owner_id, account.currency) == (
            Decimal("1000.50"),
            tenant["manager"].user_id,
            "CNY",
        )
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.subject_type == "account", AuditEntry.subject_id == account.id)
        )
        assert entry is not None
        assert (entry.action, entry.changes["name"], entry.changes["annual_revenue"]) == (
            "account.created",
            [None, "客户00001有限公司"],
            [None, "1000.50"],
        )

    again = import_rows(db, manager, "accounts", rows)

    assert (again.created, again.updated, again.unchanged, again.invalid) == (0, 0, 9_997, 3)
    assert count(db, manager, Account) == 9_997
    assert audit_count(db, manager) == entries_before + 9_997


def test_a_dry_run_reports_the_same_and_stores_nothing(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    rows = [ACCOUNT_HEADER, *account_rows(20, {3: (2, "x")})]
    entries_before = audit_count(db, manager)

    report = import_rows(db, manager, "accounts", rows, dry_run=True)

    assert (report.dry_run, report.created, report.invalid) == (True, 19, 1)
    assert report.summary() == "20 rows: 19 to create, 0 to update, 0 unchanged, 1 invalid"
    assert count(db, manager, Account) == 0
    assert audit_count(db, manager) == entries_before


def test_a_changed_row_updates_its_record_and_audits_the_difference(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    import_rows(
        db, manager, "accounts", [["客户名称", "员工数", "城市"], ["华为", "900", "深圳"], ["中兴", "80", "深圳"]]
    )

    report = import_rows(
        db, manager, "accounts", [["客户名称", "员工数", "城市"], ["华为", "12000", ""], ["中兴", "80", "深圳"]]
    )

    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    with db.reading(manager) as session:
        huawei = session.scalar(select(Account).where(Account.name == "华为"))
        assert huawei is not None
        assert (huawei.employees, huawei.size, huawei.city, huawei.version) == (12000, "enterprise", "深圳", 2)
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.subject_id == huawei.id, AuditEntry.action == "account.updated")
        )
        assert entry is not None
        assert entry.changes == {"employees": [900, 12000], "size": ["medium", "enterprise"]}
    assert verify(db, tenant.organization_id) == []


def test_a_required_column_missing_stops_the_import_before_anything(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor

    with pytest.raises(UnusableMapping) as raised, db.unit_of_work(manager) as session:
        run_import(session, manager, entity="accounts", table=table_of([["行业", "城市"], ["医疗", "北京"]]))

    assert [(p.field, p.code) for p in raised.value.problems] == [("name", "required")]
    assert count(db, manager, Account) == 0


def test_a_bad_date_is_a_row_error(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    rows = [
        ["姓名", "公司", "手机", "来源", "获取时间"],
        ["王伟", "协和医院", "13800138000", "展会", "2024年3月5日"],
        ["李娜", "瑞金医院", "13900139000", "官网", "2024/02/30"],
        ["张敏", "华山医院", "13700137000", "转介绍", "2024-03-07 09:30"],
    ]

    report = import_rows(db, manager, "leads", rows)

    assert (report.created, report.invalid) == (2, 1)
    assert [(p.row, p.column, p.value, p.reason) for p in report.problems] == [
        (3, "获取时间", "2024/02/30", "is not a real date (2024-02-30)")
    ]
    with db.reading(manager) as session:
        leads = {lead.name: lead for lead in session.scalars(select(Lead))}
    assert leads["王伟"].received_at == datetime(2024, 3, 5, tzinfo=UTC)
    assert (leads["王伟"].source, leads["王伟"].owner_id, leads["王伟"].status) == (
        "trade_show",
        None,  # a lead without an owner waits in the inbox, as when created through the API
        "new",
    )
    assert leads["张敏"].received_at == datetime(2024, 3, 7, 9, 30, tzinfo=UTC)


def test_leads_match_by_mobile_on_a_second_import(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    rows = [["姓名", "手机"], ["王伟", "13800138000"]]
    import_rows(db, manager, "leads", rows)

    report = import_rows(db, manager, "leads", [["姓名", "手机", "职位"], ["王伟", "13800138000", "主任"]])

    assert (report.created, report.updated) == (0, 1)
    assert count(db, manager, Lead) == 1


def test_contacts_resolve_their_account_and_owner_and_match_by_email(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"]
    rep = tenant["rep"]
    import_rows(db, manager.actor, "accounts", [["客户名称", "负责人"], ["北京协和医院", rep.username]])
    rows = [
        ["姓名", "客户名称", "职务", "邮箱", "手机", "决策链角色", "负责人"],
        ["王主任", "北京协和医院", "设备科主任", "wang@pumch.cn", "13800138000", "决策者", rep.username],
        ["李工", "不存在的医院", "工程师", "li@x.cn", "", "", ""],
        ["赵老师", "北京协和医院", "", "zhao@pumch.cn", "", "教练", "nobody"],
    ]

    report = import_rows(db, manager.actor, "contacts", rows)

    assert (report.created, report.invalid) == (1, 2)
    assert [(p.row, p.column, p.reason, p.code) for p in report.problems] == [
        (3, "客户名称", "no account '不存在的医院' that you can see", "not_found"),
        (4, "负责人", "no user 'nobody' that you can see", "not_found"),
    ]
    with db.reading(manager.actor) as session:
        contact = session.scalar(select(Contact))
        account = session.scalar(select(Account))
    assert contact is not None
    assert account is not None
    assert (contact.account_id, contact.owner_id, contact.decision_role, contact.title_confirmed_on) == (
        account.id,
        rep.user_id,
        "decision_maker",
        datetime.now(UTC).date(),
    )

    again = import_rows(db, manager.actor, "contacts", rows[:2])
    assert (again.created, again.unchanged) == (0, 1)


def test_a_manager_cannot_take_over_a_record_outside_its_team_nor_hand_one_outside_it(
    db: Database, tenant: Tenant
) -> None:
    import_rows(db, tenant["sales_vp"].actor, "accounts", [["客户名称"], ["华东医疗"]])
    rows = [
        ["客户名称", "负责人"],
        ["华东医疗", ""],
        ["新客户", tenant["director"].username],
        ["另一家", tenant["rep2"].username],
    ]

    report = import_rows(db, tenant["manager"].actor, "accounts", rows)

    assert (report.created, report.invalid) == (1, 2)
    assert [(p.row, p.reason, p.code) for p in report.problems] == [
        (
            2,
            "an existing account with this name belongs to someone outside your reach; "
            "ask its owner or a manager to import it",
            "collision",
        ),
        (3, "you can only assign records to yourself or your team", "out_of_scope"),
    ]


def test_a_role_may_not_import_a_field_masked_from_it(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor

    with pytest.raises(Forbidden, match=r"column 信用额度 → credit_line: your role \(manager\) may not set this field"):
        import_rows(db, manager, "accounts", [["客户名称", "信用额度"], ["华为", "100万"]])
    with pytest.raises(Forbidden, match=r"does not allow imports:run"):
        import_rows(db, tenant["rep"].actor, "accounts", [["客户名称"], ["华为"]])


def test_a_parent_account_further_down_the_same_file_is_linked(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"].actor
    rows = [["客户名称", "上级客户"], ["华为终端", "华为"], ["华为", ""], ["荣耀", "华为终端"]]

    report = import_rows(db, manager, "accounts", rows)

    assert (report.created, report.invalid) == (3, 0)
    with db.reading(manager) as session:
        ids = {a.name: a for a in session.scalars(select(Account))}
    assert ids["华为终端"].parent_account_id == ids["华为"].id
    assert ids["荣耀"].parent_account_id == ids["华为终端"].id
    assert verify(db, tenant.organization_id) == []
    assert import_rows(db, manager, "accounts", rows).unchanged == 3


def test_products_and_opportunities_with_stages_and_history(db: Database, tenant: Tenant) -> None:
    vp = tenant["sales_vp"]
    rep = tenant["rep"]
    import_rows(
        db, vp.actor, "products", [["产品名称", "产品编码", "产品线", "标准价"], ["CT-500", "CT500", "", "¥1,200,000"]]
    )
    import_rows(db, vp.actor, "product_lines", [["产品线"], ["影像设备"]])
    products = import_rows(
        db,
        vp.actor,
        "products",
        [["产品名称", "产品编码", "产品线", "标准价"], ["CT-500 二代", "CT500", "影像设备", "¥1,250,000"]],
    )
    assert (products.created, products.updated) == (0, 1)
    import_rows(db, vp.actor, "accounts", [["客户名称"], ["北京协和医院"]])
    rows = [
        [
            "商机编号",
            "商机名称",
            "客户",
            "阶段",
            "金额",
            "负责人",
            "产品",
            "产品线",
            "创建日期",
            "成交日期",
            "输单原因",
        ],
        [
            "OPP-1",
            "协和 CT 采购",
            "北京协和医院",
            "赢单",
            "1,180,000",
            rep.username,
            "CT500",
            "影像设备",
            "2024/1/10",
            "2024/3/1",
            "",
        ],
        [
            "OPP-2",
            "协和 MR 采购",
            "北京协和医院",
            "输单",
            "900000",
            rep.username,
            "",
            "",
            "2024/1/12",
            "2024/2/1",
            "价格高于竞品",
        ],
        ["OPP-3", "协和 DR", "北京协和医院", "输单", "", rep.username, "", "", "2024/1/12", "", ""],
        ["OPP-4", "协和 超声", "北京协和医院", "方案报价", "300000", rep.username, "", "", "2024/2/2", "2024/3/1", ""],
        ["OPP-5", "协和 PET", "北京协和医院", "需求确认", "", rep.username, "", "", "2024/2/2", "", ""],
    ]

    report = import_rows(db, vp.actor, "opportunities", rows)

    assert (report.created, report.invalid) == (3, 2)
    assert [(p.row, p.column, p.reason) for p in report.problems] == [
        (4, "输单原因", "is required when an opportunity is lost"),
        (5, "成交日期", "only a won or lost opportunity has a close date (stage: proposal)"),
    ]
    with db.reading(vp.actor) as session:
        won = session.scalar(select(Opportunity).where(Opportunity.external_ref == "OPP-1"))
        assert won is not None
        assert (won.stage, won.amount, won.owner_id, won.closed_at, won.stage_changed_at) == (
            "won",
            Decimal("1180000.00"),
            rep.user_id,
            datetime(2024, 3, 1, tzinfo=UTC),
            datetime(2024, 3, 1, tzinfo=UTC),
        )
        history = [
            (c.from_stage, c.to_stage, c.changed_at.date(), c.duration_seconds)
            for c in session.scalars(
                select(StageChange).where(StageChange.opportunity_id == won.id).order_by(StageChange.changed_at)
            )
        ]
        assert history == [
            (None, "prospecting", date(2024, 1, 10), None),
            ("prospecting", "won", date(2024, 3, 1), 51 * 86400),
        ]
        lines = session.scalars(
            select(OpportunityProductLine.product_line_id).where(OpportunityProductLine.opportunity_id == won.id)
        ).all()
        line = session.scalar(select(ProductLine))
        assert line is not None
        assert lines == [line.id]
        assert session.scalar(select(Product.product_line_id)) == line.id

    moved = import_rows(
        db,
        vp.actor,
        "opportunities",
        [["商机编号", "商机名称", "阶段", "金额", "输单原因"], ["OPP-5", "协和 PET", "输单", "", "预算取消"]],
    )

    assert (moved.updated, moved.invalid) == (1, 0)
    with db.reading(vp.actor) as session:
        lost = session.scalar(select(Opportunity).where(Opportunity.external_ref == "OPP-5"))
        assert lost is not None
        assert (lost.stage, lost.lost_reason, lost.closed_at is not None) == ("lost", "预算取消", True)
        changes = session.scalars(select(StageChange.to_stage).where(StageChange.opportunity_id == lost.id)).all()
        assert sorted(changes) == ["lost", "qualification"]
        assert (
            session.scalar(
                select(AuditEntry.action).where(AuditEntry.subject_id == lost.id).order_by(AuditEntry.seq.desc())
            )
            == "opportunity.stage_changed"
        )
    assert verify(db, tenant.organization_id) == []


def test_activities_end_to_end(db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"]
    import_rows(db, manager.actor, "accounts", [["客户名称"], ["北京协和医院"]])
    rows = [
        ["类型", "跟进时间", "客户", "主题", "方向", "是否回复", "跟进内容"],
        ["电话", "2024-03-05 10:00", "北京协和医院", "确认需求", "呼出", "是", '=HYPERLINK("x")'],
        ["拜访", "2024-03-06 14:30", "北京协和医院", "现场演示", "", "", ""],
        ["邮件", "2024-03-07 09:00", "北京协和医院", "报价", "呼入", "是", ""],
        ["传真", "2024-03-08", "北京协和医院", "", "", "", ""],
    ]

    report = import_rows(db, manager.actor, "activities", rows)

    assert (report.created, report.invalid) == (2, 2)
    assert [(p.row, p.column, p.reason) for p in report.problems] == [
        (4, "是否回复", "applies to outbound interactions only"),
        (5, "类型", "is not one of: call, email, chat, visit, meeting"),
    ]
    with db.reading(manager.actor) as session:
        kinds = sorted((a.kind, a.direction, a.user_id, a.is_replied) for a in session.scalars(select(Activity)))
    assert kinds == [("call", "outbound", manager.user_id, True), ("visit", "outbound", manager.user_id, None)]
    assert import_rows(db, manager.actor, "activities", rows[:3]).unchanged == 2


def test_a_failure_while_writing_leaves_no_rows_and_no_audit_entries(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = tenant["manager"].actor
    rows = [ACCOUNT_HEADER, *account_rows(50, {})]
    entries_before = audit_count(db, manager)
    real_record_many = audit.record_many

    def record_then_fail(*args: Any, **kwargs: Any) -> int:
        real_record_many(*args, **kwargs)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(audit, "record_many", record_then_fail)

    with pytest.raises(RuntimeError, match="the disk is full"):
        import_rows(db, manager, "accounts", rows)

    assert count(db, manager, Account) == 0
    assert audit_count(db, manager) == entries_before
    assert verify(db, tenant.organization_id) == []


@pytest.mark.parametrize("by_copy", [False, True], ids=["executemany", "copy"])
def test_a_unique_key_collision_while_writing_leaves_nothing(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, by_copy: bool
) -> None:
    if by_copy:  # PostgreSQL's COPY writer for any file (SQLite always writes with executemany)
        monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    import_rows(db, manager, "accounts", [["客户名称"], ["已有客户"]])
    with db.reading(manager) as session:
        taken = session.scalar(select(Account.id))
    entries_before = audit_count(db, manager)
    # ids that are already in use: the insert fails on the primary key after other statements ran
    monkeypatch.setattr(writer, "allocate_ids", lambda session, table, n: [taken] * n)

    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        import_rows(db, manager, "accounts", [["客户名称"], ["新客户一"], ["新客户二"]])

    assert count(db, manager, Account) == 1
    assert audit_count(db, manager) == entries_before
    assert verify(db, tenant.organization_id) == []


def test_the_copy_writer_stores_what_executemany_stores_and_keeps_the_rules(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL writes many rows with ``COPY`` into a temporary table and one ``INSERT … SELECT``
    (``writer.COPY_MIN_ROWS``); here every write takes that path. (On SQLite: executemany.)"""
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    entries_before = audit_count(db, manager)
    rows = [ACCOUNT_HEADER, *account_rows(30, {})]
    rows[5][0] = 'Tab\there, "quotes", back\\slash 和 换\n行'  # text COPY escapes these

    report = import_rows(db, manager, "accounts", rows)

    assert (report.created, report.invalid) == (30, 0)
    assert audit_count(db, manager) == entries_before + 30
    assert verify(db, tenant.organization_id) == []
    with db.reading(manager) as session:
        stored = {
            row.external_ref: tuple(row[:-1])
            for row in session.execute(
                select(
                    Account.name, Account.annual_revenue, Account.phone, Account.search_key, Account.external_ref
                ).where(Account.external_ref.in_(["EXT-00003", "EXT-00004"]))
            )
        }
        entry = session.scalar(select(AuditEntry).where(AuditEntry.subject_type == "account").order_by(AuditEntry.seq))
    odd = 'Tab\there, "quotes", back\\slash 和 换\n行'
    assert stored == {
        "EXT-00003": ("客户00003有限公司", Decimal("3000.50"), "+86 571 80000003", search_key("客户00003有限公司")),
        "EXT-00004": (odd, Decimal("4000.50"), "+86 571 80000004", search_key(odd)),
    }
    assert entry is not None
    assert entry.changes["currency"] == [None, "CNY"]
    # a second import of the same file changes nothing
    again = import_rows(db, manager, "accounts", rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 30)


def test_the_copy_writer_still_passes_every_row_through_row_level_security(
    db: Database, tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "COPY_MIN_ROWS", 1)
    manager = tenant["manager"].actor
    foreign = other_tenant.organization_id
    with db.unit_of_work(manager) as session:
        if writer.dialect_of(session).name != "postgresql":
            pytest.skip("row-level security is PostgreSQL's")
    with pytest.raises(Exception, match=r"(?i)row-level security"), db.unit_of_work(manager) as session:
        writer.insert_rows(
            session,
            Account.__table__,  # type: ignore[arg-type]
            [{"organization_id": foreign, "name": "偷渡客户", "currency": "CNY", "custom": {}, "version": 1}],
        )
    with db.reading(other_tenant["manager"].actor) as session:
        assert session.scalar(select(func.count()).select_from(Account).where(Account.name == "偷渡客户")) == 0
