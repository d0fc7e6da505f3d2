"""The rule preview (/automation/rules/new → 试运行) on the demo, measured (tenth session).

    closeloop demo   # into the database of CLOSELOOP_DATABASE_URL (a temporary SQLite file)
    python bench/bench_rule_trial.py sqlite:////tmp/demo.db [--user demo.admin] [--days 30]

The page's own example, 当客户连续3次未回复邮件且最近一次沟通超过14天，提醒主管: a daily check over
every account in reach. **before**: each check queries the activities (the last contact, the
streak) — two queries per (account, day); **after**: the activities are read once for the run
(``metrics.History``). Both run in this process on the same data; their answers are compared, and
the ratio is before ÷ after.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime

from sqlalchemy import select

from closeloop.automation import service as automation
from closeloop.automation.language import parse_rule
from closeloop.core.clock import utcnow
from closeloop.db.session import connect
from closeloop.org import service as org_service
from closeloop.org.models import User

EXAMPLE = "当客户连续3次未回复邮件且最近一次沟通超过14天，提醒主管"


def run(url: str, username: str, days: int) -> None:
    database = connect(url)
    rule = parse_rule(EXAMPLE).rule
    assert rule is not None
    with database.reading(None, system=True) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None, username
        actor = org_service.actor_for(session, user)
    now: datetime = utcnow()
    timings: dict[str, float] = {}
    results: dict[str, automation.Backtest] = {}
    history = automation._HISTORY_MEASURES
    for side in ("after", "before"):
        automation._HISTORY_MEASURES = history if side == "after" else frozenset()
        with database.reading(actor) as session:
            start = time.perf_counter()
            results[side] = automation.backtest(session, actor, rule, days=days, now=now)
            timings[side] = time.perf_counter() - start
    automation._HISTORY_MEASURES = history
    before, after = results["before"], results["after"]
    assert (before.fired, before.records, before.per_record) == (after.fired, after.records, after.per_record)
    print(f"load average {os.getloadavg()[0]:.1f}; {username}, {days} days, {after.checked} checks")
    print(f"fired {after.fired} times on {len(after.records)} records")
    ratio = timings["before"] / timings["after"]
    print(f"before {timings['before']:.1f} s, after {timings['after']:.2f} s, ratio {ratio:.0f}×")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--user", default="demo.admin")
    parser.add_argument("--days", type=int, default=30)
    arguments = parser.parse_args()
    run(arguments.url, arguments.user, arguments.days)
