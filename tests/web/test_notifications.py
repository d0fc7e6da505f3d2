"""In-app notifications: the bell, the page and the API show each person only their own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from closeloop.db.session import Database
from closeloop.org import notifications
from closeloop.org.notifications import Message
from tests.factories import Member, Tenant
from tests.samples import Api
from tests.web.test_sign_in import ENGLISH, csrf_of, member, sign_in

__all__ = ["member"]


def tell(db: Database, to: Member, text: str, *, source_key: str | None = None, link: str | None = None) -> int | None:
    with db.unit_of_work(None, system=True) as session:
        notice = notifications.notify(
            session,
            organization_id=to.actor.organization_id,
            user_id=to.user_id,
            message=Message("test", f"{text}（中文）", text, body_en="Details", link=link),
            source_key=source_key,
        )
        return notice.id if notice else None


def test_the_bell_counts_unread_and_the_page_lists_them(client: TestClient, db: Database, member: Member) -> None:
    tell(db, member, "Win rate fell below 25 %", link="/notifications")
    tell(db, member, "Second <script>alert(1)</script>")
    sign_in(client, member)

    page = client.get("/notifications", headers=ENGLISH)

    assert page.status_code == 200
    assert 'data-unread="2"' in page.text
    assert "Win rate fell below 25 %" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_opening_a_notice_marks_it_read_and_follows_its_link(client: TestClient, db: Database, member: Member) -> None:
    notice_id = tell(db, member, "Look here", link="/settings/fields")
    sign_in(client, member)
    token = csrf_of(client.get("/notifications", headers=ENGLISH).text)

    refused = client.post(f"/notifications/{notice_id}/read", data={"csrf": "forged"}, follow_redirects=False)
    opened = client.post(f"/notifications/{notice_id}/read", data={"csrf": token}, follow_redirects=False)

    assert refused.status_code == 400
    assert opened.status_code == 303
    assert opened.headers["location"] == "/settings/fields"
    assert 'data-unread="' not in client.get("/notifications", headers=ENGLISH).text


def test_an_unread_notice_from_the_same_source_is_not_repeated(db: Database, member: Member) -> None:
    first = tell(db, member, "Stale feed", source_key="freshness:account.intent")
    again = tell(db, member, "Stale feed", source_key="freshness:account.intent")

    assert first is not None
    assert again is None


def test_nobody_reads_or_marks_another_persons_notices(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    notice_id = tell(db, member, "For the rep only")
    manager = Api(client, tenant["manager"])

    listed = manager.request("GET", "/notifications")
    marked = manager.request("POST", f"/notifications/{notice_id}/read")
    own = Api(client, member).request("GET", "/notifications", params={"unread": "true"})

    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert marked.status_code == 404
    assert own.json()["unread"] == 1
    assert [item["title"]["en"] for item in own.json()["items"]] == ["For the rep only"]


def test_a_missing_notice_is_a_page_that_says_so(client: TestClient, member: Member) -> None:
    sign_in(client, member)
    token = csrf_of(client.get("/notifications", headers=ENGLISH).text)

    response = client.post("/notifications/999999/read", data={"csrf": token}, headers=ENGLISH)

    assert response.status_code == 404
    assert "notification 999999 not found" in response.text
