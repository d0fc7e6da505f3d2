"""An id beyond any record's (more than a signed 64-bit integer) in a page's address is a page that
does not exist, and in a filter a field problem — never a database error (SQLite cannot bind it)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import Member
from tests.web.test_sign_in import ENGLISH, member, sign_in

__all__ = ["member"]

HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/accounts/{HUGE}",
        f"/accounts/{HUGE}/timeline",
        f"/opportunities/{HUGE}",
        f"/contacts/{HUGE}",
        f"/leads/{HUGE}",
        f"/leads/{HUGE}/convert",
        f"/contracts/{HUGE}",
        f"/approvals/{HUGE}",
        f"/approvals/flows/{HUGE}",
        f"/import/jobs/{HUGE}",
    ],
)
def test_a_page_naming_an_impossible_id_does_not_exist(client: TestClient, member: Member, path: str) -> None:
    sign_in(client, member)
    response = client.get(path, headers=ENGLISH)
    assert response.status_code == 404, (path, response.text[:300])
    assert "This page does not exist" in response.text


def test_the_largest_possible_id_is_still_looked_up(client: TestClient, member: Member) -> None:
    sign_in(client, member)
    response = client.get(f"/accounts/{2**63 - 1}", headers=ENGLISH)
    assert response.status_code == 404


def test_an_impossible_id_in_a_filter_is_named(client: TestClient, member: Member) -> None:
    sign_in(client, member)
    response = client.get(f"/pipeline?owner={HUGE}", headers=ENGLISH)
    assert response.status_code == 422
    assert "owner" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/opportunities/new?account_id=²",
        "/contacts/new?account_id=²",
        "/activities/new?account_id=¹²",
        "/accounts?deleted=²",
        "/accounts?saved=³",
        "/opportunities?account_id=²",
        "/settings/users?page=²",
    ],
)
def test_a_superscript_digit_in_the_address_is_not_a_number(client: TestClient, member: Member, path: str) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` fails: an address with one answered 500 (reviewer,
    twelfth session). Such a value is no id: the page shows, or refuses the filter, never errs."""
    sign_in(client, member)
    response = client.get(path, headers=ENGLISH)
    assert response.status_code < 500, (path, response.text[:300])
