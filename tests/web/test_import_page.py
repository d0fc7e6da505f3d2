"""The import page: upload (GBK CSV), suggested mapping, dry run with row errors, commit,
progress; only one's own jobs and uploads."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.integrations.importing.jobs import process_import_job
from closeloop.integrations.importing.models import ImportStatus
from closeloop.web import imports as import_pages
from tests.factories import Tenant
from tests.samples import Api
from tests.web.test_settings_pages import browser, csrf_of

FILE = "客户名称,行业,员工数\n导入医院甲,hospital,1200\n导入医院乙,hospital,很多\n导入医院丙,clinic,30\n".encode("gbk")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The jobs the page hands to the worker (run by the test, as the API tests do)."""
    handed: list[int] = []
    monkeypatch.setattr(import_pages, "enqueue_import", handed.append)
    return handed


def test_an_import_is_checked_reported_by_row_and_committed(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    manager = browser(client, db, tenant["manager"], locale="en")
    page = manager.get("/import")
    assert page.status_code == 200

    uploaded = manager.post(
        "/import",
        data={"csrf": csrf_of(page.text), "entity": "accounts"},
        files={"file": ("客户.csv", FILE, "text/csv")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303, uploaded.text
    mapping = manager.get(uploaded.headers["location"])
    assert mapping.status_code == 200
    assert re.search(r'<option value="name" selected>', mapping.text)  # 客户名称 → name, suggested
    assert re.search(r'<option value="employees" selected>', mapping.text)

    checked = manager.post(
        uploaded.headers["location"],
        data={
            "csrf": csrf_of(mapping.text),
            "map-0": "name",
            "map-1": "industry",
            "map-2": "employees",
            "mode": "dry_run",
        },
        follow_redirects=False,
    )
    assert checked.status_code == 303
    job_url = checked.headers["location"]
    running = manager.get(job_url, headers={"HX-Request": "true"})
    assert 'hx-trigger="every 1s"' in running.text
    assert "<html" not in running.text

    assert process_import_job(db, queued[-1]) is ImportStatus.DONE
    report = manager.get(job_url)
    assert 'hx-trigger="every 1s"' not in report.text  # polling stops once done
    assert re.search(r'<th scope="row" class="num">3</th><td>员工数</td><td><code>很多</code>', report.text)
    assert Api(client, tenant["manager"]).request("GET", "/accounts").json()["items"] == []  # a dry run writes nothing

    committed = manager.post(
        f"{job_url.split('?')[0]}/commit",
        data={"csrf": csrf_of(report.text), "upload": job_url.split("upload=")[1]},
        follow_redirects=False,
    )
    assert committed.status_code == 303
    assert process_import_job(db, queued[-1]) is ImportStatus.DONE
    done = manager.get(committed.headers["location"])
    assert 'value="100"' in done.text
    names = sorted(a["name"] for a in Api(client, tenant["manager"]).request("GET", "/accounts").json()["items"])
    assert names == ["导入医院丙", "导入医院甲"]


def test_an_unreadable_file_is_explained_and_nothing_is_stored(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    manager = browser(client, db, tenant["manager"], locale="en")
    token = csrf_of(manager.get("/import").text)
    response = manager.post(
        "/import",
        data={"csrf": token, "entity": "accounts"},
        files={"file": ("x.xlsx", b"not a workbook", "application/octet-stream")},
    )
    assert response.status_code == 422
    assert "The file cannot be read" in response.text
    assert queued == []


def test_an_unreadable_file_is_explained_in_chinese_on_a_chinese_page(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    manager = browser(client, db, tenant["manager"], locale="zh_CN")
    token = csrf_of(manager.get("/import").text)
    response = manager.post(
        "/import",
        data={"csrf": token, "entity": "accounts"},
        files={"file": ("空表.csv", b"\n\n", "text/csv")},
    )
    assert response.status_code == 422
    assert "无法读取文件：空表.csv 是空文件：没有表头行" in response.text
    assert "no header row" not in response.text
    undecodable = manager.post(
        "/import",
        data={"csrf": token, "entity": "accounts"},
        files={"file": ("坏字节.csv", b"name\nok\nAcme \xff\n", "text/csv")},
    )
    assert undecodable.status_code == 422
    assert "UTF-8 或 GBK" in undecodable.text
    assert "UTF-8 or GBK" not in undecodable.text
    assert queued == []


def test_a_job_and_an_upload_are_only_their_owners(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    manager = browser(client, db, tenant["manager"], locale="en")
    page = manager.get("/import")
    uploaded = manager.post(
        "/import",
        data={"csrf": csrf_of(page.text), "entity": "accounts"},
        files={"file": ("a.csv", FILE, "text/csv")},
        follow_redirects=False,
    )
    mapping_url = uploaded.headers["location"]
    mapping = manager.get(mapping_url)
    checked = manager.post(
        mapping_url, data={"csrf": csrf_of(mapping.text), "map-0": "name", "mode": "dry_run"}, follow_redirects=False
    )
    job_path = checked.headers["location"].split("?")[0]

    admin = browser(client, db, tenant["admin"], locale="en")
    assert admin.get(job_path).status_code == 404
    assert admin.get(mapping_url).status_code == 404
    assert "a.csv" not in admin.get("/import").text


def test_a_rep_cannot_import(client: TestClient, db: Database, tenant: Tenant) -> None:
    rep = browser(client, db, tenant["rep"], locale="en")
    assert rep.get("/import").status_code == 403


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_a_binary_file_is_explained_in_the_pages_words_not_the_command_lines(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int], locale: str
) -> None:
    manager = browser(client, db, tenant["manager"], locale=locale)
    token = csrf_of(manager.get("/import").text)
    binary = b"\xff\xfe" + bytes(range(256)) * 8 + b"\x00\xd8"  # a UTF-16 mark, then no text at all

    response = manager.post(
        "/import", data={"csrf": token, "entity": "accounts"}, files={"file": ("photo.csv", binary, "text/csv")}
    )

    assert response.status_code == 422
    assert "--encoding" not in response.text
    assert "photo.csv" in response.text
    assert ("Text encoding (CSV)" if locale == "en" else "文本编码（CSV）") in response.text
    assert queued == []


def test_the_mapping_page_and_the_report_say_which_columns_were_left_out_and_why(
    client: TestClient, db: Database, tenant: Tenant, queued: list[int]
) -> None:
    manager = browser(client, db, tenant["manager"], locale="en")
    token = csrf_of(manager.get("/import").text)
    uploaded = manager.post(
        "/import",
        data={"csrf": token, "entity": "accounts"},
        files={"file": ("客户.csv", "客户名称,信用额度\n左出医院,500000\n".encode(), "text/csv")},
        follow_redirects=False,
    )
    mapping = manager.get(uploaded.headers["location"])

    assert 'id="left-out"' in mapping.text
    assert "信用额度" in mapping.text
    assert "your role may not read this field" in mapping.text
