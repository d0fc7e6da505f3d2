"""How long the data-quality pages take to render on the demo data, as ratios against the
lightest signed-in page (``/notifications``) rendered by the same app in the same process.

    CLOSELOOP_DATABASE_URL=sqlite:////tmp/demo.db python bench/quality_pages.py [--rounds 15]

The database holds the demo organization (``closeloop demo``) after at least one quality scan
(``closeloop quality scan``), so the pages have defects, tasks and KPIs to show. Each page is
requested ``--rounds`` times per user after one warm-up request; the median is reported. The
budget is 300 ms per page (DESIGN.md); the ratio says what the page costs beyond the shell.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from closeloop.app import create_app  # noqa: E402
from closeloop.config import settings  # noqa: E402
from closeloop.demo.people import DEMO_PASSWORD as PASSWORD  # noqa: E402

PAGES = ("/quality", "/quality?group_by=owner", "/tasks", "/tasks?status=done", "/settings/assets")
USERS = ("demo.rep", "demo.manager", "demo.sales_vp")


def median_ms(client: TestClient, path: str, rounds: int) -> float:
    assert client.get(path).status_code == 200, path
    spent = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        spent.append(time.perf_counter() - started)
        assert response.status_code == 200, path
    return statistics.median(spent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    if os.environ.get("CLOSELOOP_DATABASE_URL"):
        settings.database_url = os.environ["CLOSELOOP_DATABASE_URL"]
    print("| user | page | median | × /notifications |\n| --- | --- | ---: | ---: |")
    for username in USERS:
        with TestClient(create_app()) as client:
            token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            signed_in = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token.group(1)})
            assert signed_in.status_code == 200, signed_in.text
            base = median_ms(client, "/notifications", arguments.rounds)
            print(f"| {username} | /notifications (baseline) | {base:,.0f} ms | 1.0× |", flush=True)
            for path in PAGES:
                spent = median_ms(client, path, arguments.rounds)
                print(f"| {username} | {path} | {spent:,.0f} ms | {spent / base:,.1f}× |", flush=True)


if __name__ == "__main__":
    main()
