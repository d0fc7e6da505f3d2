"""API benchmark (foundation issue, 11a): get-by-id and list-50 on a 1M-opportunity tenant, with
scoping and field masks on, as a ratio against a bare Starlette endpoint running the same SQL in the
same run — on SQLite, and on PostgreSQL when a URL is given.

    python bench/bench_api.py [--scale 1000000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

The tenant is built once with `closeloop demo --scale N` into var/bench/ (SQLite) or a database
named closeloop_bench_<N> (PostgreSQL) and reused by later runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.loadgen import LoadResult, run_load  # noqa: E402
from closeloop.db.engine import normalize_url  # noqa: E402

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _closeloop(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "closeloop"), *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"closeloop {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _prepare(url: str, scale: int, env: dict[str, str]) -> tuple[int, str, int, int]:
    """Migrate, seed the scale tenant if missing, and return (organization id, bearer token, min id, max id)."""
    env = {**env, "CLOSELOOP_DATABASE_URL": url}
    _closeloop(env, "migrate")
    slug = f"demo-scale-{scale}"
    engine = create_engine(normalize_url(url))
    with engine.connect() as connection:
        connection.execute(text("SELECT set_config('closeloop.system', 'on', false)")) if url.startswith(
            "postgres"
        ) else None
        organization_id = connection.execute(text("SELECT id FROM organizations WHERE slug = :s"), {"s": slug}).scalar()
    if organization_id is None:
        started = time.perf_counter()
        print(f"building the {scale:,}-opportunity tenant (once) …", flush=True)
        _closeloop(env, "demo", "--scale", str(scale))
        print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        with engine.connect() as connection:
            if url.startswith("postgres"):
                connection.execute(text("SELECT set_config('closeloop.system', 'on', false)"))
            organization_id = connection.execute(
                text("SELECT id FROM organizations WHERE slug = :s"), {"s": slug}
            ).scalar()
    with engine.connect() as connection:
        if url.startswith("postgres"):
            connection.execute(text("SELECT set_config('closeloop.system', 'on', false)"))
        low, high = connection.execute(
            text("SELECT min(id), max(id) FROM opportunities WHERE organization_id = :o"), {"o": organization_id}
        ).one()
        exists = connection.execute(text("SELECT 1 FROM users WHERE username = 'bench-admin'")).scalar()
    engine.dispose()
    if not exists:
        _closeloop(
            env, "user", "add", "bench-admin", "--role", "admin", "--org", slug, "--password", "bench-password-1"
        )
    token = _closeloop(env, "token", "create", "bench-admin", "--name", "bench").strip().splitlines()[-1]
    if organization_id is None or low is None or high is None:
        raise SystemExit(f"the tenant {slug} has no opportunities")
    return int(organization_id), token, int(low), int(high)


def _serve(app: str, env: dict[str, str], port: int, *, factory: bool) -> subprocess.Popen[bytes]:
    command = [
        str(BIN / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        command.append("--factory")
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    for _ in range(900):  # up to 90 s: a loaded machine starts slowly
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{app} did not start")


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(
    process: subprocess.Popen[bytes],
    port: int,
    prefix: str,
    headers: dict[str, str],
    low: int,
    high: int,
    seconds: float,
    concurrency: int,
) -> dict[str, tuple[LoadResult, float]]:
    """Each endpoint's load result and the server's CPU seconds while it was measured (not warming up)."""
    paths = {
        "get": lambda rng: f"{prefix}/opportunities/{rng.randint(low, high)}",
        "list": lambda rng: f"{prefix}/opportunities?limit=50",
    }
    measured = {}
    for kind, path in paths.items():
        run_load("127.0.0.1", port, path, headers=headers, seconds=2.0, concurrency=concurrency, warmup_seconds=0)
        before = _cpu_seconds(process.pid)
        result = run_load(
            "127.0.0.1", port, path, headers=headers, seconds=seconds, concurrency=concurrency, warmup_seconds=0
        )
        measured[kind] = (result, _cpu_seconds(process.pid) - before)
    return measured


def bench(label: str, url: str, scale: int, seconds: float, concurrency: int) -> list[str]:
    base_env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}", "CLOSELOOP_VAR_DIR": str(ROOT / "var" / "bench")}
    organization_id, token, low, high = _prepare(url, scale, base_env)
    ours_env = {**base_env, "CLOSELOOP_DATABASE_URL": url}
    bare_env = {**base_env, "BARE_DATABASE_URL": url, "BARE_ORGANIZATION_ID": str(organization_id)}
    ours_port, bare_port = _free_port(), _free_port()
    ours = _serve("closeloop.app:create_app", ours_env, ours_port, factory=True)
    bare = _serve("bench.bare_app:app", bare_env, bare_port, factory=False)
    try:
        # interleave: bare, ours, bare, ours — so drift (cache warmth, other load) hits both alike
        auth = {"Authorization": f"Bearer {token}"}
        bare_first = _measure(bare, bare_port, "", {}, low, high, seconds / 2, concurrency)
        ours_first = _measure(ours, ours_port, "/api/v1", auth, low, high, seconds / 2, concurrency)
        bare_second = _measure(bare, bare_port, "", {}, low, high, seconds / 2, concurrency)
        ours_second = _measure(ours, ours_port, "/api/v1", auth, low, high, seconds / 2, concurrency)
    finally:
        ours.terminate()
        bare.terminate()
        ours.wait()
        bare.wait()
    lines = []
    for kind in ("get", "list"):
        b = _merge(bare_first[kind][0], bare_second[kind][0])
        o = _merge(ours_first[kind][0], ours_second[kind][0])
        if o.errors or b.errors:
            print(f"warning: {o.errors} errors (ours), {b.errors} errors (bare) in {kind}", file=sys.stderr)
        ratio = o.throughput / b.throughput if b.throughput else float("nan")
        # CPU per request: what the server itself spends, whatever else runs on the machine
        o_cpu = (ours_first[kind][1] + ours_second[kind][1]) / max(o.requests, 1) * 1000
        b_cpu = (bare_first[kind][1] + bare_second[kind][1]) / max(b.requests, 1) * 1000
        lines.append(
            f"| {label} | {kind} | {o.throughput:,.0f} | {o.p50:.1f} | {o.p95:.1f} | {b.throughput:,.0f} | "
            f"{b.p50:.1f} | {b.p95:.1f} | **{ratio:.2f}** | {o_cpu:.2f} | {b_cpu:.2f} | {b_cpu / o_cpu:.2f} |"
        )
    return lines


def _merge(first: LoadResult, second: LoadResult) -> LoadResult:
    return LoadResult(
        first.requests + second.requests,
        first.seconds + second.seconds,
        first.latencies_ms + second.latencies_ms,
        first.errors + second.errors,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1_000_000, help="opportunities in the tenant")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per endpoint and server")
    parser.add_argument("--concurrency", type=int, default=4, help="keep-alive connections")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CLOSELOOP_TEST_POSTGRES_URL"),
        help="PostgreSQL server URL (a database closeloop_bench_<scale> is created on it)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{platform.platform()}"
    )
    print(
        "| database | endpoint | Closeloop req/s | p50 ms | p95 ms | bare req/s | p50 ms | p95 ms | ratio "
        "| Closeloop CPU ms/req | bare CPU ms/req | CPU ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    if not args.skip_sqlite:
        path = ROOT / "var" / "bench" / f"api-{args.scale}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        for line in bench("SQLite", f"sqlite:///{path}", args.scale, args.seconds, args.concurrency):
            print(line, flush=True)
    if args.postgres:
        name = f"closeloop_bench_{args.scale}"
        server = make_url(normalize_url(args.postgres))
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = server.set(database=name).render_as_string(hide_password=False)
        for line in bench("PostgreSQL", url, args.scale, args.seconds, args.concurrency):
            print(line, flush=True)


if __name__ == "__main__":
    main()
