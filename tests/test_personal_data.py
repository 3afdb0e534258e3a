"""A person's data: `timeaudit forget` leaves no trace of them, `timeaudit export-mine` gives
them exactly the records that name them.

Both run the real CLI on a copy of a generated demo lake; the checks read the files back
with pyarrow and DuckDB, independently of the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from timeaudit.core.config import find_config, load_settings
from timeaudit.lake.personal_data import Scrubber
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics

from conftest import DEMO_END
from records import event, message, utc

TOKEN = "1//0gSyncTokenThatMustNotLeak"


def timeaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small-demo")
    result = timeaudit("demo", "--people", "12", "--weeks", "2", "--end", DEMO_END, "--data", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture
def data(small_demo, tmp_path) -> Path:
    """A private copy of the demo, so each test may change it."""
    return Path(shutil.copytree(small_demo, tmp_path / "data"))


def roster(folder: Path) -> list[dict[str, str]]:
    with (folder / "people.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def lead_with_reports(folder: Path) -> str:
    """A team lead: organizer of team meetings, attendee of others', manager on the roster."""
    people = roster(folder)
    lead = next(p["email"] for p in people if any(q["manager"] == p["email"] for q in people))
    assert not any(lead in p["email"] for p in people if p["email"] != lead), "the address is unique as a substring"
    return lead


def every_string(value):
    """Every string in a decoded value, through lists and structs."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from every_string(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from every_string(v)


def traces(folder: Path, address: str) -> list[str]:
    """Where ``address`` still occurs under ``folder``: file names, raw bytes, decoded Parquet."""
    found = []
    needle = address.lower()
    for path in sorted(folder.rglob("*")):
        if needle in str(path.relative_to(folder)).lower():
            found.append(f"name {path}")
        if not path.is_file():
            continue
        if needle.encode() in path.read_bytes().lower():
            found.append(f"bytes {path}")
        if path.suffix == ".parquet" or ".parquet" in path.name:
            table = pq.ParquetFile(path).read()
            for name in table.column_names:
                if any(needle in s.lower() for s in every_string(table.column(name).to_pylist())):
                    found.append(f"column {name} of {path}")
    return found


def others_weekly(folder: Path, forgotten: str):
    lake = Lake(folder)
    frame = weekly_metrics(lake, load_settings(find_config(None, folder)))
    return frame[frame["person"] != forgotten].sort_values(["person", "week"]).reset_index(drop=True)


def attendee_counts(folder: Path, forgotten: str) -> list[tuple]:
    """By start, not id: an id that holds the address (cust-<address>-1-6) is scrubbed too."""
    con = Lake(folder).connect()
    return con.execute(
        "SELECT account, start, attendee_count, len(attendees) FROM events WHERE account <> ? ORDER BY ALL", [forgotten]
    ).fetchall()


# -- forget -----------------------------------------------------------------------------------
def test_forget_leaves_no_trace_and_others_figures_hold(data):
    person = lead_with_reports(data)
    other = next(p["email"] for p in roster(data) if p["email"] != person)
    lake = Lake(data)
    lake.write_cursor("gmail", person, {"history_id": "42"})
    # Another account's cursor naming them: a calendar of theirs shared with a colleague.
    lake.write_cursor("google-calendar", other, {"calendars": {person: {"sync_token": TOKEN}}})
    # A derived table (timeaudit metrics) and the leftover of a write that never committed.
    derived = data / "derived" / "weekly_metrics"
    derived.mkdir(parents=True)
    pq.write_table(pa.table({"person": [person, other], "hours": [1.0, 2.0]}), derived / "part-0.parquet")
    debris = next(iter(lake.files("events"))).with_name("part-00000-crashed-c000.zstd.parquet")
    pq.write_table(pa.table({"account": [person]}), debris)
    os.utime(debris, (time.time() - 7200,) * 2)
    assert traces(data / "lake", person), "the demo names them before"
    weekly_before, counts_before = others_weekly(data, person), attendee_counts(data, person)

    result = timeaudit("forget", "--person", person.upper(), "--yes", "--data", str(data))

    assert result.returncode == 0, result.stderr
    assert not traces(data / "lake", person)
    assert not traces(data / "state", person)
    assert not traces(data / "derived", person) and not derived.exists()
    assert not debris.exists()
    assert lake.read_cursor("gmail", person) is None
    shared = lake.read_cursor("google-calendar", other)["calendars"]
    assert list(shared.values()) == [{"sync_token": TOKEN}], "the colleague's own cursor is kept"
    domain = person.split("@")[1]
    assert f"forgotten@{domain}" in result.stdout
    for table in ("events", "messages"):
        assert f"  {table}: " in result.stdout and "records of others scrubbed" in result.stdout
    assert "people.csv still names them (their row, manager of" in result.stdout
    assert person in (data / "people.csv").read_text(), "the roster is the user's: read, not edited"
    # Everybody else's week is computed as before, and every meeting keeps its size.
    assert attendee_counts(data, person) == counts_before
    weekly_after = others_weekly(data, person)
    assert len(weekly_after)
    # To the microhour: DuckDB adds floating-point hours in parallel, in no fixed order.
    pd.testing.assert_frame_equal(weekly_after, weekly_before, check_exact=False, rtol=0, atol=1e-6)
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM events WHERE organizer = ?", [f"forgotten@{domain}"]).fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM messages WHERE account = ?", [person]).fetchone()[0] == 0


def test_a_lake_after_forget_takes_writes_compaction_and_readers_as_before(data):
    """forget writes its copies with Arrow (strings kept as the dictionaries it read, statistics
    of the columns readers filter on): delta-rs merges into them and compacts them, and every
    reader sees the lake's types and party keys equal to a fresh hash."""
    person = lead_with_reports(data)
    other = next(p["email"] for p in roster(data) if p["email"] != person)
    assert timeaudit("forget", "--person", person, "--yes", "--data", str(data)).returncode == 0
    lake = Lake(data)
    rewritten = {t: [f for f in lake.files(t) if f.stat().st_mtime > time.time() - 600] for t in ("events", "messages")}
    for table, files in rewritten.items():
        assert files, f"forget rewrote some {table} files"
        schema = pq.read_schema(files[0])
        assert not any(pa.types.is_dictionary(f.type) for f in schema), "readers see plain strings"
    con = lake.connect()
    for table, parties in (("events", "organizer, attendees"), ("messages", 'sender, "to", cc')):
        # The key is DuckDB's unsigned hash stored in a signed column: the same 64 bits.
        unsigned = "party_key::HUGEINT + CASE WHEN party_key < 0 THEN 18446744073709551616::HUGEINT ELSE 0 END"
        stale = con.execute(f"SELECT count(*) FROM {table} WHERE {unsigned} <> hash({parties})").fetchone()[0]
        assert stale == 0, f"every {table} row's party key is the hash of its party list"
    (first_id, start, end) = con.execute(
        'SELECT id, start, "end" FROM events WHERE account = ? ORDER BY start LIMIT 1', [other]
    ).fetchone()
    rows_before = con.execute("SELECT count(*) FROM events").fetchone()[0]

    lake.write_batch(
        "events",
        "demo",
        [
            event(other, start, end, id=first_id, title="Moved", updated=utc(2030, 1, 1)),
            event(other, start, end, id="new"),
        ],
    )
    lake.compact("events")

    con = Lake(data).connect()
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == rows_before + 1
    assert con.execute("SELECT count(*) FROM events WHERE account = ? AND id = ?", [other, first_id]).fetchone()[0] == 1
    assert not traces(data / "lake", person)


def test_forget_touches_nobody_whose_address_merely_contains_theirs(tmp_path):
    lake = Lake(tmp_path)
    ann, others = "ann@northwind.com", ["joann@northwind.com", "bob.ann@northwind.com", "ann@northwind.com.au"]
    start, end = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)
    lake.write_batch("events", "test", [event(others[0], start, end, with_=others[1:], id="x")])
    (kept_file,) = lake.files("events")
    mtime = kept_file.stat().st_mtime_ns
    lake.write_batch(
        "events",
        "test",
        [
            event(others[0], start, end, with_=[ann], id=f"1on1-{ann}-3", title=f"Review with {ann.upper()}"),
            event(others[1], start, end, with_=[ann], id=f"1on1-{ann}-3"),
        ],
    )
    lake.write_batch("messages", "test", [message(others[0], start, sender=ann, to=others, cc=[ann])])

    result = timeaudit("forget", "--person", ann, "--yes", "--data", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert kept_file.stat().st_mtime_ns == mtime, "a file that does not name them is not rewritten"
    con = lake.connect()
    ids = {i for (i,) in con.execute("SELECT DISTINCT id FROM events WHERE id <> 'x'").fetchall()}
    assert len(ids) == 1 and ann not in next(iter(ids)), "one id, the same in both calendars"
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    titles = [t for (t,) in con.execute("SELECT title FROM events WHERE title IS NOT NULL").fetchall()]
    assert titles and "ann@" not in titles[0].lower()
    sender, to, cc = con.execute('SELECT sender, "to", cc FROM messages').fetchone()
    assert sender == "forgotten@northwind.com" and to == others and cc == ["forgotten@northwind.com"]


def test_scrubber_replaces_whole_addresses_and_addresses_inside_ids():
    scrub = Scrubber("ann@northwind.com")
    assert scrub.text("ANN@northwind.com") == "forgotten@northwind.com"
    inside = scrub.text("1on1-ann@northwind.com-3")
    assert inside.startswith("1on1-forgotten-") and inside.endswith("@northwind.com-3")
    assert scrub.text("1on1-ann@northwind.com-3") == inside, "the same within one run"
    for other in ("joann@northwind.com", "bob.ann@northwind.com", "ann@northwind.com.au", "ann@northwind.community"):
        assert scrub.text(other) == other
    assert scrub.value({"ann@northwind.com": ["x", {"e": "ann@northwind.com"}]}) == {
        "forgotten@northwind.com": ["x", {"e": "forgotten@northwind.com"}]
    }


def test_forget_refuses_what_is_not_an_address(tmp_path):
    result = timeaudit("forget", "--person", "ann", "--yes", "--data", str(tmp_path))
    assert result.returncode == 2 and "--person ann: not an email address" in result.stderr


# -- export-mine ------------------------------------------------------------------------------
def read_zip(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name).decode("utf-8") for name in z.namelist()}


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def mentions_by_duckdb(folder: Path, person: str) -> dict[str, set[tuple]]:
    """(account, id, how) of every live record naming ``person``, straight from the Parquet files
    of each Delta table's latest snapshot (as deltalake lists them)."""
    con = duckdb.connect()
    found = {}

    def live(folder: Path, table: str) -> str:
        files = DeltaTable(str(folder / "lake" / table)).file_uris()
        return f"SELECT * FROM read_parquet({files!r}, hive_partitioning = true)"

    found["events"] = set(
        con.execute(
            f"""SELECT account, id FROM ({live(folder, "events")})
                WHERE NOT deleted AND (account = $p OR organizer = $p
                   OR len(list_filter(attendees, lambda a: a.email = $p)) > 0)""",
            {"p": person},
        ).fetchall()
    )
    found["messages"] = set(
        con.execute(
            f"""SELECT account, id FROM ({live(folder, "messages")})
                WHERE NOT deleted AND (account = $p OR sender = $p
                   OR list_position(list_concat("to", cc), $p) IS NOT NULL)""",
            {"p": person},
        ).fetchall()
    )
    return found


def test_export_mine_holds_exactly_what_names_them(data, tmp_path):
    person = lead_with_reports(data)
    other = next(p["email"] for p in roster(data) if p["email"] != person)
    lake = Lake(data)
    lake.write_cursor("google-calendar", person, {"calendars": {"primary": {"sync_token": TOKEN, "since": "2026"}}})
    lake.write_cursor("gmail", other, {"history_id": "77"})
    start, end = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)
    lake.write_batch("events", "test", [event(person, start, end, title='=HYPERLINK("http://x")')])

    result = timeaudit("export-mine", "--person", person, "--data", str(data), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    files = read_zip(tmp_path / f"timeaudit-{person.split('@')[0]}.zip")
    assert set(files) == {"events.csv", "messages.csv", "chat.csv", "roster.csv", "sync-state.json", "README.txt"}
    expected = mentions_by_duckdb(data, person)
    for table in ("events", "messages"):
        rows = csv_rows(files[f"{table}.csv"])
        assert len(rows) == len(expected[table]) > 0
        assert {(r["account"], r["id"]) for r in rows} == expected[table]
        for r in rows:
            assert (r["relation"] == "own") == (r["account"] == person)
    events = csv_rows(files["events.csv"])
    relations = {part for r in events for part in r["relation"].split(", ")}
    assert relations == {"own", "organizer", "attendee"}
    for r in events:
        if r["relation"] != "own":
            assert person in r["attendees"] or r["organizer"] == person
            assert r["self_response"] == "", "a colleague's own answer is theirs"
    messages = csv_rows(files["messages.csv"])
    assert {part for r in messages for part in r["relation"].split(", ")} >= {"own", "sender", "recipient"}
    for r in messages:
        if r["relation"] != "own":
            assert person in (r["sender"], *r["to"].split("; "), *r["cc"].split("; "))
            assert r["labels"] == r["unread"] == r["self_in"] == "", "a colleague's mailbox state is theirs"
    assert any(r["title"] == '\'=HYPERLINK("http://x")' for r in events), "formulas are neutralised"
    assert [r["email"] for r in csv_rows(files["roster.csv"])] == [person]
    assert json.loads(files["sync-state.json"]) == {
        "google-calendar": {"calendars": {"primary": {"sync_token": "(present)", "since": "2026"}}}
    }
    assert TOKEN not in "".join(files.values()) and "77" not in files["sync-state.json"]
    assert "keyword tags" in files["README.txt"] and "relation" in files["README.txt"]


def test_export_mine_for_someone_unknown_is_empty_but_complete(data, tmp_path):
    target = tmp_path / "out.zip"
    result = timeaudit("export-mine", "--person", "nobody@example.org", "--data", str(data), "--output", str(target))
    assert result.returncode == 0, result.stderr
    files = read_zip(target)
    assert [len(csv_rows(files[n])) for n in ("events.csv", "messages.csv", "roster.csv")] == [0, 0, 0]
    assert json.loads(files["sync-state.json"]) == {}


# -- derived tables: computed with everyone's records ------------------------------------------
USERS_OWN_FILES = ("people.csv", "timeaudit.toml")  # read, never edited: forget names them instead


def test_forget_removes_every_derived_table_and_leaves_no_trace_in_the_data_folder(data):
    person = lead_with_reports(data)
    assert timeaudit("metrics", "--data", str(data)).returncode == 0
    tables = sorted(p.name for p in (data / "derived").iterdir() if p.is_dir())
    assert {"audit_admin", "audit_threads", "customer_contacts", "weekly_metrics"} <= set(tables)

    result = timeaudit("forget", "--person", person, "--yes", "--data", str(data))

    assert result.returncode == 0, result.stderr
    assert not (data / "derived").exists(), "every table was computed with their records, naming them or not"
    assert f"derived tables removed, all computed with their records: {', '.join(tables)}" in " ".join(
        result.stdout.split()
    )
    found = [t for t in traces(data, person) if not t.endswith(USERS_OWN_FILES)]
    assert not found, found
    for name in USERS_OWN_FILES:
        assert f"{name} still names them" in result.stdout


def test_export_mine_holds_the_derived_rows_that_name_them(data, tmp_path):
    person = lead_with_reports(data)
    assert timeaudit("metrics", "--data", str(data)).returncode == 0
    target = tmp_path / "mine.zip"

    result = timeaudit("export-mine", "--person", person, "--data", str(data), "--output", str(target))

    assert result.returncode == 0, result.stderr
    files = read_zip(target)
    con = duckdb.connect()
    for table, column in (("weekly_metrics", "person"), ("daily_metrics", "person"), ("customer_replies", "person")):
        stored = con.execute(
            f"SELECT count(*) FROM read_parquet('{data}/derived/{table}/*.parquet') WHERE {column} = ?", [person]
        ).fetchone()[0]
        rows = csv_rows(files[f"derived/{table}.csv"])
        assert len(rows) == stored > 0, table
        assert {r[column] for r in rows} == {person}, table
    admin = csv_rows(files["derived/audit_admin.csv"])
    assert admin == [], "group figures that name nobody are not theirs"
    # The dashboard's stored audit is a folder of tables: each table's rows naming them, apart.
    cover = csv_rows(files["derived/cover_mail/cover_mail.csv"])
    assert cover and all(person in (r["person"], r["manager"]) for r in cover)
    assert all(r["person"] == person for r in csv_rows(files["derived/page_audit/latency_people.csv"]))
    assert "derived/" in files["README.txt"]
    # The records as stored classified are events.csv's and messages.csv's, colleagues' own fields left out.
    assert (data / "derived" / "classified_messages").is_dir()
    assert not [name for name in files if name.startswith("derived/classified_")]
