"""Invoices (发票): the buyer's invoice title is checked (the tax number's check character, the
full title of a special VAT invoice) and the status moves draft → issued → void only."""

from __future__ import annotations

from typing import Any

import pytest

from closeloop.cash import service as cash
from closeloop.cash.models import InvoiceStatus
from closeloop.cash.taxid import check_character, problem
from closeloop.core.errors import Conflict, ValidationFailed
from tests.cash.conftest import World

TITLE: dict[str, Any] = {
    "amount": "30000.00",
    "title_name": "上海瑞金医院",
    "tax_id": "9135 0100-M000 100Y43",
    "bank_name": "中国工商银行上海瑞金支行",
    "bank_account": "1001 2345 6789 0123",
    "address_phone": "上海市黄浦区瑞金二路197号 021-64370045",
}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("91350100M000100Y43", True),
        ("91110108551385082Q", True),
        ("91110108551385082A", False),  # wrong check character
        ("9111010855138508IQ", False),  # I is not in the alphabet
        ("110108551385082", True),  # a legacy 15-character taxpayer number
        ("1101085513850", False),
    ],
)
def test_tax_numbers(value: str, valid: bool) -> None:
    assert (problem(value) is None) is valid


def test_check_character() -> None:
    assert check_character("91350100M000100Y4") == "3"


def test_invoice_title_is_checked_and_normalized(world: World) -> None:
    contract = world.contract("30000.00")
    rep = world.actor("rep")
    with world.db.unit_of_work(rep) as session:
        invoice = cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "kind": "special"})
        assert (invoice.tax_id, invoice.bank_account, invoice.status) == (
            "91350100M000100Y43",
            "1001234567890123",
            "draft",
        )
        invoice_id = invoice.id
    with world.db.unit_of_work(rep) as session, pytest.raises(ValidationFailed) as refused:
        cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "tax_id": "91350100M000100Y44"})
    assert [(p.field, p.code) for p in refused.value.problems] == [("tax_id", "invalid_tax_id")]
    with world.db.unit_of_work(rep) as session, pytest.raises(ValidationFailed) as refused:
        cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "kind": "special", "bank_name": None})
    assert refused.value.problems[0].field == "bank_name"

    with world.db.unit_of_work(rep) as session, pytest.raises(ValidationFailed):
        cash.set_invoice_status(session, rep, invoice_id=invoice_id, status=InvoiceStatus.ISSUED)
    with world.db.unit_of_work(rep) as session:
        issued = cash.set_invoice_status(
            session, rep, invoice_id=invoice_id, status=InvoiceStatus.ISSUED, number="044031900111"
        )
        assert (issued.status, issued.issued_on.isoformat() if issued.issued_on else None) == ("issued", "2026-03-02")
    with world.db.unit_of_work(rep) as session:
        cash.set_invoice_status(session, rep, invoice_id=invoice_id, status=InvoiceStatus.VOID)
    with world.db.unit_of_work(rep) as session, pytest.raises(Conflict):
        cash.set_invoice_status(session, rep, invoice_id=invoice_id, status=InvoiceStatus.ISSUED)


def test_invoices_may_not_exceed_the_contract(world: World) -> None:
    contract = world.contract("30000.00")
    rep = world.actor("rep")
    with world.db.unit_of_work(rep) as session:
        first = cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "amount": "20000.00"})
        first_id = first.id
    with world.db.unit_of_work(rep) as session, pytest.raises(ValidationFailed) as refused:
        cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "amount": "10000.01"})
    assert [(p.field, p.code) for p in refused.value.problems] == [("amount", "exceeds_contract")]
    assert "10000.00" in refused.value.problems[0].message
    with world.db.unit_of_work(rep) as session:  # a void invoice frees its amount
        cash.set_invoice_status(session, rep, invoice_id=first_id, status=InvoiceStatus.VOID)
    with world.db.unit_of_work(rep) as session:
        cash.create_invoice(session, rep, contract_id=contract, values={**TITLE, "amount": "30000.00"})
