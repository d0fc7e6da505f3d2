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


# --- the per-character reading (core.pinyin's fast path) --------------------------------------

_PHRASE_HEAVY = st.text(
    st.one_of(
        # characters that begin or end phrases read differently from their characters (银行 háng,
        # 重庆 chóng, 长大 zhǎng, 音乐 yuè, 朝阳 cháo, 还是 hái, 便宜 pián, 了解 liǎo, 觉得 jué …)
        st.sampled_from("银行重庆长大音乐朝阳还是便宜了解觉得都会调查传记地方的确和平曲折差别"),
        st.sampled_from("华瑞康达信海天宏博安盛恒科泰鑫源锦新远辰有限公司股份医疗器械药房"),
        st.characters(min_codepoint=0x3400, max_codepoint=0x4DBF),  # rare characters, many without a reading
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from("〇\u3007\ue815\U00020000 -_0123456789abcXYZ（）\n"),
    ),
    max_size=30,
)


@settings(max_examples=1000)
@given(_PHRASE_HEAVY)
def test_the_character_reading_never_differs_from_lazy_pinyin(text: str) -> None:
    assert toneless(text) == lazy_pinyin(text, style=Style.NORMAL)


def test_every_demo_name_reads_as_lazy_pinyin() -> None:
    """All company names the demo can draw (every pattern, city and trade name), every place and
    street, and every person's name of a surname and one given character, or of two given ones."""
    from closeloop.demo import names

    cities = [city for region in names.REGIONS for province in region.provinces for city in province.cities]
    texts: set[str] = set(names._STREETS)
    for region in names.REGIONS:
        texts.add(region.name)
        for province in region.provinces:
            texts.add(province.name)
    for city in cities:
        texts.update((city.name, *city.districts))
        for trade, _ in names.TRADE_NAMES:
            for patterns in names._COMPANY_PATTERNS.values():
                for pattern in patterns:
                    texts.add(pattern.format(city=city.name, trade=trade, ordinal="一"))
    texts.update(names._COMPANY_PATTERNS["医院"][1].format(city="上海", trade="", ordinal=o) for o in names._ORDINALS)
    given = [character for character, _ in names.GIVEN_NAME_CHARACTERS]
    texts.update(surname + character for surname, _ in names.SURNAMES for character in given)
    texts.update(first + second for first in given for second in given)
    differing = [text for text in sorted(texts) if toneless(text) != lazy_pinyin(text, style=Style.NORMAL)]
    assert differing == []
    assert len(texts) > 50_000
