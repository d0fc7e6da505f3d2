"""Run every benchmark in turn (``make bench``); each prints its own table of ratios."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["bench_import.py", "bench_api.py", "bench_formulas.py"]


def main() -> None:
    postgres = os.environ.get("CLOSELOOP_TEST_POSTGRES_URL")
    for script in SCRIPTS:
        command = [sys.executable, str(ROOT / "bench" / script)]
        if postgres:
            command += ["--postgres", postgres]
        print(f"\n## {script}", flush=True)
        subprocess.run(command, check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
