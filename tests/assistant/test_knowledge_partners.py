"""Knowledge collections shared with partner organizations: a seller's knowledge manager shares one
collection with its dealer and another with its service provider; each partner's users read, search
and get talk tracks from the collection shared with them only — never the seller's private ones,
never the other partner's — sharing and unsharing are audited, and an unshare holds at once.
On PostgreSQL the same holds through the row-security wall (the partner's session)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from closeloop.assistant.feedback.models import SuggestionVerdict
from closeloop.assistant.knowledge import service
from closeloop.assistant.knowledge.models import (
    KnowledgeAccessRule,
    KnowledgeChunk,
    KnowledgeCollection,
    KnowledgeDocument,
)
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from closeloop.org.models import OrganizationKind
from closeloop.web import knowledge as knowledge_pages
from tests.factories import Tenant, make_tenant
from tests.samples import Api, assert_problem
from tests.web.test_settings_pages import browser, csrf_of

Body = dict[str, Any]

INSTALL = "# 安装规范\n\nCT-5000 安装前须确认机房承重不低于每平方米八百公斤，电源为三相三百八十伏。\n".encode()
FLOOR = "# 价格底线\n\nCT-5000 最低成交价为一百二十万元，低于此价须销售副总裁审批。\n".encode()
SERVICE = "# 上门服务\n\nCT-5000 保修期内上门服务的响应时间为四小时，备件四十八小时到场。\n".encode()
PRICE_QUESTION = "客户嫌 CT-5000 价格太高，最低成交价能给多少"


def _collection(db: Database, tenant: Tenant, name: str, filename: str, content: bytes) -> int:
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        collection_id = service.create_collection(session, admin, name=name).id
        document_id = service.add_document(session, admin, collection_id, filename=filename, content=content).id
    assert service.index_document(db, tenant.organization_id, document_id) == "ready"
    return collection_id


@pytest.fixture
def seller(db: Database, tenant: Tenant) -> dict[str, Any]:
    """The seller's three collections (dealer handbook, private price floor, service handbook) and
    its two partners, nothing shared yet."""
    dealer = make_tenant(db, "经销商甲", kind=OrganizationKind.DEALER, partner_of_id=tenant.organization_id)
    provider = make_tenant(db, "服务商乙", kind=OrganizationKind.SERVICE_PROVIDER, partner_of_id=tenant.organization_id)
    return {
        "dealer": dealer,
        "provider": provider,
        "install": _collection(db, tenant, "经销商手册", "安装规范.md", INSTALL),
        "floor": _collection(db, tenant, "价格底线", "价格底线.md", FLOOR),
        "service": _collection(db, tenant, "服务商手册", "上门服务.md", SERVICE),
    }


def _filenames(items: list[Body]) -> set[str]:
    return {item["document"]["filename"] for item in items}


def _cited(body: Body) -> set[str]:
    return {
        citation["filename"]
        for section in body["sections"]
        for statement in section["statements"]
        for citation in statement["citations"]
        if citation["type"] == "knowledge"
    }


def test_partners_read_search_and_get_answers_only_from_what_was_shared_with_them(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, seller: dict[str, Any]
) -> None:
    admin, vp = Api(client, tenant["admin"]), Api(client, tenant["sales_vp"])
    dealer, provider = Api(client, seller["dealer"]["partner_user"]), Api(client, seller["provider"]["partner_user"])
    dealer_id, provider_id = seller["dealer"].organization_id, seller["provider"].organization_id

    partners = admin.request("GET", "/knowledge/partners").json()["items"]
    assert {p["id"] for p in partners} == {dealer_id, provider_id}
    assert dealer.request("GET", "/knowledge/partners").status_code == 403
    # another organization's partner, or a seller, is not a partner of ours
    assert_problem(
        admin.request("PUT", f"/knowledge/collections/{seller['install']}/partners/{other_tenant.organization_id}"),
        422,
        field="organization_id",
    )
    # nothing shared yet: a partner sees no collection of the seller's
    assert dealer.request("GET", "/knowledge/collections").json()["items"] == []
    assert dealer.request("GET", f"/knowledge/collections/{seller['install']}").status_code == 404

    shared = admin.request("PUT", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}")
    assert shared.status_code == 200, shared.text
    assert shared.json()["partners"] == [{"id": dealer_id, "name": "经销商甲", "kind": "dealer"}]
    assert admin.request("PUT", f"/knowledge/collections/{seller['service']}/partners/{provider_id}").status_code == 200
    # a role change on the collection keeps its partner shares
    patched = admin.request("PATCH", f"/knowledge/collections/{seller['install']}", json={"access": []})
    assert [p["id"] for p in patched.json()["partners"]] == [dealer_id]

    listed = dealer.request("GET", "/knowledge/collections").json()["items"]
    assert [(c["id"], c["shared_with_you"]) for c in listed] == [(seller["install"], True)]
    assert "access" not in listed[0]
    assert "partners" not in listed[0]
    documents = dealer.request("GET", f"/knowledge/collections/{seller['install']}/documents").json()["items"]
    assert [d["filename"] for d in documents] == ["安装规范.md"]
    for private in (seller["floor"], seller["service"]):
        assert dealer.request("GET", f"/knowledge/collections/{private}").status_code == 404
        searched = dealer.request("POST", "/knowledge/search", json={"query": "CT-5000", "collection_ids": [private]})
        assert searched.status_code == 404
    # a partner reads; it does not manage what was shared with it
    assert dealer.request("PATCH", f"/knowledge/collections/{seller['install']}", json={"name": "x"}).status_code == 403
    assert (
        dealer.request("DELETE", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 403
    )

    # search: the dealer's hits come from the dealer handbook only, the provider's from its own
    for question in ("CT-5000 安装 承重", PRICE_QUESTION, "CT-5000 上门服务响应时间"):
        hits = dealer.request("POST", "/knowledge/search", json={"query": question, "k": 10}).json()["items"]
        assert _filenames(hits) <= {"安装规范.md"}, question
        hits = provider.request("POST", "/knowledge/search", json={"query": question, "k": 10}).json()["items"]
        assert _filenames(hits) <= {"上门服务.md"}, question
    best = dealer.request("POST", "/knowledge/search", json={"query": "CT-5000 安装 承重"}).json()["items"]
    assert best
    assert "八百公斤" in best[0]["text"]

    # answers: the price question's answer sits only in the private price floor — the VP (who reads it)
    # is answered from it, the dealer gets no citation from it
    asked = {"objection": PRICE_QUESTION, "k": 3}
    assert "价格底线.md" in _cited(vp.request("POST", "/assistant/talk-tracks", json=asked).json())
    answered = dealer.request("POST", "/assistant/talk-tracks", json=asked)
    assert answered.status_code == 200, answered.text
    assert _cited(answered.json()) <= {"安装规范.md"}
    assert "一百二十万" not in answered.text
    assert _cited(provider.request("POST", "/assistant/talk-tracks", json=asked).json()) <= {"上门服务.md"}

    # revoking holds at once: the next request of the dealer finds nothing
    revoked = admin.request("DELETE", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}")
    assert revoked.status_code == 204, revoked.text
    assert dealer.request("GET", "/knowledge/collections").json()["items"] == []
    assert dealer.request("GET", f"/knowledge/collections/{seller['install']}").status_code == 404
    assert dealer.request("POST", "/knowledge/search", json={"query": "CT-5000 安装 承重"}).json()["items"] == []
    assert _cited(dealer.request("POST", "/assistant/talk-tracks", json=asked).json()) == set()
    assert (
        admin.request("DELETE", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 404
    )
    # the provider's share is untouched
    assert [c["id"] for c in provider.request("GET", "/knowledge/collections").json()["items"]] == [seller["service"]]

    with db.reading(tenant["admin"].actor) as session:
        trail = session.execute(
            select(AuditEntry.action, AuditEntry.subject_id, AuditEntry.changes)
            .where(tenant_clause(tenant.organization_id, AuditEntry))
            .where(AuditEntry.action.in_(["knowledge_collection.shared", "knowledge_collection.unshared"]))
            .order_by(AuditEntry.seq)
        ).all()
    assert [(action, subject) for action, subject, _ in trail] == [
        ("knowledge_collection.shared", seller["install"]),
        ("knowledge_collection.shared", seller["service"]),
        ("knowledge_collection.unshared", seller["install"]),
    ]
    assert "经销商甲" in str(trail[0][2])
    assert str(dealer_id) in str(trail[2][2])


def test_the_collection_page_shares_and_unshares_and_the_partner_sees_only_the_shared_one(
    client: TestClient, db: Database, tenant: Tenant, seller: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge_pages, "enqueue_indexing", lambda org, doc: None)
    dealer_id = seller["dealer"].organization_id
    install = f"/knowledge/collections/{seller['install']}"

    admin = browser(client, db, tenant["admin"])
    page = admin.get(install)
    assert "共享给生态伙伴" in page.text
    assert "尚未共享给任何生态伙伴" in page.text
    assert f'<option value="{dealer_id}">经销商甲</option>' in page.text
    shared = admin.post(
        f"{install}/partners",
        data={"csrf": csrf_of(page.text), "organization_id": str(dealer_id)},
        follow_redirects=False,
    )
    assert shared.status_code == 303, shared.text
    page = admin.get(install)
    assert f'action="{install}/partners/{dealer_id}/delete"' in page.text
    assert f'<option value="{dealer_id}">' not in page.text  # offered only while not shared

    partner = browser(client, db, seller["dealer"]["partner_user"])
    index = partner.get("/knowledge", params={"q": "CT-5000 安装 承重"})
    assert index.status_code == 200
    assert "经销商手册" in index.text
    assert "八百公斤" in index.text
    assert "价格底线" not in index.text
    assert "服务商手册" not in index.text
    shown = partner.get(install)
    assert shown.status_code == 200
    assert "由合作的厂商共享给贵方组织" in shown.text
    assert "安装规范.md" in shown.text
    assert "共享给生态伙伴" not in shown.text
    assert 'type="file"' not in shown.text
    assert partner.get(f"/knowledge/collections/{seller['floor']}").status_code == 404

    admin = browser(client, db, tenant["admin"])
    page = admin.get(install)
    stopped = admin.post(
        f"{install}/partners/{dealer_id}/delete", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert stopped.status_code == 303, stopped.text

    partner = browser(client, db, seller["dealer"]["partner_user"])
    assert partner.get(install).status_code == 404
    assert "经销商手册" not in partner.get("/knowledge").text


def test_on_postgresql_the_wall_opens_to_a_partner_exactly_the_shared_rows(
    db: Database, tenant: Tenant, seller: dict[str, Any]
) -> None:
    """Without the application's filters, a partner's session reads the rows of what was shared with
    it and nothing else of the seller's (row-level security; SQLite has no such wall)."""
    if db.dialect != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    admin = tenant["admin"].actor
    with db.unit_of_work(admin) as session:
        service.share(session, admin, seller["install"], seller["dealer"].organization_id)
    dealer = seller["dealer"]["partner_user"].actor
    with db.reading(dealer) as session:
        seen = {
            model.__tablename__: set(session.scalars(select(model.collection_id)))
            for model in (KnowledgeChunk, KnowledgeDocument, KnowledgeAccessRule)
        }
        collections = set(session.scalars(select(KnowledgeCollection.id)))
        rules = session.execute(select(KnowledgeAccessRule.kind, KnowledgeAccessRule.value)).all()
    assert seen == {
        "knowledge_chunks": {seller["install"]},
        "knowledge_documents": {seller["install"]},
        "knowledge_access_rules": {seller["install"]},
    }
    assert collections == {seller["install"]}
    assert rules == [("partner", str(seller["dealer"].organization_id))]


def _verdict(api: Api, chunk_id: int, verdict: str, query: str = "CT-5000 安装 承重") -> Any:
    return api.request(
        "POST",
        "/assistant/verdicts",
        json={
            "source": "passage",
            "key": f"knowledge:{chunk_id}",
            "query": query,
            "verdict": verdict,
            "reason": "" if verdict == "adopted" else "与我们的机型不符",
        },
    )


def _score(api: Api, query: str, chunk_id: int) -> float:
    items = api.request("POST", "/knowledge/search", json={"query": query, "k": 10}).json()["items"]
    return float(next(item["score"] for item in items if item["chunk_id"] == chunk_id))


def test_a_partner_judges_the_passages_shared_with_it_and_only_those(
    client: TestClient, db: Database, tenant: Tenant, seller: dict[str, Any]
) -> None:
    """Adopt / reject works on a passage shared with the partner (stored under the partner's
    organization, moving only the partner's rankings) and is "not found" on any passage it may not
    read; the seller's verdicts never show through the partner's rankings, nor the partner's in the
    seller's rankings or weekly report."""
    admin, rep = Api(client, tenant["admin"]), Api(client, tenant["rep"])
    dealer, provider = Api(client, seller["dealer"]["partner_user"]), Api(client, seller["provider"]["partner_user"])
    dealer_id = seller["dealer"].organization_id
    query = "CT-5000 安装 承重"

    def chunk_of(collection_id: int) -> int:
        found = admin.request(
            "POST", "/knowledge/search", json={"query": "CT-5000", "k": 1, "collection_ids": [collection_id]}
        )
        return int(found.json()["items"][0]["chunk_id"])

    install, floor, serviced = chunk_of(seller["install"]), chunk_of(seller["floor"]), chunk_of(seller["service"])
    # nothing shared yet: the dealer may not judge the seller's passage
    assert_problem(_verdict(dealer, install, "adopted"), 404)
    assert admin.request("PUT", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 200
    assert (
        admin.request(
            "PUT", f"/knowledge/collections/{seller['service']}/partners/{seller['provider'].organization_id}"
        ).status_code
        == 200
    )

    plain, seller_plain = _score(dealer, query, install), _score(admin, query, install)
    # the seller's own verdicts move the seller's ranking, not the partner's
    assert _verdict(admin, install, "rejected").status_code == 201
    assert _score(admin, query, install) < seller_plain
    assert _score(dealer, query, install) == plain

    judged = _verdict(dealer, install, "rejected")
    assert judged.status_code == 201, judged.text
    assert judged.json()["key"] == f"knowledge:{install}"
    assert judged.json()["user_id"] == seller["dealer"]["partner_user"].user_id
    assert _score(dealer, query, install) < plain
    seller_score = _score(admin, query, install)
    assert _verdict(dealer, install, "rejected").status_code == 201
    assert _score(admin, query, install) == seller_score
    assert _verdict(dealer, install, "adopted", "安装 承重要求").status_code == 201

    # what the dealer may not read stays "not found": the seller's private passage, the passage
    # shared with the other partner, one that does not exist
    for hidden in (floor, serviced, 10**9):
        assert_problem(_verdict(dealer, hidden, "adopted"), 404)
    assert_problem(_verdict(provider, install, "adopted"), 404)
    assert _verdict(provider, serviced, "adopted").status_code == 201
    # a seller's rep who may not read the dealer handbook collection (no rule names reps) cannot judge it either
    assert_problem(_verdict(rep, install, "adopted"), 404)

    with db.reading(None, system=True) as session:
        rows = session.execute(
            select(SuggestionVerdict.organization_id, SuggestionVerdict.chunk_id, SuggestionVerdict.verdict).order_by(
                SuggestionVerdict.id
            )
        ).all()
    assert [tuple(row) for row in rows] == [
        (tenant.organization_id, install, "rejected"),
        (dealer_id, install, "rejected"),
        (dealer_id, install, "rejected"),
        (dealer_id, install, "adopted"),
        (seller["provider"].organization_id, serviced, "adopted"),
    ]
    # the seller's weekly report counts the seller's verdicts only
    report = admin.request("GET", "/assistant/adoption-report").json()
    assert report["overall"] == {"adopted": 0, "rejected": 1, "rate": 0.0}
    assert dealer.request("GET", "/assistant/adoption-report").status_code == 403

    # an unshare holds at once for verdicts too; the seller may still delete the document the
    # partner judged (the partner's verdicts lose their passage, not their count)
    assert (
        admin.request("DELETE", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 204
    )
    assert_problem(_verdict(dealer, install, "adopted"), 404)
    documents = admin.request("GET", f"/knowledge/collections/{seller['install']}/documents").json()["items"]
    deleted = admin.request("DELETE", f"/knowledge/collections/{seller['install']}/documents/{documents[0]['id']}")
    assert deleted.status_code == 204, deleted.text
    with db.reading(None, system=True) as session:
        kept = session.execute(
            select(SuggestionVerdict.chunk_id).where(SuggestionVerdict.organization_id == dealer_id)
        ).all()
    assert [tuple(row) for row in kept] == [(None,), (None,), (None,)]


def test_full_text_over_a_partner_scope_counts_and_finds_only_the_shared_collection(
    client: TestClient, tenant: Tenant, seller: dict[str, Any]
) -> None:
    """The seller's searches fill the per-process corpus statistics of all its collections first;
    the dealer's full-text search still scores and returns passages of the shared collection only."""
    admin = Api(client, tenant["admin"])
    dealer = Api(client, seller["dealer"]["partner_user"])
    dealer_id = seller["dealer"].organization_id
    for question in ("CT-5000 安装 承重", PRICE_QUESTION, "CT-5000 上门服务响应时间"):
        hits = admin.request("POST", "/knowledge/search", json={"query": question, "k": 10, "mode": "fulltext"})
        assert _filenames(hits.json()["items"]) <= {"安装规范.md", "价格底线.md", "上门服务.md"}
    assert admin.request("PUT", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 200

    def dealer_search(question: str) -> set[str]:
        response = dealer.request("POST", "/knowledge/search", json={"query": question, "k": 10, "mode": "fulltext"})
        assert response.status_code == 200, response.text
        return _filenames(response.json()["items"])

    assert dealer_search("CT-5000 安装 承重") == {"安装规范.md"}
    assert dealer_search("最低成交价 一百二十万元 销售副总裁审批") == set()
    assert dealer_search("上门服务 响应时间 备件") == set()
    assert (
        admin.request("DELETE", f"/knowledge/collections/{seller['install']}/partners/{dealer_id}").status_code == 204
    )
    assert dealer_search("CT-5000 安装 承重") == set()
