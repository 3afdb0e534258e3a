"""Microsoft 365 end to end: MSAL and our Graph client against a real local stand-in of Graph
and the identity platform over TLS (tests/graph_standin.py), a real lake, real DuckDB."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from graph_standin import CLIENT_ID, SECRET, TENANT, GraphStandIn, graph_time, iso
from typer.testing import CliRunner

from connectors.microsoft import auth
from connectors.microsoft.graph import RetryPolicy
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

ANN, BOB, CAT = "ann@northwind.com", "bob@northwind.com", "cat@northwind.com"
SUPPORT = "support@northwind.com"
CUSTOMER, COLLEAGUE = "joe@acme.com", "carl@northwind.com"
ROOM = "room-1@northwind.com"
ROOT = Path(__file__).parent.parent
LONDON = ZoneInfo("Europe/London")
WAITS: list[float] = []
FAST = RetryPolicy(sleep=WAITS.append)


def settings(tmp_path: Path, **extra):
    (tmp_path / "people.csv").write_text("email,team\n" + "".join(f"{u},Sales\n" for u in (ANN, BOB, CAT)))
    return parse_settings(
        {
            "roster": str(tmp_path / "people.csv"),
            "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
            "customers": [{"name": "Acme", "domains": ["acme.com"]}],
            "shared_mailboxes": [{"address": SUPPORT, "team": "Support"}],
            **extra,
        }
    )


def monday(weeks_ago: int) -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday(), weeks=weeks_ago)


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=LONDON) + timedelta(hours=hour)


def event(id_: str, start: datetime, hours: float, **fields) -> dict:
    return {
        "id": id_,
        "iCalUId": f"uid-{id_}",
        "subject": id_,
        "start": graph_time(start),
        "end": graph_time(start + timedelta(hours=hours)),
        "originalStartTimeZone": "GMT Standard Time",
        "lastModifiedDateTime": iso(start - timedelta(days=30)),
        "showAs": "busy",
        "type": "singleInstance",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": False,
        "responseStatus": {"response": "accepted"},
        "organizer": {"emailAddress": {"address": COLLEAGUE}},
        "attendees": [],
        **fields,
    }


def person(address: str, response: str = "accepted", kind: str = "required") -> dict:
    return {"type": kind, "status": {"response": response}, "emailAddress": {"address": address}}


def dst_change(before: date) -> date:
    """The last day before ``before`` on which London's UTC offset changed."""
    day = before
    while at(day, 12).utcoffset() == at(day - timedelta(1), 12).utcoffset():
        day -= timedelta(1)
    return day


def calendar(standin: GraphStandIn, user: str) -> date:
    """A calendar for ``user``; returns the Monday of its reference week."""
    m = monday(2)
    put = lambda e: standin.put_event(user, e)  # noqa: E731
    put(
        event(
            "qbr",
            at(m, 10),
            1,
            subject="Acme QBR review",
            bodyPreview="1. renewal 2. roadmap",
            isOnlineMeeting=True,
            isOrganizer=True,
            responseStatus={"response": "organizer"},
            organizer={"emailAddress": {"address": user}},
            attendees=[person(CUSTOMER), person(ROOM, kind="resource")],
        )
    )
    put(
        event(
            "sync",
            at(m + timedelta(1), 10),
            1,
            subject="Team sync",
            attendees=[person(user), person(CAT, "none", "optional")],
        )
    )
    put(
        event(
            "declined", at(m + timedelta(2), 10), 1, responseStatus={"response": "declined"}, attendees=[person(user)]
        )
    )
    put(
        event(
            "maybe",
            at(m + timedelta(2), 14),
            1,
            subject="Planning",
            responseStatus={"response": "tentativelyAccepted"},
            attendees=[person(user, "tentativelyAccepted")],
        )
    )
    put(event("free", at(m + timedelta(1), 16), 1, showAs="free", responseStatus={"response": "none"}))
    put(event("ooo", at(m + timedelta(4), 0), 24, showAs="oof", responseStatus={"response": "none"}))
    put(event("holiday", at(m + timedelta(3), 0), 24, isAllDay=True, showAs="free"))
    put(event("old", at(monday(60), 10), 1))  # outside the window
    # A weekly series at 09:00 London across a change of UTC offset: one occurrence moved, one cancelled.
    change = dst_change(datetime.now(UTC).date())
    first = change - timedelta(days=change.weekday(), weeks=3)
    for week in range(6):
        day = first + timedelta(weeks=week)
        fields = {"type": "occurrence", "seriesMasterId": "series", "attendees": [person(user), person(BOB)]}
        start = at(day, 9)
        if week == 1:
            fields["type"], start = "exception", at(day, 11)
        if week == 4:
            fields["isCancelled"] = True
        put(event(f"series-{week}", start, 0.5, subject="Weekly standup", **fields))
    return m


def mail(standin: GraphStandIn, user: str) -> None:
    m = monday(1)

    def msg(gid, mid, sender, to, when, **fields):
        return {
            "id": gid,
            "internetMessageId": f"<{mid}@mail>",
            "conversationId": f"conv-{mid.split('-')[0]}",
            "from": {"emailAddress": {"address": sender}},
            "sender": {"emailAddress": {"address": sender}},
            "toRecipients": [{"emailAddress": {"address": a}} for a in to],
            "ccRecipients": [],
            "sentDateTime": iso(when),
            "receivedDateTime": iso(when),
            "lastModifiedDateTime": iso(when),
            "isRead": True,
            "isDraft": False,
            "categories": [],
            "inferenceClassification": "focused",
            "subject": "Renewal question",
            "body": {"content": "SECRET BODY"},
            "bodyPreview": "SECRET BODY",
            **fields,
        }

    box = standin.mailbox(user)
    for i in range(5):
        standin.put_message(user, "inbox", msg(f"{user}-in-{i}", f"a{i}-{user}", CUSTOMER, [user], at(m, 9 + i)))
    standin.put_message(user, "inbox", msg(f"{user}-in-new", f"b-{user}", CUSTOMER, [user], at(m, 15), isRead=False))
    standin.put_message(user, "inbox", msg(f"{user}-in-old", f"c-{user}", CUSTOMER, [user], at(monday(60), 9)))
    standin.put_message(user, "sentitems", msg(f"{user}-sent-0", f"a0-{user}-re", user, [CUSTOMER], at(m, 9.5)))
    # The same message in two folders: one record.
    standin.put_message(user, "archive", msg(f"{user}-arch-0", f"a1-{user}", CUSTOMER, [user], at(m, 10)))
    assert box.folders["inbox"].items


@pytest.fixture
def graph(tmp_path, monkeypatch):
    server = GraphStandIn(tmp_path / "tls", page_size=4).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca))
    monkeypatch.setenv("TIMEAUDIT_GRAPH_ENDPOINT", server.url)
    monkeypatch.setenv(auth.AUTHORITY_ENV, server.url.rstrip("/"))
    monkeypatch.setenv(auth.TOKEN_DIR_ENV, str(tmp_path / "tokens"))
    WAITS.clear()
    yield server
    server.stop()


def roster(standin: GraphStandIn) -> None:
    for user in (ANN, BOB, CAT):
        calendar(standin, user)
        mail(standin, user)
    standin.mailbox(SUPPORT)
    mail(standin, SUPPORT)


def app_sign_in(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    auth.save_application(CLIENT_ID, TENANT, secret_file=secret, resource=os.environ["TIMEAUDIT_GRAPH_ENDPOINT"])


def sync(lake: Lake, s, **kwargs):
    return sync_registered(lake, s, "microsoft", policy=FAST, **kwargs)


def rows(lake: Lake, table: str) -> list[tuple]:
    order = "account, id"
    return lake.connect().execute(f"SELECT * EXCLUDE (ingested_at) FROM {table} ORDER BY {order}").fetchall()


def raw_rows(lake: Lake, table: str) -> int:
    return sum(pq.read_metadata(p).num_rows for p in lake.files(table))


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


# -- tests ------------------------------------------------------------------------------------------------
def test_sync_fills_the_lake_for_a_roster_and_a_shared_mailbox_and_a_second_run_costs_one_request_per_part(
    graph, tmp_path
):
    roster(graph)
    app_sign_in(tmp_path)
    s = settings(tmp_path)
    lake = Lake(tmp_path / "data")
    first = sync(lake, s)
    assert first.failed == 0, first.failures()
    con = lake.connect()
    accounts = {r[0] for r in con.execute("SELECT DISTINCT account FROM messages").fetchall()}
    assert accounts == {ANN, BOB, CAT, SUPPORT}
    assert {r[0] for r in con.execute("SELECT DISTINCT account FROM events").fetchall()} == {ANN, BOB, CAT}
    ids = {r[0] for r in con.execute("SELECT id FROM events WHERE account = ?", [ANN]).fetchall()}
    assert "old" not in ids and {"qbr", "sync", "series-0", "series-5"} <= ids and "series-4" not in ids
    msgs = con.execute(
        "SELECT id, unread, thread_id, direction, labels FROM messages WHERE account = ?", [ANN]
    ).fetchall()
    assert len(msgs) == 7, "5 + 1 unread in the inbox, one reply; the archived copy is one of the inbox's"
    assert {m[0] for m in msgs if m[1]} == {f"b-{ANN}@mail"}
    assert {m[3] for m in msgs if m[0] == f"a0-{ANN}-re@mail"} == {"sent"}
    assert "Microsoft 365: 4 mailbox(es)" in first.line() and "throttled waits" in first.line()

    # Bodies are never asked for, and never land.
    for entry in graph.log:
        assert not any(f in (entry.query.get("$select") or "") for f in ("body", "bodyPreview", "uniqueBody"))
    for table in ("events", "messages"):
        for path in lake.files(table):
            assert "SECRET BODY" not in json.dumps(pq.read_table(path).to_pylist(), default=str)
            if table == "events":  # the agenda (bodyPreview) is read, never kept
                assert "renewal" not in json.dumps(pq.read_table(path).to_pylist(), default=str)

    before_events, before_messages = rows(lake, "events"), rows(lake, "messages")
    raw = raw_rows(lake, "events"), raw_rows(lake, "messages")
    graph.clear_log()
    second = sync(lake, s)
    calls = graph.graph_log()
    parts = 3 * (1 + 3) + 3  # three people's calendar and three folders; the shared mailbox's folders
    assert len(calls) == parts == second.requests, [c.path for c in calls]
    assert all("$deltatoken" in c.query for c in calls)
    assert (second.added, second.updated, second.deleted, second.failed) == (0, 0, 0, 0)
    assert rows(lake, "events") == before_events and rows(lake, "messages") == before_messages
    assert (raw_rows(lake, "events"), raw_rows(lake, "messages")) == raw


def test_events_map_as_google_events_do(graph, tmp_path):
    roster(graph)
    app_sign_in(tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings(tmp_path))
    con = lake.connect()
    got = {r["id"]: r for r in con.execute("SELECT * FROM events WHERE account = ?", [ANN]).df().to_dict("records")}
    qbr = got["qbr"]
    assert qbr["has_agenda"] and qbr["has_conference"] and qbr["organizer"] == ANN
    assert [a["email"] for a in qbr["attendees"]] == [ANN, CUSTOMER], "rooms are not people"
    assert set(qbr["title_tags"]) == {"qbr", "review"} and qbr["title"] is None
    assert got["sync"]["attendees"][-1] == {"email": CAT, "response": "needsAction", "optional": True}
    assert got["declined"]["self_response"] == "declined" and got["maybe"]["self_response"] == "tentative"
    assert got["free"]["transparency"] == "transparent" and got["ooo"]["event_type"] == "outOfOffice"
    assert got["holiday"]["all_day"]
    series = sorted((r for r in got.values() if r["series_id"] == "series"), key=lambda r: r["start"])
    assert len(series) == 5, "the cancelled occurrence is not a meeting"
    local = [r["start"].to_pydatetime().astimezone(LONDON) for r in series]
    assert [t.hour for t in local] == [9, 11, 9, 9, 9], "09:00 London on both sides of the change; one moved"
    assert len({r["start"].to_pydatetime().hour for r in series if r["id"] != "series-1"}) == 2, "UTC moves"


def test_one_meeting_from_outlook_and_from_google_classifies_the_same(tmp_path):
    from connectors.google.calendar import to_event as google_event
    from connectors.microsoft.calendar import to_event as outlook_event
    from timeaudit.analysis.metrics import event_reasons
    from timeaudit.core.tags import vocabulary
    from timeaudit.lake.sync import append

    s = parse_settings(
        {
            "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
            "customers": [{"name": "Acme", "domains": ["acme.com"]}],
        }
    )
    m = monday(2)
    start = at(m, 10)
    words, now = vocabulary(s.rules), datetime.now(UTC)
    google = google_event(
        {
            "id": "g1",
            "summary": "Acme QBR review",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1.5)).isoformat()},
            "organizer": {"email": ANN, "self": True},
            "attendees": [
                {"email": ANN, "self": True, "responseStatus": "accepted", "organizer": True},
                {"email": CUSTOMER, "responseStatus": "accepted"},
                {"email": ROOM, "resource": True, "responseStatus": "accepted"},
            ],
            "hangoutLink": "https://meet.google.com/x",
            "updated": iso(start),
        },
        account=ANN,
        calendar_id="primary",
        calendar_tz="Europe/London",
        words=words,
        store_titles=False,
        now=now,
    )
    outlook = outlook_event(
        event(
            "o1",
            start,
            1.5,
            subject="Acme QBR review",
            isOrganizer=True,
            isOnlineMeeting=True,
            responseStatus={"response": "organizer"},
            organizer={"emailAddress": {"address": BOB}},
            attendees=[person(CUSTOMER), person(ROOM, kind="resource")],
        ),
        account=BOB,
        words=words,
        store_titles=False,
        now=now,
    )
    google.account = BOB  # the same person's week, once from each source
    lakes = []
    for record in (google, outlook):
        lake = Lake(tmp_path / record.source)
        append(lake, "events", record.source, [record])
        lakes.append(event_reasons(lake, s, BOB, f"{m.isocalendar().year}-W{m.isocalendar().week:02d}"))
    g, o = (frame[["start_local", "minutes", "category", "reason"]].to_dict("records") for frame in lakes)
    assert g == o and g[0]["category"] == "customer" and g[0]["minutes"] == 90


def test_410_reads_the_window_again_without_duplicates_and_tombstones_what_vanished(graph, tmp_path):
    roster(graph)
    app_sign_in(tmp_path)
    s = settings(tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, s)
    before = len(rows(lake, "events")), len(rows(lake, "messages"))
    graph.remove_event(ANN, "sync")
    graph.remove_message(ANN, "inbox", f"{ANN}-in-2")
    graph.invalidate(ANN)
    graph.clear_log()
    summary = sync(lake, s)
    assert summary.failed == 0
    assert any(r.full_sync for r in summary.reports if r.account == ANN)
    assert any(c.query.get("startDateTime") for c in graph.graph_log()), "the window read whole again"
    assert (len(rows(lake, "events")), len(rows(lake, "messages"))) == (before[0] - 1, before[1] - 1)
    ids = {r[0] for r in lake.connect().execute("SELECT id FROM events WHERE account = ?", [ANN]).fetchall()}
    assert "sync" not in ids
    # Changes since, incremental again: a removal arrives as @removed.
    graph.remove_event(ANN, "qbr")
    graph.remove_message(ANN, "archive", f"{ANN}-arch-0")  # still in the inbox: stays
    sync(lake, s)
    con = lake.connect()
    assert "qbr" not in {r[0] for r in con.execute("SELECT id FROM events WHERE account = ?", [ANN]).fetchall()}
    assert con.execute("SELECT count(*) FROM messages WHERE id = ?", [f"a1-{ANN}@mail"]).fetchone()[0] == 1


def test_throttling_is_waited_out_as_asked_and_a_forbidden_mailbox_is_reported_while_the_rest_go_on(graph, tmp_path):
    roster(graph)
    app_sign_in(tmp_path)
    graph.forbidden.add(BOB)
    graph.throttle_in_batch = 2  # two folder look-ups inside the first $batch
    graph.fail(429, "TooManyRequests", times=1, path="/calendarView/", retry_after="3")
    graph.fail(503, "ServiceUnavailable", times=1, path="/messages/delta", retry_after="2")
    lake = Lake(tmp_path / "data")
    summary = sync(lake, settings(tmp_path))
    assert WAITS == [3.0, 1.0, 2.0] or sorted(WAITS) == [1.0, 2.0, 3.0], WAITS
    assert summary.throttled == 3
    failures = summary.failures()
    assert len(failures) == 1 and failures[0][0].startswith(BOB) and "403" in failures[0][1]
    assert "access policy" in failures[0][1]
    accounts = {r[0] for r in lake.connect().execute("SELECT DISTINCT account FROM messages").fetchall()}
    assert accounts == {ANN, CAT, SUPPORT}
    batches = [c for c in graph.log if c.path == "/v1.0/$batch"]
    inner = [c for c in graph.log if c.batched]
    assert batches and len(inner) <= 20 * len(batches)


def test_custom_folders_are_found_by_name_in_batches_of_at_most_20(graph, tmp_path):
    roster(graph)
    graph.add_folder(ANN, "Customers")
    graph.put_message(
        ANN,
        "Customers",
        dict(graph.mailbox(ANN).folders["inbox"].items[f"{ANN}-in-0"].data, id="custom-0", internetMessageId="<z@m>"),
    )
    app_sign_in(tmp_path)
    names = ["inbox", "Customers", *(f"Project {i}" for i in range(20))]
    lake = Lake(tmp_path / "data")
    summary = sync(lake, settings(tmp_path, microsoft={"folders": names}))
    assert summary.failed == 0, summary.failures()
    batches = [c for c in graph.log if c.path == "/v1.0/$batch"]
    assert len(batches) == 2 * 4, "22 folder look-ups per mailbox: a batch of 20 and one of 2"
    ids = {r[0] for r in lake.connect().execute("SELECT id FROM messages WHERE account = ?", [ANN]).fetchall()}
    assert "z@m" in ids
    graph.clear_log()
    sync(lake, settings(tmp_path, microsoft={"folders": names}))
    assert not [c for c in graph.log if c.path == "/v1.0/$batch"], "folders missing are remembered"


def test_an_app_certificate_signs_its_token_requests(graph, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "timeaudit")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "app.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    roster(graph)
    done = run_cli(
        "auth",
        "microsoft",
        "--client-id",
        CLIENT_ID,
        "--tenant",
        TENANT,
        "--certificate",
        str(pem),
        "--thumbprint",
        thumbprint,
    )
    assert done.exit_code == 0, done.output
    saved = tmp_path / "tokens" / auth.CERTIFICATE_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    summary = sync(Lake(tmp_path / "data"), settings(tmp_path))
    assert summary.failed == 0 and summary.messages > 0


def test_device_code_sign_in_keeps_a_private_cache_and_a_revoked_one_says_what_to_do(graph, tmp_path):
    calendar(graph, ANN)
    mail(graph, ANN)
    graph.device_user = ANN
    done = run_cli("auth", "microsoft", "--device-code", "--client-id", CLIENT_ID, "--tenant", TENANT)
    assert done.exit_code == 0, done.output
    assert "ABCD-EFGH" in done.output and f"Authorised {ANN}" in done.output
    cache = tmp_path / "tokens" / auth.CACHE_FILE
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens" / auth.IDENTITY_FILE).stat().st_mode) == 0o600
    data = tmp_path / "data"
    config = tmp_path / "timeaudit.toml"
    config.write_text('[organisation]\ndomains = ["northwind.com"]\n')
    synced = run_cli("sync", "microsoft", "--data", str(data), "--config", str(config))
    assert synced.exit_code == 0, synced.output
    assert "Microsoft 365: 1 mailbox(es)" in synced.stdout
    assert f"{ANN} calendar: " in synced.stderr and f"{ANN} inbox: " in synced.stderr, "a line per part read"
    accounts = Lake(data).connect().execute("SELECT DISTINCT account FROM messages").fetchall()
    assert accounts == [(ANN,)]

    graph.expire_access()
    graph.revoke_all()
    auth_dir = tmp_path / "tokens"
    info = json.loads(cache.read_text())
    for token in info.get("AccessToken", {}).values():
        token["expires_on"] = token["extended_expires_on"] = "0"
    auth.write_private(cache, json.dumps(info))
    before = rows(Lake(data), "events")
    refused = run_cli("sync", "microsoft", "--data", str(data), "--config", str(config))
    assert refused.exit_code == 2, refused.output
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--device-code" in lines[0] and "invalid_grant" in lines[0], refused.stderr
    assert rows(Lake(data), "events") == before
    assert auth_dir.is_dir()


def test_a_wrong_client_secret_is_one_line_and_saves_nothing(graph, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not-the-secret")
    done = run_cli(
        "auth", "microsoft", "--client-id", CLIENT_ID, "--tenant", TENANT, "--client-secret-file", str(secret)
    )
    assert done.exit_code == 2 and "invalid_client" in done.stderr, done.output
    assert not (tmp_path / "tokens" / auth.IDENTITY_FILE).exists()


def test_an_unreachable_sign_in_endpoint_is_one_line(graph, tmp_path, monkeypatch):
    roster(graph)
    app_sign_in(tmp_path)
    graph.stop()
    config = tmp_path / "timeaudit.toml"
    config.write_text(f'roster = "{tmp_path / "people.csv"}"\n')
    settings(tmp_path)
    done = run_cli("sync", "microsoft", "--data", str(tmp_path / "data"), "--config", str(config))
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "did not answer" in lines[0], done.stderr


def test_an_expired_app_secret_stops_the_sync_with_one_line_naming_the_fix(graph, tmp_path):
    roster(graph)
    app_sign_in(tmp_path)
    settings(tmp_path)
    graph.secret = "rotated"  # the secret saved was deleted or expired in Entra ID
    config = tmp_path / "timeaudit.toml"
    config.write_text(f'roster = "{tmp_path / "people.csv"}"\n')
    done = run_cli("sync", "microsoft", "--data", str(tmp_path / "data"), "--config", str(config))
    assert done.exit_code == 2, done.output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "invalid_client" in lines[0] and "--client-secret-file" in lines[0], done.stderr
    assert not (tmp_path / "data" / "state" / "microsoft").exists()


BOOT = "import connectors.microsoft.source as m; m.BATCH_SIZE = 2; from timeaudit.cli import app; app()"


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(graph, tmp_path):
    roster(graph)
    app_sign_in(tmp_path)
    s = settings(tmp_path)
    config = tmp_path / "timeaudit.toml"
    config.write_text(
        f'roster = "{tmp_path / "people.csv"}"\n[organisation]\ndomains = ["northwind.com"]\n'
        f'[[shared_mailboxes]]\naddress = "{SUPPORT}"\nteam = "Support"\n'
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for hold in (3, 9):
        data = tmp_path / f"killed-{hold}"
        graph.hold(hold)
        proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "sync", "microsoft", "--data", str(data), "--config", str(config)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert graph.held.wait(30)
            proc.kill()
            proc.wait(10)
        finally:
            graph.hold_at = None
            graph.release.set()
        killed, reference = Lake(data), Lake(tmp_path / f"reference-{hold}")
        if hold == 3:  # on Ann's calendar's third page: two pages landed, no delta link saved
            assert raw_rows(killed, "events") > 0 and killed.read_cursor("microsoft", ANN) is None
        sync(reference, s)
        sync(killed, s)
        assert rows(killed, "events") == rows(reference, "events")
        assert rows(killed, "messages") == rows(reference, "messages")


def test_the_dashboard_shows_what_was_synced(graph, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    roster(graph)
    app_sign_in(tmp_path)
    data = tmp_path / "data"
    sync(Lake(data), settings(tmp_path))
    config = data / "timeaudit.toml"
    config.write_text(
        f'roster = "{tmp_path / "people.csv"}"\n'
        '[organisation]\ndomains = ["northwind.com"]\ntimezone = "Europe/London"\n'
        "[privacy]\nleads_see_individuals = true\n\n"
        '[[customers]]\nname = "Acme"\ndomains = ["acme.com"]\n'
        f'[[shared_mailboxes]]\naddress = "{SUPPORT}"\nteam = "Support"\n'
    )
    monkeypatch.setenv("TIMEAUDIT_DATA", str(data))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(config))
    m = monday(2)
    at_ = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    assert not at_.exception
    assert SUPPORT not in at_.selectbox(key="person").options, "a shared mailbox is not a person"
    at_ = at_.selectbox(key="person").set_value(ANN).run()
    at_ = at_.selectbox(key="week").set_value(f"{m.isocalendar().year}-W{m.isocalendar().week:02d}").run()
    shown = {metric.label: metric.value for metric in at_.metric}
    assert shown["With customers"] == "1.0 h"
    reasons = next(d.value for d in at_.dataframe if "Reason" in d.value.columns)  # the "why" table
    assert "Acme" in " ".join(reasons["Reason"])

    # The Customers page: the shared mailbox's customer emails, the one answered and those waiting.
    at_.switch_page("views/customers.py").run()
    assert not at_.exception
    assert "Shared mailboxes" in [h.value for h in at_.subheader]
    shared = next(d.value for d in at_.dataframe if "Mailbox" in d.value.columns)
    row = shared.set_index("Mailbox").loc[SUPPORT]
    assert row["Team"] == "Support" and row["Customer emails"] == 6 and row["Waiting"] == 5
    assert row["Median to reply (hours)"] == 0.5


def test_without_a_roster_a_shared_mailbox_is_not_taken_for_a_person(graph, tmp_path):
    from timeaudit.analysis.metrics import open_analysis

    roster(graph)
    app_sign_in(tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings(tmp_path))
    alone = parse_settings({"shared_mailboxes": [{"address": SUPPORT, "team": "Support"}]})
    people = {p.email for p in open_analysis(lake, alone).people}
    assert people == {ANN, BOB, CAT}
