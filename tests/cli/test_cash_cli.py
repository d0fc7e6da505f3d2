"""``closeloop cash remind`` and ``closeloop cash overdue`` against a real database: a dry run changes
nothing, the run marks and alerts once per day, the list shows what is late as on a day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from closeloop.cash import service as cash
from closeloop.cash.models import Instalment
from closeloop.cli.main import app
from closeloop.crm.contracts.models import Contract
from closeloop.crm.enums import ContractStatus
from closeloop.db.session import Database
from tests.factories import Tenant

pytestmark = pytest.mark.committing


def _overdue_since(db: Database, instalment_id: int) -> date | None:
    with db.reading(None, system=True) as session:
        return session.scalar(select(Instalment.overdue_since).where(Instalment.id == instalment_id))


def test_remind_and_overdue(cli: CliRunner, db: Database, tenant: Tenant, other_tenant: Tenant) -> None:
    with db.unit_of_work(None, system=True) as session:
        contract = Contract(
            organization_id=tenant.organization_id, number="C-CLI-0001", title="瑞金医院 影像系统",
            status=ContractStatus.ACTIVE, signed_on=date(2026, 3, 1), amount=Decimal("100000.00"),
            owner_id=tenant["rep"].user_id,
        )  # fmt: skip
        session.add(contract)
        session.flush()
        contract_id = contract.id
    rep = tenant["rep"].actor
    with db.unit_of_work(rep) as session:
        late = cash.add_instalment(
            session, rep, contract_id=contract_id, amount=Decimal("60000.00"), due_on=date(2026, 3, 20)
        ).id
        cash.add_instalment(session, rep, contract_id=contract_id, amount=Decimal("40000.00"), due_on=date(2026, 3, 27))
    org = str(tenant.organization_id)

    dry = cli.invoke(app, ["cash", "remind", "--org", org, "--as-of", "2026-03-25", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output
    assert "1 reminder and 1 overdue alert would be raised" in " ".join(dry.output.split())
    assert _overdue_since(db, late) is None  # nothing stored

    ran = cli.invoke(app, ["cash", "remind", "--org", org, "--as-of", "2026-03-25"])
    assert ran.exit_code == 0, ran.output
    assert "1 reminder and 1 overdue alert were raised" in " ".join(ran.output.split())
    assert _overdue_since(db, late) == date(2026, 3, 25)
    again = cli.invoke(app, ["cash", "remind", "--as-of", "2026-03-25"])  # every organization, same day
    assert again.exit_code == 0, again.output
    assert "0 reminders and 0 overdue alerts were raised" in " ".join(again.output.split())

    listed = cli.invoke(app, ["cash", "overdue", "--as-of", "2026-03-25"])
    assert listed.exit_code == 0, listed.output
    assert "C-CLI-0001" in listed.output
    assert "1 overdue instalment\n" in listed.output
    assert "60,000.00" in listed.output
    early = cli.invoke(app, ["cash", "overdue", "--org", org, "--as-of", "2026-03-10"])
    assert "0 overdue instalments" in early.output
    other = cli.invoke(app, ["cash", "overdue", "--org", str(other_tenant.organization_id), "--as-of", "2026-03-25"])
    assert "C-CLI-0001" not in other.output  # another tenant's contract is not listed there

    bad = cli.invoke(app, ["cash", "remind", "--as-of", "25.03.2026"])
    assert bad.exit_code == 2
    assert "--as-of" in bad.output
