"""One phone rule: what the record forms and the API accept, the quality scan never flags, and
what the scan flags, the forms and the API refuse (issue #3: the scan flagged 0771-72399445 that
the forms had accepted)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from closeloop.core.phones import phone_problem
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.crm.contacts.schemas import ContactCreate
from closeloop.demo.names import _eight_digit_area
from closeloop.quality import checks

NUMBERS = [
    ("13800138000", True),
    ("+86 138 0013 8000", True),
    ("0771-2399445", True),  # Nanning: seven-digit local numbers
    ("0771-72399445", False),  # … so eight digits is no Nanning number
    ("010-62345678", True),
    ("(021) 6234 5678", True),
    ("400-820-8820", True),
    ("+1 650 253 0000", True),
    ("12345678", False),
    ("call me", False),
]


@pytest.mark.parametrize(("number", "usable"), NUMBERS)
def test_the_scan_the_api_and_the_forms_agree_on_a_number(number: str, usable: bool) -> None:
    assert checks.phone_problem is phone_problem  # the scan asks the same function
    assert (phone_problem(number) is None) is usable

    def accepted(make: object) -> bool:
        try:
            make()  # type: ignore[operator]
        except ValidationError:
            return False
        return True

    assert accepted(lambda: AccountCreate(name="南宁协和", phone=number)) is usable
    assert accepted(lambda: ContactCreate(name="黄伟", mobile=number)) is usable
    assert accepted(lambda: ContactCreate(name="黄伟", phone=number)) is usable


def test_the_demo_writes_landlines_the_rule_accepts() -> None:
    assert _eight_digit_area("010")
    assert _eight_digit_area("0755")
    assert not _eight_digit_area("0771")
