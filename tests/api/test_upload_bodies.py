"""Every file upload reads a multipart form: a JSON body is refused with 415 and told so (in the
caller's language) before anything is read or stored, rather than "file: Field required"."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from closeloop.assistant.knowledge.models import KnowledgeDocument
from closeloop.db.session import Database
from closeloop.integrations.importing.models import ImportJob
from tests.factories import Tenant
from tests.samples import Api, assert_problem

BODY = {"entity": "accounts", "name": "标准合同", "file": "账户名称\n上海瑞金医院\n"}


def _uploads(client: TestClient, tenant: Tenant) -> list[str]:
    admin = Api(client, tenant["admin"])
    collection = admin.create("knowledge/collections", {"name": "产品手册"})["id"]
    template = client.post(
        "/api/v1/assistant/contract-templates",
        data={"name": "标准合同"},
        files={"file": ("standard.txt", "第一条 付款\n买方应于30日内付款。\n".encode())},
        headers=tenant["admin"].headers,
    )
    assert template.status_code == 201, template.text
    return [
        "/api/v1/imports",
        "/api/v1/imports/preview",
        f"/api/v1/knowledge/collections/{collection}/documents",
        "/api/v1/assistant/contract-templates",
        f"/api/v1/assistant/contract-templates/{template.json()['id']}/compare",
    ]


def test_a_json_upload_is_refused_as_not_multipart(client: TestClient, tenant: Tenant, db: Database) -> None:
    for path in _uploads(client, tenant):
        answer = client.post(path, json=BODY, headers=tenant["admin"].headers)
        problem = assert_problem(answer, 415, code="unsupported_media_type")
        assert "multipart/form-data" in problem["detail"], path
        assert problem["accepted_media_types"] == ["multipart/form-data"], path
        chinese = client.post(path, json=BODY, headers={**tenant["admin"].headers, "Accept-Language": "zh-CN"})
        assert chinese.status_code == 415
        assert chinese.json()["title"] == "不支持的内容类型"
        assert chinese.json()["detail"].startswith("请求内容须为 multipart/form-data"), path
    with db.unit_of_work(None, system=True) as session:
        assert session.scalar(select(func.count()).select_from(ImportJob)) == 0
        assert session.scalar(select(func.count()).select_from(KnowledgeDocument)) == 0


def test_a_caller_who_is_not_signed_in_is_told_that_first(client: TestClient, tenant: Tenant) -> None:
    """Who is asking is settled before what was sent: no 415 (nor anything else) to a stranger."""
    for path in ("/api/v1/imports", "/api/v1/imports/preview", "/api/v1/assistant/contract-templates"):
        assert_problem(client.post(path, json=BODY), 401)


@pytest.mark.parametrize("content_type", ["text/csv", "application/octet-stream", "application/x-www-form-urlencoded"])
def test_other_bodies_are_refused_too(client: TestClient, tenant: Tenant, content_type: str) -> None:
    answer = client.post(
        "/api/v1/imports/preview",
        content=BODY["file"].encode(),
        headers={**tenant["admin"].headers, "Content-Type": content_type},
    )
    assert_problem(answer, 415, code="unsupported_media_type")


def test_a_multipart_upload_still_works(client: TestClient, tenant: Tenant) -> None:
    answer = client.post(
        "/api/v1/imports/preview",
        data={"entity": "accounts"},
        files={"file": ("accounts.csv", BODY["file"].encode("utf-8"), "text/csv")},
        headers=tenant["admin"].headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"] == ["账户名称"]
