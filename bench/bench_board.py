"""Home and pipeline-board pages on the demo data, for a rep and for the sales VP (who sees every
deal of the organization), as a ratio against the notifications page rendered in the same run
(sign-in check, one small query, the shell) — and in milliseconds, median of the runs.

    python bench/bench_board.py [--runs 15] [--database sqlite:////path/to/demo.db]

Without ``--database`` a demo organization is seeded into a throwaway SQLite file first. The pages
are requested in process through the ASGI app (no network), so the figures are the server's work.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from fastapi.testclient import TestClient  # noqa: E402

from closeloop.app import create_app  # noqa: E402
from closeloop.config import Settings  # noqa: E402
from closeloop.db.session import connect  # noqa: E402
from closeloop.demo.people import DEMO_PASSWORD  # noqa: E402

PAGES = {"home": "/", "board": "/pipeline"}
BASELINE = "/notifications"


def _seeded(directory: Path) -> str:
    url = f"sqlite:///{directory / 'demo.db'}"
    environment = {**os.environ, "CLOSELOOP_DATABASE_URL": url, "CLOSELOOP_VAR_DIR": str(directory)}
    closeloop = str(Path(sys.executable).with_name("closeloop"))
    print("seeding the demo organization …", flush=True)
    for command in (["migrate"], ["demo"]):
        subprocess.run([closeloop, *command], env=environment, check=True, capture_output=True)
    return url


def _signed_in(client: TestClient, username: str) -> None:
    page = client.get("/login", headers={"Accept-Language": "en"}).text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    answer = client.post(
        "/login", data={"username": username, "password": DEMO_PASSWORD, "csrf": match.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def _median_ms(call: Callable[[], object], runs: int) -> float:
    call()  # warm: templates compiled, statements cached
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database", help="a database already holding the demo organization")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = arguments.database or _seeded(Path(directory))
        database = connect(url)
        app = create_app(database=database, config=Settings(secret_key=secrets.token_urlsafe(32)))
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        print(f"{'who':<16}{'page':<8}{'median ms':>10}{'baseline ms':>13}{'ratio':>8}")
        for username in ("demo.rep", "demo.manager", "demo.sales_vp"):
            with TestClient(app) as client:
                _signed_in(client, username)

                def fetch(path: str, client: TestClient = client) -> Callable[[], object]:
                    def call() -> object:
                        answer = client.get(path, headers={"Accept-Language": "zh-CN"})
                        assert answer.status_code == 200, answer.text[:300]
                        return answer

                    return call

                baseline = _median_ms(fetch(BASELINE), arguments.runs)
                for name, path in PAGES.items():
                    figure = _median_ms(fetch(path), arguments.runs)
                    print(f"{username:<16}{name:<8}{figure:>10.1f}{baseline:>13.1f}{figure / baseline:>8.2f}")
        database.dispose()


if __name__ == "__main__":
    main()
