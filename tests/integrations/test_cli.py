"""``closeloop import`` and ``closeloop export`` as a user runs them (on a committing database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.config import settings
from closeloop.crm.accounts.models import Account
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from tests.conftest import Backend
from tests.factories import Tenant
from tests.integrations.test_maven import MAVEN

pytestmark = pytest.mark.committing

runner = CliRunner()


@pytest.fixture
def cli(backend: Backend, db: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI, pointed at the committing test database."""
    monkeypatch.setattr(settings, "database_url", backend.url)
    return runner


def invoke(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1", "CLOSELOOP_LANG": "en"})
    return result.exit_code, result.output


def accounts_in(db: Database, tenant: Tenant) -> list[tuple[str, int | None]]:
    with db.reading(tenant["sales_vp"].actor) as session:
        rows = session.execute(
            select(Account.name, Account.employees).where(tenant_clause(tenant.organization_id, Account))
        )
        return sorted((name, employees) for name, employees in rows)


def test_import_a_gbk_file_with_a_suggested_mapping(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "客户.csv"
    path.write_bytes('客户名称,行业,员工数\r\n华为,通信,"1,000"\r\n中兴,通信,很多\r\n小米,电子,20000\r\n'.encode("gbk"))
    org = str(tenant.organization_id)

    code, output = invoke(cli, "import", "accounts", str(path), "--org", org, "--dry-run")

    assert code == 0, output
    assert "Suggested mapping" in output
    assert "Dry run: 3 rows: 2 to create, 0 to update, 0 unchanged, 1 invalid" in output
    assert accounts_in(db, tenant) == []

    code, output = invoke(cli, "import", "accounts", str(path), "--org", org)

    assert code == 0, output
    assert "客户.csv (csv, gb18030): 3 rows → accounts of" in output
    assert "3 rows: 2 created, 0 updated, 0 unchanged, 1 invalid" in output
    assert "row 3, column 员工数 ('很多'): is not a number (write it like 1234.50 or 1,234.50)" in output
    assert "1 invalid row was not imported; the valid rows were imported." in output
    assert accounts_in(db, tenant) == sorted([("华为", 1000), ("小米", 20000)])

    code, output = invoke(cli, "import", "accounts", str(path), "--org", org)

    assert code == 0, output
    assert "3 rows: 0 created, 0 updated, 2 unchanged, 1 invalid" in output
    assert len(accounts_in(db, tenant)) == 2


def test_an_explicit_mapping_and_a_report_file(cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Firma;Leute\nAcme;12\n", encoding="utf-8")
    report = tmp_path / "report.json"

    code, output = invoke(
        cli,
        "import",
        "accounts",
        str(path),
        "--map",
        "Firma=name",
        "--map",
        "Leute=employees",
        "--org",
        str(tenant.organization_id),
        "--report",
        str(report),
    )

    assert code == 0, output
    assert accounts_in(db, tenant) == [("Acme", 12)]
    assert '"created": 1' in report.read_text(encoding="utf-8")


def test_map_changes_the_suggested_mapping_rather_than_replacing_it(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    """``--map`` corrects the columns the suggestion got wrong; the columns it got right stay mapped,
    a column mapped to a field takes it from whichever column the suggestion gave it, and
    ``COLUMN=`` leaves a column out."""
    path = tmp_path / "a.csv"
    path.write_text("客户名称,Firma,员工数,备注\n旧名,Acme,12,x\n", encoding="utf-8")

    overrides = ("--map", "Firma=name", "--map", "备注=")
    code, output = invoke(cli, "import", "accounts", str(path), *overrides, "--org", str(tenant.organization_id))

    assert code == 0, output
    assert accounts_in(db, tenant) == [("Acme", 12)]  # 员工数 kept its suggested field; 客户名称 gave way


def test_overriding_keeps_one_column_per_field() -> None:
    from closeloop.cli.data_commands import overridden

    suggested = {"客户名称": "name", "员工数": "employees", "备注": "notes"}
    assert overridden(suggested, {"Firma": "name", "备注": ""}) == {"员工数": "employees", "Firma": "name"}
    assert overridden(suggested, {}) == suggested


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"name,city\nAcme,\xff\xfe\n", (), "cannot decode the file as UTF-8 or GBK: line 2, byte 6 of that line"),
        (b"industry,city\nx,y\n", (), "name: is required, but no column is mapped to it"),
        (b"name\nx\n", ("--map", "nome=name"), "nome: is not a column of the file (columns: name)"),
        (b"name\nx\n", ("--map", "name"), "--map takes COLUMN=FIELD pairs, not 'name'"),
    ],
    ids=["undecodable", "required-unmapped", "unknown-column", "malformed-map"],
)
def test_unusable_input_exits_with_status_2(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path, content: bytes, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)

    code, output = invoke(cli, "import", "accounts", str(path), *args, "--org", str(tenant.organization_id))

    assert code == 2
    assert message in output.replace("\n", "")
    assert accounts_in(db, tenant) == []


def test_acting_as_a_user_applies_its_permissions(cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("name\nAcme\n", encoding="utf-8")

    code, output = invoke(
        cli, "import", "accounts", str(path), "--org", str(tenant.organization_id), "--as", tenant["rep"].username
    )

    assert code == 1
    assert "does not allow imports:run" in output
    code, output = invoke(
        cli, "import", "accounts", str(path), "--org", str(tenant.organization_id), "--as", tenant["manager"].username
    )
    assert code == 0, output
    with db.reading(tenant["manager"].actor) as session:
        assert session.scalar(select(Account.owner_id)) == tenant["manager"].user_id


def test_export_as_a_rep_leaves_masked_fields_out_and_neutralizes_formulas(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    rep = tenant["rep"]
    source = tmp_path / "a.csv"
    source.write_text(
        f"name,credit_line,owner\n=SUM(A1:A9),5000,{rep.username}\n+cmd,,{rep.username}\n", encoding="utf-8"
    )
    code, output = invoke(
        cli,
        "import",
        "accounts",
        str(source),
        "--org",
        str(tenant.organization_id),
        "--as",
        tenant["sales_vp"].username,
    )
    assert code == 0, output
    out = tmp_path / "out.csv"

    code, output = invoke(
        cli,
        "export",
        "accounts",
        "--org",
        str(tenant.organization_id),
        "--as",
        rep.username,
        "--filter",
        "name__startswith=+",
        "-o",
        str(out),
    )

    assert code == 0, output
    assert f"exported 1 accounts to {out}" in output.replace("\n", "")
    text = out.read_bytes()
    assert text.startswith(b"\xef\xbb\xbf")
    header, line = text.decode("utf-8-sig").splitlines()
    assert "credit_line" not in header.split(",")
    assert line.split(",")[1] == "'+cmd"

    xlsx = tmp_path / "out.xlsx"
    code, output = invoke(
        cli,
        "export",
        "accounts",
        "--format",
        "xlsx",
        "--org",
        str(tenant.organization_id),
        "--as",
        tenant["sales_vp"].username,
        "-o",
        str(xlsx),
    )
    assert code == 0, output
    sheet = load_workbook(xlsx, read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    columns = list(rows[0])
    assert "credit_line" in columns
    by_name = {row[columns.index("name")]: row for row in rows[1:]}
    assert sorted(by_name) == ["'+cmd", "'=SUM(A1:A9)"]
    assert by_name["'=SUM(A1:A9)"][columns.index("credit_line")] == 5000


def test_export_with_a_bad_filter_exits_with_status_2(cli: CliRunner, tenant: Tenant, tmp_path: Path) -> None:
    code, output = invoke(
        cli,
        "export",
        "accounts",
        "--org",
        str(tenant.organization_id),
        "--filter",
        "colour=red",
        "-o",
        str(tmp_path / "x.csv"),
    )

    assert code == 2
    assert "colour: is not a filter of accounts" in output.replace("\n", "")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(not MAVEN.is_dir(), reason=f"the Maven data set is not at {MAVEN}")
def test_import_maven_crm_twice(cli: CliRunner, db: Database) -> None:
    code, output = invoke(cli, "import", "maven-crm", str(MAVEN))

    assert code == 0, output
    assert "organization maventech (id " in output
    assert "opportunities: 8800 created, 0 updated, 0 unchanged, 0 invalid" in output
    assert "product 'GTXPro' read as 'GTX Pro' on 1480 deals" in output

    code, output = invoke(cli, "import", "maven-crm", str(MAVEN))

    assert code == 0, output
    assert "opportunities: 0 created, 0 updated, 8800 unchanged, 0 invalid" in output
    assert "accounts: 0 created, 0 updated, 85 unchanged, 0 invalid" in output
    with db.reading(None, system=True) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 85


def test_a_column_the_role_may_not_set_is_named_with_the_way_out(
    cli: CliRunner, db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("客户名称,信用额度\n甲公司,1000\n", encoding="utf-8")
    code, output = invoke(cli, "import", "accounts", str(path), "--org", str(tenant.organization_id), "--as",
                          tenant["manager"].username)  # fmt: skip
    assert code == 1
    message = " ".join(output.split())
    assert "column 信用额度 → credit_line: your role (manager) may not set this field" in message
    assert message.count("may not set") == 1
    assert accounts_in(db, tenant) == []
