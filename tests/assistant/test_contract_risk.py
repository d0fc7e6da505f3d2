"""Contract risk by clause type and kind of change (``contracts/risk.yaml``), on worked contract pairs:
a warranty clause removed and an exclusivity clause added are high; a changed payment term or
liability cap is at least medium, high when its figures moved; a reworded termination is medium;
punctuation only is no change. Also through the API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from closeloop.assistant.contracts import clauses
from tests.factories import Tenant
from tests.samples import Api

TEMPLATE_ZH = """设备销售合同（标准模板）

第一条 付款方式
甲方应于设备验收合格后三十日内支付合同总价的100%。

第二条 质量保证
乙方对设备提供自验收合格之日起十二个月的质量保证，保修期内免费维修。

第三条 责任限制
乙方在本合同项下的赔偿总额以合同总价为上限。

第四条 合同解除
一方严重违约且经书面催告后三十日内仍未纠正的，守约方可以书面通知解除本合同。
"""

#: the warranty clause is gone, an exclusivity clause came in, the payment term moved from 30 to 90
#: days, the liability cap reworded without a figure, the termination clause reworded
CONTRACT_ZH = """设备销售合同

第一条 付款方式
甲方应于设备验收合格后九十日内支付合同总价的100%。

第二条 责任限制
乙方在本合同项下的赔偿总额以合同总价为上限，但乙方故意造成的损失除外。

第三条 合同解除
一方违约且经书面催告后仍未纠正的，守约方可以书面通知解除本合同。

第四条 独家经销
乙方不得在本市向甲方以外的任何医疗机构销售同类设备。
"""

TEMPLATE_EN = """SUPPLY AGREEMENT

1. Payment Terms
The Customer shall pay each invoice within thirty (30) days.

2. Warranty
The Supplier warrants the products against defects for twelve (12) months from delivery.

3. Limitation of Liability
The Supplier's total liability shall not exceed the fees paid.

4. Confidentiality
Each party shall keep the other party's confidential information secret.
"""

CONTRACT_EN = """SUPPLY AGREEMENT

1. Payment Terms
The Customer shall pay each invoice within thirty (30) days, after acceptance of the products.

2. Limitation of Liability
The Supplier's total liability shall not exceed twice the fees paid.

3. Confidentiality
Each party shall keep the other party's confidential information secret!

4. Exclusivity
The Supplier shall sell the products exclusively to the Customer in the territory.
"""


def _found(result: clauses.Comparison) -> dict[str, tuple[str, str, int]]:
    return {
        (c.contract or c.template).title: (c.status, c.kind, c.risk)  # type: ignore[union-attr]
        for c in result.changes
        if (c.contract or c.template) is not None and (c.contract or c.template).number is not None  # type: ignore[union-attr]
    }


def test_chinese_pair_warranty_removed_and_exclusivity_added_are_high() -> None:
    found = _found(clauses.compare(TEMPLATE_ZH, CONTRACT_ZH))
    assert found["质量保证"] == ("missing", "warranty", 3)
    assert found["独家经销"] == ("added", "exclusivity", 3)
    assert found["付款方式"] == ("changed", "payment", 3)  # 三十日 → 九十日
    assert found["责任限制"] == ("changed", "liability_cap", 2)  # reworded, same cap
    assert found["合同解除"] == ("changed", "termination", 2)


def test_english_pair_the_same_rules_read_english() -> None:
    result = clauses.compare(TEMPLATE_EN, CONTRACT_EN)
    found = _found(result)
    assert found["Warranty"] == ("missing", "warranty", 3)
    assert found["Exclusivity"] == ("added", "exclusivity", 3)
    assert found["Payment Terms"] == ("changed", "payment", 2)  # a condition added, 30 days kept
    assert found["Limitation of Liability"] == ("changed", "liability_cap", 2)
    assert found["Confidentiality"] == ("unchanged", "confidentiality", 0)  # punctuation only
    assert result.risk == 3


def test_an_exclusive_jurisdiction_clause_is_about_the_venue() -> None:
    [clause] = clauses.segment("1. Exclusive Jurisdiction\nThe courts of Singapore have exclusive jurisdiction.\n")
    assert clause.kind == "jurisdiction"


def test_the_risk_table_covers_every_type_and_kind_and_rates_the_worked_cases() -> None:
    assert set(clauses.RISK) == set(clauses.TYPES)
    assert all(set(row) == set(clauses.CHANGE_KINDS) for row in clauses.RISK.values())
    assert clauses.change_risk("warranty", "missing") == 3
    assert clauses.change_risk("exclusivity", "added") == 3
    for kind in ("payment", "liability_cap"):
        assert clauses.change_risk(kind, "changed") >= 2
        assert clauses.change_risk(kind, "figures") == 3


@given(
    days=st.integers(min_value=1, max_value=999),
    other=st.integers(min_value=1, max_value=999),
    chinese=st.booleans(),
)
def test_figures_read_arabic_and_chinese_numerals_alike(days: int, other: int, chinese: bool) -> None:
    def written(n: int) -> str:
        return _chinese(n) + "日" if chinese else f"{n} days"

    assert clauses.figures(f"付款期限 {written(days)}") == [str(days)]
    changed = clauses.figures(f"付款期限 {written(days)}") != clauses.figures(f"付款期限 {written(other)}")
    assert changed is (days != other)


def _chinese(n: int) -> str:
    digits = "零一二三四五六七八九"
    hundreds, rest = divmod(n, 100)
    tens, ones = divmod(rest, 10)
    out = f"{digits[hundreds]}百" if hundreds else ""
    if tens:
        out += ("" if tens == 1 and not hundreds else digits[tens]) + "十"
    elif hundreds and ones:
        out += "零"
    return out + (digits[ones] if ones else "")


def test_the_api_rates_the_worked_pair(client: TestClient, tenant: Tenant) -> None:
    admin, rep = Api(client, tenant["admin"]), Api(client, tenant["rep"])
    base = "/api/v1/assistant/contract-templates"
    template = client.post(
        base,
        data={"name": "销售合同"},
        files={"file": ("template.txt", TEMPLATE_ZH.encode(), "text/plain")},
        headers=admin.headers(),
    )
    assert template.status_code == 201, template.text
    compared = client.post(
        f"{base}/{template.json()['id']}/compare",
        files={"file": ("contract.txt", CONTRACT_ZH.encode(), "text/plain")},
        headers=rep.headers(),
    )
    assert compared.status_code == 200, compared.text
    body: dict[str, Any] = compared.json()
    rated = {(c["contract"] or c["template"])["title"]: (c["type"], c["risk"]) for c in body["clauses"]}
    assert rated["质量保证"] == ("warranty", 3)
    assert rated["独家经销"] == ("exclusivity", 3)
    assert body["risk"] == 3


@pytest.mark.parametrize("kind", ["warranty", "exclusivity"])
def test_the_new_types_have_labels_on_the_page(kind: str) -> None:
    from closeloop.web.assistant import CLAUSE_TYPE_LABELS

    assert kind in CLAUSE_TYPE_LABELS
