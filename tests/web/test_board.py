"""The pipeline board over HTTP: columns with counts and sums, moves through the API's stage
service (history and audit written, lost needs a reason, stale cards and missing CSRF refused,
other people's deals not found), filters, "show more", and masked fields nowhere in the HTML."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from closeloop.crm.opportunities import board as board_service
from closeloop.db.session import Database
from closeloop.org.models import User
from closeloop.org.passwords import hash_password
from tests.factories import Member, Tenant
from tests.samples import Api, new_account, new_product_line, tag
from tests.web.test_sign_in import ENGLISH, PASSWORD, csrf_of, member

__all__ = ["member"]

Body = dict[str, Any]


def with_password(db: Database, someone: Member) -> Member:
    with db.unit_of_work(None, system=True) as session:
        user = session.get(User, someone.user_id)
        assert user is not None
        user.password_hash = hash_password(PASSWORD)
    return someone


def signed_in(client: TestClient, someone: Member) -> tuple[TestClient, str]:
    """A browser of its own for ``someone`` (the app is shared); its CSRF token."""
    browser = TestClient(client.app, raise_server_exceptions=False)
    token = csrf_of(browser.get("/login", headers=ENGLISH).text)
    answer = browser.post(
        "/login", data={"username": someone.username, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return browser, csrf_of(browser.get("/pipeline", headers=ENGLISH).text)


def counts(html: str) -> dict[str, int]:
    """Each column's count, as the board shows it."""
    found = re.findall(r'id="column-(\w+)">[^<]*</h2>\s*<span class="column-count" data-count="(\d+)"', html)
    return {stage: int(count) for stage, count in found}


def cards_in(html: str, stage: str) -> list[str]:
    """The names on one column's cards."""
    column = re.search(rf'<ol class="cards" data-stage="{stage}".*?</ol>', html, re.S)
    assert column is not None, stage
    return re.findall(r'class="deal-name" href="/opportunities/\d+">([^<]+)</a>', column.group(0))


def deal(api: Api, name: str, *, amount: str = "1000.00", **fields: Any) -> Body:
    account = new_account(api)
    return api.create("opportunities", {"name": name, "account_id": account["id"], "amount": amount, **fields})


def move(
    browser: TestClient, token: str | None, opportunity: Body, stage: str, *, version: int | None = None, **form: str
) -> Any:
    headers = {**ENGLISH, "HX-Request": "true", **({"X-CSRF-Token": token} if token else {})}
    data = {
        "opportunity_id": str(opportunity["id"]),
        "stage": stage,
        "version": str(opportunity["version"] if version is None else version),
        **form,
    }
    return browser.post("/pipeline/move", data=data, headers=headers)


@pytest.fixture
def rep(client: TestClient, member: Member) -> tuple[TestClient, str]:
    return signed_in(client, member)


def test_the_board_shows_each_stage_with_its_count_and_sum(
    client: TestClient, member: Member, rep: tuple[TestClient, str]
) -> None:
    api = Api(client, member)
    deal(api, f"CT {tag()}", amount="1000.00")
    deal(api, f"MRI {tag()}", amount="2500.50")
    proposal = deal(api, f"PET {tag()}", amount="700.00")
    assert api.request("POST", f"/opportunities/{proposal['id']}/stage", json={"stage": "proposal"}).status_code == 200
    browser, _ = rep

    page = browser.get("/pipeline", headers=ENGLISH)

    assert page.status_code == 200
    assert counts(page.text) == {
        "prospecting": 2,
        "qualification": 0,
        "proposal": 1,
        "negotiation": 0,
        "won": 0,
        "lost": 0,
    }
    assert 'title="¥3,500.50"' in page.text  # the prospecting column's sum, in full
    assert 'title="¥700.00"' in page.text
    assert cards_in(page.text, "proposal") == [proposal["name"]]
    assert '<a href="/pipeline" aria-current="page">Pipeline</a>' in page.text


def test_a_drag_or_keyboard_move_writes_the_stage_history_and_the_audit_entry(
    client: TestClient, member: Member, rep: tuple[TestClient, str]
) -> None:
    api = Api(client, member)
    opportunity = deal(api, f"DSA {tag()}")
    browser, token = rep

    answer = move(browser, token, opportunity, "qualification")

    assert answer.status_code == 200, answer.text
    assert counts(answer.text)["qualification"] == 1
    assert counts(answer.text)["prospecting"] == 0
    assert 'role="alert"' not in answer.text
    history = api.request("GET", f"/opportunities/{opportunity['id']}/stage-history").json()["items"]
    assert [(item["from_stage"], item["to_stage"], item["changed_by_id"]) for item in history] == [
        (None, "prospecting", member.user_id),
        ("prospecting", "qualification", member.user_id),
    ]
    audit = api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"]
    assert audit[0]["action"] == "opportunity.stage_changed"
    assert audit[0]["changes"]["stage"] == ["prospecting", "qualification"]
    assert api.read("opportunities", opportunity["id"])["version"] == opportunity["version"] + 1


def test_a_lost_move_needs_its_reason(client: TestClient, member: Member, rep: tuple[TestClient, str]) -> None:
    api = Api(client, member)
    opportunity = deal(api, f"超声 {tag()}")
    browser, token = rep

    refused = move(browser, token, opportunity, "lost", lost_reason="   ")
    unchanged = api.read("opportunities", opportunity["id"])
    lost = move(browser, token, opportunity, "lost", lost_reason="价格不敌竞争对手")

    assert refused.status_code == 422
    assert "Say why the deal was lost" in refused.text
    assert (unchanged["stage"], unchanged["version"]) == ("prospecting", opportunity["version"])
    assert lost.status_code == 200, lost.text
    assert counts(lost.text)["lost"] == 1
    after = api.read("opportunities", opportunity["id"])
    assert (after["stage"], after["lost_reason"]) == ("lost", "价格不敌竞争对手")


def test_a_stale_card_is_refused_with_a_reload_message(
    client: TestClient, member: Member, rep: tuple[TestClient, str]
) -> None:
    api = Api(client, member)
    opportunity = deal(api, f"内镜 {tag()}")
    changed = api.request("PATCH", f"/opportunities/{opportunity['id']}", json={"amount": "9999.00"})
    assert changed.status_code == 200
    browser, token = rep

    answer = move(browser, token, opportunity, "proposal", version=opportunity["version"])

    assert answer.status_code == 412
    assert "changed by someone else — reload the board" in answer.text
    assert api.read("opportunities", opportunity["id"])["stage"] == "prospecting"
    assert counts(answer.text)["proposal"] == 0  # the board comes back as the database has it


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_a_move_without_the_sessions_csrf_token_is_refused(
    client: TestClient, member: Member, rep: tuple[TestClient, str], token: str | None
) -> None:
    api = Api(client, member)
    opportunity = deal(api, f"CT {tag()}")
    browser, _ = rep
    audit_before = api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"]

    answer = move(browser, token, opportunity, "negotiation")

    assert answer.status_code == 400
    assert "Your session expired" in answer.text
    assert api.read("opportunities", opportunity["id"])["stage"] == "prospecting"
    assert api.request("GET", f"/opportunities/{opportunity['id']}/history").json()["items"] == audit_before


def test_someone_elses_deal_is_not_found(
    client: TestClient, db: Database, tenant: Tenant, other_tenant: Tenant, member: Member, rep: tuple[TestClient, str]
) -> None:
    colleague = deal(Api(client, tenant["rep2"]), f"同事商机 {tag()}")
    foreign = deal(Api(client, other_tenant["rep"]), f"外部商机 {tag()}")
    browser, token = rep

    for opportunity in (colleague, foreign):
        answer = move(browser, token, opportunity, "won")
        assert answer.status_code == 404
        assert "not yours to move" in answer.text
        assert opportunity["name"] not in answer.text
    assert Api(client, tenant["rep2"]).read("opportunities", colleague["id"])["stage"] == "prospecting"
    assert Api(client, other_tenant["rep"]).read("opportunities", foreign["id"])["stage"] == "prospecting"


def test_a_read_only_role_sees_the_board_but_may_not_move(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    opportunity = deal(Api(client, member), f"CT {tag()}")
    browser, token = signed_in(client, with_password(db, tenant["cfo"]))

    page = browser.get("/pipeline", headers=ENGLISH)
    answer = move(browser, token, opportunity, "won")

    assert page.status_code == 200
    assert opportunity["name"] in page.text
    assert "Read only" in page.text
    assert "move-dialog" not in page.text
    assert "Sortable.min.js" not in page.text
    assert answer.status_code == 403
    assert Api(client, member).read("opportunities", opportunity["id"])["stage"] == "prospecting"


def test_masked_margin_never_reaches_the_reps_board(
    client: TestClient, db: Database, tenant: Tenant, member: Member, rep: tuple[TestClient, str]
) -> None:
    vp = Api(client, tenant["sales_vp"])
    account = new_account(Api(client, member))
    opportunity = vp.create(
        "opportunities",
        {
            "name": f"高毛利 {tag()}",
            "account_id": account["id"],
            "amount": "1000.00",
            "margin": "37.25",
            "owner_id": member.user_id,
        },
    )
    browser, token = rep

    answers = [
        browser.get("/pipeline", headers=ENGLISH),
        browser.get("/pipeline", headers={**ENGLISH, "HX-Request": "true"}),
        browser.get("/pipeline/columns/prospecting?offset=0", headers={**ENGLISH, "HX-Request": "true"}),
        move(browser, token, opportunity, "qualification"),
        browser.get("/", headers=ENGLISH),
    ]

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "37.25" not in answer.text
        assert "margin" not in answer.text.lower()
    assert opportunity["name"] in answers[0].text


def test_filters_narrow_the_board_by_owner_region_and_product_line(
    client: TestClient, db: Database, tenant: Tenant, member: Member
) -> None:
    rep_api, colleague_api = Api(client, member), Api(client, tenant["rep2"])
    line = new_product_line(Api(client, tenant["sales_vp"]))
    in_region = new_account(rep_api, region_id=tenant.region_id)
    mine = rep_api.create(
        "opportunities",
        {"name": f"本区域 {tag()}", "account_id": in_region["id"], "amount": "10.00", "product_line_ids": [line["id"]]},
    )
    elsewhere = deal(rep_api, f"无区域 {tag()}")
    theirs = deal(colleague_api, f"同事 {tag()}")
    browser, _ = signed_in(client, with_password(db, tenant["manager"]))
    fragment = {**ENGLISH, "HX-Request": "true"}

    everyone = browser.get("/pipeline", headers=ENGLISH)
    by_owner = browser.get(f"/pipeline?owner={member.user_id}", headers=fragment)
    by_region = browser.get(f"/pipeline?region={tenant.region_id}", headers=fragment)
    by_line = browser.get(f"/pipeline?product_line={line['id']}", headers=fragment)
    bad = browser.get("/pipeline?owner=someone", headers=ENGLISH)

    assert sorted(cards_in(everyone.text, "prospecting")) == sorted([mine["name"], elsewhere["name"], theirs["name"]])
    assert f'<option value="{member.user_id}"' in everyone.text  # the manager may pick a rep
    assert sorted(cards_in(by_owner.text, "prospecting")) == sorted([mine["name"], elsewhere["name"]])
    assert "<html" not in by_owner.text  # a filter change reloads the board alone
    assert cards_in(by_region.text, "prospecting") == [mine["name"]]
    assert cards_in(by_line.text, "prospecting") == [mine["name"]]
    assert bad.status_code == 422


def test_a_long_column_shows_its_first_cards_and_the_rest_on_demand(
    client: TestClient, member: Member, rep: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_service, "CARDS_PER_COLUMN", 2)
    api = Api(client, member, reuse=True)
    made = [deal(api, f"批量 {index} {tag()}", expected_close_date=f"2027-01-{index + 10:02d}") for index in range(5)]
    browser, _ = rep
    fragment = {**ENGLISH, "HX-Request": "true"}

    page = browser.get("/pipeline", headers=ENGLISH)
    second = browser.get("/pipeline/columns/prospecting?offset=2", headers=fragment)
    last = browser.get("/pipeline/columns/prospecting?offset=4", headers=fragment)

    assert counts(page.text)["prospecting"] == 5
    assert cards_in(page.text, "prospecting") == [made[0]["name"], made[1]["name"]]
    assert "Show 3 more" in page.text
    assert re.findall(r'class="deal-name" href="/opportunities/\d+">([^<]+)</a>', second.text) == [
        made[2]["name"],
        made[3]["name"],
    ]
    assert "Show 1 more" in second.text
    assert "/pipeline/columns/prospecting?offset=4" in second.text
    assert "Show" not in last.text


def test_a_stored_script_in_a_deal_name_renders_as_text(
    client: TestClient, member: Member, rep: tuple[TestClient, str]
) -> None:
    deal(Api(client, member), "<script>alert('board')</script>")
    browser, _ = rep

    page = browser.get("/pipeline", headers=ENGLISH)

    assert "<script>alert('board')</script>" not in page.text
    assert "&lt;script&gt;alert(&#39;board&#39;)&lt;/script&gt;" in page.text
