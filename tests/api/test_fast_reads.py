"""The fast reads (``closeloop.api.fastreads``) answer exactly as FastAPI does: for any caller, record
id, query string and ``If-None-Match``, the same status, headers and bytes — scoping, masks, ETags,
``Link``, problem documents included — and they do answer the requests they are meant for."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select
from sqlalchemy.orm import Session
from starlette.routing import Mount

from closeloop.api.app import Api
from closeloop.api.routers import records as router_records
from closeloop.core.pagination import MAX_LIMIT
from closeloop.crm import records
from closeloop.crm.accounts import service as account_service
from closeloop.crm.records import RecordType
from closeloop.db.session import Database, execute_core
from tests.factories import Tenant
from tests.samples import Api as Member

REQUEST_ID = "fast-reads-test"


def _api(client: TestClient) -> Api:
    app: Any = client.app
    return next(route.app for route in app.routes if isinstance(route, Mount) and isinstance(route.app, Api))


def _fetched_through_sqlalchemy(
    session: Session,
    statement: Select[Any],
    parameters: Mapping[str, Any],
    names: tuple[str, ...],
    decoders: tuple[tuple[str, Callable[[Any], Any]], ...],
) -> list[dict[str, Any]]:
    """What ``records._fetch_kept`` hands back, read as before the kept reads: SQLAlchemy's result,
    its rows made into dicts, the computed fields decoded."""
    fetched = execute_core(session, statement, parameters).all()
    built = [dict(zip(names, row, strict=True)) for row in fetched]
    for row in built:
        for name, decode in decoders:
            row[name] = decode(row[name])
    return built


@contextmanager
def _through_fastapi(client: TestClient) -> Iterator[None]:
    """Every request answered by FastAPI's endpoints, as before the fast reads, every page read by a
    statement built for the request, as before the plain pages' statements were kept, and every kept
    statement (by id) run through SQLAlchemy's result, as before the kept reads ran on the driver's
    cursor."""
    fast = _api(client).fast_reads
    kept = fast.segments
    kept_plain_page, kept_fetch = records._plain_page, records._fetch_kept
    fast.segments = {}
    records._plain_page = lambda *_: False
    records._fetch_kept = _fetched_through_sqlalchemy
    try:
        yield
    finally:
        fast.segments = kept
        records._plain_page, records._fetch_kept = kept_plain_page, kept_fetch


def _both(client: TestClient, url: str, headers: dict[str, str], params: list[tuple[str, str]]) -> tuple[Any, Any]:
    def seen(response: Response) -> tuple[int, list[tuple[str, str]], bytes]:
        kept = [(name, value) for name, value in response.headers.multi_items() if name != "date"]
        return response.status_code, kept, response.content

    headers = {**headers, "X-Request-ID": REQUEST_ID}
    fast = seen(client.get(url, headers=headers, params=params))
    with _through_fastapi(client):
        slow = seen(client.get(url, headers=headers, params=params))
    return fast, slow


@pytest.fixture
def accounts(db: Database, tenant: Tenant, other_tenant: Tenant) -> dict[str, int]:
    """Accounts of the rep (three), of the second rep, and of another organization."""
    made: dict[str, int] = {}
    for key, owners, owner, name in [
        ("rep_a", tenant, "rep", "快读医院甲"),
        ("rep_b", tenant, "rep", "快读医院乙"),
        ("rep_c", tenant, "rep", "快读诊所丙"),
        ("rep2", tenant, "rep2", "快读医院丁"),
        ("foreign", other_tenant, "rep", "快读医院戊"),
    ]:
        vp = owners["sales_vp"].actor  # who may set the credit line (a rep may not even read it)
        with db.unit_of_work(vp) as session:
            record = records.create(
                session,
                vp,
                account_service.ACCOUNTS,
                {
                    "name": name,
                    "industry": "医药",
                    "employees": 40,
                    "credit_line": Decimal("1000.00"),
                    "owner_id": owners[owner].user_id,
                },
            )
            made[key] = record.id
    return made


def test_every_record_type_is_read_and_listed_fast(client: TestClient) -> None:
    fast = _api(client).fast_reads
    record_types: list[RecordType[Any]] = [spec.record_type for spec in router_records.ENDPOINTS]
    assert len(record_types) > 5
    for record_type in record_types:
        segment = fast.segments.get(record_type.plural)
        assert segment is not None, record_type.plural
        assert segment.one is not None
        assert segment.one.record_type is record_type
        assert segment.page is not None
        assert segment.page.record_type is record_type


def test_the_fast_reads_answer_without_fastapi(client: TestClient, tenant: Tenant, accounts: dict[str, int]) -> None:
    api = _api(client)
    kept = api.segments["accounts"]

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"FastAPI reached for {scope['path']}?{scope['query_string']!r}")

    api.segments["accounts"] = refuse  # type: ignore[assignment]
    try:
        one = client.get(f"/api/v1/accounts/{accounts['rep_a']}", headers=tenant["rep"].headers)
        page = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"limit": "2", "q": "快读"})
        foreign = client.get(f"/api/v1/accounts/{accounts['foreign']}", headers=tenant["rep"].headers)
        anonymous = client.get("/api/v1/accounts")
        # what the fast reads leave to FastAPI (here: to the refusing stand-in, a 500)
        refused = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"limit": "0"})
    finally:
        api.segments["accounts"] = kept
    assert one.status_code == 200
    assert one.headers["etag"] == '"1"'
    assert "credit_line" not in one.json()  # masked for a rep: absent, not null
    assert page.status_code == 200
    assert len(page.json()["items"]) == 2
    assert 'rel="next"' in page.headers["link"]
    assert foreign.status_code == 404
    assert foreign.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"]
    assert refused.status_code == 500


def test_paging_through_a_list_is_the_same_both_ways(
    client: TestClient, tenant: Tenant, accounts: dict[str, int]
) -> None:
    everything = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"q": "快读"}).json()["items"]
    assert len(everything) >= 3
    for sort in ("-id", "id", "name", "-employees"):
        base = [("limit", "1"), ("q", "快读"), ("sort", sort)]
        params = base
        pages = 0
        while True:
            fast, slow = _both(client, "/api/v1/accounts", tenant["rep"].headers, params)
            assert fast == slow
            assert fast[0] == 200
            pages += 1
            link = dict(fast[1]).get("link")
            if link is None:
                break
            params = [*base, ("cursor", unquote(link.split("cursor=", 1)[1].split(">", 1)[0]))]
        assert pages == len(everything)


_members = st.sampled_from(["rep", "rep2", "manager", "cfo", "admin", "it_director", None, "bad", "basic", "unknown"])
_ids = st.sampled_from(["rep_a", "rep2", "foreign", "0", "-1", "007", "abc", "1e3", str(2**63), str(2**63 - 1), " 5"])
_parameters = st.lists(
    st.sampled_from(
        [
            ("limit", "1"),
            ("limit", "2"),
            ("limit", str(MAX_LIMIT)),
            ("limit", str(MAX_LIMIT + 1)),
            ("limit", "0"),
            ("limit", "05"),
            ("limit", "x"),
            ("limit", ""),
            ("q", "快读"),
            ("q", "医院"),
            ("q", "x" * 201),
            ("q", "x" * 200),
            ("q", "a\x00b"),
            ("sort", "name"),
            ("sort", "id"),
            ("sort", "-created_at"),
            ("sort", "-employees"),
            ("sort", "credit_line"),
            ("sort", "nonsense"),
            ("industry", "医药"),
            ("credit_line__gte", "1"),
            ("employees__gte", "forty"),
            ("nonsense", "1"),
            ("cursor", "not-a-cursor"),
            ("cursor", ""),
        ]
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    member=_members,
    record=st.one_of(st.none(), _ids),
    parameters=_parameters,
    trailing_slash=st.booleans(),
    if_none_match=st.sampled_from([None, '"1"', '"2"', "*"]),
)
def test_any_read_answers_as_fastapi_does(
    client: TestClient,
    tenant: Tenant,
    accounts: dict[str, int],
    member: str | None,
    record: str | None,
    parameters: list[tuple[str, str]],
    trailing_slash: bool,
    if_none_match: str | None,
) -> None:
    strangers: dict[str | None, dict[str, str]] = {
        None: {},
        "bad": {"Authorization": "Bearer clk_unknown"},
        "basic": {"Authorization": "Basic eDp5"},
        "unknown": {"Authorization": "Bearer whatever"},
    }
    headers = strangers[member] if member in strangers else tenant[str(member)].headers
    if if_none_match is not None:
        headers = {**headers, "If-None-Match": if_none_match}
    url = "/api/v1/accounts"
    if record is not None:
        url += f"/{accounts.get(record, record)}"
    if trailing_slash:
        url += "/"
    fast, slow = _both(client, url, headers, parameters)
    assert fast == slow


def test_an_unexpected_error_is_the_same_500_problem(
    client: TestClient, tenant: Tenant, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(records, "read_one", broken)
    fast, slow = _both(client, f"/api/v1/accounts/{accounts['rep_a']}", tenant["rep"].headers, [])
    assert fast == slow
    assert fast[0] == 500
    assert b"internal_error" in fast[2]
    assert REQUEST_ID.encode() in fast[2]


def test_a_plain_page_is_read_by_a_kept_statement(
    client: TestClient, tenant: Tenant, accounts: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page without filter or search (sorted by a column, paged by id) runs the statement kept for
    its shape; a filtered one builds its own — and both answer as the built statements did (above)."""
    shapes: list[tuple[Any, ...]] = []
    kept = records._page_statement

    def spy(*shape: Any) -> Any:
        shapes.append(shape)
        return kept(*shape)

    monkeypatch.setattr(records, "_page_statement", spy)
    first = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"limit": "1"})
    link = first.headers["link"]
    cursor = unquote(link.split("cursor=", 1)[1].split(">", 1)[0])
    second = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"limit": "1", "cursor": cursor})
    assert len(shapes) == 2
    assert shapes[0][2] is True  # the rep's reach: the scoped form of the statement
    assert (shapes[0][-1], shapes[1][-1]) == (False, True)  # the second page continues after an id
    assert first.json()["items"][0]["id"] > second.json()["items"][0]["id"]
    filtered = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"industry": "医药"})
    searched = client.get("/api/v1/accounts", headers=tenant["rep"].headers, params={"q": "快读"})
    assert filtered.status_code == searched.status_code == 200
    assert len(shapes) == 2


@pytest.fixture
def opportunities(client: TestClient, tenant: Tenant, accounts: dict[str, int]) -> dict[str, int]:
    """Opportunities of the rep and of the second rep, with money, a margin (finance's to read), a
    date and a custom document: values of every kind a kept read converts."""
    vp = Member(client, tenant["sales_vp"])
    made: dict[str, int] = {}
    for key, account, owner, body in [
        ("rep_a", "rep_a", "rep", {"amount": "3200000.50", "margin": "12.50", "expected_close_date": "2027-01-31"}),
        ("rep_b", "rep_b", "rep", {"amount": "0.01"}),
        ("rep2", "rep2", "rep2", {"amount": "999.99", "margin": "0.00", "description": "另一位"}),
    ]:
        created = vp.create(
            "opportunities",
            {"name": f"快读商机 {key}", "account_id": accounts[account], "owner_id": tenant[owner].user_id, **body},
        )
        made[key] = created["id"]
    return made


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    member=st.sampled_from(["rep", "rep2", "manager", "cfo", "admin", "sales_vp"]),
    record=st.one_of(st.none(), st.sampled_from(["rep_a", "rep_b", "rep2"])),
    parameters=st.lists(
        st.sampled_from([("limit", "1"), ("limit", "2"), ("sort", "amount"), ("sort", "-id"), ("sort", "id")]),
        max_size=2,
    ),
)
def test_opportunities_read_by_the_kept_reads_answer_as_before(
    client: TestClient,
    tenant: Tenant,
    opportunities: dict[str, int],
    member: str,
    record: str | None,
    parameters: list[tuple[str, str]],
) -> None:
    """The kept reads (on the driver's cursor) against SQLAlchemy's result and the built statements:
    money, percentages, dates, times, the computed product lines, custom documents, masks (margin),
    a rep's scope (an expanding parameter) — the same bytes."""
    url = "/api/v1/opportunities" + ("" if record is None else f"/{opportunities[record]}")
    fast, slow = _both(client, url, tenant[member].headers, [] if record is not None else parameters)
    assert fast == slow
    assert fast[0] in (200, 404)
