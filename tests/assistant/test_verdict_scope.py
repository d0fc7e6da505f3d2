"""A verdict names what it judges by its key (``knowledge:12``, ``account:3``); it is recorded only
on what the caller may read — a record outside the caller's reach is "not found", as a passage is,
and nothing is written."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from closeloop.assistant.feedback.models import SuggestionVerdict
from closeloop.db.session import Database
from tests.factories import Member, Tenant
from tests.samples import Api, assert_problem, tag


def _verdict(api: Api, key: str) -> Response:
    return api.request(
        "POST",
        "/assistant/verdicts",
        json={"source": "brief", "key": key, "query": "x", "verdict": "rejected", "reason": "x"},
    )


def _verdicts_on(db: Database, key: str) -> int:
    with db.reading(None, system=True) as session:
        return int(session.scalar(select(func.count()).where(SuggestionVerdict.key == key)) or 0)


def _account(client: TestClient, member: Member) -> int:
    return int(Api(client, member).create("accounts", {"name": f"判定客户 {tag()}"})["id"])


def test_a_partner_cannot_judge_a_statement_about_a_sellers_account(
    client: TestClient, db: Database, tenant: Tenant, partner: Tenant
) -> None:
    key = f"account:{_account(client, tenant['admin'])}"

    answer = _verdict(Api(client, partner["partner_user"]), key)

    assert_problem(answer, 404)
    assert _verdicts_on(db, key) == 0


def test_a_rep_judges_statements_about_its_own_records_only(client: TestClient, db: Database, tenant: Tenant) -> None:
    own, colleagues = _account(client, tenant["rep"]), _account(client, tenant["rep2"])
    rep = Api(client, tenant["rep"])

    assert _verdict(rep, f"account:{own}").status_code == 201
    assert_problem(_verdict(rep, f"account:{colleagues}"), 404)
    assert_problem(_verdict(rep, "opportunity:9223372036854775807"), 404)
    assert_problem(_verdict(rep, "account:99999999999999999"), 404)
    assert_problem(_verdict(rep, "knowledge:9999999999999999999"), 404)
    assert_problem(_verdict(rep, "nonsense:1"), 422, field="key")
    assert _verdicts_on(db, f"account:{own}") == 1
    assert _verdicts_on(db, f"account:{colleagues}") == 0
