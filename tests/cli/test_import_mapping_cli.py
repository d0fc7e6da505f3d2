"""``closeloop import <entity> FILE --mapping NAME`` imports with a saved (signed-off) mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from closeloop.cli.main import app
from tests.factories import Tenant
from tests.integrations.test_import_mappings import CSV, saved
from tests.samples import Api, tag

pytestmark = pytest.mark.committing


def test_the_cli_imports_with_a_saved_mapping(
    cli: CliRunner, client: TestClient, tenant: Tenant, tmp_path: Path
) -> None:
    name = f"命令行 {tag()}"
    saved(client, tenant, name, {"单位": "name", "人数": "employees"})
    source = tmp_path / "名录.csv"
    source.write_bytes(CSV)
    org = str(tenant.organization_id)

    imported = cli.invoke(app, ["import", "accounts", str(source), "--mapping", name, "--org", org])
    unknown = cli.invoke(app, ["import", "accounts", str(source), "--mapping", "没有这个", "--org", org])
    wrong_entity = cli.invoke(app, ["import", "leads", str(source), "--mapping", name, "--org", org])

    assert imported.exit_code == 0, imported.output
    names = {
        a["name"]: a["employees"] for a in Api(client, tenant["sales_vp"]).request("GET", "/accounts").json()["items"]
    }
    assert names["北京协和医院"] == 5000
    assert unknown.exit_code != 0
    assert "没有这个" in unknown.output + (unknown.stderr or "")
    assert wrong_entity.exit_code == 2
