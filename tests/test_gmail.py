"""Gmail end to end: the real client library against the local stand-in (tests/google_standin.py
with its Gmail part, tests/gmail_standin.py), a real lake, real DuckDB. Nothing of the core is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from gmail_standin import generate_mailbox
from google_standin import StandIn
from typer.testing import CliRunner

from connectors.google import auth
from connectors.google.gmail import SOURCE
from connectors.google.http import RetryPolicy
from connectors.mail.headers import HEADERS
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

ANN, BOB = "ann@northwind.com", "bob@northwind.com"
FAST = RetryPolicy(base=0.001, max_delay=0.01)
ROOT = Path(__file__).parent.parent
SETTINGS = parse_settings(
    {
        "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
        "customers": [{"name": "Acme", "domains": ["acme.com"]}],
    }
)
UNLIMITED = 10**9  # quota units per second and minute: the tests do not wait for Google's per-user pace


@pytest.fixture
def standin():
    server = StandIn().start()
    yield server
    server.stop()


@pytest.fixture
def tokens(tmp_path, monkeypatch, standin) -> Path:
    folder = tmp_path / "tokens"
    monkeypatch.setenv(auth.TOKEN_DIR_ENV, str(folder))
    monkeypatch.setenv("TIMEAUDIT_GOOGLE_API_ENDPOINT", standin.url)
    return folder


def sign_in(standin: StandIn, tokens: Path, user: str = ANN) -> dict:
    info = standin.user_token_info(user)
    auth.write_private(tokens / auth.USER_TOKEN_FILE, json.dumps(info))
    return info


def sync_gmail(lake: Lake, settings, **kwargs):
    return sync_registered(lake, settings, "gmail", **kwargs)


def sync(lake: Lake, settings=SETTINGS, **kwargs):
    return sync_gmail(lake, settings, policy=FAST, units_per_second=UNLIMITED, units_per_minute=UNLIMITED, **kwargs)


def small_mailbox(standin: StandIn, n: int = 600):
    """A mailbox small enough for quick tests, listed in pages of 50 to force paging."""
    standin.gmail.page_size = 50
    return generate_mailbox(standin.gmail, ANN, n, weeks=28, seed=3)


def window_start() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=26)


def expected_ids(standin: StandIn, since: datetime, user: str = ANN) -> set[str]:
    box = standin.gmail.mailbox(user)
    cut = since.timestamp() * 1000
    return {i for i in standin.gmail.live_ids(user) if box.messages[i].internal_ms >= cut}


COLUMNS = (
    'source, account, id, thread_id, ts, direction, sender, "to", cc, self_in, labels, unread, bulk, auto, '
    "message_id, in_reply_to, subject_tags, subject, updated"
)


def live(lake: Lake) -> list[tuple]:
    return lake.connect().execute(f"SELECT {COLUMNS} FROM messages ORDER BY account, id").fetchall()


def raw_rows(lake: Lake) -> int:
    return sum(pq.read_metadata(p).num_rows for p in lake.files("messages"))


def merged_since(lake: Lake, version: int) -> int:
    """Records the commits after ``version`` took in (each merge's source rows): what a sync wrote."""
    commits = lake.table("messages").history()
    return sum(int(c["operationMetrics"]["num_source_rows"]) for c in commits if c["version"] > version)


def gmail_calls(standin: StandIn, part: str = "/gmail/v1/") -> list:
    return standin.requests(part)


def reply(standin: StandIn, user: str, to_id: str, when: datetime, mine: bool = True) -> str:
    """A reply in the thread of ``to_id``, from the owner (SENT) or from the other side (INBOX)."""
    box = standin.gmail.mailbox(user)
    parent = box.messages[to_id]
    headers = dict(parent.headers)
    number = len(box.messages) + 1
    gid = f"{int(when.timestamp() * 1000):011x}{number:05x}"
    new = [
        ("From", user if mine else headers["From"]),
        ("To", headers["From"] if mine else user),
        ("Subject", "Re: " + headers["Subject"].removeprefix("Re: ")),
        ("Date", when.strftime("%a, %d %b %Y %H:%M:%S +0000")),
        ("Message-ID", f"<reply{number}@mail.example>"),
        ("In-Reply-To", headers["Message-ID"]),
        ("References", (headers.get("References", "") + " " + headers["Message-ID"]).strip()),
    ]
    standin.gmail.add(user, gid, parent.thread_id, when, new, ["SENT"] if mine else ["INBOX", "UNREAD"])
    return gid


# -- first sync, incremental, run twice -------------------------------------------------------------------
def test_first_sync_reads_the_window_in_batches_then_incremental_brings_every_kind_of_change(standin, tokens, tmp_path):
    corpus = small_mailbox(standin)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    since = window_start()
    first = sync(lake)
    report = first.mailboxes[0]
    assert report.error == "" and report.full_sync
    ids = {r[2] for r in live(lake)}
    assert ids == expected_ids(standin, since), "the window's mail; no drafts, spam or older mail"
    assert len(ids) > 400 and len(ids) < len(corpus.ids)
    calls = gmail_calls(standin)
    assert calls[0].path.endswith("/profile"), "the history id is taken before anything is read"
    lists = [c for c in calls if c.path.endswith("/messages")]
    assert len(lists) > 5 and all("q" not in c.query for c in lists), "the metadata scope forbids q"
    fetches = [c for c in calls if c.batch and c.query.get("format") == "metadata"]
    assert fetches and all(c.query["metadataHeaders"].split(",") == list(HEADERS) for c in fetches)
    assert {c.path.split("/")[-2] for c in fetches} == {"messages", "threads"}
    assert all(len(standin.batch_calls(b)) <= 50 for b in {c.batch for c in fetches})
    assert report.units == standin.gmail.units[ANN], "our count of quota units is Google's"
    assert report.requests < len(calls), "a batch of calls is one request"
    cursor = lake.read_cursor(SOURCE, ANN)
    assert int(cursor["history_id"]) == standin.gmail.mailbox(ANN).history_id

    # Changes of every kind: a reply in an existing thread, a customer's new message, a message
    # read (UNREAD removed), one archived (label only), one deleted, one moved to the trash.
    box = standin.gmail.mailbox(ANN)
    received = sorted(i for i in ids if "INBOX" in box.messages[i].labels)
    unread = next(i for i in received[3:] if "UNREAD" in box.messages[i].labels)
    now = datetime.now(UTC).replace(microsecond=0)
    mine = reply(standin, ANN, received[-1], now - timedelta(minutes=5))
    theirs = reply(standin, ANN, received[-2], now - timedelta(minutes=4), mine=False)
    standin.gmail.relabel(ANN, unread, remove=("UNREAD",))
    standin.gmail.relabel(ANN, received[0], remove=("INBOX",))
    standin.gmail.delete(ANN, received[1])
    standin.gmail.relabel(ANN, received[2], add=("TRASH",))
    standin.clear_log()
    version = lake.table("messages").version()

    second = sync(lake)
    report = second.mailboxes[0]
    calls = gmail_calls(standin)
    assert calls[0].path.endswith("/history") and calls[0].query["startHistoryId"] == cursor["history_id"]
    assert not any(c.path.endswith(("/messages", "/profile")) for c in calls), "no listing"
    assert (report.added, report.updated, report.deleted) == (2, 2, 2) and not report.full_sync
    assert merged_since(lake, version) == 6, "the sync wrote the 6 changes, nothing else"
    now_ids = {r[2] for r in live(lake)}
    assert now_ids == (ids | {mine, theirs}) - {received[1], received[2]}
    con = lake.connect()
    assert con.execute("SELECT unread FROM messages WHERE id = ?", [unread]).fetchone() == (False,)
    assert con.execute("SELECT direction, in_reply_to <> '' FROM messages WHERE id = ?", [mine]).fetchone() == (
        "sent",
        True,
    )
    assert report.units == standin.gmail.units[ANN] - first.mailboxes[0].units


def test_second_sync_without_changes_adds_nothing_and_costs_one_history_call(standin, tokens, tmp_path):
    small_mailbox(standin, 200)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)
    files, rows, before = lake.files("messages"), raw_rows(lake), live(lake)
    standin.clear_log()
    units = standin.gmail.units[ANN]

    again = sync(lake)
    assert lake.files("messages") == files and raw_rows(lake) == rows and live(lake) == before
    calls = gmail_calls(standin)
    assert [c.path.rsplit("/", 1)[-1] for c in calls] == ["history"]
    assert again.requests == 1 and again.units == 2 == standin.gmail.units[ANN] - units
    assert (again.added, again.updated, again.deleted) == (0, 0, 0)


def test_expired_history_runs_a_full_resync_without_duplicates(standin, tokens, tmp_path):
    small_mailbox(standin, 300)
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    sync(lake)
    box = standin.gmail.mailbox(ANN)
    before = {r[2] for r in live(lake)}
    gone, relabelled = sorted(before)[:2]
    standin.gmail.delete(ANN, gone)
    standin.gmail.relabel(ANN, relabelled, add=("STARRED",))
    standin.gmail.expire_history(ANN)
    standin.clear_log()

    summary = sync(lake)
    calls = gmail_calls(standin)
    assert calls[0].path.endswith("/history") and calls[0].status == 404
    assert calls[1].path.endswith("/profile") and any(c.path.endswith("/messages") for c in calls)
    report = summary.mailboxes[0]
    assert report.full_sync and (report.added, report.updated, report.deleted) == (0, 1, 1)
    ids = [r[2] for r in live(lake)]
    assert len(ids) == len(set(ids)) and set(ids) == before - {gone}
    assert "STARRED" in lake.connect().execute("SELECT labels FROM messages WHERE id = ?", [relabelled]).fetchone()[0]
    assert int(lake.read_cursor(SOURCE, ANN)["history_id"]) == box.history_id
    standin.clear_log()
    sync(lake)
    assert len(gmail_calls(standin)) == 1, "back to incremental"


# -- batches and errors ----------------------------------------------------------------------------------
def test_in_a_batch_only_the_call_that_got_429_is_sent_again(standin, tokens, tmp_path):
    small_mailbox(standin, 300)
    sign_in(standin, tokens)
    box = standin.gmail.mailbox(ANN)
    big_thread = max(box.threads, key=lambda t: len(box.threads[t]))
    standin.fail(429, path=f"/threads/{big_thread}", retry_after=0.2)
    lake = Lake(tmp_path / "data")
    started = time.monotonic()
    summary = sync(lake)
    assert summary.failed == 0 and time.monotonic() - started >= 0.2, "Retry-After is honoured"
    failed = [c for c in gmail_calls(standin) if c.status == 429]
    assert len(failed) == 1 and failed[0].batch
    batch = failed[0].batch
    neighbours = standin.batch_calls(batch)
    assert len(neighbours) > 1 and all(c.status == 200 for c in neighbours if c is not failed[0])
    retried = standin.batch_calls(batch + 1)
    assert [(c.path, c.status) for c in retried] == [(failed[0].path, 200)], "the retry batch holds that call only"
    for call in neighbours:
        if call is not failed[0]:
            assert sum(1 for c in gmail_calls(standin) if c.batch and c.path == call.path) == 1, "no repeat"
    assert big_thread in {lake.connect().execute("SELECT id FROM messages WHERE id = ?", [big_thread]).fetchone()[0]}
    assert summary.units == standin.gmail.units[ANN]

    # A call that keeps failing gives up with a clear line, for this mailbox only.
    standin.fail(503, path="/messages/", times=100)
    standin.gmail.expire_history(ANN)
    stubborn = sync_gmail(Lake(tmp_path / "other"), SETTINGS, policy=RetryPolicy(2, 0.001, 0.01))
    assert stubborn.failed == 1 and "503" in stubborn.mailboxes[0].error


def test_a_3000_message_mailbox_under_250_units_a_second_draws_no_429_and_reports_the_units_served(
    standin, tokens, tmp_path
):
    generate_mailbox(standin.gmail, ANN, 3_000, weeks=26, seed=11)
    standin.gmail.units_per_second = 250  # Google's per-user limit, enforced over a sliding second
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    started = time.monotonic()
    summary = sync_gmail(lake, SETTINGS, policy=FAST)  # Google's limits: 250 units/s, 15,000/min
    seconds = time.monotonic() - started
    report = summary.mailboxes[0]
    print(
        f"\nGmail first sync at 250 units/s: {report.messages:,} messages, {report.units:,} units, "
        f"{report.requests} requests, {standin.gmail.rate_limited.get(ANN, 0)} 429s, {seconds:.1f} s"
    )
    assert report.error == "" and report.messages > 2_000
    assert standin.gmail.rate_limited.get(ANN, 0) == 0, "paced under the per-second limit: no 429"
    assert report.units == standin.gmail.units[ANN], "units reported are the units served"
    assert report.refused == 0 and report.retries == 0
    fetches = {c.batch for c in gmail_calls(standin) if c.batch}
    assert all(sum(10 if "/threads/" in c.path else 5 for c in standin.batch_calls(b)) <= 250 for b in fetches)


def test_a_token_saved_without_its_account_is_asked_whose_it_is_through_get_profile(standin, tokens, tmp_path):
    small_mailbox(standin, 100)
    info = sign_in(standin, tokens)
    path = tokens / auth.USER_TOKEN_FILE
    path.write_text(json.dumps({k: v for k, v in info.items() if k != "account"}))
    summary = sync(Lake(tmp_path / "data"))
    assert summary.failed == 0 and summary.mailboxes[0].account == ANN
    assert json.loads(path.read_text())["account"] == ANN
    assert [c.path for c in gmail_calls(standin)][:2] == ["/gmail/v1/users/me/profile"] * 2, "asked, then synced"


def test_units_come_back_a_window_after_the_answer_and_only_answered_calls_count():
    from types import SimpleNamespace

    from connectors.google.gmail import QuotaMeter

    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    meter = QuotaMeter(250, 400, clock=lambda: now[0], sleep=sleep)
    assert meter.budget.capacity == 250
    with meter.budget.spending(250):
        now[0] += 0.3  # the batch is answered 0.3 s after it went out
    with meter.budget.spending(100):
        pass
    assert slept == [pytest.approx(1.0)], "a second after the answer, not after sending"
    with meter.budget.spending(100):
        pass
    assert slept[1] == pytest.approx(60 - 1.0), "the minute's 400 units: wait for the first 250 to leave it"
    get = SimpleNamespace(methodId="gmail.users.threads.get")
    meter.record(get, answered=True)
    meter.record(get, answered=False)
    assert (meter.units, meter.refused, meter.refused_units) == (10, 1, 10)
    with pytest.raises(ValueError):
        QuotaMeter(0)


# -- what lands per message ----------------------------------------------------------------------------
def test_direction_cc_only_bulk_and_auto_come_from_the_headers_and_labels_read_through_the_api(
    standin, tokens, tmp_path
):
    sign_in(standin, tokens)
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    date = when.strftime("%a, %d %b %Y %H:%M:%S +0000")
    fixtures = {
        "sent": ([("From", "Ann <ANN@northwind.com>"), ("To", "joe@acme.com")], ["SENT"]),
        "to": ([("From", "joe@acme.com"), ("To", "ann@northwind.com"), ("Subject", "Budget report")], ["INBOX"]),
        "cc_only": ([("From", "bob@northwind.com"), ("To", "cat@northwind.com"), ("Cc", ANN)], ["INBOX", "UNREAD"]),
        "list": ([("From", "news@vendor.com"), ("To", ANN), ("List-Id", "<w.vendor.com>")], ["INBOX"]),
        "noreply": ([("From", "no-reply@tickets.example"), ("To", ANN)], ["INBOX"]),
        "social": ([("From", "friend@social.example"), ("To", ANN)], ["INBOX", "CATEGORY_SOCIAL"]),
        "precedence": ([("From", "ops@northwind.com"), ("To", ANN), ("Precedence", "bulk")], ["INBOX"]),
        "auto": ([("From", "joe@acme.com"), ("To", ANN), ("Auto-Submitted", "auto-replied")], ["INBOX"]),
        "draft": ([("From", ANN), ("To", "joe@acme.com")], ["DRAFT"]),
    }
    for n, (name, (headers, labels)) in enumerate(fixtures.items()):
        full = [*headers, ("Date", date), ("Message-ID", f"<{name}@x>"), ("X-Secret-Body-Hint", "no")]
        standin.gmail.add(ANN, f"{name}", f"{name}", when + timedelta(minutes=n), full, labels)
    lake = Lake(tmp_path / "data")
    sync(lake)
    rows = {r["id"]: r for r in lake.connect().execute("SELECT * FROM messages").df().to_dict("records")}
    assert set(rows) == set(fixtures) - {"draft"}
    assert rows["sent"]["direction"] == "sent" and rows["sent"]["self_in"] == "from"
    assert rows["to"]["direction"] == "received" and rows["to"]["self_in"] == "to" and not rows["to"]["bulk"]
    assert set(rows["to"]["subject_tags"]) >= {"budget", "report"} and rows["to"]["subject"] is None
    assert rows["cc_only"]["self_in"] == "cc" and rows["cc_only"]["unread"]
    assert all(rows[k]["bulk"] for k in ("list", "noreply", "social", "precedence"))
    assert rows["auto"]["auto"] and not rows["to"]["auto"]
    assert (
        rows["to"]["message_id"] == "to@x" and rows["to"]["ts"].to_pydatetime() == when
    )  # the Date header, as for mail files
    assert list(rows["social"]["labels"]) == ["INBOX", "CATEGORY_SOCIAL"]
    dumped = json.dumps([pq.read_table(p).to_pylist() for p in lake.files("messages")], default=str)
    assert "X-Secret" not in dumped and "no-body" not in dumped


# -- crash safety --------------------------------------------------------------------------------------
BOOT = "import connectors.google.gmail_source as g; g.BATCH_SIZE = 25; from timeaudit.cli import app; app()"


def killed_sync(standin: StandIn, data: Path, at: int, env: dict, cwd: Path) -> None:
    """The CLI sync in a subprocess, SIGKILLed while the stand-in holds its ``at``-th API call."""
    standin.hold(at)
    proc = subprocess.Popen(
        [sys.executable, "-c", BOOT, "sync", "gmail", "--data", str(data)],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert standin.held.wait(30), "the sync reached the held call"
        proc.kill()
        proc.wait(10)
    finally:
        standin.hold_at = None
        standin.release.set()


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(standin, tokens, tmp_path):
    small_mailbox(standin, 500)
    sign_in(standin, tokens)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    killed, reference = Lake(tmp_path / "killed"), Lake(tmp_path / "reference")
    killed_sync(standin, killed.root, 130, env, tmp_path)  # in the third batch of reads
    assert raw_rows(killed) > 0 and killed.read_cursor(SOURCE, ANN) is None, "batches landed, no history id"
    sync(killed)
    sync(reference)
    assert live(killed) == live(reference) and len(live(killed)) > 300

    # Killed while applying changes: same lake after the rerun.
    box = standin.gmail.mailbox(ANN)
    received = sorted(i for i, m in box.messages.items() if "INBOX" in m.labels)[-40:]
    for i in received[:30]:
        standin.gmail.relabel(ANN, i, add=("UNREAD",))
    for i in received[30:]:
        standin.gmail.delete(ANN, i)
    killed_sync(standin, killed.root, 3, env, tmp_path)
    sync(killed)
    sync(reference)
    assert live(killed) == live(reference)
    assert not {r[2] for r in live(killed)} & set(received[30:])


# -- the done-when figures --------------------------------------------------------------------------------
def test_quota_of_the_20000_message_mailbox_first_sync_and_after_one_percent_changed(standin, tokens, tmp_path):
    corpus = generate_mailbox(standin.gmail, ANN, 20_000)
    assert len(corpus.ids) == 20_000
    sign_in(standin, tokens)
    lake = Lake(tmp_path / "data")
    started = time.monotonic()
    first = sync(lake).mailboxes[0]
    seconds = time.monotonic() - started
    synced = len(live(lake))
    per_message = first.units / synced
    print(
        f"\nGmail first sync: {synced:,} messages of a {len(corpus.ids):,}-message mailbox, {first.units:,} quota "
        f"units = {per_message:.2f} units per message ({first.units / len(corpus.ids):.2f} per mailbox message), "
        f"{first.requests} requests, {seconds:.1f} s"
    )
    assert first.units == standin.gmail.units[ANN]
    assert abs(synced - len(expected_ids(standin, window_start()))) < 5, "the window (its start moves)"
    assert per_message <= 4

    # 1% of the mailbox changes: 100 replies in existing threads, 70 messages read, 30 deleted.
    box = standin.gmail.mailbox(ANN)
    ids = sorted(r[2] for r in live(lake))
    received = [i for i in ids if "INBOX" in box.messages[i].labels]
    now = datetime.now(UTC).replace(microsecond=0)
    for k, parent in enumerate(received[-100:]):
        reply(standin, ANN, parent, now - timedelta(seconds=200 - k), mine=k % 2 == 0)
    for i in [i for i in received[30:-100] if "UNREAD" in box.messages[i].labels][:70]:
        standin.gmail.relabel(ANN, i, remove=("UNREAD",))
    for i in received[:30]:
        standin.gmail.delete(ANN, i)
    standin.clear_log()
    second = sync(lake).mailboxes[0]
    share = second.units / first.units
    print(
        f"Gmail incremental sync after 200 changes (1%): {second.units:,} quota units = {share:.2%} of the first "
        f"sync, {second.requests} requests"
    )
    assert (second.added, second.updated, second.deleted) == (100, 70, 30)
    assert share <= 0.03


# -- the command line --------------------------------------------------------------------------------------
def test_cli_syncs_a_roster_with_a_service_account_and_reports_units_and_who_failed(standin, tokens, tmp_path):
    generate_mailbox(standin.gmail, ANN, 120, weeks=4, seed=5)
    standin.undelegated.add(BOB)
    key = tmp_path / "key.json"
    key.write_text(json.dumps(standin.service_account_key()))
    (tmp_path / "people.csv").write_text(f"email,team\n{ANN},Support\n{BOB},Support\n")
    config = tmp_path / "timeaudit.toml"
    config.write_text('roster = "people.csv"\n[organisation]\ndomains = ["northwind.com"]\n')
    done = CliRunner().invoke(app, ["auth", "google", "--service-account", str(key)])
    assert done.exit_code == 0 and "gmail.metadata" in done.stdout

    result = CliRunner().invoke(app, ["sync", "gmail", "--data", str(tmp_path / "data"), "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert "Gmail: 2 mailbox(es)" in result.stdout and "quota units" in result.stdout and "1 failed" in result.stdout
    assert any(BOB in line and "unauthorized_client" in line for line in result.stderr.splitlines())
    assert f"{ANN}: " in result.stderr
    assert {r[1] for r in live(Lake(tmp_path / "data"))} == {ANN}
    help_text = CliRunner().invoke(app, ["sync", "gmail", "--help"]).stdout
    assert "never bodies" in help_text


def test_a_service_account_syncs_the_shared_mailboxes_too(standin, tokens, tmp_path):
    """A [[shared_mailboxes]] address (a delegated Workspace mailbox) is synced beside the roster."""
    support = "support@northwind.com"
    generate_mailbox(standin.gmail, ANN, 20, weeks=2, seed=3)
    generate_mailbox(standin.gmail, support, 30, weeks=2, seed=4)
    key = tmp_path / "key.json"
    key.write_text(json.dumps(standin.service_account_key()))
    (tmp_path / "people.csv").write_text(f"email,team\n{ANN},Support\n")
    config = tmp_path / "timeaudit.toml"
    config.write_text(
        'roster = "people.csv"\n[organisation]\ndomains = ["northwind.com"]\n'
        f'[[shared_mailboxes]]\naddress = "{support}"\nteam = "Support"\n'
    )
    assert CliRunner().invoke(app, ["auth", "google", "--service-account", str(key)]).exit_code == 0

    result = CliRunner().invoke(app, ["sync", "gmail", "--data", str(tmp_path / "data"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Gmail: 2 mailbox(es)" in result.stdout
    assert {r[1] for r in live(Lake(tmp_path / "data"))} == {ANN, support}


# -- what the product shows ---------------------------------------------------------------------------------
def customer_mail(standin: StandIn, n: int, when: datetime, zone: str = "+0100") -> str:
    local = when.astimezone(datetime.strptime(zone, "%z").tzinfo)
    headers = [
        ("From", "Joe <joe@acme.com>"),
        ("To", ANN),
        ("Subject", f"Order {n}"),
        ("Date", local.strftime("%a, %d %b %Y %H:%M:%S %z")),
        ("Message-ID", f"<order{n}@acme.com>"),
    ]
    gid = f"{int(when.timestamp() * 1000):011x}{n:05x}"
    standin.gmail.add(ANN, gid, f"t{n}", when, headers, ["INBOX", "UNREAD"])
    return gid


def test_reply_latency_counts_working_hours_over_weekends_and_zones_and_shows_on_the_dashboard(
    standin, tokens, tmp_path, monkeypatch
):
    from streamlit.testing.v1 import AppTest

    from timeaudit.analysis import audit
    from timeaudit.analysis.metrics import open_analysis

    # Ann works 09:00-17:30 in New York; her customer writes from Paris (+0100).
    settings = parse_settings(
        {
            "organisation": {
                "domains": ["northwind.com"],
                "timezone": "America/New_York",
                "working_hours": "09:00-17:30",
            },
            "customers": [{"name": "Acme", "domains": ["acme.com"]}],
        }
    )
    friday = customer_mail(standin, 1, datetime(2026, 11, 13, 21, 0, tzinfo=UTC))  # Fri 16:00 in New York
    saturday = customer_mail(standin, 2, datetime(2026, 11, 14, 10, 0, tzinfo=UTC))
    customer_mail(standin, 3, datetime(2026, 11, 20, 13, 0, tzinfo=UTC))  # Fri 08:00 in New York: waiting
    reply(standin, ANN, friday, datetime(2026, 11, 16, 15, 0, tzinfo=UTC))  # Mon 10:00 in New York
    reply(standin, ANN, saturday, datetime(2026, 11, 16, 14, 30, tzinfo=UTC))  # Mon 09:30
    sign_in(standin, tokens)
    data = tmp_path / "data"
    lake = Lake(data)
    assert sync(lake, settings).failed == 0

    analysis = open_analysis(lake, settings)
    scope = audit.open_scope(analysis, ["2026-W46", "2026-W47"], now=datetime(2026, 11, 23, 12, tzinfo=UTC))
    replies = audit.customer_replies(analysis, scope).set_index("message_id")
    # Fri 16:00-17:30 and Mon 09:00-10:00; Saturday counts from Monday 09:00; the third waits
    # from Friday 09:00 to 17:30 and Monday 09:00 to 07:00 (before work): 8.5 h.
    assert replies.loc["order1@acme.com", "working_hours"] == pytest.approx(2.5)
    assert replies.loc["order2@acme.com", "working_hours"] == pytest.approx(0.5)
    assert replies.loc["order3@acme.com", "working_hours"] == pytest.approx(8.5)
    assert pd.isna(replies.loc["order3@acme.com", "replied_at"])

    config = tmp_path / "timeaudit.toml"
    config.write_text(
        '[organisation]\ndomains = ["northwind.com"]\ntimezone = "America/New_York"\nworking_hours = "09:00-17:30"\n\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.com"]\n'
    )
    monkeypatch.setenv("TIMEAUDIT_DATA", str(data))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(config))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    at = at.selectbox(key="week").set_value("2026-W47").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Email"] == "0.2 h"  # two replies of 5 minutes; unread mail costs nothing yet
    assert shown["With customers"] == "0.2 h"
    at.switch_page("views/customers.py").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Emails waiting for an answer"] == "1"
    assert at.get("plotly_chart")  # hours per customer and reply times
