"""Import benchmark (foundation issue, item 9): rows/s of ``closeloop import accounts`` as a ratio
against a bare ``executemany`` of the same rows, measured in the same run.

    python bench/bench_import.py [--rows 20000] [--repeat 3] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Both sides start from the same CSV file and end with a committed transaction:

* **Closeloop**: read the file (encoding and delimiter detection), suggest the mapping, parse every
  cell, validate every row with ``AccountCreate`` and the account rules, match existing accounts by
  natural key, write the rows and one hash-chained audit entry per account (``run_import``).
* **bare**: ``csv.reader`` on the decoded file, the minimal conversions the columns need (integers,
  cents), and one ``executemany`` INSERT into the same ``accounts`` table of a second fresh
  database (same migrations), without validation, matching or audit.

Each side runs ``--repeat`` times on fresh databases (after a small warm-up); the median is shown.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.databases import drop_postgres, fresh_postgres, fresh_sqlite  # noqa: E402
from closeloop.db.engine import normalize_url  # noqa: E402
from closeloop.db.session import Database, connect  # noqa: E402
from closeloop.integrations.importing.engine import run_import  # noqa: E402
from closeloop.integrations.importing.readers import read_table  # noqa: E402
from closeloop.org import service as org_service  # noqa: E402

HEADER = ["客户名称", "行业", "员工数", "年营业额", "客户等级", "省份", "城市", "电话", "外部编号"]
INDUSTRIES = ["医疗器械", "制造", "零售", "教育", "金融", "物流", "软件", "能源"]
PLACES = [("浙江", "杭州"), ("江苏", "南京"), ("广东", "深圳"), ("北京", "北京"), ("上海", "上海"), ("四川", "成都")]
SYLLABLES = [
    "华",
    "瑞",
    "康",
    "达",
    "信",
    "海",
    "天",
    "宏",
    "博",
    "安",
    "盛",
    "恒",
    "科",
    "泰",
    "鑫",
    "源",
    "锦",
    "新",
    "远",
    "辰",
]


def generate_csv(rows: int, seed: int = 7) -> bytes:
    """``rows`` realistic account rows (Chinese headers and names, thousands separators), UTF-8."""
    rng = random.Random(seed)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for index in range(rows):
        province, city = rng.choice(PLACES)
        name = "".join(rng.choices(SYLLABLES, k=3)) + rng.choice(["科技", "医疗", "贸易", "实业"]) + f"有限公司{index}"
        writer.writerow(
            [
                name,
                rng.choice(INDUSTRIES),
                str(rng.randint(5, 20000)),
                f"{Decimal(rng.randint(10_000, 900_000_000)) / 100:,.2f}",
                rng.choice("ABC"),
                province,
                city,
                f"0571 8{rng.randint(1_000_000, 9_999_999)}",  # Hangzhou: eight-digit local numbers
                f"CRM-{index:07d}",
            ]
        )
    return buffer.getvalue().encode()


# --- databases --------------------------------------------------------------------------------


def new_organization(database: Database, name: str) -> int:
    with database.unit_of_work(None, system=True) as session:
        return org_service.create_organization(session, name=name, slug=f"bench-{uuid.uuid4().hex[:8]}").id


# --- the two sides ----------------------------------------------------------------------------


def closeloop_import(url: str, data: bytes) -> tuple[float, float]:
    """Seconds for the whole import (file to commit) into a new organization: wall time, and this
    process's CPU time (on SQLite all of the work; on PostgreSQL the server's share is not in it)."""
    database = connect(url, app_role="closeloop_app")
    warm = new_organization(database, "warm-up")
    _import(database, warm, generate_csv(200, seed=1))
    organization_id = new_organization(database, "bench")
    started, cpu = time.perf_counter(), time.process_time()
    report = _import(database, organization_id, data)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    database.dispose()
    if report != (data.count(b"\n") - 1, 0):
        raise SystemExit(f"the import did not create every row: {report}")
    return elapsed, cpu


def _import(database: Database, organization_id: int, data: bytes) -> tuple[int, int]:
    actor = org_service.system_actor(organization_id, label="bench")
    table = read_table(data, name="accounts.csv")
    with database.unit_of_work(actor) as session:
        report = run_import(session, actor, entity="accounts", table=table)
    return report.created, report.invalid


_COLUMNS = [
    "organization_id", "name", "industry", "employees", "annual_revenue", "tier", "province", "city", "phone",
    "external_ref", "size", "currency", "custom", "created_at", "updated_at", "version",
]  # fmt: skip


def bare_executemany(url: str, data: bytes) -> tuple[float, float]:
    """Seconds for csv.reader + minimal conversions + one executemany + commit, with the driver
    (wall time and this process's CPU time)."""
    engine = create_engine(normalize_url(url))
    postgres = engine.dialect.name == "postgresql"
    database = connect(url)
    warm, organization_id = new_organization(database, "warm-up"), new_organization(database, "bench")
    database.dispose()
    marker = "%s" if postgres else "?"
    sql = f"INSERT INTO accounts ({', '.join(_COLUMNS)}) VALUES ({', '.join([marker] * len(_COLUMNS))})"
    now = datetime.now(UTC) if postgres else datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    connection = engine.raw_connection()
    try:
        _bare(connection, sql, warm, generate_csv(200, seed=1), now)
        started, cpu = time.perf_counter(), time.process_time()
        _bare(connection, sql, organization_id, data, now)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        connection.close()
        engine.dispose()
    return elapsed, cpu


def _bare(connection: object, sql: str, organization_id: int, data: bytes, now: object) -> None:
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    next(reader)
    params = [
        (
            organization_id,
            name,
            industry,
            int(employees),
            int(Decimal(revenue.replace(",", "")) * 100),
            tier,
            province,
            city,
            phone,
            ref,
            None,
            "CNY",
            "{}",
            now,
            now,
            1,
        )
        for name, industry, employees, revenue, tier, province, city, phone, ref in reader
    ]
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.executemany(sql, params)
    connection.commit()  # type: ignore[attr-defined]


def measure(label: str, make_url_: Callable[[], str], data: bytes, repeat: int) -> tuple[float, float]:
    ours, bare = [], []
    for _ in range(repeat):
        ours.append(closeloop_import(make_url_(), data))
        bare.append(bare_executemany(make_url_(), data))
    rows = data.count(b"\n") - 1
    ours_rate = rows / statistics.median(wall for wall, _ in ours)
    bare_rate = rows / statistics.median(wall for wall, _ in bare)
    ours_cpu = statistics.median(cpu for _, cpu in ours)
    bare_cpu = statistics.median(cpu for _, cpu in bare)
    print(
        f"| {label} | {rows:,} | {ours_rate:,.0f} | {bare_rate:,.0f} | **{ours_rate / bare_rate:.2f}** | "
        f"{ours_cpu:.2f} | {bare_cpu:.2f} | {bare_cpu / ours_cpu:.2f} |",
        flush=True,
    )
    return ours_rate, bare_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres", default=os.environ.get("CLOSELOOP_TEST_POSTGRES_URL"), help="PostgreSQL server URL"
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"{platform.platform()}"
    )
    data = generate_csv(args.rows)
    print(
        "| database | rows | Closeloop import rows/s | bare executemany rows/s | ratio "
        "| Closeloop CPU s | bare CPU s | CPU ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as directory:
            measure("SQLite", lambda: fresh_sqlite(Path(directory)), data, args.repeat)
    if args.postgres:
        created: list[str] = []
        try:
            measure("PostgreSQL", lambda: fresh_postgres(args.postgres, created, prefix="import"), data, args.repeat)
        finally:
            drop_postgres(args.postgres, created)


if __name__ == "__main__":
    main()
