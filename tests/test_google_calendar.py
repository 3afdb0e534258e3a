"""Google Calendar end to end: the real client library against a real local stand-in of the
API (tests/google_standin.py), a real lake, real DuckDB. Nothing of the core is mocked."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from google_standin import StandIn
from typer.testing import CliRunner

import connectors.google.calendar_source as google_sync
from connectors.google import auth
from connectors.google.calendar import SOURCE
from connectors.google.http import RetryPolicy
from connectors.google.pacing import RateLimiter
from timeaudit.analysis.metrics import event_reasons
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered
from timeaudit.outputs.derived import weekly_metrics

ANN, BOB, CAT, DAN = "ann@northwind.com", "bob@northwind.com", "cat@northwind.com", "dan@northwind.com"
CUSTOMER, COLLEAGUE = "joe@acme.com", "carl@northwind.com"
SHARED = "team@group.calendar.google.com"
FAST = RetryPolicy(base=0.001, max_delay=0.01)
ROOT = Path(__file__).parent.parent
SETTINGS = parse_settings(
    {
        "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
        "customers": [{"name": "Acme", "domains": ["acme.com"]}],
    }
)


# -- the calendar a person has ----------------------------------------------------------------
def monday(weeks_ago: int) -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday(), weeks=weeks_ago)


def local(day: date, hour: float, tz: str = "Europe/London") -> str:
    from zoneinfo import ZoneInfo

    t = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)) + timedelta(hours=hour)
    return t.isoformat()


def timed(id_: str, day: date, start: float, hours: float, **fields) -> dict:
    return {
        "id": id_,
        "start": {"dateTime": local(day, start)},
        "end": {"dateTime": local(day, start + hours)},
        **fields,
    }


def me(response: str = "accepted", user: str = ANN) -> dict:
    """The calendar owner's own attendee entry."""
    return {"email": user, "self": True, "responseStatus": response}


def corpus(standin: StandIn, user: str = ANN) -> date:
    """A realistic calendar for ``user``; returns the Monday of its reference week."""
    m = monday(2)
    standin.add_user(user)
    put = lambda e: standin.put(user, e)  # noqa: E731
    me_ = lambda response="accepted": me(response, user)  # noqa: E731
    put(
        timed(
            "qbr",
            m,
            10,
            1,
            summary="Acme QBR review",
            description="1. renewal\n2. roadmap",
            hangoutLink="https://meet.google.com/abc",
            organizer={"email": user, "self": True},
            attendees=[
                me_(),
                {"email": CUSTOMER, "responseStatus": "accepted"},
                {"email": "room-1@resource.calendar.google.com", "resource": True, "responseStatus": "accepted"},
            ],
        )
    )
    put(
        timed(
            "sync",
            m + timedelta(1),
            10,
            1,
            summary="Team sync",
            organizer={"email": COLLEAGUE},
            attendees=[
                {"email": COLLEAGUE, "organizer": True, "responseStatus": "accepted"},
                me_(),
                {"email": DAN, "optional": True, "responseStatus": "needsAction"},
            ],
        )
    )
    put(
        timed(
            "declined",
            m + timedelta(2),
            10,
            1,
            summary="Budget committee",
            organizer={"email": COLLEAGUE},
            attendees=[{"email": COLLEAGUE, "responseStatus": "accepted"}, me_("declined")],
        )
    )
    put(
        timed(
            "maybe",
            m + timedelta(2),
            14,
            1,
            summary="Planning",
            organizer={"email": COLLEAGUE},
            attendees=[{"email": COLLEAGUE, "responseStatus": "accepted"}, me_("tentative")],
        )
    )
    put(timed("focus", m + timedelta(3), 13, 2, summary="Focus time", eventType="focusTime"))
    put(timed("ooo", m + timedelta(4), 0, 24, summary="Out of office", eventType="outOfOffice"))
    put(
        {
            "id": "holiday",
            "summary": "Bank holiday",
            "start": {"date": str(m + timedelta(3))},
            "end": {"date": str(m + timedelta(4))},
            "transparency": "transparent",
        }
    )
    put({"id": "offsite", "summary": "Offsite", "start": {"date": str(m)}, "end": {"date": str(m + timedelta(3))}})
    put(
        {
            "id": "ny",
            "summary": "Call with NY office",
            "organizer": {"email": user, "self": True},
            "start": {"dateTime": f"{m + timedelta(1)}T09:00:00-05:00", "timeZone": "America/New_York"},
            "end": {"dateTime": f"{m + timedelta(1)}T09:30:00-05:00", "timeZone": "America/New_York"},
            "attendees": [me_(), {"email": CAT, "responseStatus": "accepted"}],
        }
    )
    put(timed("free", m + timedelta(1), 16, 0.5, summary="Dentist", transparency="transparent"))
    put(timed("old", monday(30), 10, 1, summary="Old review"))  # outside the default 26-week window
    # A daily stand-up series, six weeks back and two ahead; one instance moved, one cancelled.
    for week in range(-6, 3):
        for d in range(5):
            day = m + timedelta(weeks=week, days=d)
            iid = f"standup_{day:%Y%m%d}T093000Z"
            event = timed(
                iid,
                day,
                9.5,
                0.25,
                summary="Daily standup",
                recurringEventId="standup",
                originalStartTime={"dateTime": local(day, 9.5)},
                organizer={"email": COLLEAGUE},
                attendees=[{"email": COLLEAGUE, "responseStatus": "accepted"}, me_()],
            )
            if (week, d) == (-1, 2):
                event.update(start={"dateTime": local(day, 11)}, end={"dateTime": local(day, 11.25)})
            put(event)
            if (week, d) == (-1, 3):
                standin.cancel(user, iid)
    return m


def shared_calendar(standin: StandIn, user: str = ANN) -> None:
    standin.add_calendar(user, SHARED, "UTC")
    m = monday(2)
    for i in range(3):
        standin.put(user, timed(f"team{i}", m + timedelta(i), 12, 1, summary="Team lunch"), SHARED)


# -- fixtures and helpers -----------------------------------------------------------------------
@pytest.fixture
def standin():
    server = StandIn(page_size=5).start()
    yield server
    server.stop()


@pytest.fixture
def tokens(tmp_path, monkeypatch, standin) -> Path:
    folder = tmp_path / "tokens"
    monkeypatch.setenv(auth.TOKEN_DIR_ENV, str(folder))
    monkeypatch.setenv("TIMEAUDIT_GOOGLE_API_ENDPOINT", standin.url)
    return folder


def sign_in(standin: StandIn, tokens: Path, user: str = ANN, expired: bool = False) -> dict:
    info = standin.user_token_info(user, expired=expired)
    auth.write_private(tokens / auth.USER_TOKEN_FILE, json.dumps(info))
    return info


def sync_google_calendar(lake: Lake, settings, **kwargs):
    return sync_registered(lake, settings, "google-calendar", **kwargs)


def sync(lake: Lake, settings=SETTINGS, **kwargs):
    return sync_google_calendar(lake, settings, policy=FAST, **kwargs)


LIVE_COLUMNS = (
    'source, account, id, ical_uid, series_id, start, "end", tz, all_day, status, self_response, '
    "transparency, event_type, organizer, attendees, has_agenda, has_conference, title_tags, title, updated"
)


def live(lake: Lake) -> list[tuple]:
    con = lake.connect()
    return con.execute(f"SELECT {LIVE_COLUMNS} FROM events ORDER BY account, id").fetchall()


def raw_rows(lake: Lake) -> int:
    return sum(pq.read_metadata(p).num_rows for p in lake.files("events"))


def merged_since(lake: Lake, version: int) -> int:
    """Records the commits after ``version`` took in (each merge's source rows): what a sync wrote."""
    commits = lake.table("events").history()
    return sum(int(c["operationMetrics"]["num_source_rows"]) for c in commits if c["version"] > version)


def event_requests(standin: StandIn) -> list:
    return standin.requests("/events")


def full_sync_pages(standin: StandIn, user: str = ANN) -> int:
    """Pages of the primary calendar's first sync: every event but the one outside the window."""
    listed = [i for i in standin.calendar(user).events if i != "old"]
    return -(-len(listed) // standin.page_size)


# -- first sync, run twice, incremental ------------------------------------------------------------
def test_first_sync_lands_every_event_over_many_pages_and_saves_the_token_only_after(
    standin, tokens, tmp_path, monkeypatch
):
    corpus(standin)
    sign_in(standin, tokens, expired=True)
    monkeypatch.setattr(google_sync, "BATCH_SIZE", 7)
    lake = Lake(tmp_path / "data")
    expected_pages = full_sync_pages(standin)
    standin.hold(expected_pages)  # stop at the last page
    result = {}
    worker = threading.Thread(target=lambda: result.update(summary=sync(lake)))
    worker.start()
    assert standin.held.wait(20)
    assert raw_rows(lake) > 0, "batches land while paging goes on"
    assert lake.read_cursor(SOURCE, ANN) is None, "no token before the last page has landed"
    standin.release.set()
    worker.join(20)

    summary = result["summary"]
    calls = event_requests(standin)
    assert len(calls) == expected_pages > 8
    refreshes = [c for c in standin.log if c.path == "/token"]
    assert len(refreshes) == 1, "the expired access token is refreshed once"
    assert summary.requests == expected_pages + 1 and summary.calendars[0].pages == expected_pages
    assert summary.retries == 0
    first = calls[0].query
    assert first["singleEvents"] == "true" and first["showDeleted"] == "true" and first["maxResults"] == "2500"
    assert "timeMin" in first and "timeMax" in first and "syncToken" not in first
    assert all("pageToken" in c.query for c in calls[1:])
    ids = {row[2] for row in live(lake)}
    assert ids == standin.live_ids(ANN) - {"old"}
    cursor = lake.read_cursor(SOURCE, ANN)["calendars"]["primary"]
    assert cursor["sync_token"] and cursor["time_min"] < cursor["time_max"]
    assert summary.added == len(ids) and summary.updated == summary.cancelled == summary.failed == 0
    token = tokens / auth.USER_TOKEN_FILE  # refreshed on the way, kept private
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and json.loads(token.read_text())["expiry"] > "2026"


def test_events_keep_what_the_design_asks_and_no_content(standin, tokens, tmp_path):
    m = corpus(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)
    con = lake.connect()
    rows = {r["id"]: r for r in con.execute("SELECT * FROM events").df().to_dict("records")}
    qbr = rows["qbr"]
    assert qbr["has_agenda"] and qbr["has_conference"] and qbr["organizer"] == ANN
    assert [a["email"] for a in qbr["attendees"]] == [ANN, CUSTOMER], "rooms are not attendees"
    assert set(qbr["title_tags"]) == {"qbr", "review"} and qbr["title"] is None
    assert rows["sync"]["self_response"] == "accepted" and not rows["sync"]["has_agenda"]
    assert rows["sync"]["attendees"][2] == {"email": DAN, "response": "needsAction", "optional": True}
    assert rows["declined"]["self_response"] == "declined"
    assert rows["maybe"]["self_response"] == "tentative"
    assert rows["focus"]["event_type"] == "focusTime" and rows["ooo"]["event_type"] == "outOfOffice"
    holiday = rows["holiday"]
    assert holiday["all_day"] and holiday["transparency"] == "transparent" and holiday["tz"] == "Europe/London"
    assert holiday["start"].to_pydatetime() == datetime.fromisoformat(local(m + timedelta(3), 0))
    assert (rows["offsite"]["end"] - rows["offsite"]["start"]).days == 3
    assert rows["ny"]["tz"] == "America/New_York"
    assert rows["ny"]["start"].to_pydatetime() == datetime(m.year, m.month, m.day, 14, tzinfo=UTC) + timedelta(1)
    assert rows["free"]["transparency"] == "transparent"
    standups = [r for r in rows.values() if r["series_id"] == "standup"]
    assert len(standups) == 9 * 5 - 1, "the cancelled instance is a tombstone"
    moved = rows[f"standup_{m - timedelta(weeks=1) + timedelta(2):%Y%m%d}T093000Z"]
    assert moved["start"].to_pydatetime() == datetime.fromisoformat(local(m - timedelta(weeks=1) + timedelta(2), 11))
    # Descriptions never reach the lake, and titles only when asked.
    for path in lake.files("events"):
        for column in pq.read_table(path).to_pylist():
            assert "renewal" not in json.dumps(column, default=str)
    lake2 = Lake(tmp_path / "titled")
    titled = parse_settings({"privacy": {"store_titles": True}})
    standin.clear_log()
    sync(lake2, titled)
    assert lake2.connect().execute("SELECT title FROM events WHERE id = 'qbr'").fetchone()[0] == "Acme QBR review"


def test_second_sync_without_changes_adds_nothing_and_costs_one_request_per_calendar(standin, tokens, tmp_path):
    corpus(standin)
    shared_calendar(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    calendars = ["primary", SHARED]
    first = sync(lake, calendars=calendars)
    assert first.failed == 0 and {r[2] for r in live(lake)} >= {f"{SHARED}/team0", "qbr"}
    files, rows, before = lake.files("events"), raw_rows(lake), live(lake)
    standin.clear_log()

    second = sync(lake, calendars=calendars)
    assert raw_rows(lake) == rows and lake.files("events") == files and live(lake) == before
    calls = event_requests(standin)
    assert len(calls) == 2 and second.requests == 2
    assert all(set(c.query) - {"alt"} == {"syncToken", "singleEvents", "showDeleted", "maxResults"} for c in calls), (
        calls
    )
    assert (second.added, second.updated, second.cancelled, second.failed) == (0, 0, 0, 0)


def test_upstream_changes_arrive_incrementally_over_pages_even_empty_ones(standin, tokens, tmp_path):
    m = corpus(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)
    version = lake.table("events").version()
    standin.put(
        ANN,
        timed(
            "new",
            m + timedelta(3),
            15,
            1,
            summary="Renewal call with Acme",
            attendees=[me(), {"email": CUSTOMER, "responseStatus": "accepted"}],
        ),
    )
    standin.put(ANN, dict(standin.calendar(ANN).events["sync"].data, summary="Team sync (budget)"))
    standin.cancel(ANN, "qbr")
    moved = [f"standup_{m + timedelta(d):%Y%m%d}T093000Z" for d in range(5)] + [
        f"standup_{m + timedelta(7 + d):%Y%m%d}T093000Z" for d in range(5)
    ]
    for iid in moved:  # the series moves to 10:00: ten more changes, so the changes span pages
        old = standin.calendar(ANN).events[iid].data
        start, end = old["start"]["dateTime"], old["end"]["dateTime"]
        standin.put(
            ANN,
            dict(
                old,
                start={"dateTime": start.replace("T09:30", "T10:00")},
                end={"dateTime": end.replace("T09:45", "T10:15")},
            ),
        )
    standin.empty_pages = 2
    standin.clear_log()

    summary = sync(lake)
    calls = event_requests(standin)
    assert all("syncToken" in c.query and "timeMin" not in c.query for c in calls)
    assert len(calls) == 2 + 3, "two empty pages, then 13 changes in pages of 5"
    assert (summary.added, summary.updated, summary.cancelled) == (1, 11, 1)
    assert merged_since(lake, version) == 13, "the sync wrote the 13 changes, nothing else"
    con = lake.connect()
    assert con.execute("SELECT count(*) FROM events WHERE id = 'qbr'").fetchone()[0] == 0
    assert con.execute("SELECT title_tags FROM events WHERE id = 'sync'").fetchone()[0] == ["team", "sync", "budget"]
    assert con.execute("SELECT count(*) FROM events WHERE id = 'new'").fetchone()[0] == 1
    assert {r[2] for r in live(lake)} == standin.live_ids(ANN) - {"old"}


def test_410_runs_a_full_resync_without_duplicates_and_tombstones_what_vanished(standin, tokens, tmp_path):
    corpus(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    # The first sync reached further back (explicit window), so the lake holds an old event
    # that the default window of the resync does not cover: it must survive.
    since = datetime.combine(monday(40), datetime.min.time(), UTC)
    sync(lake, since=since)
    assert "old" in {r[2] for r in live(lake)}
    standin.clear_log()
    assert sync(lake, since=since).requests == 1, "the same window again: incremental"
    assert sync(lake, since=since + timedelta(days=1)).requests > 8, "another window: read whole"
    standin.vanish(ANN, "sync")
    standin.put(ANN, dict(standin.calendar(ANN).events["maybe"].data, summary="Planning workshop"))
    standin.invalidate_sync_tokens(ANN)
    standin.clear_log()

    summary = sync(lake)
    calls = event_requests(standin)
    assert calls[0].status == 410 and "syncToken" in calls[0].query
    assert all("timeMin" in c.query for c in calls[1:2]) and len(calls) > 8
    report = summary.calendars[0]
    assert report.full_sync and (report.added, report.updated, report.cancelled) == (0, 1, 1)
    ids = [r[2] for r in live(lake)]
    assert len(ids) == len(set(ids)) and set(ids) == standin.live_ids(ANN)
    assert "sync" not in ids and "old" in ids
    assert lake.connect().execute("SELECT title_tags FROM events WHERE id='maybe'").fetchone()[0] == [
        "planning",
        "workshop",
    ]
    standin.clear_log()
    sync(lake)
    assert len(event_requests(standin)) == 1, "back to incremental"


# -- errors ---------------------------------------------------------------------------------------
def test_rate_limits_and_server_errors_are_retried_with_backoff_and_counted(standin, tokens, tmp_path):
    corpus(standin)
    sign_in(standin, tokens)
    standin.fail(429, times=1, retry_after=0.3)
    standin.fail(403, "rateLimitExceeded", after=2)
    standin.fail(403, "userRateLimitExceeded", after=3)
    standin.fail(500, times=2, after=4)
    standin.fail(503, after=6)
    lake = Lake(tmp_path / "data")
    started = time.monotonic()
    summary = sync(lake)
    assert time.monotonic() - started >= 0.3, "Retry-After is honoured"
    calls = event_requests(standin)
    failed = [c.status for c in calls if c.status != 200]
    assert sorted(failed) == [403, 403, 429, 500, 500, 503]
    pages = len(calls) - len(failed)
    assert summary.failed == 0 and summary.requests == pages + 6
    assert {r[2] for r in live(lake)} == standin.live_ids(ANN) - {"old"}

    standin.fail(500, times=100)
    standin.clear_log()
    stubborn = sync_google_calendar(Lake(tmp_path / "other"), SETTINGS, policy=RetryPolicy(3, 0.001, 0.01))
    assert (
        stubborn.failed == 1
        and "500" in stubborn.calendars[0].error
        and "after 3 retries" in stubborn.calendars[0].error
    )
    assert len(event_requests(standin)) == 4 and stubborn.requests == 4


def test_backoff_grows_with_jitter_and_pacing_keeps_under_the_quota():
    policy = RetryPolicy(max_retries=6, base=1.0, max_delay=64)
    assert [policy.delay(n, rand=lambda: 0) for n in range(8)] == [1, 2, 4, 8, 16, 32, 64, 64]
    assert policy.delay(0, rand=lambda: 0.999) < 2 and policy.delay(1, retry_after=30, rand=lambda: 0) == 30
    now, slept = [0.0], []
    limiter = RateLimiter(
        600, 60.0, clock=lambda: now[0], sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))
    )
    for _ in range(600):
        limiter.acquire()
        now[0] += 0.01
    assert slept == []
    limiter.acquire()
    assert slept and 53 < slept[0] <= 60, "the 601st request waits until the first leaves the minute"


def run_cli(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, list(args), env=env)
    return result


def test_revoked_token_says_to_authorise_again_and_writes_nothing(standin, tokens, tmp_path):
    corpus(standin)
    info = sign_in(standin, tokens, expired=True)
    data = tmp_path / "data"
    assert run_cli("sync", "google-calendar", "--data", str(data)).exit_code == 0
    lake = Lake(data)
    files, cursor = lake.files("events"), lake.read_cursor(SOURCE, ANN)
    standin.put(ANN, timed("later", monday(0), 10, 1, summary="Later"))
    standin.revoke(info["refresh_token"])  # also kills the access token the sync just got

    result = run_cli("sync", "google-calendar", "--data", str(data))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "re-run `timeaudit auth google`" in lines[0] and "invalid_grant" in lines[0]
    assert "ya29" not in result.output and info["refresh_token"] not in result.output
    assert lake.files("events") == files and lake.read_cursor(SOURCE, ANN) == cursor
    assert [c.status for c in event_requests(standin)][-1] == 401, "the API refused, then so did the refresh"

    # An expired access token whose refresh token was revoked: refused before any API request.
    standin.clear_log()
    expired = sign_in(standin, tokens, expired=True)
    standin.revoke(expired["refresh_token"])
    result = run_cli("sync", "google-calendar", "--data", str(data))
    assert result.exit_code == 2 and "re-run `timeaudit auth google`" in result.stderr
    assert event_requests(standin) == [] and lake.files("events") == files


def closed_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_401_then_a_refresh_counts_every_request_sent_and_the_retry(standin, tokens, tmp_path):
    corpus(standin)
    info = sign_in(standin, tokens)
    del standin.access[info["token"]]  # the saved access token no longer works; its refresh token does
    summary = sync(Lake(tmp_path / "data"))
    calls, refreshes = event_requests(standin), standin.requests("/token")
    assert summary.failed == 0 and [c.status for c in calls][:2] == [401, 200] and len(refreshes) == 1
    assert summary.requests == len(calls) + 1, "the 401, the refresh and the request sent again all count"
    assert summary.retries == 1
    assert "(1 retry)" in summary.line()


def test_an_unreachable_token_endpoint_stops_the_roster_run_once_with_one_line(standin, tokens, tmp_path):
    for user in (ANN, BOB, CAT):
        corpus(standin, user)
    port = closed_port()
    key = dict(standin.service_account_key(), token_uri=f"http://127.0.0.1:{port}/token")
    auth.write_private(tokens / auth.SERVICE_ACCOUNT_FILE, json.dumps(key))
    (tmp_path / "people.csv").write_text("email,team\n" + "".join(f"{u},Support\n" for u in (ANN, BOB, CAT)))
    config = tmp_path / "timeaudit.toml"
    config.write_text('roster = "people.csv"\n[organisation]\ndomains = ["northwind.com"]\n')
    data = tmp_path / "data"
    for command in (["google-calendar"], ["gmail"], ["gmail", "--workers", "3"]):
        result = run_cli("sync", *command, "--data", str(data), "--config", str(config))
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert len(lines) == 1, lines
        assert f"127.0.0.1:{port}" in lines[0] and "token endpoint" in lines[0] and "did not answer" in lines[0]
        assert standin.url.split("/")[2] not in lines[0], "the API host is not blamed"
        assert "check that this machine can reach" in lines[0] and str(auth.SERVICE_ACCOUNT_FILE) in lines[0]
    assert standin.log == [], "nothing reached the API"
    assert not Lake(data).files("events") and not Lake(data).files("messages")


def test_a_token_saved_without_its_account_is_asked_whose_it_is_once(standin, tokens, tmp_path):
    corpus(standin)
    info = sign_in(standin, tokens)
    path = tokens / auth.USER_TOKEN_FILE
    path.write_text(json.dumps({k: v for k, v in info.items() if k != "account"}))
    lake = Lake(tmp_path / "data")
    summary = sync(lake)
    asked = standin.requests("/calendars/primary")
    assert summary.failed == 0 and [c.path for c in asked if not c.path.endswith("/events")] == [
        "/calendar/v3/calendars/primary"
    ]
    assert {r[1] for r in live(lake)} == {ANN}
    saved = json.loads(path.read_text())
    assert saved["account"] == ANN and stat.S_IMODE(path.stat().st_mode) == 0o600
    standin.clear_log()
    sync(lake)
    assert all(c.path.endswith("/events") for c in standin.log if c.n), "asked once: the file now says whose"


# -- crash safety -----------------------------------------------------------------------------------
BOOT = "import connectors.google.calendar_source as g; g.BATCH_SIZE = 4; from timeaudit.cli import app; app()"


def killed_sync(standin: StandIn, data: Path, at: int, env: dict, cwd: Path) -> None:
    """Start the CLI sync in a subprocess, SIGKILL it while the stand-in holds its ``at``-th request."""
    standin.hold(at)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BOOT,
            "sync",
            "google-calendar",
            "--data",
            str(data),
            "--calendar",
            "primary",
            "--calendar",
            SHARED,
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert standin.held.wait(30), "the sync reached the held request"
        proc.kill()
        proc.wait(10)
    finally:
        standin.hold_at = None
        standin.release.set()


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(standin, tokens, tmp_path):
    corpus(standin)
    shared_calendar(standin)
    sign_in(standin, tokens)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    calendars = ["primary", SHARED]
    pages = full_sync_pages(standin)

    for at in (3, pages + 1):  # mid-way through the primary calendar; on the shared one, primary done
        data = tmp_path / f"killed-{at}"
        killed_sync(standin, data, at, env, tmp_path)
        killed = Lake(data)
        tokens_saved = (killed.read_cursor(SOURCE, ANN) or {}).get("calendars", {})
        if at == 3:
            assert raw_rows(killed) > 0 and not tokens_saved, "batches landed, no token"
        else:
            assert set(tokens_saved) == {"primary"}
        reference = Lake(tmp_path / f"reference-{at}")
        sync(reference, calendars=calendars)
        sync(killed, calendars=calendars)
        assert live(killed) == live(reference)
        assert set(killed.read_cursor(SOURCE, ANN)["calendars"]) == {"primary", SHARED}

    # Killed during a 410 resync that follows a vanished event: same lake after the rerun.
    killed, reference = Lake(tmp_path / "killed-410"), Lake(tmp_path / "reference-410")
    sync(killed, calendars=calendars)
    sync(reference, calendars=calendars)
    standin.vanish(ANN, "focus")
    standin.invalidate_sync_tokens(ANN)
    killed_sync(standin, killed.root, 4, env, tmp_path)
    sync(killed, calendars=calendars)
    sync(reference, calendars=calendars)
    assert live(killed) == live(reference)
    assert "focus" not in {r[2] for r in live(killed)}


# -- service account over a roster --------------------------------------------------------------------
def test_service_account_syncs_the_roster_and_reports_who_failed(standin, tokens, tmp_path):
    for user in (ANN, BOB, DAN):
        corpus(standin, user)
    standin.forbidden.add(BOB)  # the API refuses: calendar not delegated
    standin.undelegated.add(DAN)  # the token endpoint refuses to act as Dan
    # CAT has no calendar at all: 404
    key = tmp_path / "key.json"
    key.write_text(json.dumps(standin.service_account_key()))
    (tmp_path / "people.csv").write_text("email,team\n" + "".join(f"{u},Support\n" for u in (ANN, BOB, CAT, DAN)))
    config = tmp_path / "timeaudit.toml"
    config.write_text('roster = "people.csv"\n[organisation]\ndomains = ["northwind.com"]\n')

    done = run_cli("auth", "google", "--service-account", str(key))
    assert done.exit_code == 0, done.output
    assert "1234567890" in done.stdout and "calendar.readonly" in done.stdout
    saved = tokens / auth.SERVICE_ACCOUNT_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and not (tokens / auth.USER_TOKEN_FILE).exists()

    result = run_cli("sync", "google-calendar", "--data", str(tmp_path / "data"), "--config", str(config))
    assert result.exit_code == 1, result.output
    failures = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(failures) == 3
    assert any(BOB in f and "403" in f for f in failures)
    assert any(CAT in f and "404" in f for f in failures)
    assert any(DAN in f and "unauthorized_client" in f for f in failures), failures
    assert "4 calendar(s)" in result.stdout and "3 failed" in result.stdout
    assert f"{ANN} primary: " in result.stderr, "a line per calendar synced"
    lake = Lake(tmp_path / "data")
    assert {r[1] for r in live(lake)} == {ANN}
    assert lake.read_cursor(SOURCE, ANN) and not lake.read_cursor(SOURCE, BOB)
    subjects = {r.subject for r in standin.requests("/events")}
    assert subjects == {ANN, BOB, CAT}


# -- the installed-app flow ------------------------------------------------------------------------------
def test_installed_app_flow_saves_a_private_token_that_syncs(standin, tokens, tmp_path):
    standin.consent_user = ANN
    corpus(standin)
    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(json.dumps(standin.client_secrets()))
    browser = tmp_path / "browser.sh"  # the person at the browser, in the background as browsers are
    browser.write_text(f'#!/bin/sh\n"{sys.executable}" "{Path(__file__).parent / "google_standin.py"}" browse "$1" &\n')
    browser.chmod(0o755)
    env = dict(os.environ, BROWSER=str(browser), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "auth", "google", "--client-secrets", str(secrets_file)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    token = tokens / auth.USER_TOKEN_FILE
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and stat.S_IMODE(tokens.stat().st_mode) == 0o700
    saved = json.loads(token.read_text())
    assert saved["account"] == ANN and saved["token_uri"] == standin.token_uri and saved["refresh_token"]
    assert ANN in done.stdout

    # --no-browser: print the URL, read back the address the browser ended on.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "timeaudit.cli",
            "auth",
            "google",
            "--client-secrets",
            str(secrets_file),
            "--no-browser",
        ],
        env=env,
        cwd=tmp_path,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = ""
    while not url:
        line = proc.stderr.readline()
        assert line, "the URL is printed"
        url = line.strip() if line.startswith("http") else ""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url)
    except urllib.error.HTTPError as redirect:
        landing = redirect.headers["Location"]
    assert landing.startswith("http://localhost:1/?")
    out, errors = proc.communicate(landing + "\n", timeout=60)
    assert proc.returncode == 0, errors
    assert stat.S_IMODE(token.stat().st_mode) == 0o600

    lake = Lake(tmp_path / "data")
    assert sync(lake).failed == 0 and live(lake)


# -- what the product shows -----------------------------------------------------------------------
def test_weekly_metrics_show_the_synced_week(standin, tokens, tmp_path):
    m = corpus(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)
    weekly = weekly_metrics(lake, SETTINGS)
    week = weekly[(weekly["person"] == ANN) & (weekly["week_start"] == m)].iloc[0]
    assert week["customer_meeting_hours"] == pytest.approx(1.0)  # the QBR with Acme
    # team sync 1 h + the NY call 0.5 h + five stand-ups of 15 min
    assert week["internal_meeting_hours"] == pytest.approx(1.0 + 0.5 + 5 * 0.25)
    assert week["tentative_hours"] == pytest.approx(1.0)
    assert week["out_of_office_hours"] > 0


def iso_week(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def test_moved_cancelled_multi_day_other_zone_focus_and_absence_classify_as_their_kind(standin, tokens, tmp_path):
    m = corpus(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)

    reasons = event_reasons(lake, SETTINGS, ANN, iso_week(m - timedelta(weeks=1)))
    standups = reasons[reasons["title"].fillna("").str.contains("standup")]
    # Five stand-ups that week: Wednesday's moved to 11:00, Thursday's cancelled and gone.
    assert [f"{t[:3]} {t[-5:]}" for t in standups["start_local"]] == [
        "Mon 09:30",
        "Tue 09:30",
        "Wed 11:00",
        "Fri 09:30",
    ]
    assert set(standups["category"]) == {"internal"} and standups["minutes"].sum() == 60
    weekly = weekly_metrics(lake, SETTINGS)
    before = weekly[(weekly["person"] == ANN) & (weekly["week_start"] == m - timedelta(weeks=1))].iloc[0]
    assert before["internal_meeting_hours"] == pytest.approx(1.0)

    week = event_reasons(lake, SETTINGS, ANN, iso_week(m))
    week = week.set_index(week["start_local"].str[:3] + " " + week["start_local"].str[-5:])
    assert week.loc["Tue 14:00", "reason"] == "internal meeting with 1 other person"  # 09:00 in New York
    assert week.loc["Thu 13:00", "category"] == "focus" and week.loc["Thu 13:00", "minutes"] == 120
    assert week.loc["Fri 00:00", "reason"] == "out of office: reduces working hours"
    assert week.loc["Mon 00:00", "reason"] == "not counted: all-day event"  # the three-day offsite
    assert week.loc["Tue 16:00", "reason"] == "not counted: shown as free"
    assert week.loc["Wed 10:00", "reason"] == "not counted: you declined"
    assert week.loc["Wed 14:00", "category"] == "tentative"
    assert week.loc["Mon 10:00", "category"] == "customer"


def test_the_dashboard_shows_what_was_synced(standin, tokens, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    m = corpus(standin)
    sign_in(standin, tokens)
    data = tmp_path / "data"
    sync(Lake(data))
    config = data / "timeaudit.toml"
    config.write_text(
        '[organisation]\ndomains = ["northwind.com"]\ntimezone = "Europe/London"\n\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.com"]\n'
    )
    monkeypatch.setenv("TIMEAUDIT_DATA", str(data))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(config))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.selectbox(key="person").value == ANN  # no roster: the synced account is the one person
    at = at.selectbox(key="week").set_value(iso_week(m)).run()
    shown = {metric.label: metric.value for metric in at.metric}
    # The reference week: one 1 h QBR with Acme; internal meetings are the team sync (1 h),
    # the NY call (30 min) and five stand-ups of 15 min.
    internal = 1.0 + 0.5 + 5 * 0.25
    assert shown["With customers"] == "1.0 h"
    assert shown["Internal meetings"] == f"{internal:.1f} h"
    assert shown["Customer share"] == f"{1 / (1 + internal):.0%}"
    reasons = next(d.value for d in at.dataframe if "Reason" in d.value.columns)  # the "why" table
    assert "Acme" in " ".join(reasons["Reason"])
