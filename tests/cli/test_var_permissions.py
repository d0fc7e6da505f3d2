"""The var directory holds the database, staged imports, visit photos and the secret key: after
``closeloop migrate`` (and at every start) all of it is the running account's alone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

CLOSELOOP = str(Path(sys.executable).with_name("closeloop"))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_migrate_makes_the_var_directory_and_its_data_owner_only(tmp_path: Path) -> None:
    var = tmp_path / "var"
    staged = var / "imports" / "1" / "staged"
    staged.mkdir(parents=True, mode=0o755)
    for directory in (var, var / "imports", var / "imports" / "1", staged):
        directory.chmod(0o755)
    left_open = staged / "upload.csv"
    left_open.write_text("客户名称\n甲医院\n")
    left_open.chmod(0o644)  # as an earlier version, under umask 022, left it
    environment = {**os.environ, "CLOSELOOP_VAR_DIR": str(var)}
    environment.pop("CLOSELOOP_DATABASE_URL", None)

    subprocess.run(
        [CLOSELOOP, "migrate"],
        env=environment,
        check=True,
        capture_output=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),  # the operator's usual umask
    )

    assert _mode(var) == 0o700
    assert _mode(var / "closeloop.db") == 0o600  # created by this run: umask 077
    assert _mode(var / "imports") == 0o700
    assert _mode(staged) == 0o700
    assert _mode(left_open) == 0o600
    assert left_open.read_text() == "客户名称\n甲医院\n"
