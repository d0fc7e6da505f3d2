"""``core.phones.parsed`` reads common Chinese numbers without ``phonenumbers``' general parser; what
it returns must be exactly what ``phonenumbers.parse(text, "CN")`` returns (the phone rule's
validity, the duplicate check's E.164 key and any formatting follow from that object)."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from closeloop.core import phones
from closeloop.quality.names import mobile_key


def _reference(text: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None


_SEPARATOR = st.one_of(st.sampled_from(["", " ", "-"]), st.sampled_from(["  ", " - ", "--", "(", "."]))
_PREFIX = st.one_of(
    st.sampled_from(["", "0", "+86", "0086", "86", "+860", "00860", "+86 0", "0086-0"]),  # the fast path's
    st.sampled_from(["860", "+", "00", "8", "+ 86", "+-86", "+8", "0 0", "086"]),  # and around it
)
_FIRST = st.one_of(
    st.sampled_from(["13", "15", "17", "18", "19", "10", "2", "5", "57", "7", "9"]),
    st.sampled_from(["1", "14", "16", "170", "179", "1795", "11", "12", "86", "0"]),
)


@st.composite
def _numbers(draw: st.DrawFn) -> str:
    """Numbers in and near the fast path's shapes: prefixes, leading digits, 7–13 digits in all
    (mostly the lengths of mobiles and landlines), separators between and around groups."""
    first = draw(_FIRST)
    length = draw(st.one_of(st.sampled_from([10, 11, 11, 12]), st.integers(min_value=7, max_value=13)))
    rest = draw(st.text("0123456789", min_size=max(0, length - len(first)), max_size=max(0, length - len(first))))
    digits = first + rest
    cuts = sorted(draw(st.lists(st.integers(min_value=1, max_value=max(1, len(digits) - 1)), max_size=3)))
    groups, last = [], 0
    for cut in cuts:
        groups.append(digits[last:cut])
        last = cut
    groups.append(digits[last:])
    text = draw(_PREFIX)
    for group in groups:
        text += draw(_SEPARATOR) + group
    return draw(st.sampled_from(["", "", "", " ", "-"])) + text + draw(st.sampled_from(["", "", "", " ", "-"]))


@settings(max_examples=3000)
@given(_numbers())
@example("0571 87654321")
@example("+86 571 8765 4321")
@example("0086-10-12345678")
@example("8613812345678")
@example("17951234567")
@example("+86 1212345678")
@example("086 1234567")
def test_the_fast_reading_is_phonenumbers_own(text: str) -> None:
    expected = _reference(text)
    plain = phones._plain_chinese(text)
    if plain is not None:
        assert plain == expected
        assert phonenumbers.is_valid_number(plain) == phonenumbers.is_valid_number(expected)
        assert phonenumbers.format_number(plain, phonenumbers.PhoneNumberFormat.E164) == phonenumbers.format_number(
            expected, phonenumbers.PhoneNumberFormat.E164
        )
    assert phones.parsed(text) == expected


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("0571 87654321", True),
        ("0571-8765432", True),
        ("010 12345678", True),
        ("+86 138 0013 8000", True),
        ("0086 138-0013-8000", True),
        ("13800138000", True),
        ("17951234567", False),  # 17951 may be a carrier code: phonenumbers decides
        ("(0571) 87654321", False),
        ("+1 650 253 0000", False),
        ("400-820-8820", False),  # no trunk 0: the general parser
    ],
)
def test_which_numbers_take_the_fast_path(text: str, fast: bool) -> None:
    assert (phones._plain_chinese(text) is not None) == fast
    assert phones.parsed(text) == _reference(text)


def test_the_rule_and_the_key_are_unchanged() -> None:
    assert phones.phone_problem("0571 87654321") is None
    assert phones.phone_problem("0571 8765432") is phones.NOT_VALID  # Hangzhou numbers have eight digits
    assert mobile_key("0571-87654321") == "+8657187654321"
    assert mobile_key("0086 138 0013 8000") == "+8613800138000"


#: leading digits of China's number types (landline area codes, mobiles, 400/800, 95xxx, 10xxx…) and others
_LEADING = st.one_of(
    st.sampled_from(["10", "20", "21", "571", "755", "851", "433", "754", "311", "591", "898", "978"]),
    st.sampled_from(["13", "14", "15", "16", "17", "18", "19", "1740", "1610", "400", "800", "108", "95", "1010"]),
    st.sampled_from(["2", "3", "4", "5", "6", "7", "8", "9", "1", "0", "86", "12345"]),
)


@st.composite
def _national_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    """Numbers with country code 86 (as parsing any Chinese number gives), 1–15 digits, mostly
    of China's lengths and leading digits; sometimes with a kept leading zero or another country."""
    first = draw(_LEADING)
    length = draw(st.one_of(st.integers(min_value=7, max_value=12), st.integers(min_value=1, max_value=15)))
    rest = draw(st.text("0123456789", min_size=max(0, length - len(first)), max_size=max(0, length - len(first))))
    digits = (first + rest).lstrip("0") or "0"
    number = phonenumbers.PhoneNumber(
        country_code=draw(st.sampled_from([86, 86, 86, 86, 1, 852])), national_number=int(digits)
    )
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = draw(st.sampled_from([None, 1, 2]))
    return number


@settings(max_examples=5000, deadline=None)
@given(_national_numbers())
@example(phonenumbers.PhoneNumber(country_code=86, national_number=57187654321))
@example(phonenumbers.PhoneNumber(country_code=86, national_number=5718765432))
@example(phonenumbers.PhoneNumber(country_code=86, national_number=13800138000))
@example(phonenumbers.PhoneNumber(country_code=86, national_number=4008208820))
@example(phonenumbers.PhoneNumber(country_code=86, national_number=95588))
@example(phonenumbers.PhoneNumber(country_code=86, national_number=1010123))
def test_validity_by_the_numbering_plan_is_phonenumbers_own(number: phonenumbers.PhoneNumber) -> None:
    assert phones.is_valid(number) == phonenumbers.is_valid_number(number)


@settings(max_examples=2000, deadline=None)
@given(_numbers())
def test_validity_of_written_numbers_is_phonenumbers_own(text: str) -> None:
    number = phones.parsed(text)
    if number is not None:
        assert phones.is_valid(number) == phonenumbers.is_valid_number(number)
