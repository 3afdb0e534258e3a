"""Each benchmark step, run in a fresh process so its peak memory is its own."""

from __future__ import annotations

import resource
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from bench.browser import browser

END = date(2026, 11, 23)
FLOOR_SQL = Path(__file__).parent / "weekly_floor.sql"


def generate(data: Path, people: int, weeks: int) -> dict:
    """The demo organisation into the lake, as `timeaudit demo` does."""
    from connectors.demo.org import build_org
    from connectors.demo.records import write_org_files
    from connectors.demo.source import demo_sources
    from timeaudit.lake.store import Lake
    from timeaudit.lake.sync import run_source

    org = build_org(people=people, weeks=weeks, seed=7, end=END)
    lake = Lake(data)
    counts = {source.table: run_source(lake, source)[0].rows for source in demo_sources(org)}
    write_org_files(org, data)
    return counts


IMPORT_PEOPLE = 20  # people whose exports are imported: enough items for a steady rate, quick at any size


def exports(data: Path, **_) -> dict:
    """Each sampled person's .ics and Takeout mbox, written once into the cache."""
    from bench.exports import sample_people, write_exports

    folder = data.parent / "exports"
    shutil.rmtree(folder, ignore_errors=True)
    return write_exports(data, folder, sample_people(data, IMPORT_PEOPLE))


def _ingest(data: Path, kind: str) -> dict:
    """Import every sampled person's export into an empty lake, one import per person as a user
    would; the rate counts the records the files gave over the time of the imports alone, the
    files already in the system's file cache."""
    from bench.exports import sample_people, stem
    from timeaudit.lake.imports import import_ics, import_mail
    from timeaudit.lake.store import Lake

    _, settings = _workspace(data)
    folder = data.parent / "exports"
    target = data.parent / f"import-{kind}"
    shutil.rmtree(target, ignore_errors=True)
    lake = Lake(target)
    # A window wider than any run's weeks, so the imports keep every event.
    first, last = END - timedelta(weeks=60), END + timedelta(weeks=1)
    items = skipped = 0
    people = sample_people(data, IMPORT_PEOPLE)
    # Read once first, as a file just exported is: the rate is the import's, not the disk's.
    for email, _zone in people:
        (folder / f"{stem(email)}.{kind}").read_bytes()
    t = time.perf_counter()
    for email, _zone in people:
        if kind == "ics":
            r = import_ics(lake, settings, [folder / f"{stem(email)}.ics"], email, since=first, until=last)
        else:
            r = import_mail(lake, settings, [folder / f"{stem(email)}.mbox"], email)
        items += r.imported
        skipped += len(r.skipped)
    seconds = time.perf_counter() - t
    shutil.rmtree(target)
    read = _read_only(settings, folder, people, kind, first, last)
    return {
        "items": items,
        "skipped": skipped,
        "items_per_second": items / seconds,
        "import_seconds": seconds,
        "read_only_seconds": read,
        "landing_share": 1 - read / seconds,
    }


def _read_only(settings, folder: Path, people, kind: str, first: date, last: date) -> float:
    """The floor of an import, in the same process: reading the same files as the import does
    (its source, one record per id), landing nothing."""
    from bench.exports import stem
    from connectors.base import Cursor
    from connectors.ics.source import IcsSource
    from connectors.mail.source import MailSource
    from timeaudit.lake.imports import import_window
    from timeaudit.lake.mirror import ImportReport, read_all

    window = import_window(settings, first, last)
    t = time.perf_counter()
    for email, _zone in people:
        if kind == "ics":
            source = IcsSource(settings, [folder / f"{stem(email)}.ics"], email, window, None, None)
        else:
            source = MailSource(settings, [folder / f"{stem(email)}.mbox"], email, [], None, None)
        source.one_per_id(read_all(source.table, source.read(email, Cursor()), ImportReport(source.name, email)))
    return time.perf_counter() - t


def ics_ingest(data: Path, **_) -> dict:
    return _ingest(data, "ics")


def mbox_ingest(data: Path, **_) -> dict:
    return _ingest(data, "mbox")


def _live_counts(lake) -> dict[str, int]:
    con = lake.connect()
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("events", "messages")}


def compact(data: Path, **_) -> dict:
    """Compaction of a lake left as incremental syncs leave it: 1% of each source's records
    merged again in newer versions, 1,000 per commit. Times the compaction (optimize and
    vacuum) alone and checks it keeps the same live records."""
    import pyarrow.compute as pc

    from timeaudit.core.model import TABLES
    from timeaudit.lake.store import Lake

    copy = data.parent / (data.name + "-compact")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    lake = Lake(copy)
    con = lake.connect()
    for table in ("events", "messages"):
        columns = ", ".join(f'"{name}"' for name in TABLES[table][1].names)
        for source in lake.sources(table):
            query = f"SELECT {columns} FROM {table} WHERE source = ? AND hash(id) % 100 = 0"
            changed = con.sql(query, params=[source]).to_arrow_table()
            newer = pc.add(changed["updated"], pa.scalar(1_000_000, pa.duration("us")))
            changed = changed.set_column(changed.schema.get_field_index("updated"), "updated", newer)
            for start in range(0, changed.num_rows, 1_000):
                lake.write_arrow(table, source, changed.slice(start, 1_000))
    con.close()
    live = _live_counts(lake)
    read_before = _floor_query_seconds(lake)
    started = time.perf_counter()
    files = {t: lake.compact(t) for t in ("events", "messages")}
    seconds = time.perf_counter() - started
    after = _live_counts(lake)
    read_after = _floor_query_seconds(lake)
    shutil.rmtree(copy)
    if after != live:
        raise AssertionError(f"compaction changed the live records: {live} before, {after} after")
    return {
        "files": files,
        "compact_seconds": seconds,
        "records": live,
        "floor_query_seconds_before": read_before,
        "floor_query_seconds_after": read_after,
    }


def _floor_query_seconds(lake) -> float:
    """The weekly step's floor query (``weekly_floor.sql``) over the lake's latest snapshot, best of two."""
    times = []
    for _ in range(2):
        con = lake.connect()
        started = time.perf_counter()
        con.sql(FLOOR_SQL.read_text()).to_arrow_table()
        times.append(time.perf_counter() - started)
        con.close()
    return min(times)


def _lake_copy(data: Path, name: str):
    """A copy of the organisation's lake, cursors and settings, for a step that writes."""
    from timeaudit.lake.store import Lake

    copy = data.parent / f"{data.name}-{name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns("derived"))
    return copy, Lake(copy)


INCREMENTAL_SHARE = 100  # one person in a hundred
CHANGED, DELETED, NEW = 30, 2, 30  # each person's events changed and deleted, and new messages


def _changes(lake, accounts: list[str]) -> dict[str, dict[str, pa.Table]]:
    """What an incremental sync brings for each account: its latest events changed (newer
    ``updated``, now tentative) and a few deleted, and new messages (copies of its latest under
    new ids, an hour later)."""
    import pyarrow.compute as pc

    from timeaudit.core.model import TABLES

    later = pa.scalar(1_000_000, pa.duration("us"))
    con = lake.connect()
    changes = {}
    for account in accounts:
        cols = {t: ", ".join(f'"{name}"' for name in TABLES[t][1].names) for t in TABLES}
        events = con.sql(
            f"SELECT {cols['events']} FROM events WHERE account = ? ORDER BY start DESC LIMIT {CHANGED + DELETED}",
            params=[account],
        ).to_arrow_table()
        events = _set(events, "updated", pc.add(events["updated"], later))
        events = _set(events, "status", pa.array(["tentative"] * CHANGED + ["cancelled"] * DELETED)[: events.num_rows])
        events = _set(events, "deleted", pa.array([False] * CHANGED + [True] * DELETED)[: events.num_rows])
        messages = con.sql(
            f"SELECT {cols['messages']} FROM messages WHERE account = ? ORDER BY ts DESC LIMIT {NEW}", params=[account]
        ).to_arrow_table()
        messages = _set(messages, "id", pc.binary_join_element_wise(messages["id"], "-new", ""))
        messages = _set(messages, "ts", pc.add(messages["ts"], pa.scalar(3_600_000_000, pa.duration("us"))))
        changes[account] = {t: rows.cast(TABLES[t][1]) for t, rows in (("events", events), ("messages", messages))}
    con.close()
    return changes


def _set(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


FLOOR_MATCH = "t.source = s.source AND t.bucket = s.bucket AND t.account = s.account AND t.id = s.id"


def incremental(data: Path, **_) -> dict:
    """An incremental sync of one person in a hundred landing in (a copy of) the lake as the sync
    driver lands it: per account and table one commit (``Lake.write_arrow``), then its cursor.
    The floor, on the same snapshot restored: delta-rs's own merge of the same rows, one call
    per table (what a sync could do at best with one commit for all its accounts)."""
    from deltalake import write_deltalake

    from timeaudit.lake.store import WRITER_PROPERTIES, stored_rows, table_buckets

    copy, lake = _lake_copy(data, "incremental")
    con = lake.connect()
    accounts = [a for (a,) in con.execute("SELECT DISTINCT account FROM events ORDER BY account").fetchall()]
    con.close()
    accounts = accounts[::INCREMENTAL_SHARE]
    changes = _changes(lake, accounts)
    source = lake.sources("events")[0]
    start = {t: lake.table(t).version() for t in ("events", "messages")}
    versions_before = dict(start)
    started = time.perf_counter()
    for account, tables in changes.items():
        for table, rows in tables.items():
            lake.write_arrow(table, source, rows)
        lake.write_cursor(source, account, {"bench": "incremental"})
    seconds = time.perf_counter() - started
    commits = sum(lake.table(t).version() - start[t] for t in start)
    metrics = {t: lake.table(t).history(1)[0].get("operationMetrics", {}) for t in start}
    live = _live_counts(lake)
    # The floor, on the snapshot before (restored): delta-rs's own cheapest call per table for
    # all accounts at once: one merge of the changed events, one append of the new messages.
    for table in start:
        lake.table(table).restore(versions_before[table])
    floor = {}
    for table in start:
        dt = lake.table(table)
        rows = stored_rows(table, source, pa.concat_tables([c[table] for c in changes.values()]), table_buckets(dt))
        t = time.perf_counter()
        if table == "messages":
            write_deltalake(dt, rows, mode="append", writer_properties=WRITER_PROPERTIES)
        else:
            (
                dt.merge(rows, FLOOR_MATCH, source_alias="s", target_alias="t", writer_properties=WRITER_PROPERTIES)
                .when_matched_update_all(predicate="NOT s.deleted")
                .when_matched_delete(predicate="s.deleted")
                .execute()
            )
        floor[table] = time.perf_counter() - t
    if _live_counts(lake) != live:
        raise AssertionError("the floor's merge and the sync's commits left different records")
    shutil.rmtree(copy)
    return {
        "accounts": len(accounts),
        "events_changed": sum(len(c["events"]) for c in changes.values()),
        "messages_new": sum(len(c["messages"]) for c in changes.values()),
        "commits": commits,
        "incremental_seconds": seconds,
        "floor_seconds": sum(floor.values()),
        "floor_by_table": floor,
        "over_floor": seconds / sum(floor.values()),
        "last_commit_metrics": metrics,
    }


def forget(data: Path, **_) -> dict:
    """``forget`` of one person in (a copy of) the lake: their records deleted, their address
    scrubbed from others', every file the tables no longer use vacuumed; then every file under
    the lake scanned (bytes, and Parquet decoded) for the address. The floors: delta-rs's own
    merge of the same change on another copy (``_forget_floor``), and Arrow reading and writing
    again the files it replaced (``_rewrite_floor``)."""
    import pyarrow.parquet as pq

    from timeaudit.lake.personal_data import forget_person

    copy, lake = _lake_copy(data, "forget")
    con = lake.connect()
    people = [a for (a,) in con.execute("SELECT DISTINCT account FROM events ORDER BY account").fetchall()]
    con.close()
    person = people[len(people) // 2]
    before = {t: lake.table(t).version() for t in ("events", "messages")}
    started = time.perf_counter()
    report = forget_person(lake, person)
    seconds = time.perf_counter() - started
    # The step's peak also holds the check and the floor's merge, which take more than forget.
    forget_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    needle = person.encode()
    holding = []
    for path in sorted(lake.lake_dir.rglob("*")):
        if not path.is_file():
            continue
        if needle in path.read_bytes().lower():
            holding.append(str(path))
        elif ".parquet" in path.name:
            table = pq.read_table(path)
            for name in table.column_names:
                column = table[name]
                if pa.types.is_list(column.type) or pa.types.is_struct(column.type) or "string" in str(column.type):
                    if person in str(column.to_pylist()).lower():
                        holding.append(f"{path}:{name}")
                        break
    if holding:
        shutil.rmtree(copy)
        raise AssertionError(f"files still holding the person: {holding[:5]}")
    floor = _forget_floor(data, lake, person, before)
    rewrite = _rewrite_floor(data, lake, before)
    shutil.rmtree(copy)
    return {
        "forget_seconds": seconds,
        "forget_peak_rss_mb": forget_peak_mb,
        "files_holding_person_after": len(holding),
        "floor_seconds": sum(floor.values()),
        "floor_by_table": floor,
        "over_floor": seconds / sum(floor.values()),
        "arrow_rewrite_seconds": rewrite,
        "over_arrow_rewrite": seconds / rewrite,
        "tables": {t: vars(r) for t, r in report.tables.items()},
    }


def _forget_floor(data: Path, forgotten, person: str, before: dict[str, int]) -> dict[str, float]:
    """Seconds of delta-rs's own cheapest call for the change ``forget`` made to each table, on
    an untouched copy: one merge that deletes the person's records and updates the others' rows
    it changed (found by setting each file it replaced beside its copy, row by row)."""
    from timeaudit.lake.changes import commit_files
    from timeaudit.lake.store import BUCKET, PARTITION, WRITER_PROPERTIES, with_party_key

    copy, lake = _lake_copy(data, "forget-floor")
    floor = {}
    try:
        for table, version in before.items():
            added, removed = commit_files(forgotten.table_path(table), version, forgotten.table(table).version())
            rows = _forget_changes(lake.table_path(table), forgotten.table_path(table), added, removed, person)
            rows = with_party_key(table, rows.drop_columns(["party_key"]))
            predicate = (
                f"t.{PARTITION} = s.{PARTITION} AND t.{BUCKET} = s.{BUCKET} "
                "AND t.account = s.key_account AND t.id = s.key_id"
            )
            dt = lake.table(table)
            started = time.perf_counter()
            (
                dt.merge(rows, predicate, source_alias="s", target_alias="t", writer_properties=WRITER_PROPERTIES)
                .when_matched_delete(predicate="s.drop")
                .when_matched_update_all(except_cols=["key_account", "key_id", "drop"])
                .execute()
            )
            floor[table] = time.perf_counter() - started
    finally:
        shutil.rmtree(copy)
    return floor


def _rewrite_floor(data: Path, forgotten, before: dict[str, int]) -> float:
    """Seconds Arrow takes to read every file ``forget`` replaced and write it again unchanged
    (the lake's writer, as many threads as ``forget``): the least a rewrite of them costs."""
    import os
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from timeaudit.lake.changes import commit_files
    from timeaudit.lake.store import PRUNING_COLUMNS, write_parquet

    work = []
    for table, version in before.items():
        _, removed = commit_files(forgotten.table_path(table), version, forgotten.table(table).version())
        work += [(table, data / "lake" / table / p.relative_to(forgotten.table_path(table))) for p in removed]
    out = Path(tempfile.mkdtemp(prefix="rewrite-floor-", dir=data.parent))

    def rewrite(item) -> None:
        n, (table, path) = item
        write_parquet(pq.ParquetFile(path).read(), out / f"{n}.parquet", statistics=PRUNING_COLUMNS[table])

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            list(pool.map(rewrite, enumerate(work)))
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out)


def _forget_changes(table_path: Path, forgotten_path: Path, added: list[Path], removed: list[Path], person: str):
    """The merge source of the floor: each removed file's rows beside its scrubbed copy (one per
    partition folder, rows in the same order, the person's own left out), the rows that differ
    with the key they had, and the person's own keys to delete."""
    import duckdb

    from timeaudit.lake.store import sql_string

    copies = {p.parent.relative_to(forgotten_path): p for p in added}
    con = duckdb.connect()
    parts = []
    for old in removed:
        folder = old.parent.relative_to(forgotten_path)
        source, bucket = folder.parent.name.split("=", 1)[1], int(folder.name.split("=", 1)[1])
        was = f"read_parquet({sql_string(table_path / old.relative_to(forgotten_path))}, hive_partitioning = false)"
        extra = f"{sql_string(source)} AS source, {bucket}::INTEGER AS bucket"
        own = con.sql(
            f"SELECT *, {extra}, account AS key_account, id AS key_id, true AS drop "
            f"FROM {was} WHERE lower(account) = {sql_string(person)}"
        ).to_arrow_table()
        parts.append(own)
        if folder in copies:
            others = f"(SELECT * FROM {was} WHERE lower(account) <> {sql_string(person)})"
            now = f"read_parquet({sql_string(copies[folder])}, hive_partitioning = false)"
            changed = con.sql(
                f"SELECT b.*, {extra}, a.account AS key_account, a.id AS key_id, false AS drop "
                f"FROM {others} a POSITIONAL JOIN {now} b "
                "WHERE a IS DISTINCT FROM b"
            ).to_arrow_table()
            parts.append(changed.cast(own.schema))
    return pa.concat_tables(parts)


def _workspace(data: Path):
    from timeaudit.core.config import load_settings
    from timeaudit.lake.store import Lake

    return Lake(data), load_settings(data / "timeaudit.toml")


def weekly(data: Path, **_) -> dict:
    """Computed from the lake: given an analysis, weekly_metrics never reads derived tables."""
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.outputs.derived import weekly_metrics

    lake, settings = _workspace(data)
    started = time.perf_counter()
    df = weekly_metrics(lake, settings, open_analysis(lake, settings))
    df[
        ["person", "week", "customer_meeting_hours", "admin_hours", "internal_meeting_hours", "double_booked_hours"]
    ].to_parquet(data.parent / "weekly.parquet")
    weekly_seconds = time.perf_counter() - started
    # The floor, over the same lake in the same process: one DuckDB query that only sums event
    # minutes and counts messages per person-week.
    con = lake.connect()
    started = time.perf_counter()
    floor_rows = con.sql(FLOOR_SQL.read_text()).to_arrow_table().num_rows
    floor = time.perf_counter() - started
    con.close()
    return {
        "person_weeks": len(df),
        "weekly_seconds": weekly_seconds,
        "floor_seconds": floor,
        "floor_person_weeks": floor_rows,
        "over_floor": weekly_seconds / floor,
    }


def team_page(data: Path, **_) -> dict:
    """The team page's queries once the weekly table is cached: one timing per query."""
    from timeaudit.analysis.metrics import team_weekly
    from timeaudit.outputs.derived import weekly_metrics

    lake, settings = _workspace(data)
    df = weekly_metrics(lake, settings)
    timings = {}
    t = time.perf_counter()
    teams = team_weekly(df, settings.privacy.min_group_size)
    timings["team_weekly_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    week = sorted(teams["week"].unique())[-2]
    _ = teams[(teams["team"] == teams["team"].iloc[0]) & (teams["week"] <= week)]
    _ = teams[teams["week"] == week].sort_values("customer_share")
    timings["team_filters_ms"] = (time.perf_counter() - t) * 1000
    return timings


def audit_rankings(data: Path, **_) -> dict:
    from timeaudit.analysis import audit
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.core.weeks import weeks_ending

    lake, settings = _workspace(data)
    a = open_analysis(lake, settings)
    scope = audit.open_scope(a, weeks_ending("2026-W47", 4))
    series = audit.meeting_series(a, scope)
    contacts = audit.customer_contacts(a, scope)
    replies = audit.customer_replies(a, scope)
    return {"series": len(series), "customers": len(contacts), "customer_emails": len(replies)}


def report(data: Path, **_) -> dict:
    """`timeaudit report --week 2026-W47 --team Support --format xlsx` as the command runs it, on
    a lake whose derived tables are current (as a sync or import leaves them); bringing them
    up to date first is not timed, and done in a process of its own, as a sync's is: right
    after a full computation in the same process the report took 5.3-5.9 s, in a new one 3.9-4.5 s."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_refresh_derived, args=(str(data), queue))
    proc.start()
    refreshed, refresh_seconds = queue.get()
    proc.join()
    return _timed_report(*_workspace(data)) | {
        "derived_tables_before": refreshed,
        "refresh_seconds_not_timed": refresh_seconds,
    }


def _refresh_derived(data: str, queue) -> None:
    """The derived tables brought up to date; puts (how, seconds) on ``queue``."""
    from datetime import UTC, datetime

    from timeaudit.outputs.refresh import refresh_derived

    t = time.perf_counter()
    how = refresh_derived(*_workspace(Path(data)), datetime.now(UTC)).how
    queue.put((how, time.perf_counter() - t))


def _timed_report(lake, settings) -> dict:
    """The report of the `report` step, timed: the summary, then the workbook."""
    from timeaudit.outputs.derived import weekly_metrics
    from timeaudit.outputs.export import render
    from timeaudit.outputs.summary import build_summary

    t = time.perf_counter()
    metrics = weekly_metrics(lake, settings)
    summary = build_summary(lake, settings, "2026-W47", team="Support", metrics=metrics)
    built = time.perf_counter() - t
    size = len(render(summary, "xlsx"))
    return {"report_seconds": time.perf_counter() - t, "summary_seconds": built, "xlsx_bytes": size}


def baseline(data: Path, **_) -> dict:
    import pandas as pd

    from bench.baseline import weekly_meeting_hours
    from timeaudit.analysis.metrics import open_analysis

    lake, settings = _workspace(data)
    a = open_analysis(lake, settings)
    events = a.con.execute(
        'SELECT person, start, "end", category FROM classified_events '
        "WHERE category IN ('customer', 'admin', 'internal', 'focus')"
    ).df()
    t = time.perf_counter()  # the baseline's own work, without the shared classification
    zones = {p.email: p.timezone or settings.organisation.timezone for p in a.people}
    result = weekly_meeting_hours(events, zones)
    seconds = time.perf_counter() - t
    ours = pd.read_parquet(data.parent / "weekly.parquet")
    merged = ours.merge(result, on=["person", "week"], suffixes=("", "_baseline"))
    diffs = {
        c: float((merged[c] - merged[c + "_baseline"]).abs().max())
        for c in ("customer_meeting_hours", "admin_hours", "internal_meeting_hours", "double_booked_hours")
    }
    return {"aggregation_seconds": seconds, "max_abs_difference_hours": diffs, "person_weeks_compared": len(merged)}


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _floor_seconds(lake) -> tuple[float, int]:
    """The least any weekly figure can cost: open the same snapshot and, in one query, sum each
    person-week's event minutes and count its messages (no rules, no time zones, no overlaps)."""
    t = time.perf_counter()
    con = lake.connect()
    rows = len(con.sql(FLOOR_SQL.read_text()).to_arrow_table())
    con.close()
    return time.perf_counter() - t, rows


def weekly_vs_baseline(data: Path, rounds: int = 5, **_) -> dict:
    """The weekly metrics (classification, days and weeks, as `weekly` times them), the floor
    query and the pandas baseline's aggregation, taken in turn ``rounds`` times (weekly, floor,
    baseline, weekly, ...), so that load from elsewhere on a shared machine falls on all three
    alike; the medians and the median of each round's ratio."""
    from bench.baseline import weekly_meeting_hours
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.outputs.derived import weekly_metrics

    lake, settings = _workspace(data)
    weekly_s, floor_s, baseline_s = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        a = open_analysis(lake, settings)
        person_weeks = len(weekly_metrics(lake, settings, a))
        weekly_s.append(time.perf_counter() - t)
        floor, floor_rows = _floor_seconds(lake)
        floor_s.append(floor)
        events = a.con.execute(
            'SELECT person, start, "end", category FROM classified_events '
            "WHERE category IN ('customer', 'admin', 'internal', 'focus')"
        ).df()
        zones = {p.email: p.timezone or settings.organisation.timezone for p in a.people}
        a.con.close()
        t = time.perf_counter()  # the baseline's own work, without the shared classification
        weekly_meeting_hours(events, zones)
        baseline_s.append(time.perf_counter() - t)
    ratios = [b / w for w, b in zip(weekly_s, baseline_s, strict=True)]
    over_floor = [w / f for w, f in zip(weekly_s, floor_s, strict=True)]
    return {
        "rounds": rounds,
        "person_weeks": person_weeks,
        "floor_rows": floor_rows,
        "weekly_seconds": [round(x, 2) for x in weekly_s],
        "floor_seconds": [round(x, 2) for x in floor_s],
        "baseline_seconds": [round(x, 1) for x in baseline_s],
        "weekly_median_seconds": _median(weekly_s),
        "floor_median_seconds": _median(floor_s),
        "baseline_median_seconds": _median(baseline_s),
        "speedup_median_ratio": _median(ratios),
        "weekly_over_floor_median": _median(over_floor),
    }


REFRESH_SHARE = 0.01  # of the people a sync brings changes for
REFRESH_WEEKS = 2  # the newest weeks those changes fall in: what an incremental sync brings


def _touch_people(lake, share: float, weeks: int, seed: int = 11) -> dict:
    """What a sync touching ``share`` of the people writes: for each of them, one merge per table
    giving every record of their newest ``weeks`` weeks a newer version, a third of the events
    moved by half an hour and a fifth of the messages marked deleted. Returns counts."""
    import random

    import pyarrow.compute as pc

    from timeaudit.core.model import TABLES

    con = lake.connect()
    accounts = [a for (a,) in con.execute("SELECT DISTINCT account FROM events ORDER BY account").fetchall()]
    chosen = random.Random(seed).sample(accounts, max(1, round(len(accounts) * share)))
    listing = ", ".join(f"'{a}'" for a in chosen)
    written = {}
    for table, column in (("events", "start"), ("messages", "ts")):
        columns = ", ".join(f'"{name}"' for name in TABLES[table][1].names)
        written[table] = 0
        for source in lake.sources(table):
            query = (
                f"SELECT {columns} FROM {table} WHERE source = ? AND account IN ({listing}) "
                f"AND {column} >= (SELECT max({column}) FROM {table}) - INTERVAL {7 * weeks} DAY"
            )
            rows = con.sql(query, params=[source]).to_arrow_table()
            newer = pc.add(rows["updated"], pa.scalar(1_000_000, pa.duration("us")))
            rows = rows.set_column(rows.schema.get_field_index("updated"), "updated", newer)
            if table == "events":
                picks = pa.array([i % 3 == 0 for i in range(rows.num_rows)])
                half_hour = pa.scalar(1_800_000_000, pa.duration("us"))
                for name in ("start", "end"):
                    moved = pc.if_else(picks, pc.add(rows[name], half_hour), rows[name])
                    rows = rows.set_column(rows.schema.get_field_index(name), name, moved)
            else:
                gone = pa.array([i % 5 == 0 for i in range(rows.num_rows)])
                rows = rows.set_column(rows.schema.get_field_index("deleted"), "deleted", gone)
            lake.write_arrow(table, source, rows)
            written[table] += rows.num_rows
    con.close()
    return {"people": len(chosen), "records": written}


def refresh(data: Path, **_) -> dict:
    """The derived tables after a sync touching 1% of the people: every table written
    (`timeaudit metrics`), the sync's merges, then the refresh a sync ends with, timed; and the
    refreshed weekly and daily tables and classified records checked against a full computation;
    then the `report` step's report on them (before the full computation)."""
    from datetime import UTC, datetime

    import pandas as pd

    from timeaudit.analysis.classify import CLASSIFIED
    from timeaudit.lake.store import capped_duckdb
    from timeaudit.outputs.derived import DERIVED_DIR, run_duckdb, stored_classification
    from timeaudit.outputs.refresh import refresh_derived

    copy = data.parent / (data.name + "-refresh")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy, ignore=shutil.ignore_patterns(DERIVED_DIR))
    try:
        lake, settings = _workspace(copy)
        now = datetime(END.year, END.month, END.day, 12, tzinfo=UTC)
        t = time.perf_counter()
        first = refresh_derived(lake, settings, now)  # every table, and the lake's change feed on
        full_seconds = time.perf_counter() - t
        assert first.how == "full", first
        t = time.perf_counter()
        touched = _touch_people(lake, REFRESH_SHARE, REFRESH_WEEKS)
        sync_seconds = time.perf_counter() - t
        steps: list[tuple[str, float]] = []
        t = time.perf_counter()
        done = refresh_derived(lake, settings, now, lambda what: steps.append((what, time.perf_counter() - t)))
        seconds = time.perf_counter() - t
        after_sync = _timed_report(lake, settings)  # on the refreshed tables and classified records
        tables = ("weekly_metrics", "daily_metrics")
        refreshed = {n: pd.read_parquet(copy / DERIVED_DIR / n) for n in tables}
        stored, con = stored_classification(lake, settings), capped_duckdb()
        for n in CLASSIFIED:  # set aside: the full computation below replaces them
            con.execute(f"COPY (SELECT * FROM {stored[n]}) TO '{copy}/refreshed-{n}.parquet'")
        t = time.perf_counter()
        run_duckdb(lake, settings, now)
        full_after = time.perf_counter() - t
        equal = {}
        for n in tables:
            full = pd.read_parquet(copy / DERIVED_DIR / n)
            try:
                pd.testing.assert_frame_equal(refreshed[n], full, check_exact=False, rtol=0, atol=1e-6)
                equal[n] = True
            except AssertionError:
                equal[n] = False
        for n in CLASSIFIED:
            equal[n] = _same_rows(copy / f"refreshed-{n}.parquet", copy / DERIVED_DIR / n / "*.parquet")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    return {
        "refresh_seconds": seconds,
        "how": done.how,
        "person_weeks_recomputed": done.person_weeks,
        "sync": touched,
        "sync_write_seconds": sync_seconds,
        # when each step of the refresh began, in s from its start
        "refresh_steps": [(what, round(at, 2)) for what, at in steps],
        "full_seconds_before": full_seconds,
        "full_seconds_after": full_after,
        "equal_to_full": equal,
        "report_after_sync_seconds": after_sync["report_seconds"],
    }


def _same_rows(one: Path, other: Path) -> bool:
    """Whether two Parquet files (or globs) hold the same rows."""
    from timeaudit.lake.store import capped_duckdb

    con = capped_duckdb()
    pairs = ((one, other), (other, one))
    query = "SELECT count(*) FROM (SELECT * FROM read_parquet('{}') EXCEPT ALL SELECT * FROM read_parquet('{}'))"
    return [con.execute(query.format(a, b)).fetchone()[0] for a, b in pairs] == [0, 0]


SPARK_MASTER = "local[2]"
SPARK_CONF = {"spark.driver.memory": "6g"}  # the local executor lives in the driver's JVM


def _derive(engine: str, data: str, out: str, queue) -> None:
    """One engine's derived tables of the lake under ``data`` into ``out``, in a process of
    its own so that its peak memory is its own; puts seconds and peak RSS on ``queue``."""
    from datetime import UTC, datetime

    lake, settings = _workspace(Path(data))
    now = datetime(END.year, END.month, END.day, 12, tzinfo=UTC)
    result: dict = {}
    t = time.perf_counter()
    try:
        if engine == "duckdb":
            from timeaudit.outputs.derived import run_duckdb

            _, names = run_duckdb(lake, settings, now, Path(out))
        else:
            from timeaudit.outputs.spark import open_session, run_metrics

            spark = open_session(SPARK_MASTER, SPARK_CONF)
            result["startup_seconds"] = time.perf_counter() - t
            try:
                _, names = run_metrics(spark, data, settings, now, out)
                result["jvm_peak_rss_mb"] = _jvm_peak_mb()
            finally:
                spark.stop()
        result["tables"] = len(names)
    except Exception as e:  # reported in the step's result, as run() does for a whole step
        result["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    result["seconds"] = time.perf_counter() - t
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def _jvm_peak_mb() -> float | None:
    """Peak RSS (VmHWM, Linux) of the JVM PySpark started: a child of this process, so not in
    its own ru_maxrss."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        if child.name() == "java":
            status = Path(f"/proc/{child.pid}/status")
            for line in status.read_text().splitlines() if status.exists() else []:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return None


def _weekly_difference(a: Path, b: Path) -> dict:
    """weekly_metrics of two engines: person-weeks compared, text and counts equal, the
    largest difference of any float."""
    import pandas as pd

    left, right = pd.read_parquet(a), pd.read_parquet(b)
    keys = ["week", "person"]
    merged = left.merge(right, on=keys, how="outer", suffixes=("", "_b"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    floats = [c for c in left.columns if c not in keys and pd.api.types.is_float_dtype(left[c])]
    exact = [c for c in left.columns if c not in keys and c not in floats]
    unequal = sum(int((both[c].astype(str) != both[c + "_b"].astype(str)).sum()) for c in exact)
    largest, where = 0.0, None
    for c in floats:
        x, y = both[c], both[c + "_b"]
        gap = float("inf") if (x.isna() != y.isna()).any() else float((x - y).abs().max()) if len(both) else 0.0
        if gap > largest:
            largest, where = gap, c
    return {
        "rows_compared": len(both),
        "rows_in_one_only": int((merged["_merge"] != "both").sum()),
        "unequal_text_or_counts": unequal,
        "max_abs_difference": largest,
        "max_abs_difference_in": where,
        "equal_to_1e-6": len(both) == len(left) == len(right) and unequal == 0 and largest <= 1e-6,
    }


def _result_of(proc, queue) -> dict:
    """What the process puts on the queue, or an error if it dies first (killed for memory)."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=5)
        except queues.Empty:
            if not proc.is_alive():
                return {"error": f"the process ended with exit code {proc.exitcode} and no result"}


def spark(data: Path, **_) -> dict:
    """Every derived table (`timeaudit metrics`) with DuckDB, then with Spark local[2], each in
    its own process, into temporary folders beside the data folder (never <data>/derived);
    weekly_metrics of the two compared."""
    import multiprocessing as mp
    import tempfile

    ctx = mp.get_context("spawn")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="derived-", dir=data.parent) as tmp:
        for engine in ("duckdb", "spark"):
            queue = ctx.Queue()
            proc = ctx.Process(target=_derive, args=(engine, str(data), f"{tmp}/{engine}", queue))
            proc.start()
            runs[engine] = _result_of(proc, queue)
            proc.join()
        failed = {e: r["error"] for e, r in runs.items() if "error" in r}
        if failed:
            return {"error": "; ".join(f"{e}: {msg}" for e, msg in failed.items()), "runs": runs}
        weekly = _weekly_difference(Path(tmp, "duckdb", "weekly_metrics"), Path(tmp, "spark", "weekly_metrics"))
    duck, on_spark = runs["duckdb"], runs["spark"]
    return {
        "tables": duck["tables"],
        "duckdb_seconds": duck["seconds"],
        "duckdb_peak_rss_mb": duck["peak_rss_mb"],
        "spark_master": SPARK_MASTER,
        "spark_conf": SPARK_CONF,
        "spark_seconds": on_spark["seconds"],
        "spark_startup_seconds": on_spark["startup_seconds"],
        "spark_driver_peak_rss_mb": on_spark["peak_rss_mb"],
        "spark_jvm_peak_rss_mb": on_spark["jvm_peak_rss_mb"],
        "spark_note": "the JVM is a child process of the Python driver; its peak is not in the driver's RSS",
        "spark_over_duckdb_seconds": on_spark["seconds"] / duck["seconds"],
        "weekly": weekly,
    }


def hostile(data: Path, **_) -> dict:
    from bench.hostile import hostile as run_hostile

    return run_hostile(data)


STEPS = {
    "generate": generate,
    "exports": exports,
    "ics_ingest": ics_ingest,
    "mbox_ingest": mbox_ingest,
    "compact": compact,
    "incremental": incremental,
    "forget": forget,
    "browser": browser,
    "weekly": weekly,
    "team_page": team_page,
    "audit": audit_rankings,
    "report": report,
    "baseline": baseline,
    "weekly_vs_baseline": weekly_vs_baseline,
    "refresh": refresh,
    "spark": spark,
    "hostile": hostile,
}


def run(name: str, data: str, people: int, weeks: int, queue) -> None:
    t = time.perf_counter()
    try:
        detail = STEPS[name](Path(data), people=people, weeks=weeks)
    except Exception as e:  # reported in the table; the parent would otherwise wait for ever
        detail = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"step": name, "seconds": seconds, "peak_rss_mb": peak_mb, **detail})
