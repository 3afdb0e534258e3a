"""The lake: atomic batches, latest version wins, tombstones, readers beside writers."""

from __future__ import annotations

import json
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
from timeaudit.core.model import SCHEMA_VERSION
from timeaudit.lake.party_lists import party_lists_of
from timeaudit.lake.store import Lake, sql_string

from records import event, message, utc

ME = "me@northwind.com"
T0, T1 = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)


def live_rows(lake: Lake, columns: str = "id, status") -> list[tuple]:
    return lake.connect().execute(f"SELECT {columns} FROM events ORDER BY id").fetchall()


def parquet_files(lake: Lake) -> list:
    return sorted((lake.lake_dir / "events").rglob("*.parquet*"))


def test_batch_lands_in_its_source_partition(tmp_path):
    lake = Lake(tmp_path)
    path = lake.write_batch("events", "google-calendar", [event(ME, T0, T1, id="a")])
    assert path.parent.name == "source=google-calendar"
    assert live_rows(lake, "source, account, id") == [("google-calendar", ME, "a")]
    assert json.loads((lake.lake_dir / "schema.json").read_text()) == {"schema_version": SCHEMA_VERSION}


def test_newer_version_replaces_the_old_one(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", updated=utc(2026, 1, 1))])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2))])
    # An older version arriving later does not win.
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="confirmed", updated=utc(2025, 12, 1))])
    assert live_rows(lake) == [("a", "tentative")]


def test_same_updated_time_later_ingest_wins(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", status="tentative")])
    assert live_rows(lake) == [("a", "tentative")]


def test_tombstone_hides_the_record(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event(ME, T0, T1, id="b")])
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a", deleted=True, updated=utc(2026, 2, 1))])
    assert live_rows(lake) == [("b", "confirmed")]


def test_same_id_in_two_accounts_or_sources_are_two_records(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event("ann@northwind.com", T0, T1, id="a")])
    lake.write_batch("events", "other", [event(ME, T0, T1, id="a")])
    assert len(live_rows(lake)) == 3


def test_a_record_repeated_in_one_batch_lands_once_newest_first(tmp_path):
    # A source held in one file is read without ranking versions, which relies on this.
    lake = Lake(tmp_path)
    path = lake.write_batch(
        "events",
        "test",
        [
            event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2)),
            event(ME, T0, T1, id="a", status="cancelled", updated=utc(2026, 1, 1)),
            event(ME, T0, T1, id="b", status="cancelled"),
            event(ME, T0, T1, id="b", status="tentative"),  # the later of two equal versions
        ],
    )
    assert pq.read_table(path).num_rows == 2
    assert live_rows(lake) == [("a", "tentative"), ("b", "tentative")]


def test_a_regenerated_source_is_one_file_with_each_record_once(tmp_path):
    from timeaudit.lake.store import records_to_arrow

    lake = Lake(tmp_path)
    first = records_to_arrow("events", [event(ME, T0, T1, id="a", updated=utc(2026, 1, 1)), event(ME, T0, T1, id="b")])
    again = records_to_arrow("events", [event(ME, T0, T1, id="a", status="tentative", updated=utc(2026, 1, 2))])
    assert lake.replace_source("events", "demo", [first, again]) == 2
    assert len(lake.files("events")) == 1
    assert live_rows(lake) == [("a", "tentative"), ("b", "confirmed")]


def test_a_lone_tombstone_hides_nothing_and_is_not_shown(tmp_path):
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
    assert parquet_files(lake) == []


def test_write_failing_halfway_leaves_no_partial_file(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    real_write = pq.write_table

    def half_write(table, where, **kwargs):
        real_write(table.slice(0, 1), where, **kwargs)
        with open(where, "r+b") as f:
            f.truncate(100)  # a torn file, as a crash would leave it
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError):
        lake.write_batch("events", "test", [event(ME, T0, T1, id=f"b{i}") for i in range(100)])
    assert [p.name for p in parquet_files(lake)] == [p.name for p in lake.files("events")]
    assert len(lake.files("events")) == 1
    assert live_rows(lake) == [("a", "confirmed")]


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


def test_killed_writer_leaves_only_whole_batches(tmp_path):
    tests_dir = os.path.dirname(__file__)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(tests=tests_dir, root=str(tmp_path))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    lake = Lake(tmp_path)
    deadline = time.monotonic() + 30
    while len(lake.files("events")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = lake.files("events")
    assert len(files) >= 3
    for f in files:  # every visible batch is whole
        assert pq.read_metadata(f).num_rows == 20000
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall() == [(20000,)]


def test_reader_keeps_working_while_a_writer_adds_batches(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="seed")])
    stop = threading.Event()
    written = []

    def writer():
        i = 0
        while not stop.is_set() and i < 200:
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


def test_open_reader_sees_a_consistent_snapshot(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    con = lake.connect()
    lake.write_batch("events", "test", [event(ME, T0, T1, id="b")])
    assert con.execute("SELECT count(*) FROM events").fetchall() == [(1,)]
    assert lake.connect().execute("SELECT count(*) FROM events").fetchall() == [(2,)]


def test_schema_mismatch_asks_for_a_rebuild(tmp_path):
    lake = Lake(tmp_path)
    lake.write_batch("events", "test", [event(ME, T0, T1, id="a")])
    (lake.lake_dir / "schema.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(StoreError, match="rebuild"):
        lake.connect()
    with pytest.raises(StoreError, match="rebuild"):
        lake.write_batch("events", "test", [event(ME, T0, T1, id="b")])


def test_compaction_keeps_the_same_live_records(tmp_path):
    lake = Lake(tmp_path)
    for i in range(5):
        lake.write_batch(
            "events", "test", [event(ME, T0, T1, id=f"e{i}"), event(ME, T0, T1, id="same", updated=utc(2026, 1, 1 + i))]
        )
    lake.write_batch("events", "test", [event(ME, T0, T1, id="e0", deleted=True, updated=utc(2026, 3, 1))])
    before = live_rows(lake, "id, updated")
    assert lake.compact("events") == (6, 1)
    assert live_rows(lake, "id, updated") == before
    assert lake.compact("events") == (1, 1)


def test_each_batch_keeps_its_distinct_party_lists_beside_it(tmp_path):
    lake = Lake(tmp_path)
    team = ["ann@northwind.com", "bo@acme.com"]
    meeting = [event(ME, T0, T1, id=f"m{i}", with_=team, organizer=ME) for i in range(3)]
    path = lake.write_batch("events", "test", [*meeting, event(ME, T0, T1, id="solo")])
    lists = pq.read_table(lake.party_lists_path("events", path)).to_pylist()
    assert sorted(len(row["addresses"]) for row in lists) == [1, 3]  # three copies of one list, and the solo one
    keys = lake.connect().execute("SELECT id, party_key FROM events ORDER BY id").fetchall()
    assert len({key for id_, key in keys if id_.startswith("m")}) == 1
    assert {key for _, key in keys} == {row["party_key"] for row in lists}


def _classified(lake: Lake) -> list[tuple]:
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.core.config import Settings

    con = open_analysis(lake, Settings()).con
    return con.execute("SELECT id, category, reason FROM classified_events ORDER BY id").fetchall()


def test_a_lake_from_before_party_keys_reads_the_same_and_compaction_brings_it_up_to_date(tmp_path):
    lake = Lake(tmp_path)
    path = lake.write_batch(
        "events",
        "test",
        [
            event(ME, T0, T1, id="customer", with_=["bo@acme.com"]),
            event(ME, T0, T1, id="internal", with_=["ann@northwind.com"]),
            event(ME, T0, T1, id="solo"),
        ],
    )
    expected = _classified(lake)
    # As an older timeaudit wrote it: no key in the file, no lists beside it.
    pq.write_table(pq.read_table(path).drop_columns(["party_key"]), path)
    lake.party_lists_path("events", path).unlink()
    assert _classified(lake) == expected
    assert lake.outdated("events") == 1
    assert lake.compact("events") == (1, 1)
    assert lake.outdated("events") == 0
    (updated,) = lake.files("events")
    assert "party_key" in pq.read_schema(updated).names
    assert lake.party_lists_path("events", updated).exists()
    assert _classified(lake) == expected
    assert lake.compact("events") == (1, 1)
    assert lake.files("events") == [updated]  # up to date: left as it is


def test_compaction_removes_the_party_lists_of_merged_batches(tmp_path):
    lake = Lake(tmp_path)
    for i in range(3):
        lake.write_batch("events", "test", [event(ME, T0, T1, id=f"e{i}", with_=[f"p{i}@acme.com"])])
    lake.compact("events")
    (merged,) = lake.files("events")
    kept = sorted((lake.lake_dir / "party_lists" / "events").rglob("*.parquet"))
    assert kept == [lake.party_lists_path("events", merged)]
    assert pq.read_table(kept[0]).num_rows == 3


def test_cursor_round_trip_and_clear(tmp_path):
    lake = Lake(tmp_path)
    assert lake.read_cursor("google-calendar", ME) is None
    lake.write_cursor("google-calendar", ME, {"sync_token": "abc"})
    assert lake.read_cursor("google-calendar", ME) == {"sync_token": "abc"}
    lake.clear_cursor("google-calendar", ME)
    assert lake.read_cursor("google-calendar", ME) is None


def test_analysis_survives_a_compaction_between_listing_and_reading(tmp_path, monkeypatch):
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.core.config import Settings

    lake = Lake(tmp_path)
    for i in range(3):
        lake.write_batch("events", "test", [event(ME, T0, T1, id=f"e{i}")])
    stale = lake.files("events")
    real_files = Lake.files
    calls = {"n": 0}

    def files_listed_before_compaction(self, table):
        if table != "events":
            return real_files(self, table)
        calls["n"] += 1
        return stale if calls["n"] == 1 else real_files(self, table)

    lake.compact("events")  # the files listed before are gone now
    monkeypatch.setattr(Lake, "files", files_listed_before_compaction)
    analysis = open_analysis(lake, Settings())
    assert analysis.con.execute("SELECT count(*) FROM classified_events").fetchall() == [(3,)]
    assert calls["n"] == 2  # the stale listing failed to read, the second one read the compacted file


def test_forget_removes_one_account_and_rewrites_only_its_files(tmp_path):
    import subprocess
    import sys

    lake = Lake(tmp_path)
    other = "ann@northwind.com"
    mixed = lake.write_batch("events", "test", [event(ME, T0, T1, id="a"), event(other, T0, T1, id="a")])
    untouched = lake.write_batch("events", "test", [event(other, T0, T1, id="b")])
    only_me = lake.write_batch("events", "test", [event(ME, T0, T1, id="c")])
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
    assert untouched.stat().st_mtime_ns == before
    assert mixed.exists() and not only_me.exists()
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


def test_party_lists_made_in_memory_are_the_ones_made_from_the_file(tmp_path):
    """write_arrow makes a batch's lists from the batch in memory (timeaudit.lake.party_lists);
    compaction and old files make them with party_lists_<table>.sql: the same lists."""
    from timeaudit.lake.sql import read_sql
    from timeaudit.lake.store import COPY_OPTIONS, _read_parquet, records_to_arrow, sql_string, with_party_key

    lake = Lake(tmp_path)
    events = [
        event(ME, T0, T1, with_=["Ann@Northwind.com", "bo@acme.com", "ann@northwind.com"], organizer="BO@acme.com"),
        event(ME, T0, T1, with_=["ann@northwind.com", "bo@acme.com", "ann@northwind.com"], organizer="bo@acme.com"),
        event(ME, T1, T1, with_=["ann@northwind.com", "bo@acme.com", "ann@northwind.com"], organizer="bo@acme.com"),
        event(ME, T0, T1, organizer=""),  # nobody: an empty list
        event("cy@northwind.com", T0, T1, with_=["bo@acme.com", ""], organizer="cy@northwind.com"),
    ]
    messages = [
        message(ME, T0, sender="Bo@Acme.com", to=[ME, "ann@northwind.com"], cc=["ann@northwind.com", "DI@x.org"]),
        message(ME, T0, sender="bo@acme.com", to=[ME], cc=[]),
        message(ME, T0, sender="", to=[], cc=[]),
        message(ME, T1, sender="bo@acme.com", to=[ME], cc=[]),  # the same list as the second
    ]
    for table, records in (("events", events), ("messages", messages)):
        data = with_party_key(table, records_to_arrow(table, records))
        path = tmp_path / f"{table}.parquet"
        pq.write_table(data, path)
        query = read_sql(f"party_lists_{table}.sql").format(raw=_read_parquet([path], hive=False))
        con = lake.connect()
        con.execute(f"COPY ({query}) TO {sql_string(tmp_path / 'sql.parquet')} ({COPY_OPTIONS})")
        pq.write_table(party_lists_of(table, data), tmp_path / "arrow.parquet")
        from_sql, from_arrow = (_sorted_lists(con, tmp_path / name) for name in ("sql.parquet", "arrow.parquet"))
        assert from_arrow == from_sql
        assert len(from_arrow) == len(set(data["party_key"].to_pylist())) < len(records)  # each list once
        assert () in {addresses for _, addresses in from_arrow}


def _sorted_lists(con, path) -> list[tuple]:
    rows = con.execute(f"SELECT party_key, list_sort(addresses) FROM {sql_string(path)} ORDER BY 1").fetchall()
    return [(key, tuple(addresses)) for key, addresses in rows]
