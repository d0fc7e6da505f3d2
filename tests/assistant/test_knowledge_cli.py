"""``closeloop knowledge add / search / reindex`` against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from closeloop.cli.main import app
from tests.assistant.conftest import chapter, law
from tests.cli.conftest import cli
from tests.conftest import Backend
from tests.factories import make_tenant

__all__ = ["cli"]


@pytest.mark.committing
def test_an_operator_adds_a_law_and_searches_it(cli: CliRunner, backend: Backend, tmp_path: Path) -> None:
    tenant = make_tenant(backend.database)
    org = str(tenant.organization_id)
    source = tmp_path / "广告法.md"
    source.write_text(chapter(law("advertising_law"), "第二章"), encoding="utf-8")
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4 truncated")

    added = cli.invoke(app, ["knowledge", "add", "法规", str(source), str(broken), "--org", org])
    assert added.exit_code == 1, added.output
    assert "created collection '法规'" in added.output
    assert "广告法.md: ready, 2" in added.output  # twenty-odd passages
    assert "scan.pdf: failed, 0 passages — scan.pdf: not a readable PDF" in added.output

    found = cli.invoke(app, ["knowledge", "search", "医疗器械广告能否保证疗效", "--org", org, "-k", "1"])
    assert found.exit_code == 0, found.output
    assert "第十六条" in found.output
    assert "广告法.md" in found.output
    # a collection made on the command line is read by knowledge managers only
    as_rep = cli.invoke(app, ["knowledge", "search", "医疗器械广告", "--org", org, "--as", tenant["rep"].username])
    assert as_rep.exit_code == 0, as_rep.output
    assert "no passage found" in as_rep.output
    assert (
        "第十六条"
        in cli.invoke(
            app, ["knowledge", "search", "医疗器械广告", "--org", org, "--as", tenant["admin"].username]
        ).output
    )

    again = cli.invoke(app, ["knowledge", "reindex", "--org", org, "--collection", "法规"])
    assert again.exit_code == 0, again.output
    assert "2 documents re-indexed" in again.output
