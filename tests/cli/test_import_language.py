"""``closeloop import`` reports its rows in the reader's language, phrased as the web's import page
phrases them (never pydantic's English in a Chinese report): ``--lang zh|en``, else
``CLOSELOOP_LANG`` / ``LANG``, else the organization's default language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.config import settings
from closeloop.core.messages import reason_text
from closeloop.db.session import Database
from closeloop.org.models import Organization
from tests.conftest import Backend
from tests.factories import Tenant

pytestmark = pytest.mark.committing

#: a lead without its name (pydantic: "Field required"), one with a number that is not a phone, one fine
CSV = "姓名,公司,手机\n,北京协和医院,13800138000\n李雷,上海瑞金医院,12345\n韩梅梅,广州中山医院,13700137000\n"


@pytest.fixture
def cli(backend: Backend, db: Database, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(settings, "database_url", backend.url)
    return CliRunner()


@pytest.fixture
def leads_csv(tmp_path: Path) -> Path:
    path = tmp_path / "线索.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def _import(cli: CliRunner, tenant: Tenant, path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    environment = {
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "CLOSELOOP_LANG": "",
        "LANG": "C.UTF-8",
        "LC_ALL": "",
        **(env or {}),
    }
    result = cli.invoke(
        app, ["import", "leads", str(path), "--org", str(tenant.organization_id), "--dry-run", *args], env=environment
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_the_row_report_in_chinese_and_in_english(cli: CliRunner, tenant: Tenant, leads_csv: Path) -> None:
    chinese = _import(cli, tenant, leads_csv, "--lang", "zh")
    english = _import(cli, tenant, leads_csv, "--lang", "en")

    assert "试运行：共 3 行，将新建 1 行，将更新 0 行，0 行无变化，2 行有错误" in chinese
    assert "第 2 行，列「姓名」 ('')：此项必填。" in chinese
    assert "第 3 行，列「手机」 ('12345')：" in chinese
    assert "2 行有错误，未导入；未保存任何数据（试运行）。" in chinese
    assert "Field required" not in chinese
    assert "建议的字段对应" in chinese

    assert "Dry run: 3 rows: 1 to create, 0 to update, 0 unchanged, 2 invalid" in english
    assert "row 2, column 姓名 (''): This field is required." in english
    assert "row 3, column 手机 ('12345'): " in english
    assert "2 invalid rows were not imported; nothing was stored (dry run)." in english


def test_the_report_says_what_the_web_import_page_says(cli: CliRunner, tenant: Tenant, leads_csv: Path) -> None:
    """One phrasing for both ways in: each line's reason is the web page's ``reason_text``."""
    report = leads_csv.with_suffix(".json")
    for lang, locale in (("zh", "zh_CN"), ("en", "en")):
        output = _import(cli, tenant, leads_csv, "--lang", lang, "--report", str(report))
        problems = json.loads(report.read_text(encoding="utf-8"))["problems"]
        assert problems[0]["reason"] == "Field required"  # the file keeps the machine's words
        for problem in problems:
            assert reason_text(problem, locale) in output


@pytest.mark.parametrize(
    ("env", "default", "expected"),
    [
        ({"CLOSELOOP_LANG": "en"}, "zh_CN", "Dry run: 3 rows"),
        ({"CLOSELOOP_LANG": "zh"}, "en", "试运行：共 3 行"),
        ({"LANG": "zh_CN.UTF-8"}, "en", "试运行：共 3 行"),
        ({"LANG": "en_US.UTF-8"}, "zh_CN", "Dry run: 3 rows"),
        ({}, "zh_CN", "试运行：共 3 行"),  # C.UTF-8 names no language: the organization's
        ({}, "en", "Dry run: 3 rows"),
    ],
)
def test_without_lang_the_environment_then_the_organization_decides(
    cli: CliRunner,
    db: Database,
    tenant: Tenant,
    leads_csv: Path,
    env: dict[str, str],
    default: str,
    expected: str,
) -> None:
    with db.unit_of_work(None, system=True) as session:
        session.execute(
            update(Organization).where(Organization.id == tenant.organization_id).values(default_locale=default)
        )
    assert expected in _import(cli, tenant, leads_csv, env=env)


def test_an_unknown_language_is_refused(cli: CliRunner, tenant: Tenant, leads_csv: Path) -> None:
    result = cli.invoke(
        app,
        ["import", "leads", str(leads_csv), "--org", str(tenant.organization_id), "--dry-run", "--lang", "fr"],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 2
    assert "--lang" in result.output
