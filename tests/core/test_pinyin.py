"""The remembered pinyin conversion gives what pypinyin's own ``lazy_pinyin`` gives, first time and again."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypinyin import Style, lazy_pinyin

from closeloop.core.pinyin import toneless

_TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # common Chinese characters
        st.sampled_from("科技有限公司医院银行重庆长沙行长音乐乐队朝阳"),  # words and heteronyms (重, 长, 行, 乐, 朝)
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.sampled_from("（）·，ＡＢ１２"),
    ),
    max_size=24,
)


@settings(max_examples=300)
@given(_TEXT)
def test_the_same_syllables_as_lazy_pinyin(text: str) -> None:
    expected = lazy_pinyin(text, style=Style.NORMAL)
    assert toneless(text) == expected
    assert toneless(text) == expected  # remembered words give the same again


@pytest.mark.parametrize(
    "text", ["重庆长安汽车股份有限公司", "中国银行行长", "北京协和医院", "Acme 医疗 (上海) Co., Ltd.", "", "乐乐音乐"]
)
def test_company_names(text: str) -> None:
    assert toneless(text) == lazy_pinyin(text, style=Style.NORMAL)
    result = toneless(text)
    result.append("x")  # a caller changing its list does not change what is remembered
    assert toneless(text) == lazy_pinyin(text, style=Style.NORMAL)
