"""IMAP end to end against a real Dovecot (tests/mail_servers.py) started on a loopback port:
the real client library, a real lake, real DuckDB. Nothing of the connector is mocked."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from imapclient import IMAPClient
from mail_servers import start_dovecot
from typer.testing import CliRunner

from connectors.imap.folders import folder_key
from connectors.imap.mailbox import SOURCE
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

ANN, PASSWORD = "ann@northwind.com", "s3cret-app-password"
ROOT = Path(__file__).parent.parent
COLUMNS = (
    'source, account, id, thread_id, ts, direction, sender, "to", cc, self_in, labels, unread, bulk, auto, '
    "message_id, in_reply_to, subject_tags, updated"
)
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def dovecot():
    server = start_dovecot({ANN: PASSWORD})
    yield server
    server.stop()


@pytest.fixture(params=["qresync", "condstore", "plain"])
def any_dovecot(request):
    """Dovecot as it is (QRESYNC), as a server with CONDSTORE only (Gmail) and as one with
    neither (Exchange) would answer; ``offers`` says which."""
    server = start_dovecot({ANN: PASSWORD}, offers=request.param)
    client = login(server)
    capabilities = client.capabilities()
    assert (b"QRESYNC" in capabilities, b"CONDSTORE" in capabilities) == {
        "qresync": (True, True),
        "condstore": (False, True),
        "plain": (False, False),
    }[request.param]
    client.logout()
    yield server
    server.stop()


def imap_settings(server, tmp_path: Path, **account) -> dict:
    secret = tmp_path / "imap-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    entry = {
        "account": ANN,
        "host": "127.0.0.1",
        "port": server.port,
        "security": "plain",
        "password_file": str(secret),
        **account,
    }
    return {
        "organisation": {"domains": ["northwind.com"], "timezone": "Europe/London"},
        "customers": [{"name": "Acme", "domains": ["acme.com"]}],
        "imap": [entry],
    }


def login(server) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.login(ANN, PASSWORD)
    return client


def message(n: int, when: datetime, *, sender: str = "joe@acme.com", to: str = ANN, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Order {n} budget\r\nDate: {format_datetime(when)}\r\n"
        f"Message-ID: <m{n}@test>\r\n{extra}Content-Type: text/plain\r\n\r\nthe body, never read\r\n"
    ).encode()


# Folder -> messages (number, seen); one message in INBOX and Archive, one in Junk (skipped).
MAILBOX = {
    "INBOX": [(1, True), (2, False), (3, True), (4, False), (5, True), (6, False)],
    "Sent": [(7, True), (8, True)],
    "Archive": [(9, True), (3, True)],
    "Junk": [(10, False)],
}


def raw(n: int) -> bytes:
    when = NOW - timedelta(days=n)
    if n in (7, 8):  # replies by Ann
        return message(n, when, sender=ANN, to="joe@acme.com", extra=f"In-Reply-To: <m{n - 6}@test>\r\n")
    if n == 5:
        return message(n, when, sender="news@lists.example.org", extra="List-Id: <news.example.org>\r\n")
    if n == 6:
        return message(n, when, sender="sue@northwind.com", to="tim@northwind.com", extra=f"Cc: {ANN}\r\n")
    return message(n, when)


def fill(server, mailbox: dict = MAILBOX) -> None:
    client = login(server)
    for folder, messages in mailbox.items():
        for n, seen in messages:
            client.append(folder, raw(n), flags=[b"\\Seen"] if seen else [], msg_time=NOW - timedelta(days=n))
    client.logout()


def sync(lake: Lake, settings: dict, tmp_path: Path, **options):
    config = tmp_path / "timeaudit.toml"
    parsed = parse_settings(settings)
    parsed.path = str(config)
    return sync_registered(lake, parsed, "imap", **options)


def live(lake: Lake) -> list[tuple]:
    return lake.connect().execute(f"SELECT {COLUMNS} FROM messages ORDER BY account, id").fetchall()


def live_by_id(lake: Lake) -> dict[str, dict]:
    frame = lake.connect().execute(f"SELECT {COLUMNS} FROM messages").df()
    return {row["id"]: row for row in frame.to_dict("records")}


def raw_rows(lake: Lake) -> int:
    return sum(pq.read_metadata(p).num_rows for p in lake.files("messages"))


def test_first_sync_reads_every_folder_once_and_a_second_costs_one_status_per_folder(dovecot, tmp_path):
    fill(dovecot)
    settings = imap_settings(dovecot, tmp_path)
    lake = Lake(tmp_path / "data")
    summary = sync(lake, settings, tmp_path)
    assert summary.failed == 0 and summary.added == 9  # 10 messages less the junk one; m3 once
    rows = live_by_id(lake)
    assert set(rows) == {f"<m{n}@test>" for n in range(1, 10)}
    assert all(row["source"] == SOURCE for row in rows.values())
    assert rows["<m2@test>"]["unread"] and not rows["<m1@test>"]["unread"]
    assert rows["<m7@test>"]["direction"] == "sent" and "SENT" in rows["<m7@test>"]["labels"]
    assert rows["<m5@test>"]["bulk"] and rows["<m6@test>"]["self_in"] == "cc"
    assert "INBOX" in rows["<m1@test>"]["labels"]
    in_two = [label for label in rows["<m3@test>"]["labels"] if label.startswith("mailbox:")]
    assert len(in_two) == 2, "one message in INBOX and Archive is one record with both folders"
    assert rows["<m1@test>"]["subject_tags"].tolist() == ["budget"]

    # The cursor names no folder and holds no Message-ID: per UID 4 bytes and a 64-bit digest.
    cursor = lake.read_cursor(SOURCE, ANN)
    text = json.dumps(cursor)
    assert "INBOX" not in text and "Archive" not in text and "@test" not in text
    held = sum(len(base64.b64decode(f["copies"])) for f in cursor["folders"].values())
    assert held == 12 * 10  # 6 + 2 + 2 copies (m3 twice), 12 bytes each

    before = raw_rows(lake)
    again = sync(lake, settings, tmp_path)
    [report] = again.reports
    assert again.records == 0 and raw_rows(lake) == before, "a second sync adds nothing"
    assert report.changed == 0 and report.folders == 3  # INBOX, Sent, Archive (junk and trash skipped)
    # login, capability, enable, list, one STATUS per folder, logout
    assert report.commands == 4 + report.folders + 1


# IMAP commands of a second sync with nothing changed: login, capability, enable, list, one
# STATUS per folder (3), logout; without CONDSTORE STATUS cannot tell a flag change, so each
# folder is also selected, searched and its flags fetched (and nothing is enabled).
UNCHANGED = {"qresync": 4 + 3 + 1, "condstore": 4 + 3 + 1, "plain": 3 + 3 * 4 + 1}
# After a flag change, two expunges and a new message in INBOX, besides the above: INBOX's
# changes (qresync: one EXAMINE (QRESYNC) answers expunges and flags; condstore: SELECT, UID
# SEARCH ALL, FETCH FLAGS CHANGEDSINCE; plain: the same without CHANGEDSINCE, and Sent and
# Archive as unchanged), one FETCH for the headers of the new and the flagged message, and
# SELECT Archive + FETCH for the header of m3, which left INBOX but is still in Archive.
CHANGED = {"qresync": 4 + 3 + 1 + 1 + 2 + 1, "condstore": 4 + 3 + 3 + 1 + 2 + 1, "plain": 3 + 3 + 3 + 1 + 2 * 3 + 2 + 1}


def test_a_flag_change_an_expunge_and_a_new_message_are_picked_up(any_dovecot, tmp_path):
    dovecot = any_dovecot
    fill(dovecot)
    settings = imap_settings(dovecot, tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings, tmp_path)
    again = sync(lake, settings, tmp_path)
    assert again.records == 0 and again.reports[0].commands == UNCHANGED[dovecot.offers]

    client = login(dovecot)
    client.select_folder("INBOX")
    uids = {client.fetch([u], ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])[u][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]
            .decode().split("<")[1].split(">")[0]: u for u in client.search("ALL")}  # fmt: skip
    client.add_flags([uids["m2@test"]], [b"\\Seen"])  # read
    client.delete_messages([uids["m4@test"], uids["m3@test"]])  # m4 gone; m3 still in Archive
    client.expunge()
    client.append("INBOX", raw(11), msg_time=NOW)
    client.logout()

    summary = sync(lake, settings, tmp_path)
    assert summary.failed == 0
    assert summary.reports[0].commands == CHANGED[dovecot.offers]
    assert summary.records == 4 and (summary.added, summary.deleted) == (1, 1)  # m11; m2 and m3 again; m4
    rows = live_by_id(lake)
    assert not rows["<m2@test>"]["unread"]
    assert "<m4@test>" not in rows and summary.deleted == 1
    assert "<m11@test>" in rows and rows["<m11@test>"]["unread"]
    assert "INBOX" not in rows["<m3@test>"]["labels"], "m3 is now held only by Archive"
    assert [label for label in rows["<m3@test>"]["labels"] if label.startswith("mailbox:")].__len__() == 1
    assert sync(lake, settings, tmp_path).reports[0].commands == UNCHANGED[dovecot.offers]

    # Marked unread again in Archive, where m3 is now alone: the record is unread again.
    client = login(dovecot)
    client.select_folder("Archive")
    client.remove_flags(client.search(["HEADER", "Message-ID", "m3@test"]), [b"\\Seen"])
    client.logout()
    summary = sync(lake, settings, tmp_path)
    assert summary.records == 1 and live_by_id(lake)["<m3@test>"]["unread"]

    # Moved to the trash (skipped): gone from the lake.
    client = login(dovecot)
    client.select_folder("INBOX")
    client.move(client.search(["HEADER", "Message-ID", "m1@test"]), "Trash")
    client.logout()
    sync(lake, settings, tmp_path)
    assert "<m1@test>" not in live_by_id(lake)


def test_a_changed_uidvalidity_reads_the_folder_again_without_duplicates(dovecot, tmp_path):
    fill(dovecot)
    settings = imap_settings(dovecot, tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings, tmp_path)
    before = live(lake)
    archive = folder_key(parse_settings(settings).imap[0], "Archive")
    old = lake.read_cursor(SOURCE, ANN)["folders"][archive]["uidvalidity"]

    client = login(dovecot)  # the folder recreated: same name, new UIDVALIDITY, same messages
    client.delete_folder("Archive")
    client.create_folder("Archive")
    for n, _ in MAILBOX["Archive"]:
        client.append("Archive", raw(n), flags=[b"\\Seen"], msg_time=NOW - timedelta(days=n))
    client.logout()

    summary = sync(lake, settings, tmp_path)
    assert summary.failed == 0
    assert lake.read_cursor(SOURCE, ANN)["folders"][archive]["uidvalidity"] != old
    after = live(lake)
    assert len(after) == len(before) == 9
    assert len({row[2] for row in after}) == 9
    # The same records, except that Ann's messages were read again (a later ingest, same values).
    assert sorted(after) == sorted(before)


def test_a_cursor_of_the_earlier_format_reads_the_window_again_without_duplicates(dovecot, tmp_path):
    fill(dovecot)
    settings = imap_settings(dovecot, tmp_path)
    lake = Lake(tmp_path / "data")
    sync(lake, settings, tmp_path)
    before = live(lake)
    # What the first IMAP sync kept: folders by name, every UID's Message-ID and \\Seen flag.
    earlier = {"since": lake.read_cursor(SOURCE, ANN)["since"], "folders": {
        "INBOX": {"uidvalidity": 1, "uidnext": 7, "messages": 6, "modseq": 9, "copies": {"1": ["<m1@test>", True]}},
    }}  # fmt: skip
    lake.write_cursor(SOURCE, ANN, earlier)
    summary = sync(lake, settings, tmp_path)
    assert summary.failed == 0 and summary.added == 0 and summary.deleted == 0
    assert sorted(live(lake)) == sorted(before)
    assert lake.read_cursor(SOURCE, ANN)["format"] == 2
    assert sync(lake, settings, tmp_path).records == 0


def _killed_sync(data: Path, config: Path, env: dict) -> None:
    """The IMAP sync in a subprocess that SIGKILLs itself right after its second batch landed."""
    script = f"""
import os, signal
from timeaudit.core.config import load_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_accounts
from connectors.imap.source import ImapSource
lake = Lake({str(data)!r})
written = 0
original = Lake.write_arrow
def write_then_die(self, *args, **kwargs):
    global written
    original(self, *args, **kwargs)
    written += 1
    if written == 2:
        os.kill(os.getpid(), signal.SIGKILL)
Lake.write_arrow = write_then_die
source = ImapSource(load_settings(__import__("pathlib").Path({str(config)!r})))
source.batch_size = 7
sync_accounts(lake, source)
"""
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(dovecot, tmp_path):
    big = {"INBOX": [(n, n % 3 == 0) for n in range(1, 40)], "Sent": [(n, True) for n in range(40, 50)]}
    fill(dovecot, big)
    settings = imap_settings(dovecot, tmp_path)
    config = tmp_path / "timeaudit.toml"
    entry = settings["imap"][0]
    config.write_text(
        '[organisation]\ndomains = ["northwind.com"]\n\n'
        f'[[imap]]\naccount = "{ANN}"\nhost = "127.0.0.1"\nport = {entry["port"]}\nsecurity = "plain"\n'
        f'password_file = "{entry["password_file"]}"\n'
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    killed, reference = Lake(tmp_path / "killed"), Lake(tmp_path / "reference")
    _killed_sync(killed.root, config, env)
    assert raw_rows(killed) == 14 and killed.read_cursor(SOURCE, ANN) is None, "two batches landed, no cursor"
    settings["organisation"] = {"domains": ["northwind.com"]}
    settings.pop("customers")
    sync(killed, settings, tmp_path)
    sync(reference, settings, tmp_path)
    strip = lambda rows: sorted(rows)  # noqa: E731
    assert strip(live(killed)) == strip(live(reference)) and len(live(killed)) == 49


def test_bad_host_bad_password_and_an_untrusted_certificate_each_end_in_one_line_with_the_fix(dovecot, tmp_path):
    fill(dovecot, {"INBOX": [(1, True)]})
    data = tmp_path / "data"

    def run(**account) -> tuple[int, str]:
        settings = imap_settings(dovecot, tmp_path, **account)
        entry = settings["imap"][0]
        lines = [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}" for k, v in entry.items()]
        config = tmp_path / "timeaudit.toml"
        config.write_text("[[imap]]\n" + "\n".join(lines) + "\n")
        result = CliRunner().invoke(app, ["sync", "imap", "--data", str(data), "--config", str(config)])
        return result.exit_code, result.output

    code, output = run(host="nowhere.invalid", security="tls", port=993)
    assert code == 2 and "not found; check the host of imap account" in output
    code, output = run(password_file=str(_secret(tmp_path, "wrong")))
    assert code == 2 and "refused the login" in output and "password_file" in output
    code, output = run(host="localhost", security="tls", port=dovecot.tls_port)
    assert code == 2 and "certificate is not trusted" in output and "ca_file" in output
    code, output = run(host="localhost", security="starttls", port=dovecot.port)
    assert code == 2 and "certificate is not trusted" in output

    # Trusting the server's certificate: implicit TLS and STARTTLS both work.
    code, output = run(host="localhost", security="tls", port=dovecot.tls_port, ca_file=str(dovecot.cert))
    assert code == 0, output
    assert "IMAP: 1 mailbox(es), 1 messages" in output
    code, output = run(host="localhost", security="starttls", port=dovecot.port, ca_file=str(dovecot.cert))
    assert code == 0, output


def _secret(tmp_path: Path, value: str) -> Path:
    path = tmp_path / f"secret-{value}"
    path.write_text(value)
    path.chmod(0o600)
    return path


def test_a_password_file_others_can_read_and_plain_imap_to_a_remote_host_are_refused(dovecot, tmp_path):
    settings = imap_settings(dovecot, tmp_path)
    Path(settings["imap"][0]["password_file"]).chmod(0o644)
    with pytest.raises(UserError, match="chmod 600"):
        sync(Lake(tmp_path / "data"), settings, tmp_path)
    config = tmp_path / "timeaudit.toml"
    entry = settings["imap"][0]
    config.write_text(
        f'[[imap]]\naccount = "{ANN}"\nhost = "127.0.0.1"\nsecurity = "plain"\n'
        f'password_file = "{entry["password_file"]}"\n'
    )
    from timeaudit.lake.doctor import diagnose

    errors = [text for level, text in diagnose(tmp_path / "data", config) if level == "error"]
    assert any("the IMAP password of " + ANN in text and "chmod 600" in text for text in errors), errors
    from timeaudit.core.errors import ConfigError

    with pytest.raises(ConfigError, match="only to a loopback host"):
        parse_settings({"imap": [{"account": ANN, "host": "mail.example.com", "security": "plain"}]})


def test_folder_roles_come_from_special_use_or_else_from_the_names_exchange_and_others_use():
    from connectors.imap.folders import chosen_folders
    from timeaudit.core.config import ImapAccount

    listed = [
        ((b"\\HasNoChildren",), b"/", "INBOX"),
        ((b"\\HasNoChildren",), b"/", "Sent Items"),  # Exchange: no SPECIAL-USE
        ((b"\\HasNoChildren",), b"/", "Deleted Items"),
        ((b"\\HasNoChildren",), b"/", "Junk E-mail"),
        ((b"\\HasNoChildren",), b"/", "Drafts"),
        ((b"\\HasNoChildren", b"\\Sent"), b"/", "Gesendet"),
        ((b"\\HasNoChildren", b"\\Trash"), b"/", "Papierkorb"),
        ((b"\\Noselect", b"\\HasChildren"), b"/", "Projects"),
        ((b"\\HasNoChildren",), b"/", "Projects/Acme"),
        ((b"\\HasNoChildren",), b"/", "Notifications"),
    ]
    account = ImapAccount(account=ANN, host="mail.example.com", skip_folders=["Notifications"])
    folders = {f.name: f.labels for f in chosen_folders(account, listed, keep_names=False)}
    assert list(folders) == ["INBOX", "Sent Items", "Gesendet", "Projects/Acme"]
    assert folders["INBOX"][0] == "INBOX" and folders["Sent Items"][0] == "SENT" and folders["Gesendet"][0] == "SENT"
    assert len(folders["Projects/Acme"]) == 1 and folders["Projects/Acme"][0].startswith("mailbox:")
    assert "Projects/Acme" in chosen_folders(account, listed, keep_names=True)[-1].labels

    with_trash = ImapAccount(account=ANN, host="mail.example.com", skip_junk_and_trash=False, folders=["Papierkorb"])
    assert [f.name for f in chosen_folders(with_trash, listed, keep_names=False)] == ["Papierkorb"]
