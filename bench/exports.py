"""Export files for the import benchmarks: one .ics calendar and one Takeout-style mbox per person.

They are written from the generated organisation's records as the lake holds them (the lake is
the cache of ``connectors.demo.records``' output: generating the records again would cost as
much as the generate step). Each sampled person gets what Google Takeout would give them:

- ``<person>.ics``: every event of their calendar as a VEVENT, in UTC with X-WR-TIMEZONE, with
  organizer, attendees and their responses, status, transparency, a description when the event
  has an agenda and a conference property when it has a call. Each occurrence of a series is
  its own VEVENT (the demo stores occurrences, not rules), so no recurrence is expanded.
- ``<person>.mbox``: every message of their mailbox, oldest first, with the headers Takeout
  writes (X-GM-THRID, X-Gmail-Labels, a Received line, From/To/Cc/Date/Message-ID/In-Reply-To/
  References/Subject, List-Unsubscribe on bulk mail, Auto-Submitted on automatic mail) and a
  one-line body. Real Gmail headers are longer (DKIM, ARC, many Received lines), so the real
  cost per message is somewhat higher than measured here.

Titles and subjects are not stored in the lake, only their tags, so the tags stand in for them.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

import icalendar

from timeaudit.lake.store import Lake

PARTSTAT = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE", "needsAction": "NEEDS-ACTION"}
LABELS = {
    "INBOX": "Inbox",
    "SENT": "Sent",
    "UNREAD": "Unread",
    "CATEGORY_PROMOTIONS": "Category Promotions",
    "CATEGORY_UPDATES": "Category Updates",
}


def sample_people(data: Path, count: int) -> list[tuple[str, str]]:
    """(email, time zone) of ``count`` people spread evenly over the roster, so every team is in."""
    import csv

    with (data / "people.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    step = max(1, len(rows) // count)
    return [(r["email"], r.get("timezone") or "UTC") for r in rows[::step][:count]]


def write_exports(data: Path, folder: Path, people: list[tuple[str, str]]) -> dict:
    """Write each person's .ics and .mbox into ``folder``; returns the counts written."""
    folder.mkdir(parents=True, exist_ok=True)
    con = Lake(data).connect()
    events = messages = 0
    try:
        for email, zone in people:
            rows = _rows(con, "SELECT * FROM events WHERE account = ? AND NOT deleted ORDER BY start, id", email)
            (folder / f"{stem(email)}.ics").write_bytes(calendar_file(email, zone, rows))
            events += len(rows)
            rows = _rows(con, "SELECT * FROM messages WHERE account = ? AND NOT deleted ORDER BY ts, id", email)
            with (folder / f"{stem(email)}.mbox").open("w", encoding="utf-8", newline="\n") as f:
                for row in rows:
                    f.write(_mbox_message(row))
            messages += len(rows)
    finally:
        con.close()
    return {"export_events": events, "export_messages": messages}


def stem(email: str) -> str:
    """The file name (without suffix) of a person's exports; it becomes the feed or mailbox slug."""
    return email.split("@")[0].replace(".", "-")


def _rows(con, query: str, account: str) -> list[dict]:
    return con.sql(query, params=[account]).to_arrow_table().to_pylist()


# -- calendars -------------------------------------------------------------------------------
def calendar_file(email: str, zone: str, rows: list[dict]) -> bytes:
    """A Google-style .ics of one person's events (rows as the lake holds them)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Google Inc//Google Calendar 70.9054//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", email)
    cal.add("x-wr-timezone", zone)
    for row in rows:
        cal.add_component(_vevent(row))
    return cal.to_ical()


def _vevent(row: dict) -> icalendar.Event:
    e = icalendar.Event()
    e.add("uid", row["id"])
    if row["all_day"]:  # local midnight to midnight in the person's zone, which is the calendar's
        e.add("dtstart", row["start"].astimezone(_zone(row["tz"])).date())
        e.add("dtend", row["end"].astimezone(_zone(row["tz"])).date())
    else:
        e.add("dtstart", row["start"])
        e.add("dtend", row["end"])
    e.add("dtstamp", row["updated"])
    e.add("last-modified", row["updated"])
    e.add("summary", " ".join(row["title_tags"]).capitalize() or "Meeting")
    e.add("status", row["status"].upper())
    e.add("transp", row["transparency"].upper())
    if row["event_type"] == "outOfOffice":
        e.add("x-microsoft-cdo-busystatus", "OOF")
    if row["has_agenda"]:
        e.add("description", "Agenda: see the shared notes.")
    if row["has_conference"]:
        e.add("x-google-conference", f"https://meet.google.com/{zlib.crc32(row['id'].encode()):08x}")
    if row["organizer"]:
        e.add("organizer", f"mailto:{row['organizer']}")
    for a in row["attendees"]:
        params = {"PARTSTAT": PARTSTAT.get(a["response"], "NEEDS-ACTION"), "ROLE": "REQ-PARTICIPANT"}
        e.add("attendee", f"mailto:{a['email']}", parameters=params)
    return e


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name or "UTC")


# -- mailboxes -------------------------------------------------------------------------------
def _mbox_message(row: dict) -> str:
    ts: datetime = row["ts"]
    labels = [LABELS.get(x, x) for x in row["labels"]]
    if "UNREAD" not in row["labels"] and "SENT" not in row["labels"]:
        labels.append("Opened")
    thrid = zlib.crc32(row["thread_id"].encode()) + 1790000000000000000
    subject = " ".join(row["subject_tags"]).capitalize() or "Hello"
    if row["in_reply_to"]:
        subject = "Re: " + subject
    lines = [
        f"From {thrid + zlib.crc32(row['id'].encode())}@xxx {ts.strftime('%a %b %d %H:%M:%S +0000 %Y')}",
        f"X-GM-THRID: {thrid}",
        f"X-Gmail-Labels: {','.join(labels)}",
        f"Received: by 2002:a05:6a10:1234 with SMTP id {zlib.crc32(row['id'].encode()):x};",
        f"        {format_datetime(ts)}",
        f"From: {row['sender']}",
        f"To: {', '.join(row['to'])}",
    ]
    if row["cc"]:
        lines.append(f"Cc: {', '.join(row['cc'])}")
    lines += [f"Date: {format_datetime(ts)}", f"Message-ID: <{row['message_id']}>"]
    if row["in_reply_to"]:
        lines += [f"In-Reply-To: <{row['in_reply_to']}>", f"References: <{row['in_reply_to']}>"]
    lines.append(f"Subject: {subject}")
    if row["bulk"]:
        lines.append("List-Unsubscribe: <mailto:unsubscribe@example.com>")
    if row["auto"]:
        lines.append("Auto-Submitted: auto-replied")
    lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="UTF-8"', "", "Thanks, see you then.", "", ""]
    return "\n".join(lines)
