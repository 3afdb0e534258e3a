"""The done-when of IMAP and CalDAV: against the real Dovecot and Radicale, a mailbox and a
calendar give the same records as importing their mbox and .ics exports, and the dashboard
shows what the syncs brought.

Fields that differ by source, on purpose: ``source`` ("imap"/"caldav" against "mail"/"ics"),
``ingested_at``, the ``mailbox:<digest>`` labels (a digest of the server and folder against one
of the file's place) and the calendar key that begins an event's id and series id (a digest
of the calendar's URL against one of the export's calendar name). Everything else is equal.
(A message without any Message-ID, which these mailboxes do not hold, would differ in its id
too: both make it from a digest of its headers, and IMAP reads only the header fields it uses.)
"""

from __future__ import annotations

import mailbox
import urllib.request
from base64 import b64encode
from datetime import timedelta

from streamlit.testing.v1 import AppTest
from test_caldav import ANN as CAL_ANN
from test_caldav import PASSWORD as CAL_PASSWORD
from test_caldav import TODAY, caldav_settings, radicale  # noqa: F401
from test_caldav import fill as fill_calendar
from test_imap import ANN, MAILBOX, NOW, dovecot, fill, imap_settings, login  # noqa: F401

from timeaudit.core.config import parse_settings
from timeaudit.core.weeks import week_label
from timeaudit.lake.imports import import_ics, import_mail
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

from conftest import ROOT

assert CAL_ANN == ANN

MESSAGE_COLUMNS = (
    'account, id, thread_id, ts, direction, sender, "to", cc, self_in, labels, unread, bulk, auto, '
    "message_id, in_reply_to, subject_tags, updated, deleted"
)
EVENT_COLUMNS = (
    'account, id, ical_uid, series_id, start, "end", tz, all_day, status, self_response, transparency, '
    "event_type, organizer, attendees, has_agenda, has_conference, title_tags, updated, deleted"
)


def messages(lake: Lake, source: str) -> dict[str, dict]:
    rows = lake.connect().execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE source = ?", [source]).df()
    out = {}
    for row in rows.to_dict("records"):
        row["labels"] = sorted(label for label in row["labels"] if not label.startswith("mailbox:"))
        row["to"], row["cc"], row["subject_tags"] = list(row["to"]), list(row["cc"]), list(row["subject_tags"])
        out[row["id"]] = row
    return out


def events(lake: Lake, source: str) -> dict[str, dict]:
    rows = lake.connect().execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE source = ?", [source]).df()
    out = {}
    for row in rows.to_dict("records"):
        row["id"] = row["id"].split("/", 1)[1]
        row["series_id"] = row["series_id"].split("/", 1)[1] if row["series_id"] else ""
        row["attendees"] = [dict(a) for a in row["attendees"]]
        row["title_tags"] = list(row["title_tags"])
        out[row["id"]] = row
    return out


def export_mbox(server, folder: str, path) -> None:
    """What a mail client's export of ``folder`` writes: each message whole, its read state in
    X-Mozilla-Status (as Thunderbird keeps it)."""
    client = login(server)
    client.select_folder(folder, readonly=True)
    box = mailbox.mbox(str(path))
    for _, data in sorted(client.fetch(client.search("ALL"), ["RFC822", "FLAGS"]).items()):
        seen = b"\\Seen" in data[b"FLAGS"]
        box.add(b"X-Mozilla-Status: " + (b"0001" if seen else b"0000") + b"\r\n" + data[b"RFC822"])
    box.flush()
    box.close()
    client.logout()


def test_a_mailbox_and_a_calendar_give_the_records_of_their_exports_and_show_on_the_dashboard(
    dovecot,  # noqa: F811
    radicale,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    fill(dovecot)
    calendar = fill_calendar(radicale)
    settings = imap_settings(dovecot, tmp_path)
    settings["caldav"] = caldav_settings(radicale, tmp_path)["caldav"]
    parsed = parse_settings(settings)
    synced = Lake(tmp_path / "data")
    assert sync_registered(synced, parsed, "imap").failed == 0
    assert sync_registered(synced, parsed, "caldav").failed == 0

    # The exports: one mbox per folder (Junk too: the import leaves it out by its name) and
    # the calendar's .ics as the server gives it whole.
    exports = tmp_path / "export"
    exports.mkdir()
    for folder in MAILBOX:
        export_mbox(dovecot, folder, exports / folder)
    ics = tmp_path / "work.ics"
    ics.write_bytes(_get(calendar.url))
    imported = Lake(tmp_path / "imported")
    import_mail(imported, parsed, [exports], ANN)
    today = TODAY.date()
    account = parsed.caldav[0]
    import_ics(
        imported,
        parsed,
        [ics],
        ANN,
        since=today - timedelta(weeks=account.weeks_back),
        until=today + timedelta(weeks=account.weeks_ahead),
    )

    from_imap, from_mbox = messages(synced, "imap"), messages(imported, "mail")
    assert len(from_imap) == 9 and from_imap == from_mbox
    from_caldav, from_ics = events(synced, "caldav"), events(imported, "ics")
    assert len(from_caldav) == 9 and from_caldav == from_ics

    config = tmp_path / "timeaudit.toml"
    config.write_text(
        '[organisation]\ndomains = ["northwind.com"]\ntimezone = "Europe/London"\n\n'
        '[[customers]]\nname = "Acme"\ndomains = ["acme.com"]\n'
    )
    monkeypatch.setenv("TIMEAUDIT_DATA", str(synced.root))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(config))
    week = week_label((TODAY - timedelta(days=2)).date())
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    assert not at.exception
    at = at.selectbox(key="week").set_value(week).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["With customers"] != "0.0 h"  # the Acme meeting (CalDAV) and Acme mail (IMAP)
    assert shown["Internal meetings"] != "0.0 h"  # the team sync series
    at = at.selectbox(key="week").set_value(week_label((NOW - timedelta(days=7)).date())).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Email"] != "0.0 h"  # Ann's two replies (Sent, over IMAP)


def _get(url) -> bytes:
    """The calendar collection as one .ics file (Radicale answers GET on it with the export)."""
    request = urllib.request.Request(str(url))
    request.add_header("Authorization", "Basic " + b64encode(f"{ANN}:{CAL_PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read()
