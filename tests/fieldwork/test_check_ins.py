"""Visit check-ins (CN-5): coordinates, accuracy and a photo on a visit; photos refused by content
and size; the far-away flag; photos served only to who may see the visit; plan against done."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.config import settings
from closeloop.core.clock import frozen_at
from tests.factories import Member, Tenant
from tests.samples import Api, assert_problem

#: 2026-11-27 10:00 in Shanghai
NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
SHANGHAI = (31.2304, 121.4737)


@pytest.fixture(autouse=True)
def _storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setattr(settings, "var_dir", tmp_path)
    with frozen_at(NOW):
        yield


def _account(api: Api, name: str, latitude: float | None = None, longitude: float | None = None) -> int:
    body: dict[str, Any] = {"name": name, "owner_id": api.member.user_id}
    if latitude is not None:
        body.update(latitude=latitude, longitude=longitude)
    return int(api.create("accounts", body)["id"])


def _visit(api: Api, account_id: int) -> int:
    return int(api.create("activities", {"kind": "visit", "account_id": account_id, "subject": "拜访"})["id"])


def _check_in(client: TestClient, member: Member, visit: int, files: list[tuple[str, bytes]] = (), **form: Any) -> Any:  # type: ignore[assignment]
    data = {"latitude": "31.2310", "longitude": "121.4740", "accuracy": "15", "address": "上海市黄浦区人民大道"}
    data.update({key: str(value) for key, value in form.items()})
    uploads = [("photos", (name, content, "application/octet-stream")) for name, content in files]
    return client.post(
        f"/api/v1/fieldwork/visits/{visit}/check-in", data=data, files=uploads or None, headers=member.headers
    )


def test_check_in_with_coordinates_and_a_photo(
    client: TestClient, tenant: Tenant, other_tenant: Tenant, partner: Tenant, tmp_path: Path
) -> None:
    rep = Api(client, tenant["rep"])
    visit = _visit(rep, _account(rep, "上海瑞金医院", *SHANGHAI))

    response = _check_in(client, tenant["rep"], visit, [("门头.jpg", PNG)])

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["latitude"], body["longitude"], body["accuracy"]) == (31.231, 121.474, 15.0)
    assert body["address"] == "上海市黄浦区人民大道"
    assert body["checked_in_at"] == "2026-11-27T02:00:00+00:00"
    # 0.0006° of latitude (66.7 m) and 0.0003° of longitude at 31.23° N (28.5 m): √(66.7² + 28.5²) = 72.6 m
    assert body["distance_m"] == 72.6
    assert body["is_far"] is False
    [photo] = body["photos"]
    assert (photo["content_type"], photo["size_bytes"]) == ("image/png", len(PNG))
    stored = list((tmp_path / "storage" / "fieldwork" / str(tenant.organization_id)).iterdir())
    assert [path.read_bytes() for path in stored] == [PNG]
    assert stored[0].suffix == ".png"

    # served back to the rep and their manager; not found for a rep of another team, another
    # tenant; refused to a partner's token (no field-work permission)
    for key, status in [("rep", 200), ("manager", 200), ("rep2", 404)]:
        got = client.get(photo["url"], headers=tenant[key].headers)
        assert got.status_code == status, (key, got.text)
    got = client.get(photo["url"], headers=tenant["rep"].headers)
    assert (got.content, got.headers["content-type"], got.headers["x-content-type-options"]) == (
        PNG,
        "image/png",
        "nosniff",
    )
    assert_problem(client.get(photo["url"], headers=other_tenant["admin"].headers), 404)
    assert_problem(client.get(photo["url"], headers=partner["partner_user"].headers), 403)
    assert_problem(client.get(f"/api/v1/fieldwork/visits/{visit}/check-in", headers=tenant["rep2"].headers), 404)

    # one check-in per visit
    assert_problem(_check_in(client, tenant["rep"], visit), 409, field="activity_id")


def test_photos_are_checked_by_content_and_size(
    client: TestClient, tenant: Tenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rep = Api(client, tenant["rep"])
    visit = _visit(rep, _account(rep, "苏州客户"))

    not_an_image = _check_in(client, tenant["rep"], visit, [("photo.jpg", b"%PDF-1.7 not a photo")])
    assert_problem(not_an_image, 422, field="photos[0]", code="unsupported_type")
    monkeypatch.setattr(settings, "photo_max_bytes", 64)
    oversized = _check_in(client, tenant["rep"], visit, [("big.png", PNG)])
    assert_problem(oversized, 422, field="photos[0]", code="file_too_large")
    assert_problem(_check_in(client, tenant["rep"], visit, latitude=91), 422, field="latitude")
    assert_problem(_check_in(client, tenant["rep"], visit, accuracy=0), 422, field="accuracy")
    # nothing was stored or checked in by the refused calls
    assert not (tmp_path / "storage" / "fieldwork" / str(tenant.organization_id)).exists() or not list(
        (tmp_path / "storage" / "fieldwork" / str(tenant.organization_id)).iterdir()
    )
    assert_problem(client.get(f"/api/v1/fieldwork/visits/{visit}/check-in", headers=tenant["rep"].headers), 404)
    # the account has no coordinates: no distance, no flag
    accepted = _check_in(client, tenant["rep"], visit)
    assert (accepted.json()["distance_m"], accepted.json()["is_far"]) == (None, False)


def test_a_check_in_far_from_the_customer_is_flagged(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    visit = _visit(rep, _account(rep, "上海客户", *SHANGHAI))

    response = _check_in(client, tenant["rep"], visit, latitude=39.9042, longitude=116.4074)  # Beijing

    assert response.status_code == 201, response.text
    assert response.json()["is_far"] is True
    assert round(response.json()["distance_m"] / 1000) == 1067


def test_plan_against_done_and_the_visit_report(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    first, second, third = (_account(rep, name, *SHANGHAI) for name in ("甲医院", "乙医院", "丙医院"))
    plan_path = f"/fieldwork/plans/{tenant['rep'].user_id}/2026-11-27"

    planned = Api(client, tenant["manager"]).request(
        "PUT", plan_path, json={"items": [{"account_id": first, "note": "先去"}, {"account_id": second}]}
    )
    assert planned.status_code == 200, planned.text
    assert_problem(Api(client, tenant["rep2"]).request("PUT", plan_path, json={"items": []}), 404)
    twice = rep.request("PUT", plan_path, json={"items": [{"account_id": first}, {"account_id": first}]})
    assert_problem(twice, 422, field="items[1].account_id", code="duplicate")
    assert _check_in(client, tenant["rep"], _visit(rep, first)).status_code == 201
    assert _check_in(client, tenant["rep"], _visit(rep, third), latitude=30.0).status_code == 201  # unplanned, far

    plan = rep.request("GET", plan_path).json()
    assert (plan["planned"], plan["done"]) == (2, 1)
    assert [(item["account_id"], item["note"], item["done"]) for item in plan["items"]] == [
        (first, "先去", True),
        (second, None, False),
    ]
    report = Api(client, tenant["manager"]).request(
        "GET", "/fieldwork/visit-report", params={"from": "2026-11-27", "to": "2026-11-27"}
    )
    rows = {row["user_id"]: row for row in report.json()["items"]}
    assert {
        key: rows[tenant["rep"].user_id][key] for key in ("planned", "planned_done", "visits", "checked_in", "far")
    } == {
        "planned": 2,
        "planned_done": 1,
        "visits": 2,
        "checked_in": 2,
        "far": 1,
    }
    assert set(rows) == {tenant[key].user_id for key in ("manager", "rep", "rep2")}
    points = rep.request("GET", "/fieldwork/map").json()["items"]
    assert sorted(point["id"] for point in points) == sorted([first, second, third])


def test_a_position_typed_in_is_marked_manual_and_claims_no_accuracy(client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    visit = _visit(rep, _account(rep, "上海仁济医院", *SHANGHAI))

    claimed = _check_in(client, tenant["rep"], visit, manual="true")  # typed in, yet with the browser's ±15 m
    assert_problem(claimed, 422, field="accuracy", code="manual_position")
    typed = _check_in(client, tenant["rep"], visit, manual="true", accuracy="")

    assert typed.status_code == 201, typed.text
    assert (typed.json()["source"], typed.json()["accuracy"]) == ("manual", None)
    seen = client.get(f"/api/v1/fieldwork/visits/{visit}/check-in", headers=tenant["manager"].headers).json()
    assert (seen["source"], seen["accuracy"]) == ("manual", None)
    located = _check_in(client, tenant["rep"], _visit(rep, _account(rep, "上海华东医院", *SHANGHAI)))
    assert (located.json()["source"], located.json()["accuracy"]) == ("device", 15.0)


@pytest.mark.parametrize(
    ("occurred_at", "day"),
    [
        ("2026-11-26T15:30:00+00:00", "2026-11-26"),  # 23:30 yesterday in Shanghai
        ("2026-11-27T16:30:00+00:00", "2026-11-28"),  # 00:30 tomorrow in Shanghai
    ],
)
def test_check_in_only_on_the_visits_own_day(client: TestClient, tenant: Tenant, occurred_at: str, day: str) -> None:
    rep = Api(client, tenant["rep"])
    account = _account(rep, "南京客户", *SHANGHAI)
    other_day = rep.create("activities", {"kind": "visit", "account_id": account, "subject": "拜访",
                                          "occurred_at": occurred_at})["id"]  # fmt: skip

    refused = assert_problem(
        _check_in(client, tenant["rep"], other_day), 409, field="activity_id", code="not_visit_day"
    )
    assert f"this visit is on {day}, today is 2026-11-27" in refused["detail"]
    assert_problem(client.get(f"/api/v1/fieldwork/visits/{other_day}/check-in", headers=tenant["rep"].headers), 404)
    # 00:10 this morning in Shanghai is still today's visit (16:10 UTC yesterday)
    early = rep.create("activities", {"kind": "visit", "account_id": account, "subject": "早访",
                                      "occurred_at": "2026-11-26T16:10:00+00:00"})["id"]  # fmt: skip
    assert _check_in(client, tenant["rep"], early).status_code == 201


def test_a_json_check_in_is_refused_as_not_a_form(client: TestClient, tenant: Tenant) -> None:
    """The endpoint reads a multipart form (the photos are files): a JSON body is told so, in the
    caller's language, rather than "latitude: Field required" of the latitude it sent."""
    rep = Api(client, tenant["rep"])
    visit = _visit(rep, _account(rep, "上海瑞金医院", *SHANGHAI))
    body = {"latitude": 31.231, "longitude": 121.474, "accuracy": 15}

    for path in (f"/api/v1/fieldwork/visits/{visit}/check-in", f"/api/v1/fieldwork/visits/{visit}/photos"):
        answer = client.post(path, json=body, headers=tenant["rep"].headers)
        problem = assert_problem(answer, 415)
        assert problem["code"] == "unsupported_media_type"
        assert "multipart/form-data" in problem["detail"]
        assert "multipart/form-data" in problem["accepted_media_types"]
    chinese = client.post(
        f"/api/v1/fieldwork/visits/{visit}/check-in",
        json=body,
        headers={**tenant["rep"].headers, "Accept-Language": "zh-CN"},
    ).json()
    assert chinese["title"] == "不支持的内容类型"
    assert "multipart/form-data" in chinese["detail"]
    assert "照片作为文件" in chinese["detail"]
    assert client.get(f"/api/v1/fieldwork/visits/{visit}/check-in", headers=tenant["rep"].headers).status_code == 404
    unauthenticated = client.post(f"/api/v1/fieldwork/visits/{visit}/check-in", json=body)
    assert unauthenticated.status_code == 401
    assert _check_in(client, tenant["rep"], visit).status_code == 201  # a form without photos still checks in
