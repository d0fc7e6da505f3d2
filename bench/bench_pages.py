"""Workspace pages on the demo data: server time of every main page (home, board, lists, forms,
account 360°, lead inbox, search, funnel, dashboard, tasks, data quality, import) as a ratio
against the API's list of 25 records (same masks) in the same process.

    python bench/bench_pages.py [--rounds 30]

Builds the demo organization into a temporary SQLite database (``closeloop migrate`` + ``demo``),
signs in as ``demo.rep`` and ``demo.manager`` through the form, and times each page in-process
with Starlette's TestClient (no network), median of ``--rounds`` requests after a warm-up.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
BIN = Path(sys.executable).parent


def _median_ms(client: object, path: str, rounds: int, headers: dict[str, str] | None = None) -> float:
    from fastapi.testclient import TestClient

    assert isinstance(client, TestClient)
    client.get(path, headers=headers)
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="closeloop-bench-pages-"))
    environment = {
        **os.environ,
        "CLOSELOOP_DATABASE_URL": f"sqlite:///{directory / 'demo.db'}",
        "CLOSELOOP_VAR_DIR": str(directory),
    }
    for command in (["migrate"], ["demo"]):
        subprocess.run([str(BIN / "closeloop"), *command], env=environment, check=True, capture_output=True)
    os.environ.update(environment)

    from fastapi.testclient import TestClient

    from closeloop.app import create_app

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"{'user':<14}{'page':<34}{'page ms':>9}{'API ms':>9}{'ratio':>8}")
    with TestClient(create_app()) as client:
        for username, pages in [
            (
                "demo.rep",
                [
                    "/",
                    "/pipeline",
                    "/accounts",
                    "/opportunities",
                    "/activities",
                    "/contacts",
                    "/leads",
                    "/leads/inbox",
                    "/accounts/new",
                    "/search?q=bjxh",
                    "/funnel",
                    "/dashboard",
                    "/tasks",
                    "/quality",
                    "/pools",
                    "/pools/mine",
                    "/approvals",
                    "/cash",
                    "/targets",
                    "/fieldwork",
                    "/fieldwork/map",
                    "/reports/mine",
                    "/assistant/coach",
                ],
            ),
            (
                "demo.manager",
                [
                    "/",
                    "/pipeline",
                    "/accounts",
                    "/opportunities",
                    "/import",
                    "/dashboard",
                    "/approvals",
                    "/reports/team",
                    "/fieldwork/report",
                    "/forecasts",
                    "/automation/rules",
                ],
            ),
            (
                "demo.sales_vp",
                [
                    "/",
                    "/pipeline",
                    "/funnel",
                    "/dashboard",
                    "/quality",
                    "/settings/formulas",
                    "/forecasts",
                    "/cash",
                    "/targets",
                    "/approvals/flows",
                    "/pools/settings",
                ],
            ),
        ]:
            client.cookies.clear()
            login = client.get("/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', login)
            assert token
            client.post("/login", data={"username": username, "password": "closeloop-demo", "csrf": token.group(1)})
            api_token = (
                subprocess.run(
                    [str(BIN / "closeloop"), "token", "create", username],
                    env=environment,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .split()[-1]
            )
            bearer = {"Authorization": f"Bearer {api_token}"}
            first = client.get("/api/v1/opportunities?limit=1", headers=bearer).json()["items"]
            if first:
                pages.append(f"/opportunities/{first[0]['id']}")
            account = client.get("/api/v1/accounts?limit=1", headers=bearer).json()["items"]
            if account:
                pages.append(f"/accounts/{account[0]['id']}")
            for page in pages:
                plural = page.strip("/").split("/")[0]
                plural = (
                    plural if plural in ("accounts", "opportunities", "activities", "contacts", "leads") else "accounts"
                )
                page_ms = _median_ms(client, page, args.rounds)
                api_ms = _median_ms(client, f"/api/v1/{plural}?limit=25", args.rounds, bearer)
                print(f"{username:<14}{page:<34}{page_ms:>9.1f}{api_ms:>9.1f}{page_ms / api_ms:>8.2f}")


if __name__ == "__main__":
    main()
