"""The .ics connector against real-shaped exports of Google, Outlook and Apple (tests/fixtures/ics).

Every expected value below was worked out by hand from the fixture and the zone rules
(Europe/London and Europe/Berlin leave summer time on 25 Oct 2026, America/Chicago,
America/New_York and America/Los_Angeles on 1 Nov 2026, Europe/Berlin enters it on 28 Mar 2027).
"""

from __future__ import annotations

import random
import zipfile
from collections import defaultdict
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from connectors.demo.org import build_org
from connectors.demo.records import iter_events
from connectors.ics import plain as ics_plain
from connectors.ics.plain_times import on_the_wall_clock
from connectors.ics.reader import SOURCE, ImportFileError, calendar_files, feed_of, iter_ics_events
from connectors.ics.reader import iter_ics_records as iics_records
from connectors.ics.superseded import without_superseded
from timeaudit.core.config import parse_settings
from timeaudit.core.model import UTC_TS
from timeaudit.lake.mirror import _to_arrow, _with_ingested_at
from timeaudit.lake.store import records_to_arrow

FIXTURES = Path(__file__).parent / "fixtures" / "ics"
ANN = "ann@northwind.com"
SETTINGS = parse_settings({"organisation": {"timezone": "Europe/London"}})
START, END = datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def parse(fixture: str, data: bytes | None = None, settings=SETTINGS, start=START, end=END):
    skips: list[tuple[str, str]] = []
    data = (FIXTURES / fixture).read_bytes() if data is None else data
    events = list(iter_ics_events(fixture, data, ANN, settings, start, end, lambda i, r: skips.append((i, r))))
    return events, skips


def by_id(events) -> dict:
    return {e.id: e for e in events}


def minutes_per_utc_day(events) -> dict[date, int]:
    out: dict[date, int] = defaultdict(int)
    for e in events:
        t = e.start
        while t < e.end:
            step = min(e.end, datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC))
            out[t.date()] += int((step - t).total_seconds() // 60)
            t = step
    return dict(out)


# -- recurrences --------------------------------------------------------------------------------
def test_google_series_with_deleted_and_moved_instances():
    events, skips = parse("google_recurring_moved_and_deleted.ics")
    assert skips == []
    series = sorted((e for e in events if e.series_id), key=lambda e: e.start)
    feed = "ann-work/standup-1@google.com"
    # Six Tuesdays, 20 Oct deleted by EXDATE, 3 Nov moved to Wednesday 4 Nov 15:00 (GMT).
    assert [(e.id, e.start) for e in series] == [
        (f"{feed}/20261006T090000Z", utc(2026, 10, 6, 9)),  # BST
        (f"{feed}/20261013T090000Z", utc(2026, 10, 13, 9)),
        (f"{feed}/20261027T100000Z", utc(2026, 10, 27, 10)),  # GMT after 25 Oct
        (f"{feed}/20261103T100000Z", utc(2026, 11, 4, 15)),  # moved: keeps the id of its slot
        (f"{feed}/20261110T100000Z", utc(2026, 11, 10, 10)),
    ]
    assert all(e.end - e.start == timedelta(minutes=30) for e in series)
    assert {e.series_id for e in series} == {feed}
    assert {e.ical_uid for e in series} == {"standup-1@google.com"}
    moved = by_id(events)[f"{feed}/20261103T100000Z"]
    assert moved.updated == utc(2026, 10, 30, 16, 45)  # the override's LAST-MODIFIED, not the series'
    assert series[0].updated == utc(2026, 9, 15, 8, 15)
    assert series[0].self_response == "accepted"  # Ann organises
    assert series[0].organizer == ANN
    assert series[0].has_conference and not series[0].has_agenda  # X-GOOGLE-CONFERENCE; DESCRIPTION is empty
    assert series[0].tz == "Europe/London" and series[0].source == SOURCE


def test_single_event_fields_attendees_and_tags():
    events, _ = parse("google_recurring_moved_and_deleted.ics")
    review = by_id(events)["ann-work/3k9a2m1review@google.com"]
    assert (review.start, review.end, review.series_id) == (utc(2026, 10, 15, 13), utc(2026, 10, 15, 14), "")
    assert review.self_response == "tentative"
    assert review.organizer == "bob@northwind.com"
    # The room (CUTYPE=RESOURCE) is left out; Joe is optional.
    assert [(a.email, a.response, a.optional) for a in review.attendees] == [
        ("bob@northwind.com", "accepted", False),
        (ANN, "tentative", False),
        ("joe@acme.com", "needsAction", True),
    ]
    assert review.has_agenda and not review.has_conference
    assert review.title_tags == ["renewal", "review"] and review.title is None
    titled = parse_settings({"organisation": {"timezone": "Europe/London"}, "privacy": {"store_titles": True}})
    events, _ = parse("google_recurring_moved_and_deleted.ics", settings=titled)
    assert by_id(events)["ann-work/3k9a2m1review@google.com"].title == "Acme renewal review"


def test_this_and_future_override_moves_the_rest_of_the_series():
    events, skips = parse("this_and_future_override.ics")
    assert skips == []
    feed = "ops/daily-ops@example.com"
    assert [(e.id, e.start, e.end) for e in sorted(events, key=lambda e: e.start)] == [
        (f"{feed}/20261109T080000Z", utc(2026, 11, 9, 8), utc(2026, 11, 9, 8, 30)),
        (f"{feed}/20261110T080000Z", utc(2026, 11, 10, 8), utc(2026, 11, 10, 8, 30)),
        # From 11 Nov on, every occurrence is 5 hours later; each keeps the id of its own slot.
        (f"{feed}/20261111T080000Z", utc(2026, 11, 11, 13), utc(2026, 11, 11, 13, 30)),
        (f"{feed}/20261112T080000Z", utc(2026, 11, 12, 13), utc(2026, 11, 12, 13, 30)),
        (f"{feed}/20261113T080000Z", utc(2026, 11, 13, 13), utc(2026, 11, 13, 13, 30)),
    ]
    assert by_id(events)[f"{feed}/20261113T080000Z"].updated == utc(2026, 11, 5, 12)


def test_cancelled_instance_and_cancelled_event():
    events, _ = parse("cancelled_instance.ics")
    feed = "0000002e-5b4f-7a2c-b1e3-93d0c1a7f2ab"  # X-WR-RELCALID wins over X-WR-CALNAME
    ids = sorted(e.id for e in events)
    assert ids == sorted(
        [f"{feed}/series-with-cancelled-day/202611{d}T160000Z" for d in (16, 17, 18, 19, 20)]
        + [f"{feed}/single-cancelled"]
    )
    statuses = {e.id: e.status for e in events}
    assert statuses[f"{feed}/series-with-cancelled-day/20261118T160000Z"] == "cancelled"
    assert statuses[f"{feed}/single-cancelled"] == "cancelled"
    assert sum(s == "confirmed" for s in statuses.values()) == 4
    # "GMT Standard Time" is Windows for Europe/London: 16:00 GMT in November.
    assert by_id(events)[f"{feed}/series-with-cancelled-day/20261116T160000Z"].tz == "Europe/London"


# -- time zones -----------------------------------------------------------------------------------
def test_dst_transition_weekly_keeps_local_time():
    events, _ = parse("dst_transition_weekly.ics")
    assert [e.start for e in sorted(events, key=lambda e: e.start)] == [
        utc(2026, 10, 19, 7),  # 09:00 CEST
        utc(2026, 10, 26, 8),  # 09:00 CET, the day after the change
        utc(2026, 11, 2, 8),
        utc(2027, 3, 22, 8),  # 09:00 CET
        utc(2027, 3, 29, 7),  # 09:00 CEST, the day after the change
    ]
    assert {e.end - e.start for e in events} == {timedelta(hours=1)}
    assert {e.tz for e in events} == {"Europe/Berlin"}


def test_outlook_windows_zone_names():
    events, skips = parse("outlook_windows_timezone.ics")
    assert skips == []
    sync, call = sorted(events, key=lambda e: e.start)
    assert (sync.start, sync.end, sync.tz) == (utc(2026, 10, 27, 8), utc(2026, 10, 27, 9), "Europe/Berlin")
    assert (call.start, call.end, call.tz) == (utc(2026, 10, 30, 16), utc(2026, 10, 30, 16, 30), "America/Los_Angeles")
    assert sync.has_conference and call.has_conference  # Teams property; a Zoom link in LOCATION
    assert not sync.has_agenda  # Outlook's DESCRIPTION of a lone line break
    assert [a.email for a in sync.attendees] == [ANN]  # the room is left out
    assert sync.updated == utc(2026, 11, 20, 10, 10, 10)  # DTSTAMP when there is no LAST-MODIFIED
    assert call.updated == utc(2026, 10, 1, 7)
    assert feed_of(sync.id) == "calendar" and sync.ical_uid.startswith("040000008200E000")


def test_all_day_and_multi_day_in_the_calendar_zone():
    events, _ = parse("apple_all_day_and_multi_day.ics")
    holiday, offsite, handover = sorted(events, key=lambda e: e.start)
    assert (holiday.start, holiday.end, holiday.all_day) == (utc(2026, 11, 10, 5), utc(2026, 11, 11, 5), True)
    assert holiday.transparency == "transparent"
    assert (offsite.start, offsite.end, offsite.all_day) == (utc(2026, 11, 12, 5), utc(2026, 11, 15, 5), True)
    assert (handover.start, handover.end, handover.all_day) == (utc(2026, 11, 17, 3), utc(2026, 11, 18, 7), False)
    assert {e.tz for e in events} == {"America/New_York"}
    assert minutes_per_utc_day([handover]) == {date(2026, 11, 17): 1260, date(2026, 11, 18): 420}
    assert minutes_per_utc_day([offsite])[date(2026, 11, 12)] == 19 * 60
    assert handover.has_agenda and handover.has_conference  # ATTACH; FaceTime URL
    assert holiday.updated == utc(2026, 10, 1, 12)  # DTSTAMP


def test_floating_times_use_x_wr_timezone_else_the_organisation_zone():
    events, _ = parse("floating_times.ics")
    assert sorted((e.start, e.end) for e in events) == [
        (utc(2026, 10, 26, 14), utc(2026, 10, 26, 14, 45)),  # 09:00 CDT
        (utc(2026, 11, 2, 15), utc(2026, 11, 2, 15, 45)),  # 09:00 CST
        (utc(2026, 11, 5, 15), utc(2026, 11, 5, 16)),
    ]
    assert {e.tz for e in events} == {"America/Chicago"}
    data = (FIXTURES / "floating_times.ics").read_bytes().replace(b"X-WR-TIMEZONE:America/Chicago\r\n", b"")
    tokyo = parse_settings({"organisation": {"timezone": "Asia/Tokyo"}})
    events, _ = parse("floating_times.ics", data=data, settings=tokyo)
    assert sorted(e.start for e in events) == [utc(2026, 10, 26, 0), utc(2026, 11, 2, 0), utc(2026, 11, 5, 0)]
    assert {e.tz for e in events} == {"Asia/Tokyo"}


# -- the account's view -------------------------------------------------------------------------------
def test_responses_transparency_and_event_types():
    events, _ = parse("declined_tentative_and_free.ics")
    got = {e.id.split("/", 1)[1]: (e.self_response, e.transparency, e.event_type, e.status, e.all_day) for e in events}
    assert got == {
        "declined@northwind.com": ("declined", "opaque", "default", "confirmed", False),
        "tentative@northwind.com": ("tentative", "opaque", "default", "confirmed", False),
        "free@northwind.com": ("accepted", "transparent", "default", "confirmed", False),
        "outlook-free@northwind.com": ("accepted", "transparent", "default", "confirmed", False),
        "outlook-oof@northwind.com": ("accepted", "opaque", "outOfOffice", "confirmed", True),
        "outlook-tentative@northwind.com": ("tentative", "opaque", "default", "confirmed", False),
        "unanswered@northwind.com": ("needsAction", "opaque", "default", "confirmed", False),
        "organised@northwind.com": ("accepted", "opaque", "default", "tentative", False),
    }
    oof = by_id(events)["calendar/outlook-oof@northwind.com"]
    assert (oof.start, oof.end) == (utc(2026, 11, 3), utc(2026, 11, 4))  # GMT midnight, X-WR-TIMEZONE London
    declined = by_id(events)["calendar/declined@northwind.com"]
    assert declined.attendees[0].email == ANN  # written ANN@ in the file


def test_window_bounds_the_expansion():
    events, _ = parse("dst_transition_weekly.ics", start=utc(2026, 10, 26, 8, 30), end=utc(2026, 11, 2, 8))
    assert [e.start for e in events] == [utc(2026, 10, 26, 8)]  # overlaps the start; 2 Nov starts at the end


def test_ids_are_stable_across_parses():
    for fixture in sorted(p.name for p in FIXTURES.glob("*.ics")):
        if fixture in ("not_icalendar.ics", "truncated.ics"):
            continue
        first, _ = parse(fixture)
        second, _ = parse(fixture)
        assert [(e.id, e.start, e.updated) for e in first] == [(e.id, e.start, e.updated) for e in second]
        assert len({e.id for e in first}) == len(first)
        assert all(feed_of(e.id) and e.id.startswith(feed_of(e.id) + "/") for e in first)


# -- broken input -------------------------------------------------------------------------------------
def test_broken_components_are_skipped_and_the_rest_imported():
    events, skips = parse("broken_component.ics")
    good = ["broken-bits/good-1@google.com", "broken-bits/good-2@google.com"]
    assert sorted(e.id for e in events if e.ical_uid) == good
    assert [e.start for e in events if not e.ical_uid] == [utc(2026, 11, 2, 14)]  # the event without a UID
    items = [item for item, _ in skips]
    assert items == [
        "broken_component.ics line 13: event bad-start@google.com",
        "broken_component.ics line 26: event bad-rule@google.com",
        "broken_component.ics line 33: event ends-before-start@google.com",
    ]
    reasons = [reason for _, reason in skips]
    assert "DTSTART cannot be read" in reasons[0] and "noonish" in reasons[0]
    assert "RRULE cannot be read" in reasons[1]
    assert "ends before it starts" in reasons[2]
    assert not any("Secret" in item + reason for item, reason in skips)  # titles never leak into reports


def test_unknown_timezone_is_skipped_not_guessed():
    events, skips = parse("unknown_timezone.ics")
    assert [(e.id, e.start) for e in events] == [("mars-base/earth@example.com", utc(2026, 11, 5, 8))]
    [(item, reason)] = skips
    assert item == "unknown_timezone.ics line 5: event olympus@example.com"
    assert "'Mars/Olympus_Mons'" in reason and "VTIMEZONE" in reason


@pytest.mark.parametrize(
    ("fixture", "words"),
    [
        ("not_icalendar.ics", ["not_icalendar.ics", "not an iCalendar file", "line 1", "export"]),
        ("truncated.ics", ["truncated.ics", "cut short at line 31", "VEVENT begun at line 26", "export it again"]),
    ],
)
def test_unreadable_files_raise_naming_the_file(fixture, words):
    with pytest.raises(ImportFileError) as raised:
        parse(fixture)
    for word in words:
        assert word in str(raised.value)


def test_empty_and_damaged_files():
    with pytest.raises(ImportFileError, match="empty.ics: the file is empty"):
        parse("empty.ics", data=b"")
    damaged = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nEND:VCALENDAR\r\n"
    events, [(item, reason)] = parse("damaged.ics", data=damaged)  # the broken event is skipped, not the file
    assert not events and item == "damaged.ics line 2: VEVENT"
    assert reason.startswith("has no END:VEVENT before line 4 ends VCALENDAR; lines 2-3 skipped")


@pytest.mark.parametrize("line_end", ["\r\n", "\n"])
def test_a_broken_component_elsewhere_is_skipped_with_its_line_and_the_events_import(line_end):
    todo = "BEGIN:VTODO\r\nUID:t\r\nSUMMARY:Secret chore\r\nBEGIN:VALARM\r\nEND:VALARM\r\nEND:VTOOD\r\n"
    stray = "END:VJOURNAL\r\n"
    text = CALENDAR.format(plain_event("a") + todo + plain_event("b") + stray + plain_event("c"))
    data = text.replace("\r\n", line_end).encode()
    events, skips = parse("typo.ics", data)
    assert sorted(e.id for e in events) == ["ann/a", "ann/b", "ann/c"]
    assert skips == [
        ("typo.ics line 11: VTODO", "ends with END:VTOOD at line 16 instead of END:VTODO; lines 11-16 skipped, "
         "fix or export it again"),
        ("typo.ics line 24", "END:VJOURNAL ends nothing that is open; the line is skipped"),
    ]  # fmt: skip
    plain, reference = both_ways("typo.ics", data)
    assert plain == reference
    broken_event = CALENDAR.format(plain_event("a") + plain_event("b").replace("END:VEVENT", "END:VEVNT"))
    events, [(item, reason)] = parse("typo.ics", broken_event.encode())
    assert [e.id for e in events] == ["ann/a"] and item == "typo.ics line 11: VEVENT" and "END:VEVNT" in reason
    after = CALENDAR.format(todo + plain_event("a").replace("DTSTART:", "DTSTART:bad"))
    assert [item for item, _ in parse("typo.ics", after.encode())[1]] == [
        "typo.ics line 4: VTODO",
        "typo.ics line 10: event a",  # the events after a skipped part keep their line numbers
    ]


# -- files and zips -----------------------------------------------------------------------------------
def test_calendar_files_reads_ics_and_zip(tmp_path):
    archive = tmp_path / "takeout.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(FIXTURES / "dst_transition_weekly.ics", "Calendar/ann@northwind.com.ics")
        z.write(FIXTURES / "floating_times.ics", "Calendar/Chicago office.ics")
        z.writestr("Calendar/readme.txt", "not a calendar")
    files = list(calendar_files(archive))
    assert [name for name, _ in files] == [
        "takeout.zip/Calendar/ann@northwind.com.ics",
        "takeout.zip/Calendar/Chicago office.ics",
    ]
    counts = [len(list(iter_ics_events(n, d, ANN, SETTINGS, START, END, lambda i, r: None))) for n, d in files]
    assert counts == [5, 3]
    single = FIXTURES / "outlook_windows_timezone.ics"
    assert list(calendar_files(single)) == [("outlook_windows_timezone.ics", single.read_bytes())]


def test_bad_zip_and_missing_file_raise_naming_the_file(tmp_path):
    bad = tmp_path / "export.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ImportFileError, match="export.zip: not a readable zip file"):
        list(calendar_files(bad))
    empty = tmp_path / "nothing.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ImportFileError, match="nothing.zip: the zip holds no .ics file"):
        list(calendar_files(empty))
    with pytest.raises(ImportFileError, match="gone.ics: cannot be read"):
        list(calendar_files(tmp_path / "gone.ics"))


def test_feed_falls_back_to_the_file_stem():
    data = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTART:20261102T090000Z\r\n"
    data += b"DTEND:20261102T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    [event] = iter_ics_events("exports/My Calendar.ics", data, ANN, SETTINGS, START, END, lambda i, r: None)
    assert event.id == "my-calendar/u1" and feed_of(event.id) == "my-calendar"
    assert event.updated == datetime(1970, 1, 1, tzinfo=UTC)  # no LAST-MODIFIED, DTSTAMP or CREATED


# -- the plain reader -----------------------------------------------------------------------------------
def both_ways(name: str, data: bytes, account: str = ANN, settings=SETTINGS, start=START, end=END):
    """(events, skips, error) read with the plain reader, and read with icalendar alone."""

    def read(plain: bool):
        skips: list[tuple[str, str]] = []
        try:
            events = iter_ics_events(name, data, account, settings, start, end, lambda *s: skips.append(s), plain=plain)
            return sorted((asdict(e) for e in events), key=lambda e: e["id"]), skips, None
        except ImportFileError as e:
            return [], skips, str(e)

    return read(True), read(False)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.ics")))
def test_plain_reader_gives_what_icalendar_gives_for_every_fixture(fixture):
    data = (FIXTURES / fixture).read_bytes()
    titled = parse_settings({"organisation": {"timezone": "Asia/Tokyo"}, "privacy": {"store_titles": True}})
    for settings in (SETTINGS, titled):
        plain, reference = both_ways(fixture, data, settings=settings)
        assert plain == reference and any(plain)


@pytest.fixture(scope="module")
def demo_calendars() -> list[tuple[str, bytes]]:
    """A demo organisation's calendars, exported as the benchmark exports them (Google style)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(Path(__file__).parent.parent))  # bench/ is not installed
        from bench.exports import calendar_file
    org = build_org(people=24, weeks=6, seed=7, end=date(2026, 11, 23))
    events = records_to_arrow("events", iter_events(org)).to_pylist()
    people = sorted({e["account"] for e in events})[::4]
    zones = {p.email: p.timezone for p in org.people}
    return [
        (person, calendar_file(person, zones.get(person) or "UTC", [e for e in events if e["account"] == person]))
        for person in people
    ]


def test_plain_reader_gives_what_icalendar_gives_for_a_demo_organisation(demo_calendars):
    window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    taken = offered = 0
    for person, data in demo_calendars:
        plain, reference = both_ways(f"{person}.ics", data, person, start=window[0], end=window[1])
        assert plain == reference and plain[0] and plain[1:] == ([], None)
        places = ics_plain.cut(data).places
        taken += sum(row is not None for row in places)
        offered += len(places)
    assert taken == offered > 500  # every demo event is a plain single event


def test_plain_reader_leaves_unusual_events_to_icalendar():
    taken = ics_plain.cut((FIXTURES / "google_recurring_moved_and_deleted.ics").read_bytes())
    kinds = [row is not None for row in taken.places]
    assert kinds.count(True) >= 1 and kinds.count(False) >= 2  # the review is plain, the series and override not
    assert "RRULE" in taken.skeleton and "3k9a2m1review" not in taken.skeleton


def test_plain_reader_reads_attendee_runs_as_icalendar_reads_their_lines():
    """Attendee lines are read a run at a time: runs split by other lines, folded lines, a run
    with a line the plain reader leaves to icalendar, and a list another event repeats."""
    attendee = "ATTENDEE;PARTSTAT={};CN={}:mailto:{}@northwind.com\r\n"
    team = attendee.format("ACCEPTED", "Bob", "bob") + attendee.format("DECLINED", "Ann", "ann")

    def event(uid: str, attendees: str) -> str:
        return (
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:20261102T090000Z\r\nDTEND:20261102T100000Z\r\n"
            f"SUMMARY:Planning\r\n{attendees}ORGANIZER:mailto:bob@northwind.com\r\nEND:VEVENT\r\n"
        )

    long_line = attendee.format("TENTATIVE", "Carol", "carol-with-a-rather-long-address-that-folds")
    events = [
        event("one-run", team),
        event("same-run", team),  # the same list again
        event("split-runs", team + "LOCATION:Room 1\r\n" + attendee.format("TENTATIVE", "Dan", "dan")),
        event("folded", long_line[:75] + "\r\n " + long_line[75:]),
        event("own-twice", attendee.format("TENTATIVE", "Ann", "ann") + team),
        event("not-plain", team + "ATTENDEE;CN=Eve,Ops;PARTSTAT=ACCEPTED:mailto:eve@northwind.com\r\n"),
    ]
    data = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{''.join(events)}END:VCALENDAR\r\n".encode()
    plain, reference = both_ways("runs.ics", data)
    assert plain == reference and plain[1:] == ([], None)
    attendees = {e["id"]: [(a["email"], a["response"]) for a in e["attendees"]] for e in plain[0]}
    assert attendees["runs/split-runs"][-1] == ("dan@northwind.com", "tentative")
    responses = {e["id"].removeprefix("runs/"): e["self_response"] for e in plain[0]}
    assert responses == {
        **dict.fromkeys(["one-run", "same-run", "split-runs", "not-plain"], "declined"),
        **{"folded": "accepted", "own-twice": "tentative"},
    }
    assert [row is not None for row in ics_plain.cut(data).places] == [True, True, False, True, True, False]


# -- the column-wise reader against icalendar, as Arrow tables -------------------------------------------
def as_table(records: list) -> pa.Table:
    """What an import lands of a reader's records (dicts and Arrow tables), sorted by id."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    tables = [_with_ingested_at("events", r, now) for r in records if isinstance(r, pa.Table)]
    tables.append(_to_arrow("events", [r for r in records if not isinstance(r, pa.Table)], now))
    return pa.concat_tables(tables).sort_by("id")


def tables_both_ways(name: str, data: bytes, account: str = ANN, settings=SETTINGS, start=START, end=END):
    """(table, skips) read column-wise and read with icalendar alone."""

    def read(plain: bool):
        skips: list[tuple[str, str]] = []
        records = iics_records(name, data, account, settings, start, end, lambda *s: skips.append(s), plain=plain)
        return as_table(list(records)), skips

    return read(True), read(False)


def fold(line: str) -> str:
    """A content line folded as exporters fold it: 75 octets, continuation lines begin with a blank."""
    data, out = line.encode(), []
    while len(data) > 75:
        cut = 75
        while data[cut] & 0xC0 == 0x80:  # not inside a character
            cut -= 1
        out.append(data[:cut].decode())
        data = b" " + data[cut:]
    return "\r\n".join([*out, data.decode()]) + "\r\n"


PEOPLE = [f"{n}@northwind.com" for n in ("bob", "carol", "dan", "eve-with-a-long-address-that-folds", "fay")]


def generated_calendar(seed: int, zone_header: bool = True, line_end: str = "\r\n") -> bytes:
    """A calendar of single events in every form the column-wise reader meets, and some it leaves
    to icalendar: times in UTC, with a TZID, floating, all-day, with a duration or no end, around
    summer-time changes and the window's edges; cancelled, tentative, free, out of office;
    shared and folded attendee lists, the account declining or absent; organisers, conferences,
    descriptions; repeated UIDs and a series; typed, repeated and nested properties."""
    rng = random.Random(seed)
    teams = [
        [(p, rng.choice(["ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION"])) for p in rng.sample(PEOPLE, k)]
        for k in (1, 3, 5)
    ]
    times = [
        ("DTSTART:20261015T130000Z", "DTEND:20261015T140000Z"),
        ("DTSTART:20261025T003000Z", "DTEND:20261025T013000Z"),  # ends in London's repeated hour
        ("DTSTART:20261101T050000Z", "DTEND:20261101T063000Z"),  # New York's repeated hour
        ("DTSTART:20261001T000000Z", "DTEND:20261001T000000Z"),  # empty, at the window's start
        ("DTSTART:20270601T000000Z", "DTEND:20270601T010000Z"),  # at the window's end
        ("DTSTART:20260930T230000Z", "DTEND:20261001T000000Z"),  # ends at the window's start
        ("DTSTART:20261020T090000Z", ""),
        ("DTSTART;VALUE=DATE:20261026", "DTEND;VALUE=DATE:20261028"),
        ("DTSTART;VALUE=DATE:20270328", ""),
        ("DTSTART:20261026", "DTEND:20261027"),
        ("DTSTART;TZID=Europe/Berlin:20261025T023000", "DTEND;TZID=Europe/Berlin:20261025T033000"),
        ("DTSTART;TZID=America/New_York:20261101T013000", "DTEND;TZID=Europe/London:20261101T090000"),
        ("DTSTART:20261025T013000", "DTEND:20261025T020000"),  # floating
        ("DTSTART:20261110T090000Z", "DURATION:PT45M"),
        ("DTSTART;VALUE=DATE-TIME:20261110T090000Z", "DTEND:20261110T100000Z"),
        ("DTSTART:20261110T090000Z", "DTEND;TZID=Asia/Tokyo:20261110T190000"),
        ("DTSTART:20260230T090000Z", "DTEND:20260230T100000Z"),  # no such day: skipped by icalendar
        ("DTSTART;TZID=W. Europe Standard Time:20261110T090000", "DTEND;TZID=W. Europe Standard Time:20261110T100000"),
        ("DTSTART:20261110T100000Z", "DTEND:20261110T090000Z"),  # ends before it starts
    ]
    extras = [
        "", "", "",
        "STATUS:CANCELLED\r\n", "STATUS:TENTATIVE\r\n", "TRANSP:TRANSPARENT\r\n",
        "X-MICROSOFT-CDO-BUSYSTATUS:FREE\r\n", "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE\r\n",
        "X-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n", "X-GOOGLE-CONFERENCE:https://meet.google.com/abc\r\n",
        "LOCATION:https://acme.zoom.us/j/1\r\n", "X-MICROSOFT-ONLINEMEETINGCONFLINK:FALSE\r\n",
        "CONFERENCE;VALUE=URI:https://x.webex.com/1\r\n", "DESCRIPTION:Agenda: see the notes\\, then vote\r\n",
        "DESCRIPTION:\\n\r\n", "DESCRIPTION: \r\n", "ATTACH:https://example.com/a.pdf\r\n",
        "SUMMARY;LANGUAGE=en:Renewal\r\n", "SUMMARY;VALUE=TEXT:Typed\r\n", "DESCRIPTION:a\r\nDESCRIPTION:b\r\n",
        "CATEGORIES:a\r\nCATEGORIES:b\r\n", "SEQUENCE:2\r\n", "SEQUENCE:x\r\n",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n", "x-lower:1\r\n",
        "ORGANIZER;CN=\"Doe: Jane\":mailto:Jane@Acme.com\r\n", "ORGANIZER:mailto:ann@northwind.com\r\n",
        "ORGANIZER;EMAIL=bob@northwind.com:urn:uuid:1\r\n", "LAST-MODIFIED:20261001T120000Z\r\n",
        "DTSTAMP:20261001\r\n", "CREATED;TZID=Asia/Tokyo:20261001T120000\r\n", "LAST-MODIFIED:20261301T000000Z\r\n",
        "SUMMARY:Café planning 1:1\r\n", "URL:https://teams.microsoft.com/l/1\r\n",
    ]  # fmt: skip
    events = []
    for n in range(160):
        start, end = rng.choice(times)
        uid = rng.choice([f"ev-{n}@google.com", f"ev-{n}", "shared@x", f"with/slash-{n}", f" padded-{n} "])
        lines = [f"UID:{uid}", start, end, f"SUMMARY:{rng.choice(['Weekly sync', 'Acme review', '1:1'])}"]
        lines = [line for line in lines if line]
        body = "".join(fold(line) for line in lines)
        body += "".join(rng.sample(extras, rng.randint(0, 3)))
        team = rng.choice([*teams, None])
        if team is not None:
            own = rng.choice([None, "DECLINED", "TENTATIVE", "ACCEPTED"])
            people = [*team, *([(ANN, own)] if own else [])]
            rng.shuffle(people)
            extra = rng.choice(
                ["", ";ROLE=OPT-PARTICIPANT", ";CUTYPE=ROOM", ";CN=Someone", ';CN="A, B"', ";VALUE=CAL-ADDRESS"]
            )
            attendees = [
                fold(f"ATTENDEE;PARTSTAT={s}{extra if i == 0 else ''}:mailto:{p}") for i, (p, s) in enumerate(people)
            ]
            if rng.random() < 0.1:
                attendees.insert(1, "LOCATION:Room 1\r\n")  # splits the run
            at = rng.randint(0, body.count("\r\n"))
            kept = body.split("\r\n")
            body = "\r\n".join([*kept[:at], "".join(attendees).removesuffix("\r\n"), *kept[at:]])
            body = body.replace("\r\n\r\n", "\r\n")
        events.append(f"BEGIN:VEVENT\r\n{body.removesuffix(chr(13) + chr(10))}\r\nEND:VEVENT\r\n")
    events.append(
        "BEGIN:VEVENT\r\nUID:series\r\nDTSTART:20261013T090000Z\r\nDTEND:20261013T093000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:series/20261020T090000Z\r\nDTSTART:20261021T090000Z\r\nEND:VEVENT\r\n"
    )
    header = "X-WR-CALNAME:Ann\r\n" + ("X-WR-TIMEZONE:America/New_York\r\n" if zone_header else "")
    text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{header}{''.join(events)}END:VCALENDAR\r\n"
    return text.replace("\r\n", line_end).encode()


@pytest.mark.parametrize("seed", range(6))
def test_column_wise_reader_lands_what_icalendar_reads(seed):
    data = generated_calendar(seed, zone_header=seed % 2 == 0, line_end="\n" if seed == 5 else "\r\n")
    titled = parse_settings({"organisation": {"timezone": "Asia/Tokyo"}, "privacy": {"store_titles": True}})
    for settings in (SETTINGS, titled):
        plain, reference = tables_both_ways("generated.ics", data, settings=settings)
        assert plain[0].equals(reference[0]) and plain[1] == reference[1]
        assert plain[0].num_rows > 40
    places = ics_plain.cut(data).places
    assert 0.3 < sum(row is not None for row in places) / len(places) < 0.95  # both ways are taken


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.ics")))
def test_column_wise_reader_lands_what_icalendar_reads_for_every_fixture(fixture):
    data = (FIXTURES / fixture).read_bytes()
    plain, reference = tables_both_ways(fixture, data) if fixture not in UNREADABLE else ((None,), (None,))
    assert plain[0] is None or (plain[0].equals(reference[0]) and plain[1] == reference[1])


UNREADABLE = ("not_icalendar.ics", "truncated.ics")


def plain_event(uid: str, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:20261102T090000Z\r\nDTEND:20261102T100000Z\r\n"
        f"SUMMARY:Planning\r\n{extra}ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@northwind.com\r\nEND:VEVENT\r\n"
    )


CALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Ann\r\n{}END:VCALENDAR\r\n"
ODD_FILES = {
    "folded into END": CALENDAR.format(plain_event("a", "DESCRIPTION:see the\r\n END:VEVENT\r\n") + plain_event("b")),
    "folded into begin": CALENDAR.format(plain_event("a", "DESCRIPTION:x\r\n \tbegin:VALARM\r\n") + plain_event("b")),
    "attendee folded into END": CALENDAR.format(
        plain_event("a", "ATTENDEE:mailto:x@y.com\r\n END:VEVENT\r\n") + plain_event("b")
    ),
    "END folded on": CALENDAR.format(plain_event("a").removesuffix("\r\n") + "\r\n X\r\n" + plain_event("b")),
    "empty event": CALENDAR.format("BEGIN:VEVENT\r\nEND:VEVENT\r\n" + plain_event("b")),
    "nested in a to-do": CALENDAR.format(
        "BEGIN:VTODO\r\nUID:t\r\n" + plain_event("a") + "END:VTODO\r\n" + plain_event("b")
    ),
    "before the calendar": plain_event("a") + CALENDAR.format(plain_event("b")),
    "two calendars": CALENDAR.format(plain_event("a")) + CALENDAR.format(plain_event("b")),
    "cut short": CALENDAR.format(plain_event("a") + plain_event("b")).removesuffix("END:VCALENDAR\r\n"),
    "lone carriage return": CALENDAR.format(plain_event("a", "DESCRIPTION:x\ry\r\n") + plain_event("b")),
    "vertical tab": CALENDAR.format(plain_event("a", "SUMMARY:x\x0bEND:VEVENT\r\n") + plain_event("b")),
    "line separator": CALENDAR.format(plain_event("a", "LOCATION:x\u2028y\r\n") + plain_event("b")),
    "byte order mark": "\ufeff" + CALENDAR.format(plain_event("a") + plain_event("b")),
    "attendees first": CALENDAR.format(
        "BEGIN:VEVENT\r\nATTENDEE:mailto:x@y.com\r\nUID:a\r\nDTSTART:20261102T090000Z\r\nEND:VEVENT\r\n"
    ),
}


@pytest.mark.parametrize("case", sorted(ODD_FILES))
def test_plain_reader_leaves_odd_files_as_icalendar_reads_them(case):
    for data in (ODD_FILES[case].encode(), ODD_FILES[case].replace("Planning", "Café").encode("latin-1", "replace")):
        plain, reference = both_ways("odd.ics", data)
        assert plain == reference


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo"])
def test_ends_on_the_wall_clock_as_python_reads_them(zone):
    """Arrow's time zone rules give what Python's zoneinfo gives, around every change of a year."""
    tz = ZoneInfo(zone)
    ends = pa.array([utc(2026, 1, 1) + timedelta(minutes=30 * n) for n in range(2 * 24 * 365)], UTC_TS)
    python = [end.astimezone(tz).replace(fold=0).astimezone(UTC) for end in ends.to_pylist()]
    assert on_the_wall_clock(ends, tz).to_pylist() == python


# -- events without a UID --------------------------------------------------------------------------------
def no_uid_event(start: str, summary: str, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n{extra}"
        "DTSTAMP:20261101T000000Z\r\nEND:VEVENT\r\n"
    )


def test_events_without_uid_get_stable_ids_from_their_content():
    data = CALENDAR.format(
        no_uid_event("20261102T090000Z", "Planning")
        + no_uid_event("20261102T090000Z", "Review")  # same time, another event
        + no_uid_event("20261103T090000Z", "Standup", "RRULE:FREQ=DAILY;COUNT=3\r\n")
        + plain_event("with-uid")
    ).encode()
    events, skips = parse("no-uid.ics", data)
    assert not skips
    without = [e for e in events if not e.ical_uid]
    assert len(without) == 5 and len({e.id for e in without}) == 5
    series = sorted(e.start for e in without if e.series_id)
    assert series == [utc(2026, 11, 3, 9), utc(2026, 11, 4, 9), utc(2026, 11, 5, 9)]
    again, _ = parse("no-uid.ics", data)
    assert sorted(e.id for e in again) == sorted(e.id for e in events)  # stable across imports
    restamped, _ = parse("no-uid.ics", data.replace(b"DTSTAMP:20261101", b"DTSTAMP:20261115"))
    assert sorted(e.id for e in restamped) == sorted(e.id for e in events)  # a new export stamp keeps them
    plain, reference = tables_both_ways("no-uid.ics", data)
    assert plain[0].equals(reference[0]) and plain[1] == reference[1]


# -- bounded work ------------------------------------------------------------------------------------------
def endless(uid: str, start: str, rule: str) -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nDURATION:PT1M\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"


def test_an_endless_minutely_rule_is_cut_at_the_cap_and_said_so():
    capped = parse_settings({"imports": {"max_occurrences_per_series": 50}})
    data = CALENDAR.format(
        endless("every-minute", "20261001T000000Z", "FREQ=MINUTELY")
        + endless("every-second-since-2020", "20200101T000000Z", "FREQ=SECONDLY")
        + endless("hourly-at-nine", "20261001T090000Z", "FREQ=HOURLY;BYHOUR=9;COUNT=40")  # 40 days: not cut
        + endless("begun-before", "20260930T200000Z", "FREQ=MINUTELY;INTERVAL=2")
        + plain_event("a")
    ).encode()
    events, skips = parse("hostile.ics", data, settings=capped)
    series = defaultdict(list)
    for e in events:
        series[e.id.split("/")[1]].append(e.start)
    assert sorted(series) == ["a", "begun-before", "every-minute", "hourly-at-nine"]
    assert series["every-minute"] == [utc(2026, 10, 1) + timedelta(minutes=n) for n in range(50)]  # the first ones
    assert series["begun-before"] == [utc(2026, 10, 1) + timedelta(minutes=2 * n) for n in range(50)]  # in the window
    assert len(series["hourly-at-nine"]) == 40
    assert [item for item, _ in skips] == [
        "hostile.ics line 4: event every-minute",
        "hostile.ics line 10: event every-second-since-2020",
        "hostile.ics line 22: event begun-before",
    ]
    assert "more than the cap of 50 occurrences per series (imports.max_occurrences_per_series)" in skips[0][1]
    assert "only its first 50 are imported" in skips[0][1]
    assert "before the window starts" in skips[1][1] and skips[1][1].endswith("skipped")
    plain, reference = tables_both_ways("hostile.ics", data, settings=capped)
    assert plain[0].equals(reference[0]) and plain[1] == reference[1]


def override(uid: str, day: int, sequence: int, summary: str) -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nRECURRENCE-ID:202611{day:02}T090000Z\r\nDTSTART:202611{day:02}T100000Z\r\n"
        f"DURATION:PT30M\r\nSEQUENCE:{sequence}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )


def test_many_copies_of_one_uid_are_read_once():
    series = endless("daily", "20261102T090000Z", "FREQ=DAILY;COUNT=5").replace("PT1M", "PT30M")
    overrides = [override("daily", 3, n, f"Moved {n}") for n in range(300)]  # each a newer version of the last
    overrides += [override("daily", 4, 0, "Same")] * 300
    data = CALENDAR.format(plain_event("copied") * 300 + series + "".join(overrides) + plain_event("late")).encode()
    read = without_superseded(data)
    assert read.count(b"BEGIN:VEVENT") == 5 and read.count(b"\n") == data.count(b"\n")  # lines keep their numbers
    titled = parse_settings({"privacy": {"store_titles": True}})
    events, skips = parse("copies.ics", data, settings=titled)
    assert not skips
    assert sorted((e.id, e.start.day, e.title) for e in events) == [
        ("ann/copied", 2, "Planning"),
        ("ann/daily/20261102T090000Z", 2, None),
        ("ann/daily/20261103T090000Z", 3, "Moved 299"),  # the highest SEQUENCE wins, as recurring_ical_events has it
        ("ann/daily/20261104T090000Z", 4, "Same"),
        ("ann/daily/20261105T090000Z", 5, None),
        ("ann/daily/20261106T090000Z", 6, None),
        ("ann/late", 2, "Planning"),
    ]
    plain, reference = tables_both_ways("copies.ics", data, settings=titled)
    assert plain[0].equals(reference[0]) and plain[1] == reference[1]
