"""The ``closeloop`` command: audit verify, users, tokens and the funnel, against a real database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from closeloop.cli.main import app
from closeloop.db.scope import tenant_clause
from closeloop.db.session import Database
from closeloop.governance.audit.models import AuditEntry
from closeloop.org.models import Region, User
from tests.factories import Tenant
from tests.samples import Api
from tests.tampering import entries, tamper

pytestmark = pytest.mark.committing


def unwrapped(output: str) -> str:
    """Console output with the terminal's line wrapping undone."""
    return " ".join(output.split())


def test_audit_verify_exits_0_on_an_intact_chain_and_1_on_a_broken_one(
    cli: CliRunner, db: Database, tenant: Tenant, other_tenant: Tenant
) -> None:
    intact = cli.invoke(app, ["audit", "verify", "--org", str(tenant.organization_id)])
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact" in intact.stdout

    tamper(
        db,
        "UPDATE audit_entries SET action = 'user.deleted' WHERE organization_id = :org AND seq = 3",
        org=tenant.organization_id,
    )

    broken = cli.invoke(app, ["audit", "verify", "--org", str(tenant.organization_id)])
    everyone = cli.invoke(app, ["audit", "verify"])

    assert broken.exit_code == 1
    assert "edited at entry 3: entry 3 (user.deleted) does not match its hash" in unwrapped(broken.stderr)
    assert everyone.exit_code == 1
    assert everyone.stderr.count("edited at entry 3") == 1
    assert everyone.stdout.count("audit chain intact") == 1  # the other tenant's


def test_audit_verify_names_the_head_and_an_anchor_catches_a_trail_cut_back(
    cli: CliRunner, db: Database, tenant: Tenant
) -> None:
    """The head an intact run prints, kept outside the database, catches what the chain alone cannot:
    entries removed from the end together with the head that recorded them."""
    org = str(tenant.organization_id)
    intact = cli.invoke(app, ["audit", "verify", "--org", org])
    assert intact.exit_code == 0, intact.output
    anchor = unwrapped(intact.stdout).rsplit("head ", 1)[1].strip()
    seq, digest = anchor.split(":")
    assert int(seq) > 3
    assert len(digest) == 64
    assert cli.invoke(app, ["audit", "verify", "--org", org, "--anchor", anchor]).exit_code == 0

    kept = entries(db, tenant.organization_id)[2]
    tamper(db, "DELETE FROM audit_entries WHERE organization_id = :org AND seq > 3", org=tenant.organization_id)
    tamper(
        db,
        "UPDATE audit_heads SET seq = 3, hash = :hash WHERE organization_id = :org",
        org=tenant.organization_id,
        hash=kept["hash"],
    )

    alone = cli.invoke(app, ["audit", "verify", "--org", org])
    anchored = cli.invoke(app, ["audit", "verify", "--org", org, "--anchor", anchor])
    assert alone.exit_code == 0  # a consistent, shorter chain: only the anchor knows
    assert anchored.exit_code == 1
    assert f"anchor at entry {seq}: entry {seq}, the anchor, is gone" in unwrapped(anchored.stderr)
    wrong = cli.invoke(app, ["audit", "verify", "--anchor", anchor])
    assert wrong.exit_code == 2
    assert "--org" in unwrapped(wrong.output)
    unknown = cli.invoke(app, ["audit", "verify", "--org", "no-such-org"])
    assert unknown.exit_code == 1
    assert "Traceback" not in unknown.output
    assert "organization" in unwrapped(unknown.stderr)


def test_user_add_creates_an_audited_user_in_the_organization(cli: CliRunner, db: Database, tenant: Tenant) -> None:
    manager = tenant["manager"]
    arguments = ["user", "add", "zhao.lei", "--role", "rep", "--name", "赵磊", "--manager", manager.username]
    arguments += ["--region", "华北", "--password", "correct horse", "--org", str(tenant.organization_id)]

    added = cli.invoke(app, arguments)
    again = cli.invoke(app, arguments)
    bad_role = cli.invoke(app, [*arguments[:3], "--role", "boss", "--password", "x" * 8])

    assert added.exit_code == 0, added.output
    assert "added zhao.lei (rep)" in added.stdout
    assert again.exit_code == 1
    assert "The username 'zhao.lei' is taken" in unwrapped(again.stderr)
    assert bad_role.exit_code == 2
    with db.reading(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == "zhao.lei"))
        assert user is not None
        assert (user.organization_id, user.role, user.display_name, user.manager_id) == (
            tenant.organization_id,
            "rep",
            "赵磊",
            manager.user_id,
        )
        region = session.get(Region, user.region_id)
        assert region is not None
        assert region.name == "华北"
        entry = session.scalar(
            select(AuditEntry).where(
                tenant_clause(tenant.organization_id, AuditEntry),
                AuditEntry.action == "user.created",
                AuditEntry.subject_id == user.id,
            )
        )
        assert entry is not None
        assert (entry.actor_kind, entry.actor_label) == ("system", "cli")


def test_a_token_made_on_the_command_line_works_on_the_api(cli: CliRunner, client: TestClient, tenant: Tenant) -> None:
    rep = tenant["rep"]

    issued = cli.invoke(app, ["token", "create", rep.username, "--name", "脚本", "--days", "30"])

    assert issued.exit_code == 0, issued.output
    secret = issued.stdout.strip()
    assert secret.startswith("clk_")
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200
    assert (me.json()["user_id"], me.json()["role"]) == (rep.user_id, "rep")
    tokens = Api(client, rep).request("GET", "/auth/tokens").json()["items"]
    assert [token["name"] for token in tokens if token["id"] == me.json()["token_id"]] == ["脚本"]
    unknown = cli.invoke(app, ["token", "create", "nobody-here"])
    assert unknown.exit_code == 1
    assert "no user 'nobody-here'" in unwrapped(unknown.stderr)
    # a negative lifetime is refused, not turned into a token that never expires
    negative = cli.invoke(app, ["token", "create", rep.username, "--days", "-5"])
    assert negative.exit_code == 2
    assert "--days" in unwrapped(negative.stderr)
    assert len(Api(client, rep).request("GET", "/auth/tokens").json()["items"]) == len(tokens)


def test_funnel_prints_the_same_numbers_as_the_api(cli: CliRunner, client: TestClient, tenant: Tenant) -> None:
    rep = Api(client, tenant["rep"])
    lead = rep.create("leads", {"name": "钱多多", "company": "仁济医院"})
    rep.create("leads", {"name": "孙一一"})
    rep.request("POST", f"/leads/{lead['id']}/convert", json={})

    printed = cli.invoke(app, ["funnel", "--org", str(tenant.organization_id), "--as", tenant["rep"].username])
    steps = rep.request("GET", "/funnel").json()["steps"]

    assert printed.exit_code == 0, printed.output
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
        for line in printed.stdout.splitlines()
        if line.count("│") >= 5
    }
    assert rows["lead"] == ["2", "", "", ""]
    assert rows["opportunity"] == ["1", "1", "50.0%", "0"]
    assert rows["won"][0] == "0"
    assert [int(rows[step["step"]][0]) for step in steps] == [step["count"] for step in steps]
    bad_date = cli.invoke(app, ["funnel", "--org", str(tenant.organization_id), "--start", "2026-13-01"])
    assert bad_date.exit_code == 2
