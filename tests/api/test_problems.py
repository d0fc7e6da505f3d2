"""Every error is application/problem+json naming what is wrong, and no input makes the server fail.

Several cases here are inputs the fuzzer or the matrix once turned into 500s (numbers too large for
a column, cursors forged by hand, NUL characters, dates at the end of the calendar, duplicates of
unique values); each is pinned down so it stays a 4xx.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.factories import Tenant
from tests.samples import Api, assert_problem, new_account, new_product, tag


@pytest.fixture
def api(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["admin"])


def forged_cursor(*parts: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


# --- size and shape of the body ------------------------------------------------------------------


def test_a_2_mb_body_is_refused_with_413_before_anything_happens(api: Api) -> None:
    body = {"name": "大医院", "address": "北" * (2 * 1024 * 1024 // 3)}

    response = api.request("POST", "/accounts", json=body)

    problem = assert_problem(response, 413)
    assert problem["code"] == "payload_too_large"
    assert problem["detail"] == "The request body is larger than 1048576 bytes"
    assert api.list_ids("accounts") == []


def test_a_streamed_body_is_cut_off_at_the_limit(client: TestClient, tenant: Tenant) -> None:
    def chunks() -> Iterator[bytes]:
        yield '{"name": "流式医院", "address": "'.encode()
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}'

    response = client.post(
        "/api/v1/accounts",
        content=chunks(),
        headers={**tenant["admin"].headers, "content-type": "application/json"},
    )

    assert_problem(response, 413)


def test_malformed_json_is_a_422_naming_the_body(api: Api) -> None:
    response = api.client.post(
        "/api/v1/accounts", content=b'{"name": ', headers={**api.member.headers, "content-type": "application/json"}
    )

    problem = assert_problem(response, 422, field="body", code="json_invalid")
    assert problem["errors"][0]["message"] == "is not valid JSON (Expecting value at character 9)"


def test_nul_characters_are_refused_in_bodies_and_queries(api: Api) -> None:
    assert_problem(api.request("POST", "/accounts", json={"name": "协和\x00医院"}), 422, field="name")
    assert_problem(api.request("GET", "/accounts", params={"name": "a\x00b"}), 422, field="name")
    assert_problem(api.request("GET", "/accounts", params={"q": "\x00"}), 422, field="q")
    nul_cursor = {"cursor": forged_cursor("name", "a\x00", 1), "sort": "name"}
    assert_problem(api.request("GET", "/accounts", params=nul_cursor), 422, field="cursor")
    assert api.list_ids("accounts") == []


# --- list parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("colour", "red"),
        ("name__gte", "a"),
        ("employees", "many"),
        ("employees__gte", str(2**40)),
        ("parent_account_id", str(2**70)),
        ("annual_revenue__lte", "1.001"),
        ("annual_revenue__gte", "1e30"),
        ("annual_revenue__gte", "NaN"),
        ("tier", "Z"),
        ("tier__in", "A,Z"),
        ("employees__isnull", "maybe"),
    ],
)
def test_a_bad_filter_is_a_422_naming_the_parameter(api: Api, parameter: str, value: str) -> None:
    assert_problem(api.request("GET", "/accounts", params={parameter: value}), 422, field=parameter)


@pytest.mark.parametrize(
    ("plural", "parameter", "value"),
    [
        ("leads", "received_at__gte", "9999-12-31T23:59:59-05:00"),
        ("leads", "received_at__lt", "0001-01-01T00:00:00+05:00"),
        ("leads", "received_at__gt", "yesterday"),
        ("contacts", "title_confirmed_on", "2026-02-30"),
    ],
)
def test_a_date_outside_the_calendar_is_a_422(api: Api, plural: str, parameter: str, value: str) -> None:
    assert_problem(api.request("GET", f"/{plural}", params={parameter: value}), 422, field=parameter)


@pytest.mark.parametrize(
    ("cursor", "sort"),
    [
        ("not a cursor", None),
        (forged_cursor("-id", None, 2**64), None),
        (forged_cursor("-id", None, "7"), None),
        (forged_cursor("name", "协和", 3), None),
        (forged_cursor("employees", 2**80, 3), "employees"),
        (forged_cursor("employees", "many", 3), "employees"),
        (base64.urlsafe_b64encode(b"[" * 5000).decode(), None),
    ],
)
def test_a_forged_cursor_is_a_422(api: Api, cursor: str, sort: str | None) -> None:
    params = {"cursor": cursor, **({"sort": sort} if sort else {})}

    assert_problem(api.request("GET", "/accounts", params=params), 422, field="cursor")


@pytest.mark.parametrize(
    ("sort", "status"), [("colour", 422), ("industry", 200), ("-employees", 200), ("address", 422)]
)
def test_only_sortable_fields_sort(api: Api, sort: str, status: int) -> None:
    response = api.request("GET", "/accounts", params={"sort": sort})

    assert response.status_code == status
    if status == 422:
        assert_problem(response, 422, field="sort")


@pytest.mark.parametrize("limit", ["0", "501", "ten", str(2**70)])
def test_the_page_size_is_bounded(api: Api, limit: str) -> None:
    assert_problem(api.request("GET", "/accounts", params={"limit": limit}), 422, field="limit")


# --- headers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"three", b'"3', b"\xb2", b'W/"x"'])
def test_an_if_match_that_is_not_an_etag_is_a_412(api: Api, value: bytes) -> None:
    account = new_account(api)

    response = api.client.patch(
        f"/api/v1/accounts/{account['id']}", json={"city": "苏州"}, headers={**api.member.headers, "If-Match": value}
    )

    assert_problem(response, 412)
    assert api.read("accounts", account["id"])["version"] == 1


@pytest.mark.parametrize("value", ['"1"', 'W/"1"', "*"])
def test_an_if_match_may_be_weak_or_a_wildcard(api: Api, value: str) -> None:
    account = new_account(api)

    response = api.request("PATCH", f"/accounts/{account['id']}", json={"city": "苏州"}, headers={"If-Match": value})

    assert response.status_code == 200


def test_an_unchanged_record_answers_304_to_if_none_match(api: Api) -> None:
    account = new_account(api)

    response = api.request("GET", f"/accounts/{account['id']}", headers={"If-None-Match": '"1"'})

    assert response.status_code == 304
    assert response.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authentication required"),
        ("Basic YWRtaW46YWRtaW4=", "Use 'Authorization: Bearer <token>'"),
        ("Bearer ", "Use 'Authorization: Bearer <token>'"),
        ("Bearer clk_unknown", "The bearer token is unknown, expired or revoked"),
    ],
)
def test_a_missing_or_bad_credential_is_a_401(client: TestClient, authorization: str | None, detail: str) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = client.get("/api/v1/accounts", headers={**headers, "Accept-Language": "en"})

    problem = assert_problem(response, 401)
    assert problem["detail"] == detail
    assert response.headers["www-authenticate"] == 'Bearer realm="closeloop"'
    # no caller to ask, no language asked for: the installation's language, with the English beside
    chinese = assert_problem(client.get("/api/v1/accounts", headers=headers), 401)
    assert (chinese["title"], chinese["detail_en"]) == ("需要身份验证", detail)
    assert chinese["detail"] in {"需要身份验证", "请登录，或发送有效的 API 令牌。"}


def test_unknown_routes_and_methods_are_problems_too(api: Api) -> None:
    assert assert_problem(api.request("GET", "/nothing-here"), 404)["code"] == "not_found"
    assert assert_problem(api.request("PUT", "/accounts"), 405)["code"] == "method_not_allowed"


def test_the_request_id_comes_back(api: Api) -> None:
    sent = api.request("GET", "/accounts/1", headers={"X-Request-ID": "abc-123"})
    insane = api.request("GET", "/accounts/1", headers={"X-Request-ID": "no spaces allowed"})

    assert sent.headers["x-request-id"] == "abc-123"
    assert sent.json()["request_id"] == "abc-123"
    assert insane.headers["x-request-id"] != "no spaces allowed"
    assert len(insane.headers["x-request-id"]) == 32


# --- values the database could not hold --------------------------------------------------------------


def test_a_unique_value_taken_by_another_record_is_a_409(api: Api) -> None:
    reference = f"CRM-{tag()}"
    first = api.create("accounts", {"name": "甲医院", "external_ref": reference})
    second = api.create("accounts", {"name": "乙医院"})

    duplicate = api.request("POST", "/accounts", json={"name": "丙医院", "external_ref": reference})
    renamed = api.patch("accounts", second["id"], {"external_ref": reference})
    kept = api.patch("accounts", first["id"], {"external_ref": reference, "city": "南京"})

    assert_problem(duplicate, 409, field="external_ref", code="duplicate")
    assert_problem(renamed, 409, field="external_ref", code="duplicate")
    assert kept.status_code == 200


def test_restoring_a_record_whose_unique_value_was_reused_is_a_409(api: Api) -> None:
    line = api.create("product_lines", {"name": "内窥镜"})
    api.request("DELETE", f"/product_lines/{line['id']}")
    api.create("product_lines", {"name": "内窥镜"})

    response = api.request("POST", f"/product_lines/{line['id']}/restore")

    assert_problem(response, 409, field="name", code="duplicate")
    assert_problem(api.request("GET", f"/product_lines/{line['id']}"), 404)


def test_order_lines_too_large_for_money_are_a_422(api: Api) -> None:
    account = new_account(api)
    product = new_product(api)
    line = {"product_id": product["id"], "quantity": "999999999999.999", "unit_price": "99999999999999.99"}

    one_line = api.request("POST", "/orders", json={"account_id": account["id"], "lines": [line]})
    many = [{**line, "quantity": "1000", "unit_price": "99999999999.99"}] * 20
    many_lines = api.request("POST", "/orders", json={"account_id": account["id"], "lines": many})

    assert_problem(one_line, 422, field="lines.0.quantity")
    assert_problem(many_lines, 422, field="lines")
    assert api.list_ids("orders") == []


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-03-01T09:30:00+08:00", "2026-03-01T01:30:00+00:00"),
        ("2026-03-01T09:30:00", "2026-03-01T09:30:00+00:00"),
        ("2026-03-01T09:30:00Z", "2026-03-01T09:30:00+00:00"),
    ],
)
def test_times_are_stored_in_utc_and_a_time_without_offset_is_utc(api: Api, sent: str, stored: str) -> None:
    lead = api.create("leads", {"name": "时区", "received_at": sent})

    assert lead["received_at"] == stored
    assert api.read("leads", lead["id"])["received_at"] == stored


def test_a_time_that_leaves_the_calendar_in_utc_is_a_422(api: Api) -> None:
    response = api.request("POST", "/leads", json={"name": "太早", "received_at": "0001-01-01T00:00:00+08:00"})

    assert_problem(response, 422, field="received_at")


def test_money_comes_back_with_its_cents_at_once(api: Api) -> None:
    account = api.create("accounts", {"name": "整数医院", "annual_revenue": "1200000"})
    product = new_product(api, list_price="99.5")
    lines = [{"product_id": product["id"], "quantity": "2"}]
    quote = api.create("quotes", {"account_id": account["id"], "lines": lines})

    assert account["annual_revenue"] == "1200000.00"
    assert product["list_price"] == "99.50"
    assert (quote["subtotal"], quote["discount_amount"], quote["total"]) == ("199.00", "0.00", "199.00")
    assert quote["lines"][0]["quantity"] == "2.000"
    assert api.read("quotes", quote["id"]) == quote
