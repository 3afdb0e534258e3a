"""The lake on Delta tables: one commit per write, the newer version wins, deletions delete,
readers hold one snapshot beside writers, compaction and an old lake's conversion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow.parquet as pq
import pytest

from timeaudit.core.errors import StoreError
from timeaudit.lake.store import Lake, records_to_arrow

from records import event, utc

ME = "me@northwind.com"
T0, T1 = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)


def live_rows(lake: Lake, columns: str = "id, status") -> list[tuple]:
    return lake.connect().execute(f"SELECT {columns} FROM events ORDER BY id").fetchall()


def version(lake: Lake, table: str = "events") -> int:
    dt = lake.table(table)
    return -1 if dt is None else dt.version()


def test_a_write_is_one_commit_in_its_source_partition(tmp_path):
    lake = Lake(tmp_path)
    assert lake.write_batch("events", "google-calendar", [event(ME, T0, T1, id="a")]) == version(lake) == 1
    (path,) = lake.files("events")
    assert path.parent.parent.name == "source=google-calendar" and path.parent.name.startswith("bucket=")
    assert (lake.lake_dir / "events" / "_delta_log").is_dir()
    assert live_rows(lake, "source, account, id") == [("google-calendar", ME, "a")]


def test_newer_version_replaces_the_old_one(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", updated=utc(2026, 1, 1))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2))])
    # An older version arriving later does not win.
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="confirmed", updated=utc(2025, 12, 1))])
    assert live_rows(lake) == [("a", "tentative")]


def test_same_updated_time_later_write_wins(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative")])
    assert live_rows(lake) == [("a", "tentative")]


def test_a_deletion_deletes_the_record_and_keeps_no_row(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event(ME, T0, T1, id="b")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", deleted=True, updated=utc(2026, 2, 1))])
    assert live_rows(lake) == [("b", "confirmed")]
    rows = [pq.read_table(p) for p in lake.files("events")]
    assert sum(t.num_rows for t in rows) == 1 and not any(any(t["deleted"].to_pylist()) for t in rows)


def test_an_older_deletion_leaves_a_newer_record(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", updated=utc(2026, 2, 1))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", deleted=True, updated=utc(2026, 1, 1))])
    assert live_rows(lake) == [("a", "confirmed")]


def test_same_id_in_two_accounts_or_sources_are_two_records(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event("ann@northwind.com", T0, T1, id="a")])
    lake.write_batch("events", "other", [event(ME, T0, T1, id="a")])
    assert len(live_rows(lake)) == 3


def test_a_record_repeated_in_one_batch_lands_once_newest_first(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch(
        "events",
        "test",
        [
            event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2)),
            event(ME, T0, T1, id="a", status="cancelled", updated=utc(2026, 1, 1)),
            event(ME, T0, T1, id="b", status="cancelled"),
            event(ME, T0, T1, id="b", status="tentative"),  # the later of two equal versions
        ],
    )
    assert sum(pq.read_metadata(p).num_rows for p in lake.files("events")) == 2
    assert live_rows(lake) == [("a", "tentative"), ("b", "tentative")]


def operations(lake: Lake, table: str = "events") -> list[str]:
    return [c["operation"] for c in reversed(lake.table(table).history())]


def test_a_write_of_keys_the_table_lacks_is_an_append_and_one_it_holds_a_merge(tmp_path):
    lake = Lake(tmp_path)
    others = [event(f"p{i}@northwind.com", T0, T1, id="a") for i in range(40)]  # every bucket holds some
    lake.write_batch("events", "test", others)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 12, 1))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="b", deleted=True)])  # unknown: nothing to do
    assert operations(lake) == ["CREATE TABLE", "WRITE", "WRITE", "MERGE"]
    rows = live_rows(lake, "account, id, status")
    assert len(rows) == 41 and [r for r in rows if r[0] == ME] == [(ME, "a", "tentative")]


def test_a_table_made_with_sixteen_buckets_keeps_them(tmp_path):
    from deltalake import DeltaTable

    from timeaudit.lake.store import BUCKETS, OLD_BUCKETS, account_bucket, stored_schema, table_buckets

    lake = Lake(tmp_path)
    DeltaTable.create(lake.table_path("events"), stored_schema("events"), partition_by=["source", "bucket"])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 12, 1))])
    assert table_buckets(lake.table("events")) == OLD_BUCKETS
    (path,) = lake.files("events")
    assert path.parent.name == f"bucket={account_bucket(ME, OLD_BUCKETS)}"
    assert live_rows(lake) == [("a", "tentative")]
    new = Lake(tmp_path / "new")
    new.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    assert table_buckets(new.table("events")) == BUCKETS


def test_a_regenerated_source_replaces_its_partition_in_one_commit(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "demo", [event(ME, T0, T1, id="old")])
    lake.write_batch("events", "other", [event(ME, T0, T1, id="kept")])
    first = records_to_arrow("events", [event(ME, T0, T1, id="a", updated=utc(2026, 1, 1)), event(ME, T0, T1, id="b")])
    again = records_to_arrow("events", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2))])
    before = version(lake)
    assert lake.replace_source("events", "demo", [first, again]) == 2
    assert version(lake) == before + 1
    assert live_rows(lake) == [("a", "tentative"), ("b", "confirmed"), ("kept", "confirmed")]


def test_a_lone_deletion_deletes_nothing(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="gone", deleted=True), event(ME, T0, T1, id="kept")])
    lake.write_batch("events", "other", [event(ME, T0, T1, id="x")])
    assert sorted(live_rows(lake, "source, id")) == [("other", "x"), ("test", "kept")]


def test_failing_record_stream_writes_nothing(tmp_path):
    lake = Lake(tmp_path)

    def records():
        yield event(ME, T0, T1, id="a")
        raise RuntimeError("connector died")

    with pytest.raises(RuntimeError):
        lake.write_batch("events", "test", records())
    assert lake.files("events") == [] and version(lake) == -1


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from records import event, message, utc
    from timeaudit.lake.store import Lake
    lake = Lake({root!r})
    batch = [event("me@northwind.com", utc(2026, 11, 17, 10), utc(2026, 11, 17, 11), id=str(i)) for i in range(20000)]
    print("ready", flush=True)
    while True:
        lake.write_batch("events", "test", batch)
    """
)


def test_killed_writer_leaves_only_whole_commits(tmp_path):
    tests_dir = os.path.dirname(__file__)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(tests=tests_dir, root=str(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    lake = Lake(tmp_path)
    deadline = time.monotonic() + 60
    while version(lake) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert version(lake) >= 3
    assert sum(pq.read_metadata(f).num_rows for f in lake.files("events")) == 20000  # every file whole
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall() == [(20000,)]


def test_reader_keeps_working_while_a_writer_commits(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="seed")])
    stop = threading.Event()
    written = []

    def writer():
        i = 0
        while not stop.is_set() and i < 100:
            lake.write_batch("events", "test", [event(ME, T0, T1, id=f"w{i}")])
            written.append(i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    counts = []
    try:
        for _ in range(30):
            counts.append(lake.connect().execute("SELECT count(*) FROM events").fetchall()[0][0])
    finally:
        stop.set()
        thread.join()
    assert counts == sorted(counts)  # never goes backwards, never fails
    assert counts[0] >= 1
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall()[0][0] == len(written) + 1


def test_threads_commit_concurrently_and_none_is_lost(tmp_path):
    lake = Lake(tmp_path)

    def writer(n: int) -> None:
        for k in range(4):
            lake.write_batch("events", "test", [event(f"p{n}@northwind.com", T0, T1, id=f"e{k}")])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall() == [(24,)]


def test_open_reader_sees_a_consistent_snapshot(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    con = lake.connect()
    lake.write_batch("events", "test", [event(ME, T0, T1, id="b")])
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall() == [(2,)]


def test_compaction_keeps_the_same_live_records_and_an_open_reader_its_files(tmp_path):
    lake = Lake(tmp_path)
    for i in range(5):
        lake.write_batch("events", "test", [event(ME, T0, T1, id=f"e{i}", updated=utc(2026, 1, 1 + i))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="e4", status="tentative", updated=utc(2026, 2, 1))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="e0", deleted=True, updated=utc(2026, 3, 1))])
    before = live_rows(lake, "id, updated")
    reading = lake.connect()  # a reader holding the snapshot before compaction
    files_before = len(lake.files("events"))
    assert files_before > 1
    assert lake.compact("events") == (files_before, 1)
    assert live_rows(lake, "id, updated") == before
    # The vacuum keeps what a snapshot of the last hour uses: the open reader still reads.
    assert reading.execute("SELECT id, updated FROM events ORDER BY id").fetchall() == before
    assert lake.compact("events") == (1, 1)


def test_party_keys_are_stored_and_the_distinct_lists_read_from_the_snapshot(tmp_path):
    lake = Lake(tmp_path)
    team = ["ann@northwind.com", "bo@acme.com"]
    meeting = [event(ME, T0, T1, id=f"m{i}", with_=team, organizer=ME) for i in range(3)]
    lake.write_batch("events", "test", [*meeting, event(ME, T0, T1, id="solo")])
    con = lake.connect()
    lists = con.execute("SELECT party_key, addresses FROM event_party_lists").fetchall()
    assert sorted(len(addresses) for _, addresses in lists) == [1, 3]  # three copies of one list, and the solo one
    keys = con.execute("SELECT id, party_key FROM events ORDER BY id").fetchall()
    assert len({key for id_, key in keys if id_.startswith("m")}) == 1
    assert {key for _, key in keys} == {key for key, _ in lists}
    assert pq.read_schema(lake.files("events")[0]).field("party_key").type == "int64"


def _classified(lake: Lake) -> list[tuple]:
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.core.config import Settings

    con = open_analysis(lake, Settings()).con
    return con.execute("SELECT id, category, reason FROM classified_events ORDER BY id").fetchall()


def test_cursor_round_trip_and_clear(tmp_path):
    lake = Lake(tmp_path)
    assert lake.read_cursor("google-calendar", ME) is None
    lake.write_cursor("google-calendar", ME, {"sync_token": "abc"})
    assert lake.read_cursor("google-calendar", ME) == {"sync_token": "abc"}
    lake.clear_cursor("google-calendar", ME)
    assert lake.read_cursor("google-calendar", ME) is None


def test_forget_removes_one_account_and_rewrites_only_its_files(tmp_path):
    lake = Lake(tmp_path)
    other = "ann@northwind.com"
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event(other, T0, T1, id="a")])
    lake.write_batch("events", "elsewhere", [event(other, T0, T1, id="b")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="c")])
    (untouched,) = lake.files("events", "elsewhere")
    lake.write_cursor("test", ME, {"token": "x"})
    before = untouched.stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "forget", "--person", ME.upper(), "--yes", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Removed 2 calendar events" in result.stdout
    assert live_rows(lake, "account, id") == [(other, "a"), (other, "b")]
    assert lake.files("events", "elsewhere") == [untouched] and untouched.stat().st_mtime_ns == before
    on_disk = sorted((lake.lake_dir / "events").rglob("*.parquet"))
    assert on_disk == lake.files("events")  # the vacuum left no file outside the snapshot
    assert lake.read_cursor("test", ME) is None


def test_analysis_memory_is_capped_and_a_bad_cap_is_named(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    con = lake.connect()
    (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit.endswith("MiB") and float(limit.split()[0]) < 1000
    monkeypatch.setenv("TIMEAUDIT_MEMORY_LIMIT", "3GB")
    assert lake.connect().execute("SELECT current_setting('memory_limit')").fetchone()[0].endswith("GiB")
    monkeypatch.setenv("TIMEAUDIT_MEMORY_LIMIT", "lots")
    with pytest.raises(StoreError, match="TIMEAUDIT_MEMORY_LIMIT='lots'.*e.g. 2GB"):
        lake.connect()


def _old_format_lake(root) -> None:
    """A lake as timeaudit wrote it before Delta tables: batch files, a tombstone, schema.json."""
    folder = root / "lake" / "events" / "source=test"
    folder.mkdir(parents=True)
    first = records_to_arrow("events", [event(ME, T0, T1, id="a"), event(ME, T0, T1, id="b", updated=utc(2026, 1, 1))])
    later = records_to_arrow(
        "events",
        [
            event(ME, T0, T1, id="a", deleted=True, updated=utc(2026, 12, 1)),
            event(ME, T0, T1, id="b", status="tentative", updated=utc(2026, 1, 2)),
        ],
    )
    pq.write_table(first, folder / "batch-20260101T000000000000-aaaaaaaa.parquet")
    pq.write_table(later, folder / "batch-20260102T000000000000-bbbbbbbb.parquet")
    (root / "lake" / "party_lists" / "events").mkdir(parents=True)
    (root / "lake" / "schema.json").write_text('{"schema_version": 1}')


def test_an_old_lake_asks_for_upgrade_and_upgrade_converts_it(tmp_path):
    _old_format_lake(tmp_path)
    lake = Lake(tmp_path)
    with pytest.raises(StoreError, match="timeaudit upgrade"):
        lake.connect()
    with pytest.raises(StoreError, match="timeaudit upgrade"):
        lake.write_batch("events", "test", [event(ME, T0, T1, id="c")])

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "timeaudit.cli", *args, "--data", str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    refused = cli("compact")
    assert refused.returncode == 2 and "timeaudit upgrade" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    done = cli("upgrade")
    assert done.returncode == 0, done.stderr
    assert "events: 2 batch files -> Delta table with 1 records (test)" in done.stdout
    assert live_rows(lake) == [("b", "tentative")]
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == ["events"]
    assert "nothing to do" in cli("upgrade").stdout
