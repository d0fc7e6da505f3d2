"""Duplicate check and collision protection (CN-2): names in Chinese and English (traditional and
simplified, full-width, legal suffixes, pinyin), mobile numbers, the near-misses that must not
match, and what blocking and warning do to account creation and lead conversion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from closeloop.crm.accounts.models import Account
from closeloop.crm.searchkey import search_key
from closeloop.pools.duplicates import mask_person
from closeloop.quality.names import mobile_key, name_key, sound_key
from tests.factories import Tenant
from tests.pools.conftest import World
from tests.samples import Api, assert_problem


def same(first: str, second: str) -> bool:
    a, b = name_key(first), name_key(second)
    return a == b or sound_key(a) == sound_key(b)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("華為技術有限公司", "华为技术", True),  # traditional vs simplified, suffix
        ("北京協和醫院", "北京协和医院有限公司", True),
        ("ＡＢＣ医疗器械（上海）有限公司", "ABC医疗器械(上海)", True),  # full-width letters and brackets
        ("上海联影医疗科技股份有限公司", "上海联影医疗科技有限公司", True),
        ("Acme Medical Co., Ltd.", "ACME MEDICAL INC.", True),
        ("Acme Co有限公司", "Acme", True),
        ("华为", "Huawei", True),  # pinyin
        ("北京协和医院", "北京协合医院", True),  # a homophone typo
        # near-misses that are different organizations
        ("北京大学", "北京大学第一医院", False),
        ("华为技术", "华为终端", False),  # two companies of one group: two accounts
        ("华为技术有限公司", "Huawei Technologies Co., Ltd.", False),  # a translation is not a spelling
        ("Costco", "Cost", False),
        ("协和医院", "瑞金医院", False),
    ],
)
def test_company_names(first: str, second: str, expected: bool) -> None:
    assert same(first, second) is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("138 0013 8000", "+86-138-0013-8000", True),
        ("(0086) 13800138000", "13800138000", True),
        ("１３８００１３８０００", "13800138000", True),  # full-width digits
        ("13800138000", "13800138001", False),
        ("+1 415 555 0100", "4155550100", False),  # a US number is not a Chinese one without its code
    ],
)
def test_mobile_numbers(first: str, second: str, expected: bool) -> None:
    assert (mobile_key(first) == mobile_key(second) != "") is expected


def test_masks() -> None:
    assert mask_person("张三") == "张**"
    assert mask_person("欧阳修远") == "欧**"
    assert mask_person(None) == "—"


NAMES = st.text(alphabet="华为技术北京大学医院上海联影科技中信華為醫院ａｂcxyz0 ", min_size=1, max_size=20)
SUFFIXES = st.sampled_from(["有限公司", "股份有限公司", " Co., Ltd.", " Inc.", " 有限公司", "集团有限公司"])


@given(st.text(max_size=40))
def test_the_name_key_is_idempotent(name: str) -> None:
    assert name_key(name_key(name)) == name_key(name)


@given(NAMES, SUFFIXES)
def test_the_name_key_ignores_legal_suffixes(name: str, suffix: str) -> None:
    if name_key(name):
        assert name_key(name + suffix) == name_key(name)


def _vp(client: TestClient, tenant: Tenant) -> Api:
    return Api(client, tenant["sales_vp"])


def _mode(client: TestClient, tenant: Tenant, mode: str) -> None:
    response = _vp(client, tenant).request("PUT", "/pools/settings", json={"duplicate_mode": mode})
    assert response.status_code == 200, response.text


def test_check_across_accounts_pools_and_leads_with_masked_owners(
    client: TestClient, tenant: Tenant, world: World
) -> None:
    world.pool()
    owned = world.account("華為技術有限公司", phone="021-5555 0100")
    pooled = world.account("上海联影医疗科技股份有限公司", owner=None)
    _vp(client, tenant).create("leads", {"name": "王芳", "company": "仁济医院", "mobile": "138 0013 8000"})
    rep2 = Api(client, tenant["rep2"])

    def check(**body: Any) -> list[dict[str, Any]]:
        response = rep2.request("POST", "/duplicates/check", json=body)
        assert response.status_code == 200, response.text
        matches: list[dict[str, Any]] = response.json()["matches"]
        return matches

    [match] = check(name="华为技术")
    assert match["kind"] == "account"
    assert match["id"] is None  # rep2 cannot see rep's account: masked, no id
    assert match["owner"].startswith("R** · 华东 ")  # "Rep …" of region "华东 …", masked
    assert check(name="Hua Wei Ji Shu")[0]["name"] == "華為技術有限公司"  # typed in pinyin
    [pool_match] = check(name="上海聯影醫療科技")
    assert pool_match["in_public_pool"] is True
    assert pool_match["owner"] == "公海 · 华东公海"
    [lead_match] = check(mobile="+86 13800138000")
    assert (lead_match["kind"], lead_match["matched_on"], lead_match["name"]) == ("lead", "mobile", "仁济医院")
    assert check(name="华为终端") == []
    assert check(name="北京大学第一医院") == []
    vp_view = _vp(client, tenant).request("POST", "/duplicates/check", json={"name": "华为技术"}).json()
    assert vp_view["matches"][0]["id"] == owned
    assert pooled


@pytest.mark.parametrize("body", [{}, {"name": "  ", "mobile": ""}, {"name": None, "mobile": None}])
def test_a_check_with_nothing_to_compare_is_refused_naming_both_fields(
    client: TestClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    rep = Api(client, tenant["rep"])

    problem = assert_problem(rep.request("POST", "/duplicates/check", json=body), 422, field="name", code="required")

    assert {error["field"] for error in problem["errors"]} == {"name", "mobile"}
    assert "company name or a mobile number" in problem["detail"]
    chinese = rep.request("POST", "/duplicates/check", json=body, headers={"Accept-Language": "zh-CN"}).json()
    assert "公司名称或手机号" in chinese["detail"]


def test_blocking_and_warning_on_account_creation(client: TestClient, tenant: Tenant, world: World) -> None:
    world.account("北京协和医院有限公司")
    rep2 = Api(client, tenant["rep2"])
    warned = rep2.request("POST", "/accounts", json={"name": "北京協和醫院"})
    assert warned.status_code == 201, warned.text  # warn (the default) lets it through, and says so
    assert warned.json()["duplicate_warnings"][0]["name"] == "北京协和医院有限公司"
    _mode(client, tenant, "block")
    blocked = assert_problem(rep2.request("POST", "/accounts", json={"name": "北京协和医院"}), 409)
    assert blocked["code"] == "duplicate_account"
    assert "北京協和醫院" in blocked["detail"]  # the newest match named first
    assert " · 华东 " in blocked["detail"]
    assert {m["name"] for m in blocked["matches"]} == {"北京协和医院有限公司", "北京協和醫院"}
    assert "重复" in blocked["message_zh"]
    assert rep2.request("POST", "/accounts", json={"name": "北京大学第一医院"}).status_code == 201
    _mode(client, tenant, "off")
    assert "duplicate_warnings" not in rep2.create("accounts", {"name": "北京协和医院"})


def test_a_converting_lead_merges_into_the_existing_account(client: TestClient, tenant: Tenant, world: World) -> None:
    existing = world.account("瑞金医院有限公司")
    rep = Api(client, tenant["rep"])
    lead = rep.create("leads", {"name": "李雷", "company": "瑞金醫院", "owner_id": tenant["rep"].user_id})
    converted = rep.request("POST", f"/leads/{lead['id']}/convert", json={})
    assert converted.status_code == 201, converted.text
    body = converted.json()
    assert body["account"]["id"] == existing
    assert body["contact"]["account_id"] == existing
    assert body["duplicate_warnings"][0]["merged"] is True
    # a lead matching a colleague's account it cannot see: blocked when the organization blocks
    other = Api(client, tenant["rep2"])
    lead = other.create("leads", {"name": "韩梅梅", "company": "瑞金医院", "owner_id": tenant["rep2"].user_id})
    _mode(client, tenant, "block")
    refused = assert_problem(other.request("POST", f"/leads/{lead['id']}/convert", json={}), 409)
    assert refused["code"] == "duplicate_account"
    assert refused["matches"][0]["id"] is None


@pytest.fixture(params=["record by record", "set-based"])
def check_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """An import's duplicate check both ways: short files record by record, long ones set-based."""
    from closeloop.pools import duplicates

    monkeypatch.setattr(duplicates, "SET_BASED_FROM", 1 if request.param == "set-based" else 10**6)
    return str(request.param)


def test_an_import_refuses_duplicate_accounts_row_by_row_when_blocking(
    client: TestClient, tenant: Tenant, world: World, check_path: str
) -> None:
    from closeloop.integrations.importing.engine import run_import
    from closeloop.integrations.importing.readers import read_table

    world.account("北京协和医院有限公司")
    rows = "客户名称,电话\n北京協和醫院,\n上海联影医疗科技股份有限公司,\n上海聯影醫療科技,\n瑞金医院,\n".encode()
    admin = tenant["admin"].actor

    def run(dry_run: bool) -> Any:
        with world.db.unit_of_work(admin) as session:
            return run_import(
                session, admin, entity="accounts", table=read_table(rows, name="客户.csv"), dry_run=dry_run
            )

    warned = run(dry_run=True)  # warn (the default): an import is not held up, the rows are flagged
    assert (warned.created, warned.invalid) == (4, 0)
    assert [(w.row, w.code) for w in warned.warnings] == [(2, "duplicate_account"), (4, "duplicate_in_file")]
    _mode(client, tenant, "block")
    report = run(dry_run=True)
    assert (report.created, report.invalid) == (2, 2)
    assert [(p.row, p.code) for p in report.problems] == [(2, "duplicate_account"), (4, "duplicate_in_file")]
    assert "北京协和医院有限公司" in report.problems[0].reason


def test_a_new_lead_is_checked_against_accounts_and_leads(client: TestClient, tenant: Tenant, world: World) -> None:
    world.account("上海联影医疗科技股份有限公司")
    rep2 = Api(client, tenant["rep2"])
    # warn (the default): created, and the caller is told who has the company already (masked)
    response = rep2.request("POST", "/leads", json={"name": "王芳", "company": "上海聯影醫療科技"})
    assert response.status_code == 201, response.text
    warning = response.json()["duplicate_warnings"][0]
    assert (warning["kind"], warning["matched_on"], warning["id"]) == ("account", "name", None)
    assert "*" in warning["owner"]
    # a near miss is not a duplicate
    clean = rep2.request("POST", "/leads", json={"name": "赵强", "company": "上海联合医疗器械"})
    assert clean.status_code == 201
    assert "duplicate_warnings" not in clean.json()
    # block: the lead is refused, naming the masked owner; nothing is stored
    _mode(client, tenant, "block")
    before = len(rep2.list_ids("leads"))
    refused = assert_problem(rep2.request("POST", "/leads", json={"name": "钱多", "company": "上海联影医疗科技"}), 409)
    assert refused["code"] == "duplicate_account"
    by_mobile = rep2.request("POST", "/leads", json={"name": "孙丽", "mobile": "13800138000"})
    assert by_mobile.status_code == 201
    again = assert_problem(rep2.request("POST", "/leads", json={"name": "周杰", "mobile": "+86 138-0013-8000"}), 409)
    assert again["matches"][0]["kind"] == "lead"
    assert len(rep2.list_ids("leads")) == before + 1


# --- the set-based check of imports ----------------------------------------------------------------


def _import(world: World, tenant: Tenant, entity: str, text: str, *, dry_run: bool = True) -> Any:
    from closeloop.integrations.importing.engine import run_import
    from closeloop.integrations.importing.readers import read_table

    admin = tenant["admin"].actor
    with world.db.unit_of_work(admin) as session:
        return run_import(session, admin, entity=entity, table=read_table(text.encode(), name="x.csv"), dry_run=dry_run)


def test_the_set_based_check_finds_what_the_per_record_check_finds(
    client: TestClient, tenant: Tenant, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from closeloop.config import settings
    from closeloop.pools.duplicates import find_matches, find_matches_many, keys_of
    from closeloop.quality.service import run_scan

    monkeypatch.setattr(settings, "quality_overlap_seconds", 0)
    world.pool()
    huawei = world.account("華為技術有限公司", phone="021-5555 0100")
    world.account("上海联影医疗科技股份有限公司", owner=None)
    renamed = world.account("杭州华东医药有限公司")
    run_scan(world.db, tenant.organization_id)  # these are found through the scanner's name keys
    world.account("北京协和医院有限公司", owner="rep2")  # this one is newer than the scan: keyed here
    world.advance(timedelta(minutes=1))
    with world.db.unit_of_work(None, system=True) as session:  # renamed since the scan: its stored key is stale
        account = session.get(Account, renamed)
        assert account is not None
        account.name = "宁波华东医药有限公司"
    vp = _vp(client, tenant)
    vp.create("leads", {"name": "王芳", "company": "仁济医院", "mobile": "138 0013 8000"})
    vp.create("contacts", {"name": "刘洋", "account_id": huawei, "mobile": "139-1234-5678"})
    queries: list[tuple[str | None, str | None]] = [
        ("华为技术", None),
        ("Hua Wei Ji Shu", None),  # pinyin
        ("上海聯影醫療科技", None),  # a public pool's account
        ("北京協和醫院", None),
        ("仁济医院有限公司", None),  # a lead's company
        (None, "+86 13800138000"),  # a lead's mobile
        ("新星贸易", "+86 21 5555 0100"),  # an account's number
        (None, "13912345678"),  # a contact's mobile: its account
        ("华为技术", "13912345678"),  # by name and by number: the account once
        ("寧波華東醫藥", None),  # the renamed account, by its new name
        ("华为终端", None),
        ("北京大学第一医院", None),
        (None, "13700000000"),
    ]
    rep = tenant["rep"].actor
    with world.db.unit_of_work(rep) as session:
        many = find_matches_many(session, rep, [keys_of(name, mobile) for name, mobile in queries])
        one = [find_matches(session, rep, name=name, mobile=mobile) for name, mobile in queries]
    assert many == one
    assert [len(matches) for matches in many] == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]
    assert many[3][0].id is None  # rep2's: masked
    assert many[3][0].owner.startswith("R** · ")
    assert [m.matched_on for m in many[5] + many[6] + many[7]] == ["mobile", "mobile", "mobile"]
    with world.db.unit_of_work(rep) as session:  # the renamed account is no longer found by its old name
        assert find_matches_many(session, rep, [keys_of("杭州华东医药", None)]) == [[]]


def test_an_account_import_checks_names_sounds_numbers_and_the_file_itself(
    client: TestClient, tenant: Tenant, world: World, check_path: str
) -> None:
    world.account("華為技術有限公司", phone="021-5555 0100")
    rows = (
        "客户名称,电话\n"
        "Hua Wei Ji Shu,\n"  # row 2: an existing account, by pinyin
        "新星贸易,+86 21 5555 0100\n"  # row 3: an existing account's number
        "杭州云栖科技有限公司,0571 8888 1234\n"  # row 4: new
        "杭州雲棲科技,\n"  # row 5: row 4's company
        "宁波港口物流,057188881234\n"  # row 6: row 4's number
        "温州眼镜,\n"  # row 7: new
    )
    expected = [
        (2, "duplicate_account"),
        (3, "duplicate_account"),
        (5, "duplicate_in_file"),
        (6, "duplicate_in_file"),
    ]
    warned = _import(world, tenant, "accounts", rows)
    assert (warned.created, warned.invalid) == (6, 0)
    assert [(w.row, w.code) for w in warned.warnings] == expected
    assert [w.reason for w in warned.warnings][2:] == ["is the same company as row 4", "has the same number as row 4"]
    assert "華為技術有限公司" in warned.warnings[1].reason
    _mode(client, tenant, "block")
    blocked = _import(world, tenant, "accounts", rows, dry_run=False)
    assert (blocked.created, blocked.invalid) == (2, 4)
    assert [(p.row, p.code) for p in blocked.problems] == expected
    names = sorted(a["name"] for a in _vp(client, tenant).request("GET", "/accounts?limit=50").json()["items"])
    assert names == ["杭州云栖科技有限公司", "温州眼镜", "華為技術有限公司"]
    with world.db.unit_of_work(None, system=True) as session:  # imported rows carry their search keys
        stored = session.execute(
            select(Account.name, Account.search_key).where(Account.organization_id == tenant.organization_id)
        ).all()
    assert [key for _, key in stored] == [search_key(name) for name, _ in stored]
    assert "hangzhouyunqi" in str(stored)
    # the same file again: the two written rows are unchanged, the others refused (now by the stored ones)
    again = _import(world, tenant, "accounts", rows, dry_run=False)
    assert (again.created, again.unchanged, again.invalid) == (0, 2, 4)
    assert [(p.row, p.code) for p in again.problems] == [(r, "duplicate_account") for r, _ in expected]


def test_a_lead_import_checks_accounts_leads_and_the_file_itself(
    client: TestClient, tenant: Tenant, world: World, check_path: str
) -> None:
    world.account("上海联影医疗科技股份有限公司", owner=None)
    _vp(client, tenant).create("leads", {"name": "孙丽", "company": "温州医科大学", "mobile": "13800138000"})
    rows = (
        "姓名,公司,手机\n"
        "王芳,上海聯影醫療科技,\n"  # row 2: an account in a public pool
        "李雷,宁波银行,13900001111\n"  # row 3: new
        "韩梅梅,寧波銀行,\n"  # row 4: row 3's company
        "赵强,温州大学,+86 139 0000 1111\n"  # row 5: row 3's mobile
        "周杰,台州港务,+86 138-0013-8000\n"  # row 6: a stored lead's mobile
        "吴敏,舟山渔业,\n"  # row 7: new
    )
    expected = [
        (2, "duplicate_account"),
        (4, "duplicate_in_file"),
        (5, "duplicate_in_file"),
        (6, "duplicate_account"),
    ]
    warned = _import(world, tenant, "leads", rows)
    assert (warned.created, warned.invalid) == (6, 0)
    assert [(w.row, w.code) for w in warned.warnings] == expected
    assert "公海" in warned.warnings[0].reason
    assert "温州医科大学" in warned.warnings[3].reason
    _mode(client, tenant, "block")
    blocked = _import(world, tenant, "leads", rows, dry_run=False)
    assert (blocked.created, blocked.invalid) == (2, 4)
    assert [(p.row, p.code) for p in blocked.problems] == expected
    _mode(client, tenant, "off")
    assert _import(world, tenant, "leads", rows).warnings == []
