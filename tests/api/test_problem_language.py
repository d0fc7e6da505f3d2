"""Problem documents speak the caller's language: ``Accept-Language`` first, then the user's own
setting, then the organization's default. The machine-readable parts (``type``, ``code``, each
error's ``field`` and ``code``) are the same in every language, and in Chinese the English words
stay beside the translated ones (``detail_en``, ``message_en``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from closeloop.db.session import Database
from closeloop.org.models import Organization, User
from tests.factories import Member, Tenant
from tests.samples import assert_problem

Body = dict[str, Any]


def _set_locale(db: Database, tenant: Tenant, key: str, locale: str | None) -> None:
    with db.unit_of_work(None, system=True) as session:
        session.execute(update(User).where(User.id == tenant[key].user_id).values(locale=locale))


def _set_default(db: Database, tenant: Tenant, locale: str) -> None:
    with db.unit_of_work(None, system=True) as session:
        session.execute(
            update(Organization).where(Organization.id == tenant.organization_id).values(default_locale=locale)
        )


def _token_only(member: Member, **extra: str) -> dict[str, str]:
    """The member's token and no language asked for (the tests' usual headers ask for English)."""
    return {"Authorization": f"Bearer {member.token}", **extra}


def _missing_name(client: TestClient, headers: dict[str, str]) -> Any:
    return client.post("/api/v1/accounts", json={"industry": "医院"}, headers=headers)


@pytest.fixture
def languages(db: Database, tenant: Tenant) -> Tenant:
    """rep reads English, rep2 Chinese (their own settings); the manager chose none."""
    _set_locale(db, tenant, "rep", "en")
    _set_locale(db, tenant, "rep2", "zh_CN")
    _set_locale(db, tenant, "manager", None)
    return tenant


def test_a_chinese_user_reads_chinese_with_the_english_beside(client: TestClient, languages: Tenant) -> None:
    response = _missing_name(client, _token_only(languages["rep2"]))
    problem = assert_problem(response, 422, field="name", code="missing")
    assert response.headers["content-language"] == "zh-CN"
    assert problem["code"] == "validation_failed"
    assert problem["type"] == "https://closeloop.dev/problems/validation_failed"
    assert problem["title"] == "内容无法处理"
    assert problem["detail"] == "部分字段填写有误。"
    assert problem["detail_en"].startswith("The request has invalid fields: name:")
    error = problem["errors"][0]
    assert (error["field"], error["code"]) == ("name", "missing")
    assert error["message"] == "此项必填。"
    assert error["message_en"] == "Field required"


def test_an_english_user_reads_english_as_before(client: TestClient, languages: Tenant) -> None:
    response = _missing_name(client, _token_only(languages["rep"]))
    problem = assert_problem(response, 422, field="name", code="missing")
    assert response.headers["content-language"] == "en"
    assert problem["title"] == "Unprocessable content"
    assert problem["detail"].startswith("The request has invalid fields: name:")
    assert problem["errors"][0] == {"field": "name", "message": "Field required", "code": "missing"}
    assert "detail_en" not in problem


@pytest.mark.parametrize(
    ("member", "accept", "expected"),
    [
        ("rep", "zh-CN,zh;q=0.9", "zh-CN"),  # the header wins over the user's English
        ("rep2", "en-US,en;q=0.8", "en"),  # and over the user's Chinese
        ("rep2", "fr-FR, en;q=0.5", "en"),  # the first language it names that the API speaks
        ("rep", "en;q=0.2, zh;q=0.9", "zh-CN"),  # by weight
        ("rep", "fr, *", "en"),  # none spoken: the user's own
        ("manager", None, "zh-CN"),  # no setting of its own: the organization's default
    ],
)
def test_the_language_is_the_header_then_the_user_then_the_organization(
    client: TestClient, languages: Tenant, member: str, accept: str | None, expected: str
) -> None:
    headers = _token_only(languages[member], **({"Accept-Language": accept} if accept else {}))
    response = client.get("/api/v1/accounts/999999999", headers=headers)  # the fast read's 404
    problem = assert_problem(response, 404)
    assert response.headers["content-language"] == expected
    assert problem["code"] == "not_found"
    if expected == "en":
        assert problem["detail"] == "account 999999999 not found"
    else:
        assert (problem["title"], problem["detail_en"]) == ("未找到", "account 999999999 not found")
        assert problem["detail"] == "该记录不存在，或您无权查看。"


def test_an_english_organization_answers_its_users_without_a_setting_in_english(
    client: TestClient, db: Database, languages: Tenant
) -> None:
    _set_default(db, languages, "en")
    problem = assert_problem(
        client.get("/api/v1/quality/defects?kind=x", headers=_token_only(languages["manager"])), 422
    )
    assert problem["detail"].startswith("kind: is not a parameter of this endpoint")
    assert problem["message_zh"].startswith("未知的查询参数：kind")  # the Chinese words stay available
    # the user's own Chinese still comes before the organization's English
    chinese = assert_problem(client.get("/api/v1/quality/defects?kind=x", headers=_token_only(languages["rep2"])), 422)
    assert chinese["detail"] == chinese["message_zh"]
    assert chinese["invalid_params"] == [{"name": "kind", "reason": "is not a parameter of this endpoint"}]
    assert chinese["errors"][0]["field"] == "kind"
    assert chinese["errors"][0]["code"] == "unknown"


def test_a_service_refusal_with_its_own_chinese_words_uses_them(client: TestClient, languages: Tenant) -> None:
    """A refusal that carries its Chinese sentence (``message_zh``, as the pools' do) reads it in
    Chinese; both sentences stay in the body as before."""
    response = client.get("/api/v1/accounts?stauts=open", headers=_token_only(languages["rep2"]))
    problem = assert_problem(response, 422, field="stauts")
    assert problem["detail"] == problem["message_zh"]
    assert problem["detail_en"].startswith("stauts: is not a filter of accounts")
    assert problem["errors"][0]["message"] == "不是可用的名称；可用的名称已列出。"


# --- before the caller is known: a body over the limit ---------------------------------------------


@pytest.mark.parametrize(
    ("accept", "language", "title", "detail"),
    [
        ("zh-CN", "zh-CN", "请求内容过大", "请求内容超过了 1048576 字节的上限"),
        ("en", "en", "Payload too large", "The request body is larger than 1048576 bytes"),
        # nobody is signed in yet when the body is refused: no header, the default every problem falls back to
        (None, "zh-CN", "请求内容过大", "请求内容超过了 1048576 字节的上限"),
    ],
)
def test_a_body_over_the_limit_is_refused_in_the_language_asked_for(
    client: TestClient, languages: Tenant, accept: str | None, language: str, title: str, detail: str
) -> None:
    headers = _token_only(languages["rep"], **({"Accept-Language": accept} if accept else {}))
    response = client.post(
        "/api/v1/accounts",
        content=b'{"name": "' + b"x" * (1024 * 1024) + b'"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 413)
    assert response.headers["content-language"] == language
    assert (problem["code"], problem["title"], problem["detail"], problem["limit"]) == (
        "payload_too_large",
        title,
        detail,
        1048576,
    )
    if language == "en":
        assert "detail_en" not in problem
    else:
        assert problem["detail_en"] == "The request body is larger than 1048576 bytes"


# --- a success's words follow the same order ---------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "accept", "expected"),
    [
        ("rep", "zh-CN,zh;q=0.9", "费用报销"),  # the header wins over the user's English
        ("rep2", "en-US,en;q=0.8", "Expense"),  # and over the user's Chinese
        ("rep", "fr, *", "Expense"),  # none spoken: the user's own
        ("rep2", None, "费用报销"),
        ("manager", None, "费用报销"),  # no setting of its own: the organization's default
    ],
)
def test_a_successful_answer_is_in_the_same_language_a_problem_would_be(
    client: TestClient, db: Database, languages: Tenant, member: str, accept: str | None, expected: str
) -> None:
    """An expense claim's title is written in the reader's words: the same header, then the user,
    then the organization, as a refusal of the same request would be."""
    sales_vp = _token_only(languages["sales_vp"], **{"Accept-Language": "en"})
    default = [{"name": "默认", "conditions": [], "steps": [{"name": "审批", "mode": "sequence",
                                                              "approvers": [{"kind": "supervisor"}]}]}]  # fmt: skip
    made = client.post(
        "/api/v1/approval-flows",
        json={"name": "报销", "record_type": "expense", "definition": {"branches": default}},
        headers=sales_vp,
    )
    assert made.status_code == 201, made.text
    headers = _token_only(languages[member], **({"Accept-Language": accept} if accept else {}))
    claim = {"record_type": "expense", "details": {"amount": "100", "category": "差旅", "spent_on": "2026-11-20"}}

    answer = client.post("/api/v1/approvals", json=claim, headers=headers)
    refused = client.post("/api/v1/approvals", json={**claim, "details": {}}, headers=headers)

    assert answer.status_code == 201, answer.text
    assert answer.json()["title"] == f"{expected} · 差旅 ¥100.00"
    assert_problem(refused, 422)
    assert refused.headers["content-language"] == ("en" if expected == "Expense" else "zh-CN")
    assert answer.headers["content-language"] == refused.headers["content-language"]


@pytest.mark.parametrize(
    ("member", "accept", "expected"),
    [("rep", None, "en"), ("rep2", None, "zh-CN"), ("rep", "zh-CN", "zh-CN"), ("rep2", "en-US", "en")],
)
def test_a_successful_answer_says_its_language(
    client: TestClient, languages: Tenant, member: str, accept: str | None, expected: str
) -> None:
    headers = _token_only(languages[member], **({"Accept-Language": accept} if accept else {}))
    listed = client.get("/api/v1/accounts", headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.headers["content-language"] == expected
    assert listed.headers.get_list("content-language") == [expected]  # once, not twice
    assert "accept-language" in listed.headers["vary"].lower()


def test_a_file_keeps_the_language_it_was_written_in(client: TestClient, languages: Tenant) -> None:
    """An export is data, not the interface's words: it says no language the caller chose."""
    headers = _token_only(languages["rep"], **{"Accept-Language": "zh-CN"})
    exported = client.get("/api/v1/exports/accounts", headers=headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert "content-language" not in exported.headers


def test_an_answer_before_the_caller_is_known_says_no_language_it_did_not_choose(client: TestClient) -> None:
    assert "content-language" not in client.get("/healthz").headers
