"""CalDAV end to end against a real Radicale (tests/mail_servers.py) started on a loopback port:
the real client library, a real lake, real DuckDB."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import caldav
import pytest
from mail_servers import start_radicale
from typer.testing import CliRunner

from connectors.caldav.source import SOURCE
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

ANN, PASSWORD = "ann@northwind.com", "calendar-app-password"
ROOT = Path(__file__).parent.parent
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
COLUMNS = (
    'source, account, id, ical_uid, series_id, start, "end", tz, all_day, status, self_response, transparency, '
    "event_type, organizer, attendees, has_agenda, has_conference, title_tags, updated"
)


def stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%SZ")


def vevent(uid: str, start: datetime, hours: float = 1, *, extra: str = "", modified: datetime | None = None) -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:{stamp(modified or TODAY - timedelta(days=30))}\r\n"
        f"DTSTART:{stamp(start)}\r\nDTEND:{stamp(start + timedelta(hours=hours))}\r\n{extra}END:VEVENT\r\n"
    )


def calendar_text(*events: str, name: str = "") -> str:
    head = f"X-WR-CALNAME:{name}\r\n" if name else ""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//timeaudit tests//EN\r\n"
        + head
        + "".join(events)
        + ("END:VCALENDAR\r\n")
    )


ZONED = (
    "BEGIN:VEVENT\r\nUID:zoned\r\nDTSTAMP:20261001T000000Z\r\n"
    f"DTSTART;TZID=America/New_York:{(TODAY - timedelta(days=3)).strftime('%Y%m%d')}T090000\r\n"
    f"DTEND;TZID=America/New_York:{(TODAY - timedelta(days=3)).strftime('%Y%m%d')}T100000\r\n"
    "SUMMARY:Steering committee\r\nORGANIZER:mailto:sue@northwind.com\r\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:ann@northwind.com\r\nATTENDEE;PARTSTAT=TENTATIVE:mailto:tim@northwind.com\r\n"
    "END:VEVENT\r\n"
)


def events() -> dict[str, str]:
    """One calendar object per UID: a customer meeting, a weekly series with a moved occurrence,
    a zoned committee, an all-day event."""
    weekly_start = TODAY - timedelta(weeks=3) + timedelta(hours=9)
    moved = weekly_start + timedelta(weeks=1)
    return {
        "acme": vevent(
            "acme", TODAY - timedelta(days=2, hours=-14),
            extra="SUMMARY:Acme renewal\r\nORGANIZER:mailto:ann@northwind.com\r\n"
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:joe@acme.com\r\n",
        ),
        "weekly": vevent(
            "weekly", weekly_start, 0.5, extra="SUMMARY:Team sync\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\n"
        ) + vevent(
            "weekly", moved + timedelta(hours=2), 0.5,
            extra=f"SUMMARY:Team sync\r\nRECURRENCE-ID:{stamp(moved)}\r\n",
        ),
        "zoned": ZONED,
        "allday": (
            "BEGIN:VEVENT\r\nUID:allday\r\nDTSTAMP:20261001T000000Z\r\n"
            f"DTSTART;VALUE=DATE:{TODAY.strftime('%Y%m%d')}\r\nSUMMARY:Offsite\r\nEND:VEVENT\r\n"
        ),
    }  # fmt: skip


@pytest.fixture
def radicale(tmp_path):
    server = start_radicale(tmp_path / "radicale", {ANN: PASSWORD})
    yield server
    server.stop()


def dav(server) -> caldav.Principal:
    return caldav.DAVClient(url=server.url, username=ANN, password=PASSWORD).principal()


def fill(server, name: str = "Work") -> caldav.Calendar:
    calendar = dav(server).make_calendar(name=name)
    for body in events().values():
        calendar.save_event(calendar_text(body))
    return calendar


def caldav_settings(server, tmp_path: Path, **account) -> dict:
    secret = tmp_path / "caldav-password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    return {
        "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
        "customers": [{"name": "Acme", "domains": ["acme.com"]}],
        "caldav": [{"account": ANN, "url": server.url, "password_file": str(secret), **account}],
    }


def sync(lake: Lake, settings: dict, **options):
    return sync_registered(lake, parse_settings(settings), "caldav", **options)


def live(lake: Lake) -> list[tuple]:
    return lake.connect().execute(f"SELECT {COLUMNS} FROM events ORDER BY id").fetchall()


def by_id(lake: Lake) -> dict[str, dict]:
    frame = lake.connect().execute(f"SELECT {COLUMNS} FROM events").df()
    return {row["id"].split("/", 1)[1]: row for row in frame.to_dict("records")}


def test_first_sync_discovers_the_calendars_and_a_second_adds_nothing(radicale, tmp_path):
    fill(radicale)
    fill(radicale, "Private")
    settings = caldav_settings(radicale, tmp_path)
    lake = Lake(tmp_path / "data")
    summary = sync(lake, settings)
    assert summary.failed == 0 and len(summary.reports) == 2
    rows = live(lake)
    assert len(rows) == 2 * (1 + 6 + 1 + 1)  # two calendars: acme, six weekly, zoned, all-day
    assert all(row[0] == SOURCE for row in rows)
    assert len({row[2].split("/", 1)[0] for row in rows}) == 2, "each calendar its own key"
    events_ = by_id(lake)
    assert events_["zoned"]["tz"] == "America/New_York"
    assert events_["zoned"]["start"].hour in (13, 14)  # 09:00 in New York, in UTC
    again = sync(lake, settings)
    assert again.records == 0 and again.added == 0 and live(lake) == rows
    assert all(not r.full_sync for r in again.reports)
    assert [r.requests for r in again.reports] == [1, 1], "one sync-collection REPORT per calendar"


def test_an_event_moved_and_one_deleted_upstream_are_moved_and_deleted(radicale, tmp_path):
    calendar = fill(radicale)
    settings = caldav_settings(radicale, tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings)
    before = by_id(lake)

    later = TODAY - timedelta(days=1, hours=-10)
    moved = vevent("acme", later, 2, extra="SUMMARY:Acme renewal\r\nATTENDEE:mailto:joe@acme.com\r\n", modified=TODAY)
    calendar.save_event(calendar_text(moved))
    calendar.event_by_uid("zoned").delete()
    # The series shortened: its last two occurrences vanish.
    weekly_start = TODAY - timedelta(weeks=3) + timedelta(hours=9)
    calendar.save_event(
        calendar_text(vevent("weekly", weekly_start, 0.5, extra="RRULE:FREQ=WEEKLY;COUNT=4\r\n", modified=TODAY))
    )

    summary = sync(lake, settings)
    assert summary.failed == 0
    after = by_id(lake)
    assert after["acme"]["start"] == later and after["acme"]["end"] == later + timedelta(hours=2)
    assert "zoned" not in after
    assert len([k for k in after if k.startswith("weekly/")]) == 4
    assert len([k for k in before if k.startswith("weekly/")]) == 6
    assert summary.deleted == 1 + 2


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(radicale, tmp_path):
    calendar = dav(radicale).make_calendar(name="Busy")
    for n in range(30):
        calendar.save_event(calendar_text(vevent(f"e{n}", TODAY - timedelta(days=n, hours=-9))))
    settings = caldav_settings(radicale, tmp_path)
    secret = settings["caldav"][0]["password_file"]
    config = tmp_path / "timeaudit.toml"
    config.write_text(f'[[caldav]]\naccount = "{ANN}"\nurl = "{radicale.url}"\npassword_file = "{secret}"\n')
    killed, reference = Lake(tmp_path / "killed"), Lake(tmp_path / "reference")
    script = f"""
import os, signal
from pathlib import Path
from timeaudit.core.config import load_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_accounts
from connectors.caldav.source import CaldavSource
written = 0
original = Lake.write_arrow
def write_then_die(self, *args, **kwargs):
    global written
    original(self, *args, **kwargs)
    written += 1
    if written == 2:
        os.kill(os.getpid(), signal.SIGKILL)
Lake.write_arrow = write_then_die
source = CaldavSource(load_settings(Path({str(config)!r})))
source.batch_size = 8
sync_accounts(Lake({str(killed.root)!r}), source)
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert killed.read_cursor(SOURCE, ANN) is None and len(live(killed)) == 16
    plain = {"caldav": settings["caldav"]}
    sync(killed, plain)
    sync(reference, plain)
    assert live(killed) == live(reference) and len(live(killed)) == 30


def test_a_bad_password_and_an_unreachable_server_each_end_in_one_line_with_the_fix(radicale, tmp_path):
    data = tmp_path / "data"

    def run(**account) -> tuple[int, str]:
        settings = caldav_settings(radicale, tmp_path, **account)
        entry = settings["caldav"][0]
        config = tmp_path / "timeaudit.toml"
        config.write_text("[[caldav]]\n" + "".join(f'{k} = "{v}"\n' for k, v in entry.items()))
        result = CliRunner().invoke(app, ["sync", "caldav", "--data", str(data), "--config", str(config)])
        return result.exit_code, result.output

    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    wrong.chmod(0o600)
    code, output = run(password_file=str(wrong))
    assert code == 2 and "refused the login" in output and "password_file" in output
    code, output = run(url="http://nowhere.invalid/")
    assert code == 2 and "not found; check the url" in output
    with __import__("socket").socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    code, output = run(url=f"http://127.0.0.1:{closed}/")
    assert code == 2 and "cannot connect" in output
    fill(radicale)
    code, output = run()
    assert code == 0 and "CalDAV: 1 calendar(s), 9 added" in output, output


def test_a_window_that_moved_on_brings_the_occurrences_that_entered_it(radicale, tmp_path):
    calendar = dav(radicale).make_calendar(name="Series")
    calendar.save_event(
        calendar_text(vevent("endless", TODAY - timedelta(weeks=3, hours=-9), extra="RRULE:FREQ=WEEKLY\r\n"))
    )
    settings = caldav_settings(radicale, tmp_path, weeks_back=1, weeks_ahead=1)
    lake = Lake(tmp_path / "data")
    sync(lake, settings, today=TODAY)
    first = {row[2].split("/", 1)[1] for row in live(lake)}
    assert len(first) == 2  # a week back and a week ahead
    assert sync(lake, settings, today=TODAY).records == 0
    later = sync(lake, settings, today=TODAY + timedelta(weeks=2))
    assert later.reports[0].full_sync and later.added == 2
    assert len(live(lake)) == 4, "the past occurrences stay; those that entered the window came"


def test_an_untrusted_certificate_ends_in_one_line_and_ca_file_trusts_it(tmp_path):
    server = start_radicale(tmp_path / "tls", {ANN: PASSWORD}, tls=True)
    try:
        settings = caldav_settings(server, tmp_path)
        with pytest.raises(UserError, match="certificate is not trusted.*ca_file"):
            sync(Lake(tmp_path / "data"), settings)
        settings["caldav"][0]["ca_file"] = str(server.cert)
        assert sync(Lake(tmp_path / "data"), settings).failed == 0
    finally:
        server.stop()
