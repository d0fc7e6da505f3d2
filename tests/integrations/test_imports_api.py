"""``POST /api/v1/imports`` queues a job that the worker runs; ``GET /api/v1/imports/{id}`` shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.api.routers import imports as imports_router
from closeloop.config import settings
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.integrations.importing.jobs import process_import_job
from closeloop.integrations.importing.models import ImportJob, ImportStatus
from tests.factories import Tenant

CSV = "客户名称,员工数,行业\n北京协和医院,5000,医疗\n上海瑞金医院,很多,医疗\n华山医院,3000,医疗\n".encode("gbk")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[int]:
    """Jobs handed to the worker (recorded instead of queued); uploads kept under a temporary var dir."""
    monkeypatch.setattr(settings, "var_dir", tmp_path)
    handed: list[int] = []
    monkeypatch.setattr(imports_router, "enqueue_import", handed.append)
    return handed


def accounts(db: Database, tenant: Tenant) -> int:
    with db.reading(tenant["sales_vp"].actor) as session:
        statement = select(func.count()).select_from(Account).where(tenant_clause(tenant.organization_id, Account))
        return int(session.scalar(statement) or 0)


def test_an_uploaded_file_is_imported_by_the_job_and_reported(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, queued: list[int], tmp_path: Path
) -> None:
    manager = tenant["manager"]

    response = client.post(
        "/api/v1/imports",
        headers=manager.headers,
        files={"file": ("客户.csv", CSV, "text/csv")},
        data={"entity": "accounts"},
    )

    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/imports/{job['id']}"
    assert (job["status"], job["entity"], job["file_name"], job["dry_run"]) == ("queued", "accounts", "客户.csv", False)
    assert job["mapping"] == {"客户名称": "name", "员工数": "employees", "行业": "industry"}
    assert job["progress"] == {"processed_rows": 0, "total_rows": 3}
    assert queued == [job["id"]]
    stored = list((tmp_path / "imports" / str(tenant.organization_id)).iterdir())
    assert [p.read_bytes() for p in stored] == [CSV]
    assert accounts(db, tenant) == 0

    assert process_import_job(db, job["id"]) is ImportStatus.DONE
    assert list((tmp_path / "imports" / str(tenant.organization_id)).iterdir()) == []  # the upload is not kept

    done = client.get(f"/api/v1/imports/{job['id']}", headers=manager.headers).json()
    assert done["status"] == "done"
    assert done["progress"] == {"processed_rows": 3, "total_rows": 3}
    report = done["report"]
    assert (report["created"], report["invalid"], report["summary"]) == (
        2,
        1,
        "3 rows: 2 created, 0 updated, 0 unchanged, 1 invalid",
    )
    assert report["problems"] == [
        {
            "row": 3,
            "column": "员工数",
            "value": "很多",
            "reason": "is not a number (write it like 1234.50 or 1,234.50)",
            "code": "bad_value",
        }
    ]
    assert accounts(db, tenant) == 2
    assert process_import_job(db, job["id"]) is None  # a retried task finds the job done and leaves it

    foreign = client.get(f"/api/v1/imports/{job['id']}", headers=other_tenant["manager"].headers)
    assert foreign.status_code == 404
    listed = client.get("/api/v1/imports", headers=other_tenant["manager"].headers).json()
    assert listed == {"items": []}


def test_a_dry_run_job_reports_and_stores_nothing(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    response = client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("a.csv", CSV, "text/csv")},
        data={"entity": "accounts", "dry_run": "true", "mapping": json.dumps({"客户名称": "name"})},
    )
    assert response.status_code == 202, response.text

    assert process_import_job(db, queued[0]) is ImportStatus.DONE

    body = client.get(f"/api/v1/imports/{queued[0]}", headers=tenant["manager"].headers).json()
    assert body["report"]["summary"] == "3 rows: 3 to create, 0 to update, 0 unchanged, 0 invalid"
    assert accounts(db, tenant) == 0


def test_a_huge_number_is_its_rows_problem_not_the_jobs(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    """``1e400`` in one cell made rounding to cents overflow the decimal context, and the whole job
    failed with "internal error (InvalidOperation)": each such cell is now its row's problem."""
    rows = ["客户名称,年收入,员工数", "甲医院,1e400,10", "乙医院,123456789012345678901234567890,10",
            "丙医院,1e20,10", "丁医院,99999999999999.99,1e30", "戊医院,5000,20"]  # fmt: skip
    response = client.post(
        "/api/v1/imports",
        headers=tenant["sales_vp"].headers,
        files={"file": ("big.csv", "\n".join(rows).encode(), "text/csv")},
        data={
            "entity": "accounts",
            "mapping": json.dumps({"客户名称": "name", "年收入": "annual_revenue", "员工数": "employees"}),
        },
    )
    assert response.status_code == 202, response.text

    assert process_import_job(db, queued[0]) is ImportStatus.DONE

    report = client.get(f"/api/v1/imports/{queued[0]}", headers=tenant["sales_vp"].headers).json()["report"]
    money = "is too large (at most 99,999,999,999,999.99)"
    assert [(p["row"], p["column"], p["reason"]) for p in report["problems"]] == [
        (2, "年收入", money), (3, "年收入", money), (4, "年收入", money), (5, "员工数", "is too large"),
    ]  # fmt: skip
    assert (report["created"], report["invalid"]) == (1, 4)
    assert accounts(db, tenant) == 1


def test_a_job_that_fails_while_writing_stores_nothing_and_says_so(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("a.csv", CSV, "text/csv")},
        data={"entity": "accounts"},
    )
    from closeloop.integrations.importing import writer

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(writer, "insert_rows", broken)

    assert process_import_job(db, queued[0]) is ImportStatus.FAILED

    body = client.get(f"/api/v1/imports/{queued[0]}", headers=tenant["manager"].headers).json()
    assert (body["status"], body["error"]) == ("failed", "internal error (RuntimeError); nothing was imported")
    assert accounts(db, tenant) == 0


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ({"entity": "accounts", "mapping": '{"员工数": "employees"}'}, "name: is required"),
        ({"entity": "accounts", "mapping": "not json"}, "mapping: must be a JSON object"),
        ({"entity": "widgets"}, "'widgets' cannot be imported"),
    ],
    ids=["required-unmapped", "bad-json", "unknown-entity"],
)
def test_an_unusable_upload_is_refused_at_once(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int], data: dict[str, str], detail: str
) -> None:
    response = client.post(
        "/api/v1/imports", headers=tenant["manager"].headers, files={"file": ("a.csv", CSV, "text/csv")}, data=data
    )

    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert queued == []
    with db.reading(tenant["manager"].actor) as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_an_undecodable_upload_names_the_line(client: TestClient, tenant: Tenant, queued: list[int]) -> None:
    response = client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("a.csv", b"name\nok\nAcme \xff\n", "text/csv")},
        data={"entity": "accounts"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unreadable_file"
    assert "line 3, byte 6 of that line" in response.json()["detail"]


@pytest.mark.parametrize(
    ("file_name", "content", "chinese", "english"),
    [
        ("a.csv", b"name\nok\nAcme \xff\n", "第 3 行第 6 个字节", "line 3, byte 6 of that line"),
        ("a.csv", b"\n\n", "a.csv 是空文件：没有表头行", "a.csv is empty: no header row"),
        ("old.xls", b"\xd0\xcf\x11\xe0rest", "old.xls 是旧版 .xls 工作簿", "old.xls is an old-style .xls workbook"),
        ("b.xlsx", b"PK\x03\x04broken", "b.xlsx 不是可读取的 XLSX 工作簿", "b.xlsx is not a readable XLSX workbook"),
    ],
)
def test_an_unreadable_upload_is_explained_in_the_readers_language(
    client: TestClient, tenant: Tenant, queued: list[int], file_name: str, content: bytes, chinese: str, english: str
) -> None:
    """A Chinese reader is told what is wrong with the file in Chinese, with the same line and byte
    (not the generic "some fields are not valid"); the English words stay beside them."""
    response = client.post(
        "/api/v1/imports",
        headers={**tenant["manager"].headers, "Accept-Language": "zh-CN"},
        files={"file": (file_name, content, "application/octet-stream")},
        data={"entity": "accounts"},
    )

    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "unreadable_file"
    assert chinese in problem["detail"]
    assert english in problem["detail_en"]
    assert queued == []


@pytest.mark.parametrize(
    ("member", "status"),
    [("rep", 403), ("cfo", 403), ("it_director", 403), ("manager", 202), ("admin", 202)],
)
def test_who_may_import_accounts(
    client: TestClient, tenant: Tenant, queued: list[int], member: str, status: int
) -> None:
    response = client.post(
        "/api/v1/imports",
        headers=tenant[member].headers,
        files={"file": ("a.csv", b"name\nAcme\n", "text/csv")},
        data={"entity": "accounts"},
    )

    assert response.status_code == status, response.text
    assert len(queued) == (1 if status == 202 else 0)


def test_preview_shows_headers_mapping_and_first_rows(client: TestClient, tenant: Tenant, queued: list[int]) -> None:
    response = client.post(
        "/api/v1/imports/preview",
        headers=tenant["manager"].headers,
        files={"file": ("客户.csv", CSV, "text/csv")},
        data={"entity": "accounts"},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["encoding"], body["headers"], body["total_rows"]) == ("gb18030", ["客户名称", "员工数", "行业"], 3)
    assert body["suggested_mapping"] == {"客户名称": "name", "员工数": "employees", "行业": "industry"}
    assert body["missing_required"] == []
    assert body["rows"][0] == {"row": 2, "cells": ["北京协和医院", "5000", "医疗"]}
    tier = next(f for f in body["fields"] if f["name"] == "tier")
    assert tier["choices"][0] == {"code": "A", "label_zh": "A类"}
    assert queued == []


def test_preview_offers_no_field_the_role_may_not_set(client: TestClient, tenant: Tenant, queued: list[int]) -> None:
    data = "客户名称,信用额度\n协和医院,500000\n".encode()

    def preview(member: str) -> dict[str, Any]:
        response = client.post(
            "/api/v1/imports/preview",
            headers=tenant[member].headers,
            files={"file": ("客户.csv", data, "text/csv")},
            data={"entity": "accounts"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    manager = preview("manager")
    assert "credit_line" not in {f["name"] for f in manager["fields"]}
    assert manager["suggested_mapping"] == {"客户名称": "name"}
    assert "信用额度" in manager["unmapped_headers"]
    vp = preview("sales_vp")
    assert vp["suggested_mapping"] == {"客户名称": "name", "信用额度": "credit_line"}


def test_without_a_mapping_a_column_the_role_may_not_write_is_left_out_and_reported(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    data = "客户名称,信用额度\n协和医院,500000\n瑞金医院,300000\n".encode()

    preview = client.post(
        "/api/v1/imports/preview",
        headers=tenant["manager"].headers,
        files={"file": ("客户.csv", data, "text/csv")},
        data={"entity": "accounts"},
    ).json()
    response = client.post(
        "/api/v1/imports",
        headers=tenant["manager"].headers,
        files={"file": ("客户.csv", data, "text/csv")},
        data={"entity": "accounts"},
    )

    left_out = {"column": "信用额度", "field": "credit_line", "reason": "masked",
                "message": "your role may not read this field"}  # fmt: skip
    assert preview["left_out"] == [left_out]
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["mapping"] == {"客户名称": "name"}  # the masked column is not mapped, so the job can run
    assert process_import_job(db, job["id"]) is ImportStatus.DONE
    done = client.get(f"/api/v1/imports/{job['id']}", headers=tenant["manager"].headers).json()
    assert done["report"]["created"] == 2
    assert done["report"]["left_out"] == [left_out]
    assert accounts(db, tenant) == 2
