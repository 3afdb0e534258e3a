"""Imports end to end: real .ics and mbox files through the real CLI into a real lake.

The connectors' parsing is tested case by case in test_ics.py and test_mail_import.py; here
it is what an import does to the lake: re-imports change nothing, newer exports update and
remove, broken files leave the lake as it was, and imported data counts like synced data.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from timeaudit.core.config import parse_settings
from timeaudit.core.model import EVENT_SCHEMA
from timeaudit.lake.imports import import_ics, import_mail
from timeaudit.lake.mirror import NothingImported, _to_arrow
from timeaudit.lake.store import Lake, records_to_arrow
from timeaudit.outputs.derived import weekly_metrics

import records

ANN = "ann@northwind.com"
SETTINGS = parse_settings(
    {
        "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
        "customers": [{"name": "Acme", "domains": ["acme.com"]}],
    }
)


def vevent(uid: str, start: str, end: str, *, attendees: tuple[str, ...] = (), summary: str = "Meeting") -> str:
    people = "".join(f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{a}\r\n" for a in attendees)
    return (
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nLAST-MODIFIED:20261101T000000Z\r\n"
        f"DTSTART;TZID=Europe/London:{start}\r\nDTEND;TZID=Europe/London:{end}\r\n"
        f"SUMMARY:{summary}\r\nORGANIZER:mailto:{ANN}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{ANN}\r\n{people}"
        "END:VEVENT\r\n"
    )


def calendar(name: str, *events: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\r\n"
        f"X-WR-CALNAME:{name}\r\nX-WR-TIMEZONE:Europe/London\r\n" + "".join(events) + "END:VCALENDAR\r\n"
    )


QBR = vevent("qbr", "20261110T100000", "20261110T113000", attendees=("joe@acme.com",), summary="Acme QBR")
SYNC = vevent("sync", "20261111T140000", "20261111T150000", attendees=("bob@northwind.com",), summary="Team sync")
REVIEW = vevent("review", "20261112T090000", "20261112T093000", attendees=("cat@northwind.com",), summary="Review")
SYNC_MOVED = vevent("sync", "20261111T160000", "20261111T170000", attendees=("bob@northwind.com",), summary="Sync")
PLANNING = vevent("plan", "20261113T100000", "20261113T110000", attendees=("bob@northwind.com",), summary="Plan")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def live_ids(lake: Lake, table: str = "events") -> set[str]:
    con = lake.connect()
    return {i for (i,) in con.execute(f"SELECT id FROM {table}").fetchall()}


def live_uids(lake: Lake) -> set[str]:
    """The ids of the live events without their calendar's key (a digest)."""
    return {i.split("/", 1)[1] for i in live_ids(lake)}


def raw_rows(lake: Lake, table: str = "events") -> int:
    return sum(pq.read_metadata(p).num_rows for p in lake.files(table))


def imp(lake: Lake, *paths: Path):
    return import_ics(lake, SETTINGS, list(paths), ANN, since=None, until=None)


def test_importing_the_same_export_twice_changes_nothing(tmp_path):
    lake = Lake(tmp_path / "data")
    export = write(tmp_path, "work.ics", calendar("Work", QBR, SYNC, REVIEW))
    first = imp(lake, export)
    assert (first.imported, first.updated, first.removed) == (3, 0, 0)
    files = lake.files("events")
    assert len(files) == 1  # one import, one atomic batch

    again = imp(lake, export)
    assert (again.imported, again.updated, again.removed, again.unchanged) == (0, 0, 0, 3)
    assert lake.files("events") == files and raw_rows(lake) == 3


def test_a_newer_export_updates_adds_and_removes_only_in_its_own_calendar(tmp_path):
    lake = Lake(tmp_path / "data")
    imp(lake, write(tmp_path, "work.ics", calendar("Work", QBR, SYNC, REVIEW)))
    imp(lake, write(tmp_path, "home.ics", calendar("Home", vevent("gym", "20261110T070000", "20261110T080000"))))
    before = live_ids(lake)

    newer = imp(lake, write(tmp_path, "work-newer.ics", calendar("Work", QBR, SYNC_MOVED, PLANNING)))
    assert (newer.imported, newer.updated, newer.removed, newer.unchanged) == (1, 1, 1, 1)
    after = live_ids(lake)
    assert after - before == {next(i for i in after if i.endswith("/plan"))}
    assert before - after == {next(i for i in before if i.endswith("/review"))}
    assert any(i.endswith("/gym") for i in after)  # the other calendar is untouched
    con = lake.connect()
    (start,) = con.execute("SELECT start FROM events WHERE id LIKE '%/sync'").fetchone()
    assert f"{start:%H:%M}" == "16:00"  # 16:00 in London in November is 16:00 UTC


def unnamed(*events: str) -> str:
    """A calendar without X-WR-CALNAME: the connector names its feed by the file."""
    return calendar("X", *events).replace("X-WR-CALNAME:X\r\n", "")


def test_calendars_without_names_in_files_named_alike_never_stand_for_each_other(tmp_path):
    lake = Lake(tmp_path / "data")
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    imp(lake, write(tmp_path / "a", "baz.ics", unnamed(QBR, SYNC, REVIEW, PLANNING)))
    assert (
        imp(
            lake, write(tmp_path / "b", "baz.ics", unnamed(vevent("gym", "20261110T070000", "20261110T080000")))
        ).removed
        == 0
    )
    assert live_uids(lake) == {"qbr", "sync", "review", "plan", "gym"}
    assert imp(lake, write(tmp_path / "a", "baz.ics", unnamed(QBR, SYNC, REVIEW))).removed == 1


def test_calendar_names_stay_out_of_ids_and_older_ids_are_replaced(tmp_path):
    lake = Lake(tmp_path / "data")
    secret = write(tmp_path, "cal.ics", calendar("Zanzibar Merger Secret", QBR, SYNC))
    imp(lake, secret)
    con = lake.connect()
    ids = con.execute("SELECT id, series_id FROM events").fetchall()
    assert ids and not any("zanzibar" in f"{i}{s}".lower() for i, s in ids)
    # A lake an older version wrote: ids "<slug of the calendar's name>/<UID>".
    columns = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
    old = con.sql(f"SELECT {columns} FROM events").to_arrow_table()
    slugged = pa.array(["zanzibar-merger-secret/" + i.split("/", 1)[1] for i in old["id"].to_pylist()])
    lake.replace_source("events", "ics", [old.set_column(old.schema.get_field_index("id"), "id", slugged)])
    report = imp(lake, secret)
    assert (report.imported, report.removed) == (2, 2)
    assert live_uids(lake) == {"qbr", "sync"} and not any("zanzibar" in i for i in live_ids(lake))


def test_accounts_sharing_a_lake_compare_only_with_their_own_records(tmp_path):
    lake = Lake(tmp_path / "data")
    export = write(tmp_path, "work.ics", calendar("Work", QBR, SYNC, REVIEW))
    assert imp(lake, export).imported == 3
    bob = import_ics(lake, SETTINGS, [export], "bob@northwind.com", since=None, until=None)
    assert (bob.imported, bob.unchanged) == (3, 0)  # the same feed, another account: all new
    version = lake.table("events").version()
    sync_updated = "SELECT updated FROM events WHERE id LIKE '%/sync' AND account = $ann"
    (before,) = lake.connect().execute(sync_updated, {"ann": ANN}).fetchone()
    again = imp(lake, write(tmp_path, "work-newer.ics", calendar("Work", QBR, SYNC_MOVED)))
    assert (again.imported, again.updated, again.removed, again.unchanged) == (0, 1, 1, 1)
    assert lake.table("events").version() == version + 1  # the whole import is one commit
    con = lake.connect()
    rows = con.execute("SELECT account, count(*) FROM events GROUP BY account ORDER BY account").fetchall()
    assert rows == [(ANN, 2), ("bob@northwind.com", 3)]
    (moved,) = con.execute(sync_updated, {"ann": ANN}).fetchone()
    assert moved > before  # the newer version wins even though the export kept its LAST-MODIFIED


def test_imported_calendars_count_like_synced_ones(tmp_path):
    lake = Lake(tmp_path / "data")
    imp(lake, write(tmp_path, "work.ics", calendar("Work", QBR, SYNC, REVIEW)))
    weekly = weekly_metrics(lake, SETTINGS)
    week = weekly[(weekly["person"] == ANN) & (weekly["week"] == "2026-W46")].iloc[0]
    assert week["customer_meeting_hours"] == pytest.approx(1.5)
    assert week["internal_meeting_hours"] == pytest.approx(1.5)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_file_that_is_not_a_calendar_stops_with_its_name_and_leaves_the_lake_alone(tmp_path):
    data = tmp_path / "data"
    imp(Lake(data), write(tmp_path, "work.ics", calendar("Work", QBR)))
    files = Lake(data).files("events")
    junk = write(tmp_path, "notes.ics", "Dear diary,\nnothing here is a calendar.\n")
    result = run_cli("import", "ics", str(junk), "--account", ANN, "--data", str(data))
    assert result.returncode == 2
    assert "notes.ics" in result.stderr and "error" in result.stderr
    assert Lake(data).files("events") == files


def test_readable_files_import_beside_a_broken_one_which_is_named(tmp_path):
    data = tmp_path / "data"
    good = write(tmp_path, "work.ics", calendar("Work", QBR, SYNC))
    truncated = write(tmp_path, "cut.ics", calendar("Cut", REVIEW)[:-40])
    result = run_cli("import", "ics", str(good), str(truncated), "--account", ANN, "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert "cut.ics" in result.stderr
    assert "2 imported" in result.stdout
    assert live_uids(Lake(data)) == {"qbr", "sync"}


def test_an_account_that_is_not_an_address_is_refused(tmp_path):
    result = run_cli("import", "ics", str(tmp_path / "x.ics"), "--account", "ann", "--data", str(tmp_path / "d"))
    assert result.returncode == 2 and "--account" in result.stderr


def message(n: int, *, sender: str = "joe@acme.com", to: str = ANN, reply_to: int | None = None) -> str:
    refs = f"In-Reply-To: <m{reply_to}@acme.com>\nReferences: <m{reply_to}@acme.com>\n" if reply_to else ""
    return (
        f"From MAILER-DAEMON Tue Nov 10 10:0{n % 10}:00 2026\n"
        f"From: Joe <{sender}>\nTo: {to}\nSubject: Order {n}\nDate: Tue, 10 Nov 2026 10:0{n % 10}:00 +0000\n"
        f"Message-ID: <m{n}@acme.com>\n{refs}X-Gmail-Labels: Inbox\n\nBody {n} is never read.\n\n"
    )


def test_a_newer_mailbox_export_removes_what_it_no_longer_holds(tmp_path):
    lake = Lake(tmp_path / "data")
    mbox = write(tmp_path, "Inbox.mbox", "".join(message(n) for n in range(1, 5)))
    first = import_mail(lake, SETTINGS, [mbox], ANN)
    assert (first.imported, first.removed) == (4, 0)
    assert import_mail(lake, SETTINGS, [mbox], ANN).unchanged == 4
    assert len(lake.files("messages")) == 1

    write(tmp_path, "Inbox.mbox", "".join(message(n) for n in (1, 2, 4, 5)))
    newer = import_mail(lake, SETTINGS, [mbox], ANN)
    assert (newer.imported, newer.removed, newer.unchanged) == (1, 1, 3)
    con = lake.connect()
    ids = {m for (m,) in con.execute("SELECT message_id FROM messages").fetchall()}
    assert ids == {"m1@acme.com", "m2@acme.com", "m4@acme.com", "m5@acme.com"}


def test_nothing_readable_raises_a_clear_error_and_writes_nothing(tmp_path):
    lake = Lake(tmp_path / "data")
    junk = tmp_path / "photo.mbox"
    junk.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(NothingImported, match="photo.mbox"):
        import_mail(lake, SETTINGS, [junk], ANN)
    assert lake.files("messages") == []


def test_imports_build_the_same_table_as_the_store_does_from_model_records():
    """The imports' column-wise table (records as the connectors give them) against the store's
    records_to_arrow (model objects): both kinds, attendee lists shared, empty and absent."""
    bob, cat = "bob@northwind.com", "cat@northwind.com"

    def on(day: int, hours: int = 0):
        return records.utc(2026, 11, day, 9 + hours)

    events = [
        records.event(ANN, on(2), on(2, 1), with_=[bob], title_tags=["acme"]),
        records.event(ANN, on(3), on(3, 1)),
        records.event(ANN, on(4), on(4, 1), with_=[bob, cat]),
        records.event(ANN, on(5), on(5, 1), with_=[bob]),
    ]
    messages = [records.message(ANN, on(2), to=[bob], labels=["SENT"], subject="Hi"), records.message(ANN, on(3))]
    now = on(23)
    for table, made in (("events", events), ("messages", messages)):
        given = [asdict(r) for r in made]
        lists: dict[tuple, tuple] = {}
        for record in given if table == "events" else []:
            people = tuple(tuple(a.values()) for a in record["attendees"])
            record["attendees"] = lists.setdefault(people, people)  # as the .ics connector: one tuple per list
        assert _to_arrow(table, given, now).equals(records_to_arrow(table, made, ingested_at=now))
        assert _to_arrow(table, [], now).equals(records_to_arrow(table, [], ingested_at=now))


def test_records_read_as_tables_and_as_dicts_land_as_one_table_the_last_read_winning(tmp_path):
    """A reader may give records one by one or many at once as Arrow tables (a column-wise
    reader): both land alike, and an id read twice keeps its place and its last version."""
    from connectors.files import last_of_each_id
    from timeaudit.lake.mirror import ImportReport, read_all

    first = records.message(ANN, records.utc(2026, 11, 2, 9), subject="First", labels=["SENT"])
    second = records.message(ANN, records.utc(2026, 11, 3, 9), subject="Second")
    again = records.message(ANN, records.utc(2026, 11, 2, 9), subject="First", labels=["SENT", "STARRED"])
    again = type(first)(**{**asdict(again), "id": first.id})
    now = records.utc(2026, 11, 23)
    as_table = records_to_arrow("messages", [first, second], ingested_at=now).drop_columns(["ingested_at"])
    report = ImportReport("mail", ANN)
    landed = last_of_each_id(read_all("messages", [as_table, asdict(again)], report))
    assert report.read == 3
    assert landed["id"].to_pylist() == [first.id, second.id]
    assert landed["labels"].to_pylist() == [["SENT", "STARRED"], []]
    assert landed.schema == records_to_arrow("messages", [], ingested_at=now).schema


# -- bounded imports -------------------------------------------------------------------------------------
def test_a_zip_bomb_is_refused_naming_the_file_and_the_limit_and_the_lake_is_left_alone(tmp_path):
    import zipfile

    lake = Lake(tmp_path / "data")
    bomb = tmp_path / "takeout.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Calendar/ok.ics", calendar("Work", QBR))
        z.writestr("Calendar/huge.ics", calendar("Work", QBR).replace("END:VCALENDAR", "X-PAD:" + "A" * 5_000_000))
    with pytest.raises(NothingImported) as refused:
        imp(lake, bomb)
    message = str(refused.value)
    assert "takeout.zip/Calendar/huge.ics: unpacks to" in message and "imports.max_zip_ratio" in message
    assert not lake.files("events")  # not even the sound member: the zip is checked before any is read

    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as z:  # packed not at all: only the total counts
        for n in range(3):
            z.writestr(f"Calendar/{n}.ics", calendar(f"C{n}", QBR) + " " * 600_000)
    small = parse_settings({**SETTINGS.model_dump(), "imports": {"max_zip_mb": 1}})
    too_big = r"big.zip: its .ics files unpack to 2 MB or more, over the limit of 1 MB \(imports.max_zip_mb\)"
    with pytest.raises(NothingImported, match=too_big):
        import_ics(lake, small, [big], ANN)
    assert import_ics(lake, SETTINGS, [big], ANN).imported == 3  # within the default limits


def test_the_report_counts_events_without_a_uid(tmp_path):
    lake = Lake(tmp_path / "data")
    nameless = vevent("x", "20261110T100000", "20261110T110000").replace("UID:x\r\n", "")
    report = imp(lake, write(tmp_path, "work.ics", calendar("Work", QBR, nameless)))
    assert (report.imported, report.without_uid, report.skipped) == (2, 1, [])
    assert "1 event(s) had no UID (ids made from their content)" in report.line()
    assert imp(lake, write(tmp_path, "work.ics", calendar("Work", QBR, nameless))).unchanged == 2  # the same ids
