"""Duplicate accounts: suffix-insensitive, width- and case-insensitive, and by pinyin — and what
pinyin cannot match."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from closeloop.quality.names import name_key, sound_key
from tests.factories import Tenant
from tests.quality.conftest import Scan
from tests.samples import Api


@pytest.mark.parametrize(
    ("first", "second", "same_name", "same_sound"),
    [
        ("北京协和医院有限公司", "北京协和医院", True, True),
        ("上海联影医疗科技股份有限公司", "上海联影医疗科技", True, True),
        ("ＡＢＣ Medical Co., Ltd.", "abc medical", True, True),
        ("Acme Corporation", "ACME Inc.", True, True),
        ("華為", "华为", True, True),  # traditional folded to simplified
        ("北京协和医院", "北京协合医院", False, True),  # a homophone typo
        ("华为", "Huawei", False, True),
        ("华为技术有限公司", "Huawei Technologies Co., Ltd.", False, False),  # a translation, not a spelling
        ("Costco", "Cost", False, False),  # "co" is stripped only as a word
        ("协和医院", "瑞金医院", False, False),
    ],
)
def test_name_and_pinyin_keys(first: str, second: str, same_name: bool, same_sound: bool) -> None:
    assert (name_key(first) == name_key(second)) is same_name
    assert (sound_key(name_key(first)) == sound_key(name_key(second))) is same_sound


@given(
    st.text(min_size=1, max_size=40),
    st.sampled_from(["有限公司", "股份有限公司", " Co., Ltd.", " Inc", "集团有限公司"]),
)
def test_a_legal_suffix_never_changes_the_key_of_a_name_that_has_more(name: str, suffix: str) -> None:
    key = name_key(name)
    if key and name_key(name + suffix) != key:
        # only when the name itself ends in something the suffix completes (e.g. "…有限" + "公司")
        assert name_key(name + suffix) == name_key(name_key(name) + suffix)


def test_duplicates_are_found_through_the_api_and_point_at_the_oldest_record(
    client: TestClient, tenant: Tenant, scan: Scan
) -> None:
    rep = Api(client, tenant["rep"])
    names = [
        "北京协和医院",
        "北京协和医院有限公司",
        "华为",
        "華為",
        "Huawei",
        "华为技术有限公司",
        "Huawei Technologies Co., Ltd.",
    ]
    ids = {name: rep.create("accounts", {"name": name, "industry": "医院"})["id"] for name in names}
    scan(tenant.organization_id)

    found = {
        d["subject_id"]: (d["details"]["duplicate_of"], d["details"]["match"])
        for d in rep.request("GET", "/quality/defects", params={"rule": "account_duplicate"}).json()["items"]
    }
    assert found == {
        ids["北京协和医院有限公司"]: (ids["北京协和医院"], "name"),
        ids["華為"]: (ids["华为"], "name"),  # traditional folded to simplified
        ids["Huawei"]: (ids["华为"], "name") if name_key("Huawei") == name_key("华为") else (ids["华为"], "pinyin"),
    }
