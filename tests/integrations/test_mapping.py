"""Suggesting which column is which field, in Chinese and English, and checking a mapping."""

from __future__ import annotations

import pytest

from closeloop.integrations.importing.errors import UnusableMapping
from closeloop.integrations.importing.fields import check_mapping, suggest_mapping


def test_chinese_account_headers_are_mapped() -> None:
    headers = [
        "客户名称*",
        "所属行业",
        "员工人数",
        "年营业额(万元)",
        "客户负责人",
        "省份",
        "城市",
        "联系电话",
        "备注信息",
    ]

    assert suggest_mapping(headers, "accounts") == {
        "客户名称*": "name",
        "所属行业": "industry",
        "员工人数": "employees",
        "年营业额(万元)": "annual_revenue",
        "客户负责人": "owner",
        "省份": "province",
        "城市": "city",
        "联系电话": "phone",
    }


def test_english_headers_with_other_spellings_are_mapped() -> None:
    headers = ["Account Name", "Sector", "Anual Revenue", "Number of Employees", "Account Owner", "Website", "Notes"]

    assert suggest_mapping(headers, "accounts") == {
        "Account Name": "name",
        "Sector": "industry",
        "Anual Revenue": "annual_revenue",
        "Number of Employees": "employees",
        "Account Owner": "owner",
        "Website": "website",
    }


def test_contact_headers_take_the_head_noun_of_chinese_compounds() -> None:
    headers = ["联系人", "客户名称", "联系人手机", "职务", "邮箱", "决策链角色", "负责人"]

    assert suggest_mapping(headers, "contacts") == {
        "联系人": "name",
        "客户名称": "account",
        "联系人手机": "mobile",
        "职务": "title",
        "邮箱": "email",
        "决策链角色": "decision_role",
        "负责人": "owner",
    }


def test_opportunity_headers_from_an_export_map_back_to_their_fields() -> None:
    headers = ["id", "name", "account_id", "stage", "amount", "owner_id", "external_ref", "created_at"]

    assert suggest_mapping(headers, "opportunities") == {
        "name": "name",
        "account_id": "account",
        "stage": "stage",
        "amount": "amount",
        "owner_id": "owner",
        "external_ref": "external_ref",
    }


def test_a_mapping_is_checked_and_every_problem_named() -> None:
    with pytest.raises(UnusableMapping) as raised:
        check_mapping(["行业", "城市"], "accounts", {"行业": "industry", "城市": "town", "地址": "address"})

    assert [(p.field, p.code) for p in raised.value.problems] == [
        ("城市", "unknown_field"),
        ("地址", "unknown_column"),
        ("name", "required"),
    ]
    assert "name: is required, but no column is mapped to it (a column named name or 客户名称 / 客户 would be)" in str(
        raised.value
    )


def test_an_unknown_entity_is_named() -> None:
    with pytest.raises(UnusableMapping, match="'widgets' cannot be imported"):
        suggest_mapping(["name"], "widgets")
