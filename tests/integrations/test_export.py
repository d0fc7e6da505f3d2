"""Exports: what the actor may see, masks applied, formula injection neutralized, readable XLSX."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from closeloop.crm.accounts import service as account_service
from closeloop.crm.accounts.schemas import AccountCreate
from closeloop.crm.opportunities import service as opportunity_service
from closeloop.crm.opportunities.schemas import OpportunityCreate
from closeloop.db.session import Database
from closeloop.integrations.exporting import csv_cell, neutralize, xlsx_cell
from tests.factories import Tenant

DANGEROUS = ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_that_a_spreadsheet_would_evaluate_gets_a_quote(text: str) -> None:
    assert neutralize(text) == "'" + text
    assert csv_cell(text) == "'" + text
    assert xlsx_cell(text) == "'" + text


def test_numbers_stay_numbers_and_ordinary_text_stays_as_it_is() -> None:
    assert csv_cell(Decimal("-5.00")) == "-5.00"
    assert xlsx_cell(Decimal("-5.00")) == Decimal("-5.00")
    assert xlsx_cell(-3) == -3
    assert csv_cell("北京协和医院") == "北京协和医院"
    assert csv_cell(None) == ""
    assert csv_cell([1, 2]) == "[1,2]"


@pytest.fixture
def records(db: Database, tenant: Tenant) -> None:
    rep = tenant["rep"]
    with db.unit_of_work(tenant["sales_vp"].actor) as session:
        for name in ['=HYPERLINK("http://x","点我")', "@import", "北京协和医院"]:
            account_service.create_account(
                session,
                tenant["sales_vp"].actor,
                data=AccountCreate(name=name, credit_line=Decimal("500000"), owner_id=rep.user_id, employees=120),
            )
        opportunity_service.create_opportunity(
            session,
            tenant["sales_vp"].actor,
            data=OpportunityCreate(name="-cmd", amount=Decimal("1000"), margin=Decimal("-5.50"), owner_id=rep.user_id),
        )


def test_a_reps_csv_export_has_no_credit_line_and_neutralized_names(
    client: TestClient, tenant: Tenant, records: None
) -> None:
    response = client.get("/api/v1/exports/accounts?format=csv&sort=name", headers=tenant["rep"].headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="accounts-')
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert "credit_line" not in rows[0]
    assert sorted(row["name"] for row in rows) == sorted(
        ['\'=HYPERLINK("http://x","点我")', "'@import", "北京协和医院"]
    )
    assert {row["employees"] for row in rows} == {"120"}


def test_a_vps_xlsx_export_reads_back_with_typed_cells(client: TestClient, tenant: Tenant, records: None) -> None:
    response = client.get("/api/v1/exports/opportunities?format=xlsx", headers=tenant["sales_vp"].headers)

    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    columns = list(rows[0])
    assert columns[:3] == ["id", "name", "account_id"]
    assert "margin" in columns
    assert "product_line_ids" in columns
    record = dict(zip(columns, rows[1], strict=True))
    assert (record["name"], record["amount"], record["margin"], record["currency"]) == ("'-cmd", 1000, -5.5, "CNY")


def test_the_same_export_for_a_rep_has_no_margin(client: TestClient, tenant: Tenant, records: None) -> None:
    response = client.get("/api/v1/exports/opportunities?format=xlsx", headers=tenant["rep"].headers)

    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    columns = next(sheet.iter_rows(values_only=True))
    assert "margin" not in columns


def test_filters_scope_and_errors(client: TestClient, tenant: Tenant, other_tenant: Tenant, records: None) -> None:
    filtered = client.get("/api/v1/exports/accounts?name__startswith=北京", headers=tenant["rep"].headers)
    assert filtered.content.decode("utf-8-sig").splitlines()[1].split(",")[1] == "北京协和医院"
    assert len(filtered.content.decode("utf-8-sig").splitlines()) == 2

    foreign = client.get("/api/v1/exports/accounts", headers=other_tenant["sales_vp"].headers)
    assert len(foreign.content.decode("utf-8-sig").splitlines()) == 1  # the header only

    assert client.get("/api/v1/exports/widgets", headers=tenant["rep"].headers).status_code == 404
    bad = client.get("/api/v1/exports/accounts?colour=red", headers=tenant["rep"].headers)
    assert bad.status_code == 422
    assert client.get("/api/v1/exports/accounts?format=pdf", headers=tenant["rep"].headers).status_code == 422


def test_exporting_needs_the_export_permission(client: TestClient, partner: Tenant) -> None:
    response = client.get("/api/v1/exports/accounts", headers=partner["partner_user"].headers)

    assert response.status_code == 403
    assert response.json()["detail"] == "Your role (partner_user) does not allow exports:run"
