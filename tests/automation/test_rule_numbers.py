"""Numbers and units in rules, property-based: Chinese numerals round-trip, any amount written in
any notation comes back as the same number, and no text makes the parser raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from closeloop.automation.language import parse_rule
from closeloop.automation.language.numerals import parse_chinese_int, to_chinese

UNITS_ZH = {"天": "day", "日": "day", "周": "week", "个星期": "week", "小时": "hour", "个月": "month"}


@given(st.integers(min_value=0, max_value=10**16 - 1))
def test_chinese_numerals_round_trip(value: int) -> None:
    assert parse_chinese_int(to_chinese(value)) == value


@given(st.integers(min_value=1, max_value=99_999))
def test_a_chinese_numeral_in_a_rule_is_the_number(days: int) -> None:
    result = parse_rule(f"A类客户超过{to_chinese(days)}天没有下单，提醒客户经理")
    assert result.rule is not None, result.problems
    assert result.rule["conditions"][1] == {
        "field_or_metric": "time_since_last_order",
        "op": ">",
        "value": days,
        "unit": "day",
    }


@given(
    st.integers(min_value=1, max_value=999),
    st.sampled_from(sorted(UNITS_ZH)),
    st.booleans(),
)
def test_durations_keep_their_unit(amount: int, unit: str, chinese: bool) -> None:
    number = to_chinese(amount) if chinese else str(amount)
    result = parse_rule(f"商机在谈判阶段停留超过{number}{unit}，通知负责人")
    assert result.rule is not None, result.problems
    assert {"field_or_metric": "stage_duration", "op": ">", "value": amount, "unit": UNITS_ZH[unit]} in result.rule[
        "conditions"
    ]


@given(st.integers(min_value=1, max_value=9_999), st.sampled_from(["万", "百万", "千万", "亿"]))
def test_money_magnitudes(amount: int, magnitude: str) -> None:
    factor = {"万": 10**4, "百万": 10**6, "千万": 10**7, "亿": 10**8}[magnitude]
    result = parse_rule(f"订单金额超过{amount}{magnitude}元时，需要财务总监审批")
    assert result.rule is not None, result.problems
    assert result.rule["conditions"] == [
        {"field_or_metric": "order.amount", "op": ">", "value": amount * factor, "unit": "CNY"}
    ]


@given(st.integers(min_value=1, max_value=999_999_999))
def test_english_amounts_with_separators_and_k(amount: int) -> None:
    written = f"${amount:,}" if amount % 1000 else f"${amount // 1000}k"
    result = parse_rule(f"Any order over {written} needs approval from the finance director.")
    assert result.rule is not None, result.problems
    assert result.rule["conditions"][0]["value"] == amount
    assert result.rule["conditions"][0]["unit"] == "USD"


ALPHABET = st.sampled_from(
    [
        *"超过天周小时个月万元且并，。,. :+%$¥一二两三十百千亿0123456789AaBb",
        "通知",
        "主管",
        "商机",
        "金额",
        "连续",
        "次",
        "未回复邮件",
        "when",
        "over",
        "days",
        "notify",
        "the",
        "owner",
        "每周一",
        "9点",
        "due in",
        "任务",
        "创建",
        "https://x.example/h",
        "：",
        "从",
        "变为",
        "A类",
        "一段时间",
    ]
)


@settings(max_examples=300)
@given(st.lists(ALPHABET, max_size=30).map("".join) | st.text(max_size=200))
def test_the_parser_never_raises(text: str) -> None:
    result = parse_rule(text)
    if result.rule is None:
        assert result.problems
        for problem in result.problems:
            assert 0 <= problem.start <= problem.end <= len(text)
            assert text[problem.start : problem.end] == problem.fragment
    else:
        assert result.problems == []
        assert result.readback
