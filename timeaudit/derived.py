"""The tables `timeaudit metrics` writes, the same on every engine.

Each derived table is a query over an analysis (the lake, the rules and the people's days
registered on one connection, see ``metrics.prepare``): the weekly and daily metrics, and the
audit tables over every week with data and everyone on the roster. The engine only decides
how a query's result becomes Parquet; DuckDB writes one file per table, Spark a folder of
part files. Either way the table is read back as ``<out>/<name>/*.parquet``, by default
``<data>/derived/<name>/``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq

from timeaudit.audit import open_scope
from timeaudit.metrics import Analysis
from timeaudit.sql import read_sql

DERIVED_DIR = "derived"
# Name -> what it holds; written in this order.
DERIVED_TABLES = {
    "weekly_metrics": "one row per person-week (docs/metrics.md)",
    "daily_metrics": "one row per person and local day, the rows weekly_metrics sums",
    "audit_series": "internal meetings and recurring series with their waste facts",
    "audit_admin": "admin hours by kind, team and week",
    "audit_threads": "internal email threads by people-minutes",
    "customer_contacts": "every configured customer with last contact and hours",
    "customer_replies": "customer emails received and the working hours to the first reply",
}


def derived_queries(a: Analysis, now: datetime) -> Iterator[tuple[str, str]]:
    """(name, query) for every derived table, registering what each needs on ``a.con`` first.
    The audit scope is every week in the data, everyone on the roster, and ``now``."""
    a.con.execute("CREATE OR REPLACE TEMP TABLE daily_metrics AS " + read_sql("daily.sql"))
    yield "weekly_metrics", read_sql("weekly.sql")
    yield "daily_metrics", "SELECT * FROM daily_metrics ORDER BY day, person"
    weeks = [w for (w,) in a.con.execute("SELECT DISTINCT week FROM person_days ORDER BY week").fetchall()]
    if not weeks:
        return
    open_scope(a, weeks, now=now)
    yield "audit_series", read_sql("audit_series.sql")
    yield "audit_admin", read_sql("audit_admin.sql")
    yield "audit_threads", read_sql("audit_threads.sql")
    yield "customer_contacts", read_sql("customer_contacts.sql")
    a.con.execute(read_sql("customer_replies.sql"))
    yield "customer_replies", "SELECT * FROM customer_replies ORDER BY received_at, person, id"


def write_derived(a: Analysis, now: datetime, write: Callable[[str, str], None]) -> list[str]:
    """Run every derived query and hand it to ``write(name, query)``; returns the names."""
    names = []
    for name, query in derived_queries(a, now):
        write(name, query)
        names.append(name)
    return names


def duckdb_writer(a: Analysis, out: Path) -> Callable[[str, str], None]:
    """Write each table as ``<out>/<name>/part-00000.parquet``. The folder is built beside
    the old one and swapped in, so a reader sees the old table or the new one, never half."""

    def write(name: str, query: str) -> None:
        data = a.con.sql(query).to_arrow_table()
        final = out / name
        staging = out / f".{name}-{uuid.uuid4().hex[:8]}"
        old = out / f".{name}-old-{uuid.uuid4().hex[:8]}"
        try:
            staging.mkdir(parents=True)
            pq.write_table(data, staging / "part-00000.parquet", compression="zstd")
            if final.exists():
                os.replace(final, old)
            os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)

    return write
