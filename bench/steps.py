"""Each benchmark step, run in a fresh process so its peak memory is its own."""

from __future__ import annotations

import resource
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa

from timeaudit.outputs.export import CHROMIUM_FLAGS

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


PAGES = {"/": "My week", "/team": "Team", "/wasters": "Time wasters", "/customers": "Customers"}
WAIT_MS = 900_000  # a cold page of the 1,000-person organisation computes its tables first
VIEWPORT = {"width": 1400, "height": 1000}


def _serve(data: Path):
    """`timeaudit dashboard` on the data at a free loopback port, waited for; (process, URL)."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "TIMEAUDIT_CONFIG"}
    command = ["-m", "timeaudit.cli", "dashboard", "--data", str(data), "--host", "127.0.0.1", "--port", str(port)]
    with _server_log(data).open("wb") as log:  # the child keeps its own copy of the file
        # Its own process group, so that _stop can kill the Streamlit server too if the CLI hangs.
        proc = subprocess.Popen(
            [sys.executable, *command], env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    raise RuntimeError("the dashboard did not start within 120 s")


def _server_log(data: Path) -> Path:
    return data.parent / "dashboard.log"


def _wait_until_ready(data: Path, timeout: float = 600) -> float:
    """Wait for the server to say every page's figures are ready (dashboard/server.py works them
    out as it starts, on the same cores the browser uses); seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if b"figures are ready" in _server_log(data).read_bytes():
            return time.perf_counter() - t
        time.sleep(0.5)
    raise RuntimeError(f"the dashboard did not say its figures were ready within {timeout:.0f} s")


def _stop(proc) -> None:
    """End the CLI, which stops the Streamlit server it runs; kill both if that hangs (a server
    left serving holds its tables in memory after the step)."""
    import os
    import signal
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and everything under it (the CLI and its Streamlit server)."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


# Marks, in ms from navigation, of the steps before the first chart: Streamlit's websocket
# open (its scripts loaded and started), the page title drawn (the page script's first output
# shown), the chart's element made, plotly.js fetched and run, the chart's SVG drawn.
_MARKS_JS = """
window.__timeauditMarks = {};
const mark = (name) => { if (!(name in window.__timeauditMarks)) window.__timeauditMarks[name] = performance.now(); };
const Socket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Socket(...args);
  socket.addEventListener("open", () => mark("websocket"));
  return socket;
};
window.WebSocket.prototype = Socket.prototype;
Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
document.addEventListener("load", (e) => { if (/plotly/.test(e.target.src || "")) mark("plotly"); }, true);
new MutationObserver(() => {
  if (document.querySelector("h1")) mark("title");
  if (document.querySelector("div.timeaudit-chart, .js-plotly-plot")) mark("chart");
  if (document.querySelector(".js-plotly-plot .main-svg")) mark("drawn");
}).observe(document, { childList: true, subtree: true });
"""
PHASES = ("websocket", "title", "chart", "plotly", "drawn")


def _first_chart(browser, url: str, context=None) -> tuple[float, dict[str, float]]:
    """From navigation until the page's first Plotly chart has drawn its SVG, in a fresh tab
    (a new Streamlit session: the script runs again, the server's caches stay warm), and the
    browser's own marks of the steps on the way (``PHASES``, ms from navigation).

    ``browser.new_page`` opens the tab in a new browser context, which has an empty HTTP cache:
    each load is a first visit that fetches all of Streamlit's scripts again. Given a
    ``context``, the tab opens in it and finds what earlier tabs there left in its cache."""
    page = context.new_page() if context else browser.new_page(viewport=VIEWPORT)
    page.add_init_script(_MARKS_JS)
    t = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=WAIT_MS)
    ms = (time.perf_counter() - t) * 1000
    marks = page.evaluate("window.__timeauditMarks")
    page.close()
    return ms, marks


def _first_chart_ms(browser, url: str, context=None) -> float:
    return _first_chart(browser, url, context)[0]


def _median_phases(marks: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    return {p: round(statistics.median(m[p] for m in marks)) for p in PHASES if all(p in m for m in marks)}


def browser(data: Path, **_) -> dict:
    """The team page in headless Chromium: a cold first load as the server starts, then, once the
    server says every page's figures are ready, the median of 5 warm loads, each a first visit
    (a new browser context; the server's caches warm), and beside it the median of 5 loads with
    the browser's cache warm too; then every page once, checked for Streamlit exceptions and
    script errors."""
    import statistics

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    proc, url = _serve(data)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_FLAGS)
            cold = _first_chart_ms(b, f"{url}/team")  # the first visitor, as the server starts
            ready_after = cold / 1000 + _wait_until_ready(data)
            warm, marks = zip(*(_first_chart(b, f"{url}/team") for _ in range(5)), strict=True)
            # The same, each tab in one context after a first load there: a returning visitor
            # whose browser has Streamlit's scripts cached. Reported beside, not instead.
            same = b.new_context(viewport=VIEWPORT)
            _first_chart_ms(b, f"{url}/team", same)
            cached = [_first_chart_ms(b, f"{url}/team", same) for _ in range(5)]
            same.close()
            pages = {}
            for path, heading in PAGES.items():
                page = b.new_page(viewport={"width": 1400, "height": 1800})
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                t = time.perf_counter()
                page.goto(url + path, wait_until="commit")
                try:  # a page that never draws is a finding, not a reason to lose the other figures
                    page.get_by_role("heading", name=heading).first.wait_for(timeout=WAIT_MS)
                    page.locator(".js-plotly-plot .main-svg").first.wait_for(state="visible", timeout=WAIT_MS)
                    first_chart_ms = (time.perf_counter() - t) * 1000
                except PlaywrightTimeout:
                    first_chart_ms = None
                page.wait_for_timeout(1500)  # let the remaining charts settle
                pages[path] = {
                    "first_chart_ms": round(first_chart_ms) if first_chart_ms is not None else "timed out",
                    "charts": page.locator(".js-plotly-plot").count(),
                    "exceptions": page.locator('[data-testid="stException"]').count(),
                    "script_errors": len(errors),
                    "drawn": first_chart_ms is not None,
                }
                page.close()
            b.close()
        server_mb = _rss_mb(proc.pid)
    finally:
        _stop(proc)
    return {
        "team_cold_ms": round(cold),
        # the server working out every page's figures as it starts (the loads below come after)
        "ready_after_seconds": round(ready_after, 1),
        "team_warm_ms": [round(x) for x in warm],
        "team_median_ms": statistics.median(warm),
        # where the median load's time goes: each step's median, in ms from navigation
        "team_phases_ms": _median_phases(list(marks)),
        "team_cached_ms": [round(x) for x in cached],
        "team_cached_median_ms": statistics.median(cached),
        "pages": pages,
        "dashboard_rss_mb": round(server_mb),  # the server's memory after the pass (not a peak)
    }


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
    the lake scanned (bytes, and Parquet decoded) for the address."""
    import pyarrow.parquet as pq

    from timeaudit.lake.personal_data import forget_person

    copy, lake = _lake_copy(data, "forget")
    con = lake.connect()
    people = [a for (a,) in con.execute("SELECT DISTINCT account FROM events ORDER BY account").fetchall()]
    con.close()
    person = people[len(people) // 2]
    started = time.perf_counter()
    report = forget_person(lake, person)
    seconds = time.perf_counter() - started
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
    shutil.rmtree(copy)
    if holding:
        raise AssertionError(f"files still holding the person: {holding[:5]}")
    return {
        "forget_seconds": seconds,
        "files_holding_person_after": len(holding),
        "tables": {t: vars(r) for t, r in report.tables.items()},
    }


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
    from timeaudit.outputs.export import render
    from timeaudit.outputs.summary import build_summary

    lake, settings = _workspace(data)
    size = len(render(build_summary(lake, settings, "2026-W47", team="Support"), "xlsx"))
    return {"xlsx_bytes": size}


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
