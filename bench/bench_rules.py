"""Events per second through the rule engine with 1,000 enabled rules (issue #4).

Setup: one organization, 500 accounts, 1,000 rules spread over 100 event types (so each event type
wakes 10 of them; the index means the other 990 are never looked at), 10 of them on
``account.updated`` with conditions on the account (tier, industry, region, a custom field).
Then ``--events`` ``account.updated`` events are drained through the engine, as the worker does:
claimed in batches, each event's rules evaluated against its record, marked processed in the same
transaction.

Three runs, in the same process, on the same events:

* **decode only** (baseline): the drain loop without evaluation — claim the batch, decode the
  payloads, mark them processed;
* **engine, no firing**: the rules' conditions do not hold (the common case);
* **engine, 1 firing per event**: one rule holds for every event and notifies the account owner
  (a decision record and a notification written per event).

and a **bare loop**: the same conditions over in-memory dicts (no database), the floor the issue
asks to compare with.

and, separately, **a scheduled rule** ("3 unanswered emails and no contact for 14 days", r001 of
the labelled set) over ``--accounts`` accounts, 1 % of them silent: the set-based run (one query
selecting the candidates, the exact check on those only) against the former loop over every record.

    python -m bench.bench_rules [--events 5000] [--accounts 5000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bench.databases import drop_postgres, fresh_postgres, fresh_sqlite
from closeloop.automation import engine
from closeloop.automation import service as automation
from closeloop.automation.metrics import holds
from closeloop.automation.models import RuleVersion
from closeloop.crm.accounts.models import Account
from closeloop.crm.activities.models import Activity
from closeloop.db.session import Database, connect
from closeloop.governance.events import service as events
from closeloop.governance.events.models import OutboxEvent
from closeloop.governance.permissions import Role
from closeloop.org import service as org_service

INDUSTRIES = ("医疗", "教育", "制造", "零售", "金融")


def setup(database: Database, accounts: int) -> tuple[int, Any, list[int]]:
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(
            session, name="bench rules", slug=f"bench-rules-{time.time_ns()}"
        )
        system = org_service.system_actor(organization.id)
        user = org_service.create_user(
            session,
            system,
            data=org_service.NewUser(username=f"bench-{time.time_ns()}", display_name="Bench", role=Role.MANAGER),
        )
        actor = org_service.actor_for(session, user)
        ids = []
        for number in range(accounts):
            account = Account(
                organization_id=organization.id, name=f"客户 {number}", owner_id=user.id, custom={"segment": "smb"},
                tier="ABC"[number % 3], industry=INDUSTRIES[number % len(INDUSTRIES)],
            )  # fmt: skip
            session.add(account)
            session.flush()
            ids.append(account.id)
    with database.unit_of_work(actor) as session:
        for number in range(1000):
            event_type = "account.updated" if number % 100 == 0 else f"thing{number % 100}.updated"
            conditions = [
                {"field_or_metric": "account.tier", "op": "==", "value": "A", "unit": None},
                {"field_or_metric": "account.industry", "op": "==", "value": "不存在的行业", "unit": None},
                {"field_or_metric": "account.custom.segment", "op": "==", "value": "smb", "unit": None},
            ]
            automation.create_rule(
                session, actor, name=f"rule {number}", enabled=True,
                definition={"trigger": {"kind": "event", "event": event_type}, "conditions": conditions,
                            "actions": [{"type": "notify", "target": "owner", "params": {}}]},
            )  # fmt: skip
    return organization.id, actor, ids


def emit(database: Database, actor: Any, account_ids: list[int], count: int) -> None:
    with database.unit_of_work(actor) as session:
        for start in range(0, count, 1000):
            events.emit_many(
                session,
                actor,
                (
                    (
                        "account.updated",
                        "account",
                        account_ids[n % len(account_ids)],
                        {"changes": {"phone": [None, "1"]}},
                    )
                    for n in range(start, min(count, start + 1000))
                ),
            )


def reset(database: Database) -> None:
    """Make the measured events waiting again (the setup's own events — rules created — stay done)."""
    with database.unit_of_work(None, system=True) as session:
        session.execute(
            update(OutboxEvent).where(OutboxEvent.event_type == "account.updated").values(processed_at=None)
        )


def decode_only(database: Database, batch: int = 500) -> int:
    done = 0
    while True:
        with database.unit_of_work(None, system=True) as session:
            claimed = events.claim(session, limit=batch)
            if not claimed:
                return done
            for event in claimed:
                _ = event.payload.get("changes")
            events.mark_processed(session, [event.id for event in claimed])
            done += len(claimed)


def bare_loop(count: int, accounts: list[dict[str, Any]], rules: list[list[dict[str, Any]]]) -> int:
    fired = 0
    for n in range(count):
        record = accounts[n % len(accounts)]
        for conditions in rules:
            ok = True
            for condition in conditions:
                name = condition["field_or_metric"].split(".", 1)[1]
                value = record["custom"].get(name[7:]) if name.startswith("custom.") else record.get(name)
                if not holds(condition, value):
                    ok = False
                    break
            fired += ok
    return fired


def run(database: Database, label: str, count: int) -> None:
    organization_id, actor, account_ids = setup(database, 500)
    emit(database, actor, account_ids, count)
    engine.drain(database)  # the setup's events, and a warm-up of the rule index and statement caches
    reset(database)

    def timed(function: Any) -> tuple[float, float]:
        reset(database)
        started, cpu = time.perf_counter(), time.process_time()
        function()
        return time.perf_counter() - started, time.process_time() - cpu

    base = timed(lambda: decode_only(database))
    quiet = timed(lambda: engine.drain(database))
    with database.unit_of_work(actor) as session:
        automation.create_rule(
            session, actor, name="fires", enabled=True,
            definition={"trigger": {"kind": "event", "event": "account.updated"}, "conditions": [],
                        "actions": [{"type": "notify", "target": "owner", "params": {}}]},
        )  # fmt: skip
    firing = timed(lambda: engine.drain(database))
    accounts = [{"tier": "ABC"[n % 3], "industry": INDUSTRIES[n % 5], "custom": {"segment": "smb"}} for n in range(500)]
    rules = [
        [
            {"field_or_metric": "account.tier", "op": "==", "value": "A", "unit": None},
            {"field_or_metric": "account.industry", "op": "==", "value": "不存在的行业", "unit": None},
            {"field_or_metric": "account.custom.segment", "op": "==", "value": "smb", "unit": None},
        ]
    ] * 10
    started, cpu = time.perf_counter(), time.process_time()
    bare_loop(count, accounts, rules)
    bare = time.perf_counter() - started, time.process_time() - cpu
    print(f"\n{label}: {count:,} account.updated events, 1,000 enabled rules (10 woken per event)")
    print("| run | events/s (wall) | events/s (CPU of this process) | CPU × decode-only |")
    print("| --- | ---: | ---: | ---: |")
    for name, spent in (
        ("decode only (baseline)", base),
        ("engine, no firing", quiet),
        ("engine, 1 firing per event", firing),
        ("bare loop over in-memory rows", bare),
    ):
        wall, used = spent
        print(f"| {name} | {count / wall:,.0f} | {count / max(used, 1e-9):,.0f} | {used / max(base[1], 1e-9):.2f} |")
    _ = organization_id


SILENT_CUSTOMER = {
    "trigger": {"kind": "schedule", "frequency": "daily", "time": "08:00"},
    "conditions": [
        {"field_or_metric": "email_unreplied", "op": "streak", "value": 3, "unit": "count"},
        {"field_or_metric": "time_since_last_contact", "op": ">", "value": 14, "unit": "day"},
    ],
    "actions": [{"type": "notify", "target": "owner", "params": {}}],
}


def run_scheduled(database: Database, label: str, accounts: int) -> None:
    """One scheduled rule over ``accounts`` accounts (1 % silent): set-based against the loop."""
    day = datetime(2026, 11, 2, 8, tzinfo=UTC)
    with database.unit_of_work(None, system=True) as session:
        organization = org_service.create_organization(session, name="bench sched", slug=f"bench-s-{time.time_ns()}")
        system = org_service.system_actor(organization.id)
        user = org_service.create_user(
            session,
            system,
            data=org_service.NewUser(username=f"bench-s-{time.time_ns()}", display_name="Bench", role=Role.MANAGER),
        )
        actor = org_service.actor_for(session, user)
        for number in range(accounts):
            account = Account(organization_id=organization.id, name=f"客户 {number}", owner_id=user.id, custom={})
            account.created_at = day - timedelta(days=120)
            session.add(account)
            session.flush()
            silent = number % 100 == 0
            for index in range(3 if silent else 1):
                session.add(
                    Activity(
                        organization_id=organization.id, kind="email", direction="outbound", account_id=account.id,
                        user_id=user.id, subject="报价", is_replied=False, custom={},
                        occurred_at=day - timedelta(days=(20 + index) if silent else 2),
                    )
                )  # fmt: skip
    if database.write_engine.dialect.name == "postgresql":  # fresh tables: give the planner statistics
        with database.write_engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE accounts, activities, automation_decisions")
            connection.commit()
    with database.unit_of_work(actor) as session:
        rule = automation.create_rule(session, actor, name="沉默客户", definition=SILENT_CUSTOMER, enabled=True)
        version = session.scalar(select(RuleVersion).where(RuleVersion.rule_id == rule.id))
        assert version is not None
        compiled = engine.compile_rule(rule, version)
    results = []
    for offset, function in enumerate((engine.run_scheduled_rule, engine.run_scheduled_rule_by_loop)):
        started, cpu = time.perf_counter(), time.process_time()
        with database.unit_of_work(None, system=True) as session:
            fired = function(session, organization.id, compiled, day + timedelta(days=offset))
        results.append((fired, time.perf_counter() - started, time.process_time() - cpu))
    (fired, wall, used), (loop_fired, loop_wall, loop_used) = results
    assert fired == loop_fired == accounts // 100, (fired, loop_fired)
    print(f"\n{label}: a scheduled rule over {accounts:,} accounts, {fired:,} of them silent (firing)")
    print("| run | wall | CPU of this process | records/s (wall) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| set-based (one query, then the candidates) | {wall:.2f} s | {used:.2f} s | {accounts / wall:,.0f} |")
    print(f"| loop over every record (before) | {loop_wall:.2f} s | {loop_used:.2f} s | {accounts / loop_wall:,.0f} |")
    print(f"| ratio (loop / set-based, wall) | {loop_wall / max(wall, 1e-9):.1f}× | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=5000, help="accounts for the scheduled-rule run (0: skip)")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server to run on as well")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        database = connect(fresh_sqlite(Path(directory)))
        if arguments.events:
            run(database, "SQLite", arguments.events)
        if arguments.accounts:
            run_scheduled(database, "SQLite", arguments.accounts)
        database.dispose()
    if arguments.postgres:
        created: list[str] = []
        try:
            database = connect(fresh_postgres(arguments.postgres, created, prefix="rules"))
            if arguments.events:
                run(database, "PostgreSQL", arguments.events)
            if arguments.accounts:
                run_scheduled(database, "PostgreSQL", arguments.accounts)
            database.dispose()
        finally:
            drop_postgres(arguments.postgres, created)


if __name__ == "__main__":
    main()
