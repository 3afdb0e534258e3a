"""The mail-file connector (connectors.mail.reader) on real files: mbox, Maildir, .eml, broken inputs, a 200 MB mbox."""

from __future__ import annotations

import gc
import mailbox
import shutil
import threading
import time
import tracemalloc
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pyarrow as pa
import pytest

from connectors.mail.reader import (
    ImportFileError,
    detect_format,
    iter_mail_messages,
    mail_folders,
    mailbox_of,
    read_mail,
)
from timeaudit.core.config import Privacy, Settings
from timeaudit.core.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
ME = "ana@acme.com"
KEEP_SUBJECTS = Settings(privacy=Privacy(store_subjects=True))


def read(path: Path, settings: Settings = KEEP_SUBJECTS, aliases=()):
    """(messages by id, skipped items, progress values) of one import."""
    skipped: list[tuple[str, str]] = []
    progress: list[int] = []
    messages = list(
        iter_mail_messages(path, ME, settings, aliases, lambda item, why: skipped.append((item, why)), progress.append)
    )
    names = {folder.name for folder in mail_folders(path)}
    for m in messages:  # the folder's own labels are tested in test_mail_folders.py
        m.labels = [label for label in m.labels if not label.startswith("mailbox:") and label not in names]
    return {m.id: m for m in messages}, skipped, progress


def test_detect_format_and_mailbox_slug(tmp_path):
    assert detect_format(FIXTURES / "takeout.mbox") == "mbox"
    assert detect_format(FIXTURES / "eml_folder") == "eml"
    assert detect_format(FIXTURES / "encoded_utf8.eml") == "eml"
    mailbox.Maildir(tmp_path / "Work Inbox")
    assert detect_format(tmp_path / "Work Inbox") == "maildir"
    assert mailbox_of(tmp_path / "Work Inbox") == "work-inbox"
    assert mailbox_of(FIXTURES / "takeout.mbox") == "takeout"
    assert mailbox_of(FIXTURES / "eml_folder") == "eml-folder"
    assert mailbox_of(FIXTURES / "eml_folder" / "01_question.eml") == "eml-folder"  # same ids as the folder


def test_takeout_mbox_labels_threads_and_flags():
    found, skipped, progress = read(FIXTURES / "takeout.mbox")
    assert not skipped
    assert progress[-1] == (FIXTURES / "takeout.mbox").stat().st_size and progress == sorted(progress)
    assert "<d1@acme.com>" not in found  # a draft, which Gmail's API would not list either

    question = found["<q1@client.com>"]
    assert (question.direction, question.self_in, question.unread) == ("received", "to", True)
    assert question.labels == ["INBOX", "UNREAD", "IMPORTANT", "Clients/Acme"]
    assert question.thread_id == "q1@client.com" and question.cc == ["carl@acme.com"]
    assert question.ts == datetime(2026, 3, 3, 8, 15, tzinfo=UTC) == question.updated
    assert question.subject_tags == ["renewal", "planning"]

    reply = found["<r1@acme.com>"]
    assert (reply.direction, reply.self_in, reply.labels, reply.unread) == ("sent", "from", ["SENT"], False)
    assert (reply.in_reply_to, reply.thread_id) == ("q1@client.com", question.thread_id)

    promo = found["<p1@shop.example>"]
    assert promo.bulk and promo.labels == ["CATEGORY_PROMOTIONS", "INBOX"]
    updates = found["<u1@ci.example>"]  # an RFC 2047 encoded label list
    assert updates.bulk and updates.unread and updates.labels == ["CATEGORY_UPDATES", "UNREAD", "Projets été"]

    # A broken Date falls back to the time on the mbox "From " line.
    assert found["<b1@client.com>"].ts == datetime(2026, 3, 5, 8, 30, tzinfo=UTC)
    # Threads are by Message-ID (they join across mailboxes); Gmail's thread id only without one.
    (social,) = [m for m in found.values() if not m.message_id]
    assert social.bulk and social.labels == ["CATEGORY_SOCIAL"] and social.thread_id == "1791234567890444444"
    assert social.id.startswith("sha256-")


def test_reimport_gives_identical_records():
    first, _, _ = read(FIXTURES / "takeout.mbox")
    again, _, _ = read(FIXTURES / "takeout.mbox")
    assert [asdict(m) for m in first.values()] == [asdict(m) for m in again.values()]
    tb1, _, _ = read(FIXTURES / "thunderbird.mbox")
    tb2, _, _ = read(FIXTURES / "thunderbird.mbox")
    assert list(tb1) == list(tb2)  # including the hash id of the message without a Message-ID


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_thunderbird_mbox_quoted_from_lines_and_status(tmp_path, crlf):
    path = FIXTURES / "thunderbird.mbox"
    if crlf:
        path = tmp_path / "thunderbird.mbox"
        path.write_bytes((FIXTURES / "thunderbird.mbox").read_bytes().replace(b"\n", b"\r\n"))
    found, skipped, _ = read(path)
    assert not skipped
    # ">From" and a "From " line with no blank line before it split nothing; the expunged one is left out.
    assert len(found) == 3 and "<t3@acme.com>" not in found
    assert found["<t1@acme.com>"].unread is False
    cc = found["<t2@acme.com>"]
    assert (cc.unread, cc.self_in, cc.labels, cc.subject_tags) == (True, "cc", ["UNREAD"], ["budget", "forms"])
    (accepted,) = [m for m in found.values() if not m.message_id]
    assert accepted.auto and accepted.id.startswith("sha256-") and accepted.labels == []


def test_folder_of_eml_files():
    found, skipped, progress = read(FIXTURES / "eml_folder", aliases=["ana.s@acme.com"])
    assert not skipped and progress == [1, 2, 3]  # notes.txt is not an .eml and not read
    question, reply = found["<e1@client.com>"], found["<e2@acme.com>"]
    assert question.direction == "received" and question.subject_tags == ["support", "escalation"]
    assert (reply.direction, reply.in_reply_to, reply.thread_id) == ("sent", "e1@client.com", "e1@client.com")
    (news,) = [m for m in found.values() if not m.message_id]
    assert news.bulk and news.subject == "Monthly newsletter"


def test_maildir_flags_and_bad_messages(tmp_path):
    box = mailbox.Maildir(tmp_path / "Inbox")
    for name, subdir, flags in [
        ("eml_folder/01_question.eml", "cur", "S"),  # seen
        ("eml_folder/02_reply_crlf.eml", "cur", ""),  # in cur, not seen
        ("eml_folder/03_no_message_id.eml", "new", ""),
        ("broken_date.eml", "cur", "S"),  # the delivery time stands in for the Date
        ("encoded_utf8.eml", "cur", "ST"),  # trashed: left out
    ]:
        message = mailbox.MaildirMessage((FIXTURES / name).read_bytes())
        message.set_subdir(subdir)
        message.set_flags(flags)
        box.add(message)
    before = datetime.now(UTC).replace(microsecond=0)
    # Broken files as a crash or a disk error leaves them (mailbox.add would repair the truncation).
    shutil.copy(FIXTURES / "truncated.eml", tmp_path / "Inbox" / "new" / "1772524800.M1P1Q1.host")
    shutil.copy(FIXTURES / "binary_junk.bin", tmp_path / "Inbox" / "new" / "1772524800.M2P1Q1.host")

    found, skipped, progress = read(tmp_path / "Inbox")
    assert len(found) == 4 and progress[-1] == 6
    assert found["<e1@client.com>"].unread is False
    assert found["<e2@acme.com>"].unread is True
    (news,) = [m for m in found.values() if not m.message_id]
    assert news.unread and news.labels == ["UNREAD", "INBOX"]  # the folder named Inbox is one
    assert abs((found["<bd@client.com>"].ts - before).total_seconds()) < 120
    assert len(skipped) == 2
    for item, why in skipped:
        assert str(tmp_path / "Inbox") in item and "message" in item and why
    assert any("truncated" in why for _, why in skipped)


def test_empty_maildir_is_an_empty_mailbox(tmp_path):
    mailbox.Maildir(tmp_path / "Empty")
    assert read(tmp_path / "Empty")[0] == {}


@pytest.mark.parametrize(
    "name, subject, sender",
    [
        ("encoded_rfc2047.eml", "Réunion budget — planning", "jose@client.com"),
        ("encoded_latin1.eml", "Réunion à propos du budget", "andre@client.com"),
        ("encoded_utf8.eml", "Größe review — 日本語", "juergen@client.com"),
    ],
)
def test_encoded_names_and_subjects(name, subject, sender):
    found, skipped, _ = read(FIXTURES / name)
    (message,) = found.values()
    assert not skipped and (message.subject, message.sender) == (subject, sender)
    assert "budget" in message.subject_tags or "review" in message.subject_tags


def test_subjects_are_not_kept_by_default():
    (message,) = read(FIXTURES / "encoded_rfc2047.eml", settings=Settings())[0].values()
    assert message.subject is None and message.subject_tags == ["budget", "planning"]
    assert message.cc == ["ivan@acme.com"] and message.to == [ME]


@pytest.mark.parametrize("name, why", [("broken_date.eml", "Date"), ("missing_date.eml", "Date")])
def test_eml_without_a_usable_date_is_skipped_by_name(name, why):
    skipped: list[tuple[str, str]] = []
    with pytest.raises(ImportFileError, match=name):
        list(iter_mail_messages(FIXTURES / name, ME, Settings(), [], lambda i, r: skipped.append((i, r))))
    assert skipped == [(f"{FIXTURES / name} message 1 (line 1)", skipped[0][1])] and why in skipped[0][1]


def test_truncated_mbox_keeps_the_good_messages():
    found, skipped, _ = read(FIXTURES / "truncated.mbox")
    assert list(found) == ["<ok@acme.com>"]
    assert skipped == [(f"{FIXTURES / 'truncated.mbox'} message 2 (line 10)", skipped[0][1])]
    assert "truncated" in skipped[0][1]


def test_bad_message_in_the_middle_of_an_mbox(tmp_path):
    good = (FIXTURES / "thunderbird.mbox").read_bytes()
    junk = (FIXTURES / "binary_junk.mbox").read_bytes()
    path = tmp_path / "mixed.mbox"
    path.write_bytes(junk + b"\n\n" + good)
    found, skipped, _ = read(path)
    assert len(found) == 3
    assert [item for item, _ in skipped] == [f"{path} message 1 (line 1)"]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("not_mail.txt", "not a mail file"),
        ("not_mail.pdf", "not a mail file"),
        ("binary_junk.bin", "not a mail file"),
        ("binary_junk.eml", "not a mail file"),
        ("empty.mbox", "empty"),
        ("binary_junk.mbox", "none of its 1 message"),
        ("truncated.eml", "none of its 1 message"),
    ],
)
def test_corrupt_inputs_name_the_file(name, expected):
    with pytest.raises(ImportFileError, match=expected) as caught:
        list(iter_mail_messages(FIXTURES / name, ME, Settings(), [], lambda i, r: None))
    assert str(FIXTURES / name) in str(caught.value) and "expected an mbox file" in str(caught.value)
    assert isinstance(caught.value, UserError)


def test_folders_without_readable_mail(tmp_path):
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("hello\n")
    with pytest.raises(ImportFileError, match="no mail found"):
        detect_format(tmp_path / "nothing")
    junk = tmp_path / "junk"
    junk.mkdir()
    shutil.copy(FIXTURES / "binary_junk.bin", junk / "a.eml")
    shutil.copy(FIXTURES / "truncated.eml", junk / "b.eml")
    found = []
    with pytest.raises(ImportFileError, match=f"{junk}: none of its 2 message"):
        list(iter_mail_messages(junk, ME, Settings(), [], lambda i, r: found.append(i)))
    assert found == [f"{junk / 'a.eml'} message 1 (line 1)", f"{junk / 'b.eml'} message 2 (line 1)"]
    with pytest.raises(ImportFileError, match="no such file"):
        detect_format(tmp_path / "missing.mbox")


# -- a 200 MB mbox --------------------------------------------------------------------------------
def _write_big_mbox(path: Path, target_bytes: int) -> int:
    """Messages with ~100 KB bodies (plus one 20 MB one) until the file passes ``target_bytes``."""
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.\n"
    body = line * 1000 + b">From a quoted line\nFrom an unquoted line after text: not a separator\n" + line * 20
    huge = line * 200_000
    count = 0
    with path.open("wb", buffering=1 << 20) as f:
        while f.tell() < target_bytes:
            count += 1
            f.write(
                b"From sender@client.com Tue Mar 03 08:15:00 +0000 2026\n"
                b"X-Gmail-Labels: Inbox,Unread\n"
                b"From: sender@client.com\nTo: ana@acme.com\n"
                b"Date: Tue, 03 Mar 2026 09:15:00 +0100\n"
                b"Message-ID: <big%d@client.com>\nSubject: Weekly report %d\n\n" % (count, count)
            )
            f.write(huge if count == 5 else body)
            f.write(b"\n")
    return count


def _one_by_one(path, on_skip, on_progress):
    for message in iter_mail_messages(path, ME, Settings(), [], on_skip, on_progress):
        assert path.name != "big.mbox" or (message.unread and message.subject_tags == ["weekly", "report"])
        yield 1


def _column_wise(path, on_skip, on_progress):
    for records in read_mail(path, ME, Settings(), [], on_skip, on_progress):
        table = records if isinstance(records, pa.Table) else pa.Table.from_pylist([records])
        if path.name == "big.mbox":
            assert set(table["unread"].to_pylist()) == {True}
            assert set(map(tuple, table["subject_tags"].to_pylist())) == {("weekly", "report")}
        yield table.num_rows


@pytest.mark.parametrize("reader", [_one_by_one, _column_wise])
def test_200_mb_mbox_streams_in_flat_memory(tmp_path, reader):
    path = tmp_path / "big.mbox"
    expected = _write_big_mbox(path, 200 * 1024 * 1024)
    size = path.stat().st_size

    list(reader(FIXTURES / "takeout.mbox", lambda i, r: None, None))  # libraries loaded before measuring
    process = psutil.Process()
    gc.collect()
    baseline = process.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    count, last_progress, skipped = 0, [0], []
    started = time.monotonic()
    try:
        for read in reader(path, lambda i, r: skipped.append(i), last_progress.append):
            count += read
        traced_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
        done.set()
        sampler.join()
    elapsed = time.monotonic() - started
    growth_mb = (peak - baseline) / 2**20
    print(
        f"\n{size / 2**20:.0f} MB mbox, {count} messages in {elapsed:.1f} s: "
        f"peak RSS growth {growth_mb:.1f} MB, peak traced allocations {traced_mb:.2f} MB"
    )

    assert not skipped and count == expected
    assert last_progress[-1] == size
    assert growth_mb < 100 and traced_mb < 100


# -- the column-wise reader against the per-message one ---------------------------------------------
def _generated_mbox() -> bytes:
    """Messages for every rule, the plain form and each way out of it, and repeated ids."""
    plain = {
        "From": "Bob Client <bob@client.com>",
        "To": "ana@acme.com, Carl <carl@acme.com>",
        "Date": "Tue, 3 Mar 2026 09:15:00 +0100",
        "Message-ID": "<m{n}@client.com>",
        "Subject": "Renewal planning for Q2",
    }
    variants = [
        {},
        {"X-Gmail-Labels": "Inbox,Unread,Important,Category Updates"},
        {"X-Gmail-Labels": 'Sent,"Clients, big",Opened', "From": "ana@acme.com"},
        {"From": "Ana S <ana.s@acme.com>"},  # an alias: sent
        {"X-Gmail-Labels": "Drafts"},  # left out
        {"X-Gmail-Labels": "Spam,Inbox"},  # left out
        {"X-Gmail-Labels": "Trash"},  # left out
        {"X-Gmail-Labels": "Category Promotions,Category Social,Inbox,Inbox"},
        {"X-Gmail-Labels": "Inbox", "X-Mozilla-Status": "0001"},  # both: one by one
        {"X-Gmail-Labels": "Inbox\n Unread"},  # folded labels: one by one
        {"X-Mozilla-Status": "0001"},
        {"X-Mozilla-Status": "0000"},
        {"X-Mozilla-Status": "0009"},  # expunged
        {"X-Mozilla-Status": "zz"},
        {"To": "team@acme.com", "Cc": "ana@acme.com"},
        {"To": "team@acme.com", "Cc": "x@acme.com"},  # bcc
        {"To": "ANA@ACME.COM, ana@acme.com,, , carl@acme.com"},
        {"To": "  ", "Cc": ""},
        {"To": ","},
        {"To": '"Ana, S" <ana@acme.com>'},  # quoted: one by one
        {"To": "ana@acme.com (Ana)"},
        {"To": "undisclosed-recipients:;"},
        {"To": "=?utf-8?q?Ana?= <ana@acme.com>"},
        {"To": "ana@acme.com,\n\tcarl@acme.com,\n dee@acme.com"},  # folded
        {"To": "not an address"},
        {"From": ""},
        {"From": "noreply@shop.example"},
        {"From": "Shop <notifications@shop.example>"},
        {"From": "calendar-noreply@google.com"},
        {"List-Id": "<news.shop.example>"},
        {"List-Unsubscribe": "<mailto:u@shop.example>"},
        {"List-Id": "  "},
        {"Precedence": " Bulk "},
        {"Precedence": "first-class"},
        {"Auto-Submitted": "auto-replied; owner-email=x@y"},
        {"Auto-Submitted": "no"},
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "no"},
        {"X-Autoreply": ""},
        {"Content-Type": 'text/calendar; charset="utf-8"; method=REPLY'},
        {"Content-Type": "text/calendar; method=REQUEST"},
        {"Subject": "Accepted: Weekly sync"},
        {"Subject": "OUT OF OFFICE: back Monday"},
        {"Subject": "=?UTF-8?Q?R=C3=A9union_budget?="},
        {"Subject": "Budget\n review"},  # folded
        {"Subject": ""},
        {"Subject": "Budget review \t "},
        {"Subject": "\n  Budget review"},
        {"Subject": None},
        {"In-Reply-To": "<q{n}@client.com>", "References": "<root@client.com> <q{n}@client.com>"},
        {"In-Reply-To": "<q{n}@client.com>"},
        {"In-Reply-To": "q{n}@client.com"},  # no brackets: one by one
        {"In-Reply-To": ""},
        {"References": "garbage"},
        {"Message-ID": "m{n}@client.com"},
        {"Message-ID": None, "X-GM-THRID": "1791234567890444444"},
        {"Message-ID": "<dup@client.com>", "Subject": "first version"},
        {"Message-ID": "<dup@client.com>", "Subject": "second version"},
        {"Date": "3 Mar 2026 09:15:00 -0000"},
        {"Date": "Tue, 03 Mar 2026 23:59:59 -2359"},
        {"Date": "Tue, 31 Feb 2026 09:15:00 +0000"},  # no such day: the "From " line's date
        {"Date": "Tue, 3 Mar 2026 24:00:00 +0000"},
        {"Date": "Tue, 3 Mar 26 09:15:00 GMT"},  # the standard library's parser
        {"Date": "Tue,  3 Mar 2026 09:15:00 +0100 (CET)"},
        {"Date": "sometime"},
        {"Date": None},
        {"Date": None, "From": None},
        {"Subject": "Grüße"},  # 8-bit
        {"Subject": "Caf\xe9"},  # Latin-1 bytes
        {"X-Note": "tab\there"},
        {"X-Control": "bell\x07"},
        {"from": "bob@client.com", "TO": "ana@acme.com", "message-id": "<lower{n}@x>"},
        {"To": "ana@acme.com", "To ": "second@acme.com"},
    ]
    out = []
    for n, variant in enumerate(variants):
        headers = dict(plain, **variant)
        lines = [f"From {n}@xxx Tue Mar 03 08:{n % 60:02d}:00 +0000 2026"]
        for name, value in headers.items():
            if value is not None:
                lines.append(f"{name.strip() if name != 'To ' else 'To'}: {value}".format(n=n))
        body = ["", "Hello.", ">From a quoted line", "From a line after text", "", ""]
        encoding = "latin-1" if "\xe9" in str(variant) else "utf-8"
        out.append("\n".join(lines + body).encode(encoding))
    out.append(
        b"From 1@xxx Tue Mar 03 08:00:00 +0000 2026\nTo: ana@acme.com\r\nDate: Tue, 3 Mar 2026 09:15:00 +0100\r\n"
        b"Message-ID: <crlf@x>\r\n\r\nbody\r\n\r\n"
    )
    out.append(b"From 2@xxx Tue Mar 03 08:00:00 +0000 2026\n\nno headers\n\n")
    out.append(
        b"From 3@xxx Tue Mar 03 08:00:00 +0000 2026\nnot a header line\nDate: Tue, 3 Mar 2026 09:15:00 +0100\n\n"
    )
    out.append(
        b"From 4@xxx " + b"x" * 70_000 + b"\nMessage-ID: <long-from-line@x>\nDate: Tue, 3 Mar 2026 09:15:00 +0100\n\n"
    )
    out.append(
        b"From 5@xxx Tue Mar 03 08:00:00 +0000 2026\nMessage-ID: <big-body@x>\nDate: Tue, 3 Mar 2026 09:15:00 +0100\n\n"
        + b"Lorem ipsum\n" * 2_000
        + b"\n"
    )
    out.append(
        b"From 6@xxx Tue Mar 03 08:00:00 +0000 2026\nMessage-ID: <dup@client.com>\n"
        b"Date: Tue, 3 Mar 2026 09:15:00 +0100\nSubject: third version\n\n"
    )
    for n, odd_headers in enumerate(
        [
            b"Date: Tue, 3 Mar 2026 09:15:00 +0100\nDate: Wed, 4 Mar 2026 09:15:00 +0100",  # the first counts
            b"Message-ID: <x1@x>\nMessage-ID: <x2@x>\nFrom: a@x.com\nFrom: b@x.com\nSubject: one\nSubject: two",
            b"Subject:\nMessage-ID: <x3@x> (comment)\nReferences: <r1@x>\n\t<r2@x>",
            b"Message-ID:  <x4@x>  \nCc: Dee <DEE@X.COM>,\tana@ACME.com\nPrecedence:\n list",
            b"Message-ID: <x5@x>\nX-Gmail-Labels: Inbox\nX-Gmail-Labels: Unread",  # two label headers
            b"Message-ID: <x6@x>\nX-Mozilla-Status: 0001\nX-Mozilla-Status: 0000",
            b'Message-ID: <x7@x>\nIn-Reply-To: <a@x> <b@x>\nContent-Type: Text/Calendar;\n method="REPLY"',
            b"Message-ID: <s1@x>\nFrom: a@x.com\ngarbage line without a colon\nTo: ana@acme.com",
            b"Message-ID: <s2@x>\nBad Name: value",
            b"Message-ID: <s3@x>\n: no name",
            b"Message-ID: <s4@x>\nX-Control: \x01",
            b"Message-ID: <s6@x>\nSubject: Budget\x0b",
            b"Message-ID: <s7@x>\nSubject: \x1cBudget\nTo: \x1fana@acme.com",
            b"Message-ID: <s8@x>\nSubject: Budget\rreview",  # a lone carriage return
        ]
    ):
        date = b"" if b"Date:" in odd_headers else b"Date: Tue, 3 Mar 2026 09:15:00 +0100\n"
        out.append(b"From %d@xxx Tue Mar 03 08:00:00 +0000 2026\n%s%s\n\nbody\n\n" % (n, date, odd_headers))
    leading_blank = b"\n leading blank\nMessage-ID: <s5@x>\nDate: 3 Mar 2026 09:15:00 +0100\n\n"
    out.append(b"From 8@xxx Tue Mar 03 08:00:00 +0000 2026" + leading_blank)
    out.append(
        b"From 7@xxx Tue Mar 03 08:00:00 +0000 2026\nMessage-ID: <last@x>\nDate: Tue, 3 Mar 2026 09:15:00 +0100\n"
    )
    return b"".join(out)


def _both_readers(path: Path, settings: Settings, aliases=()):
    """(table, skipped, last progress) as the per-message reader and as the column-wise reader give them."""
    from connectors.mail.columns import SCHEMA
    from connectors.mail.reader import iter_mail_records

    schema = pa.schema([f for f in SCHEMA if f.name != "position"])

    def read(reader) -> tuple[pa.Table, list, list]:
        skipped, progress = [], []
        parts = list(
            reader(path, ME, settings, aliases, lambda item, why: skipped.append((item, why)), progress.append)
        )
        tables = [
            p.select(schema.names) if isinstance(p, pa.Table) else pa.Table.from_pylist([p], schema) for p in parts
        ]
        return pa.concat_tables(tables) if tables else schema.empty_table(), skipped, progress[-1:]

    return read(iter_mail_records), read(read_mail)


@pytest.mark.parametrize("chunk_bytes", [None, 1500], ids=["one-chunk", "many-chunks"])
@pytest.mark.parametrize("settings", [KEEP_SUBJECTS, Settings()], ids=["subjects", "tags-only"])
def test_column_wise_reader_gives_the_records_of_the_per_message_reader(tmp_path, monkeypatch, chunk_bytes, settings):
    from connectors.mail import blocks as mail
    from connectors.mail import columns as mail_columns

    if chunk_bytes:  # messages larger than a window come alone
        monkeypatch.setattr(mail, "WINDOW_BYTES", chunk_bytes)
        monkeypatch.setattr(mail, "CHUNK", chunk_bytes // 2)
        monkeypatch.setattr(mail, "MESSAGES_PER_TABLE", 7)
    read_column_wise, column_wise_reader = [], mail_columns.message_table

    def message_table(*args):
        table, others = column_wise_reader(*args)
        read_column_wise.append(table.num_rows)
        return table, others

    monkeypatch.setattr(mail_columns, "message_table", message_table)
    generated = tmp_path / "generated.mbox"
    generated.write_bytes(_generated_mbox())
    crlf = tmp_path / "thunderbird-crlf.mbox"
    crlf.write_bytes((FIXTURES / "thunderbird.mbox").read_bytes().replace(b"\n", b"\r\n"))
    generated_crlf = tmp_path / "generated-crlf.mbox"
    generated_crlf.write_bytes(_generated_mbox().replace(b"\n", b"\r\n"))
    mixed = tmp_path / "mixed.mbox"
    mixed.write_bytes((FIXTURES / "binary_junk.mbox").read_bytes() + b"\n\n" + (FIXTURES / "takeout.mbox").read_bytes())
    fixtures = [FIXTURES / name for name in ("takeout.mbox", "thunderbird.mbox", "truncated.mbox")]
    paths = [generated, generated_crlf, crlf, mixed, *fixtures]
    for path in paths:
        (one_by_one, skipped, progress), (column_wise, skipped_too, progress_too) = _both_readers(
            path, settings, aliases=["ana.s@acme.com"]
        )
        assert column_wise.num_rows == one_by_one.num_rows > 0
        assert column_wise.equals(one_by_one), path.name
        assert (skipped_too, progress_too) == (skipped, progress)
    assert sum(read_column_wise) > 100
