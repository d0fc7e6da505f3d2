"""Valid request bodies for every CRM record type, and a small client that speaks as one member.

The API tests, the permission matrix and the schemathesis run all build their records here, so
a new record type needs one :class:`RecordSpec` and is then covered everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from tests.factories import Member

PROBLEM_JSON = "application/problem+json"

Body = dict[str, Any]


def tag() -> str:
    """A short unique suffix for names, codes and numbers."""
    return uuid.uuid4().hex[:8]


def assert_problem(response: Response, status: int, *, field: str | None = None, code: str | None = None) -> Body:
    """``response`` is an RFC 9457 problem with ``status``; when given, an error names ``field`` (with ``code``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: Body = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("https://closeloop.dev/problems/")
    if field is not None:
        errors = problem.get("errors", [])
        matching = [error for error in errors if error["field"] == field]
        assert matching, f"no error names {field!r}: {errors}"
        if code is not None:
            assert matching[0]["code"] == code, matching
    return problem


class Api:
    """A TestClient speaking as one member. ``create``/``read`` assert success; the rest return responses.

    With ``reuse``, the prerequisites that bodies point at (an account per owner, a product) are
    made once and shared, which keeps tests that make many records fast.
    """

    def __init__(self, client: TestClient, member: Member, *, reuse: bool = False) -> None:
        self.client = client
        self.member = member
        self.reused: dict[tuple[Any, ...], Body] | None = {} if reuse else None

    def headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self.member.headers, **(extra or {})}

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        url = path if path.startswith("/api/") else f"/api{path}" if path.startswith("/v1/") else f"/api/v1{path}"
        response: Response = self.client.request(method, url, json=json, params=params, headers=self.headers(headers))
        return response

    def create(self, plural: str, body: Body, *, headers: Mapping[str, str] | None = None) -> Body:
        response = self.request("POST", f"/{plural}", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created: Body = response.json()
        return created

    def read(self, plural: str, record_id: int) -> Body:
        response = self.request("GET", f"/{plural}/{record_id}")
        assert response.status_code == 200, response.text
        record: Body = response.json()
        return record

    def patch(self, plural: str, record_id: int, body: Body, *, version: int | None = None) -> Response:
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        return self.request("PATCH", f"/{plural}/{record_id}", json=body, headers=headers)

    def list_ids(self, plural: str, **params: Any) -> list[int]:
        """Ids of every page of a list, in order (follows ``next_cursor``)."""
        ids: list[int] = []
        query = {"limit": 500, **params}
        while True:
            response = self.request("GET", f"/{plural}", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            ids.extend(item["id"] for item in page["items"])
            if not page["next_cursor"]:
                return ids
            query["cursor"] = page["next_cursor"]


# --- prerequisites ------------------------------------------------------------------------------


def _owned(owner_id: int | None, field: str = "owner_id") -> Body:
    return {field: owner_id} if owner_id is not None else {}


def _shared(api: Api, key: tuple[Any, ...], make: Callable[[], Body]) -> Body:
    if api.reused is None:
        return make()
    if key not in api.reused:
        api.reused[key] = make()
    return api.reused[key]


def new_account(api: Api, owner_id: int | None = None, **fields: Any) -> Body:
    def make() -> Body:
        body = {"name": f"瑞金医院 {tag()}", "industry": "hospital", **_owned(owner_id), **fields}
        return api.create("accounts", body)

    return make() if fields else _shared(api, ("account", owner_id), make)


def new_lead(api: Api, owner_id: int | None = None, **fields: Any) -> Body:
    return api.create("leads", {"name": f"王芳 {tag()}", "company": f"华山医院 {tag()}", **_owned(owner_id), **fields})


def new_product_line(api: Api) -> Body:
    return api.create("product_lines", {"name": f"影像设备 {tag()}", "code": f"L-{tag()}"})


def new_product(api: Api, *, list_price: str = "100.00") -> Body:
    def make() -> Body:
        line = new_product_line(api)
        body = {"name": f"CT 扫描仪 {tag()}", "code": f"P-{tag()}", "product_line_id": line["id"]}
        return api.create("products", {**body, "list_price": list_price})

    return _shared(api, ("product", list_price), make)


# --- one spec per record type -------------------------------------------------------------------

#: (api, index, owner_id) -> a valid create body; prerequisites it needs are created (owned by owner_id)
Builder = Callable[[Api, int, int | None], Body]


@dataclass(frozen=True)
class RecordSpec:
    """How to create, change, filter and break one record type through the API."""

    plural: str
    noun: str
    build: Builder
    #: a valid PATCH that changes something
    change: Body
    #: a filter with ``eq`` and ``in`` whose value differs for every record ``build`` makes
    key_field: str
    #: a sortable filter with ``gte`` whose value grows with ``build``'s index (None: none exists)
    range_field: str | None
    #: (field, value of the wrong type)
    wrong_type: tuple[str, Any]
    #: (field, value outside its picklist), when the type has a picklist
    bad_choice: tuple[str, Any] | None
    #: the column that says who owns the record (None: catalogue records, visible to all)
    owner_field: str | None = "owner_id"
    #: fields of the create body that point at other records (a caller must be able to see them)
    references: tuple[str, ...] = ()

    def body(self, api: Api, index: int = 0, owner_id: int | None = None) -> Body:
        """A create body, owned by ``owner_id`` when given (else by the caller)."""
        body = self.build(api, index, owner_id)
        if owner_id is not None and self.owner_field is not None:
            body[self.owner_field] = owner_id
        return body


def _accounts(api: Api, index: int, owner_id: int | None) -> Body:
    return {"name": f"协和医院 {index} {tag()}", "industry": "hospital", "employees": 100 + index, "tier": "A"}


def _contacts(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    return {
        "name": f"李伟 {index} {tag()}",
        "account_id": account["id"],
        "title": "设备科主任",
        "title_confirmed_on": f"2026-01-{index + 1:02d}",
    }


def _leads(api: Api, index: int, owner_id: int | None) -> Body:
    return {
        "name": f"张敏 {index} {tag()}",
        "company": "华山医院",
        "source": "website",
        "received_at": f"2026-02-{index + 1:02d}T08:00:00+00:00",
    }


def _opportunities(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    return {"name": f"CT 采购 {index} {tag()}", "account_id": account["id"], "amount": f"{1000 * (index + 1)}.00"}


def _product_lines(api: Api, index: int, owner_id: int | None) -> Body:
    return {"name": f"超声 {index} {tag()}", "code": f"U{index}-{tag()}"}


def _products(api: Api, index: int, owner_id: int | None) -> Body:
    line = _shared(api, ("product_line",), lambda: new_product_line(api))
    return {
        "name": f"B 超 {index} {tag()}",
        "code": f"B{index}-{tag()}",
        "product_line_id": line["id"],
        "list_price": f"{100 * (index + 1)}.00",
    }


def _quotes(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    product = new_product(api)
    return {
        "account_id": account["id"],
        "valid_until": f"2026-03-{index + 1:02d}",
        "lines": [{"product_id": product["id"], "quantity": str(index + 1)}],
    }


def _contracts(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    return {
        "title": f"设备采购合同 {index} {tag()}",
        "account_id": account["id"],
        "amount": f"{500 * (index + 1)}.00",
        "status": "active",
        "signed_on": "2026-03-01",
    }


def _orders(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    product = new_product(api)
    return {
        "account_id": account["id"],
        "ordered_at": f"2026-04-{index + 1:02d}T10:00:00+00:00",
        "lines": [{"product_id": product["id"], "quantity": "1", "unit_price": f"{200 * (index + 1)}.00"}],
    }


def _activities(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    return {
        "kind": "call",
        "subject": f"回访 {index} {tag()}",
        "account_id": account["id"],
        "occurred_at": f"2026-05-{index + 1:02d}T09:00:00+00:00",
        "duration_minutes": 10 + index,
    }


def _tickets(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    return {
        "subject": f"探头故障 {index} {tag()}",
        "account_id": account["id"],
        "priority": "high",
        "opened_at": f"2026-06-{index + 1:02d}T09:00:00+00:00",
    }


def _referrals(api: Api, index: int, owner_id: int | None) -> Body:
    account = new_account(api, owner_id)
    lead = new_lead(api, owner_id)
    return {
        "referrer_account_id": account["id"],
        "lead_id": lead["id"],
        "referred_at": f"2026-07-{index + 1:02d}T09:00:00+00:00",
    }


def _tasks(api: Api, index: int, owner_id: int | None) -> Body:
    return {"title": f"回访客户 {index} {tag()}", "due_on": f"2026-08-{index + 1:02d}", "description": "确认采购预算"}


SPECS: tuple[RecordSpec, ...] = (
    RecordSpec(
        "accounts",
        "account",
        _accounts,
        {"industry": "retail"},
        "name",
        "employees",
        ("employees", "many"),
        ("tier", "Z"),
    ),
    RecordSpec(
        "contacts",
        "contact",
        _contacts,
        {"department": "采购部"},
        "name",
        "title_confirmed_on",
        ("title_confirmed_on", "someday"),
        ("decision_role", "boss"),
        references=("account_id",),
    ),
    RecordSpec(
        "leads",
        "lead",
        _leads,
        {"company": "瑞金医院"},
        "name",
        "received_at",
        ("received_at", "yesterday"),
        ("source", "carrier_pigeon"),
    ),
    RecordSpec(
        "opportunities",
        "opportunity",
        _opportunities,
        {"expected_close_date": "2026-12-31"},
        "name",
        "amount",
        ("amount", "expensive"),
        ("stage", "dreaming"),
        references=("account_id",),
    ),
    RecordSpec(
        "product_lines",
        "product_line",
        _product_lines,
        {"description": "彩超与便携超声"},
        "code",
        None,
        ("name", 123),
        None,
        owner_field=None,
    ),
    RecordSpec(
        "products",
        "product",
        _products,
        {"unit": "台"},
        "code",
        "list_price",
        ("lead_time_days", "soon"),
        None,
        owner_field=None,
        references=("product_line_id",),
    ),
    RecordSpec(
        "quotes",
        "quote",
        _quotes,
        {"notes": "含三年保修"},
        "number",
        "total",
        ("valid_until", "someday"),
        ("status", "pending"),
        references=("account_id", "lines.0.product_id"),
    ),
    RecordSpec(
        "contracts",
        "contract",
        _contracts,
        {"ends_on": "2029-12-31"},
        "number",
        "amount",
        ("signed_on", "soon"),
        ("status", "signed"),
        references=("account_id",),
    ),
    RecordSpec(
        "orders",
        "order",
        _orders,
        {"status": "shipped"},
        "number",
        "ordered_at",
        ("ordered_at", "today"),
        ("status", "lost"),
        references=("account_id", "lines.0.product_id"),
    ),
    RecordSpec(
        "activities",
        "activity",
        _activities,
        {"outcome": "客户同意试用"},
        "subject",
        "occurred_at",
        ("duration_minutes", "long"),
        ("kind", "telepathy"),
        owner_field="user_id",
        references=("account_id",),
    ),
    RecordSpec(
        "tickets",
        "ticket",
        _tickets,
        {"status": "in_progress"},
        "subject",
        "opened_at",
        ("account_id", "abc"),
        ("priority", "critical"),
        references=("account_id",),
    ),
    RecordSpec(
        "referrals",
        "referral",
        _referrals,
        {"notes": "老客户介绍"},
        "lead_id",
        "referred_at",
        ("referred_at", "last week"),
        None,
        references=("referrer_account_id",),
    ),
)

SPECS = (
    *SPECS,
    RecordSpec(
        "tasks",
        "task",
        _tasks,
        {"description": "改为电话回访"},
        "title",
        "due_on",
        ("due_on", "someday"),
        None,
    ),
)

SPEC_BY_PLURAL: dict[str, RecordSpec] = {spec.plural: spec for spec in SPECS}
