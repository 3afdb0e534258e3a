"""Mail as people keep it: folder trees, one message in several mailboxes, folders named alike,
threads whose References were cut, and mailbox names that stay out of ids. Every tree and file
is built here, one per case."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pyarrow as pa

from connectors.mail.reader import mail_folders
from connectors.mail.threads import components, joined_threads
from timeaudit.core.config import parse_settings
from timeaudit.core.model import MESSAGE_SCHEMA
from timeaudit.lake.imports import import_mail
from timeaudit.lake.store import Lake

ANN = "ann@northwind.com"
SETTINGS = parse_settings({"organisation": {"domains": ["northwind.com"]}})
KEEP_SUBJECTS = parse_settings({"organisation": {"domains": ["northwind.com"]}, "privacy": {"store_subjects": True}})


def message(n: int, *, sender: str = "joe@acme.com", to: str = ANN, references: str = "", reply_to: str = "") -> str:
    """One message as its file holds it (headers and a body), numbered ``n``."""
    refs = f"References: {references}\n" if references else ""
    refs += f"In-Reply-To: {reply_to}\n" if reply_to else ""
    return (
        f"From: {sender}\nTo: {to}\nSubject: Order {n}\nDate: Tue, 10 Nov 2026 10:{n:02d}:00 +0000\n"
        f"Message-ID: <m{n}@acme.com>\n{refs}\nBody {n} is never read.\n"
    )


def maildir(path: Path, *messages: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path)
    for text in messages:
        box.add(mailbox.MaildirMessage(text.encode()))
    return path


def mbox(path: Path, *messages: str) -> Path:
    path.write_text("".join(f"From MAILER-DAEMON Tue Nov 10 10:00:00 2026\n{m}\n" for m in messages))
    return path


def rows(lake: Lake) -> list[dict]:
    con = lake.connect()
    try:
        return con.sql("SELECT * FROM messages ORDER BY message_id").to_arrow_table().to_pylist()
    finally:
        con.close()


def by_message(lake: Lake) -> dict[str, dict]:
    return {row["message_id"]: row for row in rows(lake)}


def folder_names(row: dict) -> list[str]:
    """The labels of a message's folders (roles and names), without UNREAD and mailbox digests."""
    return [label for label in row["labels"] if not label.startswith("mailbox:") and label != "UNREAD"]


def test_a_maildir_plus_plus_tree_is_read_whole_each_folder_a_mailbox(tmp_path):
    root = maildir(tmp_path / "Maildir", message(1))
    maildir(root / ".Sent", message(2, sender=ANN, to="joe@acme.com"))
    maildir(root / ".Archive.2024", message(3))
    maildir(root / ".Trash", message(4))  # left out, as Gmail's API leaves trash out
    (root / ".notmuch").mkdir()  # an index, not mail
    (root / ".notmuch" / "xapian").write_text("not mail")
    mh = tmp_path / "Maildir" / ".Lists.dev"  # Maildir++ name, MH content: numbered files
    mh.mkdir()
    (mh / "1").write_text(message(5))
    (mh / "2").write_text(message(6))
    (mh / ".mh_sequences").write_text("unseen: 2\n")
    sbd = root / ".Projects" / "Acme.sbd"  # Thunderbird keeps subfolders as mbox files in ".sbd" folders
    sbd.mkdir(parents=True)
    mbox(sbd / "Renewal", message(7))
    (sbd / "Renewal.msf").write_text('// <!-- <mdb:mork:z v="1.4"/> -->')

    names = {folder.name: folder.format for folder in mail_folders(root)}
    assert names == {
        "Maildir": "maildir",
        "Archive/2024": "maildir",
        "Lists/dev": "files",
        "Projects/Acme/Renewal": "mbox",
        "Sent": "maildir",
    }
    lake = Lake(tmp_path / "data")
    report = import_mail(lake, KEEP_SUBJECTS, [root], ANN)
    assert report.line().startswith(f"mail import for {ANN}: 5 folder(s), 6 message(s) read; 6 imported")
    found = by_message(lake)
    assert set(found) == {f"m{n}@acme.com" for n in (1, 2, 3, 5, 6, 7)}
    assert (found["m2@acme.com"]["direction"], folder_names(found["m2@acme.com"])) == ("sent", ["SENT", "Sent"])
    assert folder_names(found["m3@acme.com"]) == ["Archive/2024"]
    assert folder_names(found["m7@acme.com"]) == ["Projects/Acme/Renewal"]


def test_sent_mail_is_known_by_its_folder_whoever_sent_it(tmp_path):
    """A Sent folder of a shared or delegated mailbox holds mail "from" someone else."""
    root = tmp_path / "mail"
    maildir(root / "Sent Items", message(1, sender="team@northwind.com", to="joe@acme.com"))
    maildir(root / "Gesendet", message(2, sender="team@northwind.com", to="joe@acme.com"))
    maildir(root / "Inbox", message(3))
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [root], ANN)
    found = by_message(lake)
    assert [found[f"m{n}@acme.com"]["direction"] for n in (1, 2, 3)] == ["sent", "sent", "received"]
    assert folder_names(found["m3@acme.com"]) == ["INBOX"]  # roles are kept, names only with store_subjects


def inbox_and_sent(tmp_path: Path, inbox: tuple[int, ...], sent: tuple[int, ...]) -> tuple[Path, Path]:
    """An Inbox and a Sent mbox holding messages of one conversation: m1 from Joe, Ann's replies
    (which she cc'd to herself, so both hold them), Joe's answers."""
    texts = {
        1: message(1),
        2: message(2, sender=ANN, to=f"joe@acme.com, {ANN}", reply_to="<m1@acme.com>"),
        3: message(3, reply_to="<m2@acme.com>"),
        4: message(4, sender=ANN, to=f"joe@acme.com, {ANN}", reply_to="<m3@acme.com>"),
    }
    return (
        mbox(tmp_path / "Inbox.mbox", *(texts[n] for n in inbox)),
        mbox(tmp_path / "Sent.mbox", *(texts[n] for n in sent)),
    )


def test_one_message_in_inbox_and_sent_is_counted_once(tmp_path):
    inbox, sent = inbox_and_sent(tmp_path, (1, 2, 3, 4), (2, 4))
    together = Lake(tmp_path / "together")
    report = import_mail(together, SETTINGS, [inbox, sent], ANN)
    assert (report.read, report.imported) == (6, 4)
    found = by_message(together)
    assert [found[f"m{n}@acme.com"]["direction"] for n in (1, 2, 3, 4)] == ["received", "sent", "received", "sent"]
    assert folder_names(found["m2@acme.com"]) == ["INBOX", "SENT"]
    assert len([label for label in found["m2@acme.com"]["labels"] if label.startswith("mailbox:")]) == 2

    # Separate runs, in either order, give the same messages; another person keeps their own copy.
    apart = Lake(tmp_path / "apart")
    import_mail(apart, SETTINGS, [inbox], ANN)
    second = import_mail(apart, SETTINGS, [sent], ANN)
    assert (second.imported, second.updated, second.removed) == (0, 2, 0)
    content = ("id", "direction", "labels", "thread_id", "self_in", "unread")
    assert [{k: r[k] for k in content} for r in rows(apart)] == [{k: r[k] for k in content} for r in rows(together)]
    assert import_mail(apart, SETTINGS, [inbox], ANN).unchanged == 4
    import_mail(apart, SETTINGS, [inbox], "joe@acme.com")
    assert len(rows(apart)) == 8


def test_a_message_one_mailbox_dropped_stays_while_another_holds_it(tmp_path):
    inbox, sent = inbox_and_sent(tmp_path, (1, 2, 3, 4), (2, 4))
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [inbox], ANN)
    import_mail(lake, SETTINGS, [sent], ANN)
    inbox, _ = inbox_and_sent(tmp_path, (1, 3), (2, 4))  # Ann cleaned her Inbox of her own replies
    report = import_mail(lake, SETTINGS, [inbox], ANN)
    assert (report.removed, report.updated) == (0, 2)
    assert set(by_message(lake)) == {"m1@acme.com", "m2@acme.com", "m3@acme.com", "m4@acme.com"}
    _, sent = inbox_and_sent(tmp_path, (1, 3), (4,))
    assert import_mail(lake, SETTINGS, [sent], ANN).removed == 1  # no mailbox holds m2 now
    assert set(by_message(lake)) == {"m1@acme.com", "m3@acme.com", "m4@acme.com"}


def test_folders_named_alike_never_stand_for_each_other(tmp_path):
    lake = Lake(tmp_path / "data")
    maildir(tmp_path / "a" / "baz", message(1), message(2), message(3), message(4))
    maildir(tmp_path / "b" / "baz", message(5))
    import_mail(lake, SETTINGS, [tmp_path / "a" / "baz"], ANN)
    assert import_mail(lake, SETTINGS, [tmp_path / "b" / "baz"], ANN).removed == 0
    assert len(rows(lake)) == 5

    mbox(tmp_path / "default.mbox", message(6), message(7))
    maildir(tmp_path / "default", message(8))
    import_mail(lake, SETTINGS, [tmp_path / "default.mbox"], ANN)
    assert import_mail(lake, SETTINGS, [tmp_path / "default"], ANN).removed == 0
    assert len(rows(lake)) == 8


def test_mailbox_names_stay_out_of_ids_and_labels_unless_subjects_are_kept(tmp_path):
    secret = mbox(tmp_path / "Zanzibar Merger Secret.mbox", message(1), message(2))
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [secret], ANN)
    stored = b"".join(path.read_bytes() for path in lake.files("messages"))
    assert b"zanzibar" not in stored.lower()
    assert all(not any("anzibar" in str(value) for value in row.values()) for row in rows(lake))

    kept = Lake(tmp_path / "kept")
    import_mail(kept, KEEP_SUBJECTS, [secret], ANN)
    (row, _) = rows(kept)
    assert "Zanzibar Merger Secret" in row["labels"] and "anzibar" not in row["id"]


def test_a_lake_with_mailbox_names_in_ids_is_replaced_by_a_new_import_without_doubles(tmp_path):
    inbox = mbox(tmp_path / "Zanzibar.mbox", message(1), message(2), message(3))
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [inbox], ANN)
    # The records as an older version wrote them: "<mailbox slug>/<Message-ID>", no mailbox labels.
    columns = ", ".join(f'"{name}"' for name in MESSAGE_SCHEMA.names)
    old = lake.connect().sql(f"SELECT {columns} FROM messages").to_arrow_table()
    ids = pa.array([f"zanzibar/{m}" for m in old["message_id"].to_pylist()])
    labels = pa.array([[] for _ in range(old.num_rows)], pa.list_(pa.string()))
    old = old.set_column(old.schema.get_field_index("id"), "id", ids)
    old = old.set_column(old.schema.get_field_index("labels"), "labels", labels)
    lake.replace_source("messages", "mail", [old])
    assert {row["id"] for row in rows(lake)} == {"zanzibar/m1@acme.com", "zanzibar/m2@acme.com", "zanzibar/m3@acme.com"}

    report = import_mail(lake, SETTINGS, [inbox], ANN)
    assert (report.imported, report.removed) == (3, 3)
    assert sorted(row["id"] for row in rows(lake)) == ["<m1@acme.com>", "<m2@acme.com>", "<m3@acme.com>"]


def test_a_reply_whose_references_were_cut_stays_in_its_thread(tmp_path):
    """m1 starts the thread; m4's mailer kept only the last of its References (m3), so the root
    of m4's References is m3, not m1; m6 kept m5 alone and no In-Reply-To."""
    texts = [
        message(1),
        message(2, sender=ANN, references="<m1@acme.com>", reply_to="<m1@acme.com>"),
        message(3, references="<m1@acme.com> <m2@acme.com>", reply_to="<m2@acme.com>"),
        message(4, sender=ANN, references="<m3@acme.com>", reply_to="<m3@acme.com>"),
        message(5, references="<m4@acme.com>"),
        message(6, sender=ANN, references="<m5@acme.com>"),
        message(7),  # another conversation
    ]
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [mbox(tmp_path / "Inbox.mbox", *texts[:4], texts[6])], ANN)
    import_mail(lake, SETTINGS, [mbox(tmp_path / "Later.mbox", *texts[4:6])], ANN)
    threads = {m: row["thread_id"] for m, row in by_message(lake).items()}
    assert {threads[f"m{n}@acme.com"] for n in range(1, 7)} == {"m1@acme.com"}
    assert threads["m7@acme.com"] == "m7@acme.com"


def test_threads_join_over_the_whole_graph_in_one_pass():
    # Parts 0-1-2-3 (a chain given backwards) and 4-5; 6 alone.
    start, end = [3, 2, 1, 5], [2, 1, 0, 4]
    import numpy as np

    assert components(7, np.array(start), np.array(end)).tolist() == [0, 0, 0, 0, 4, 4, 6]
    ts = pa.array([3, 1, 2], pa.timestamp("us", tz="UTC"))
    threads = joined_threads(
        pa.array(["<c>", "<a>", "<b>"]),
        pa.array(["c", "a", "b"]),
        pa.array(["b", "a", "a"]),  # c's References kept only b
        pa.array(["b", "", "a"]),
        ts,
    )
    assert threads.to_pylist() == ["a", "a", "a"]


def test_an_upload_is_known_by_its_path_below_the_upload_folder(tmp_path):
    """The dashboard writes each upload to a new temporary folder: a newer upload of the same
    file still stands for the same mailbox."""
    lake = Lake(tmp_path / "data")
    first, second = tmp_path / "upload-1", tmp_path / "upload-2"
    first.mkdir(), second.mkdir()
    import_mail(lake, SETTINGS, [mbox(first / "Inbox.mbox", message(1), message(2))], ANN, base=first)
    report = import_mail(lake, SETTINGS, [mbox(second / "Inbox.mbox", message(1))], ANN, base=second)
    assert (report.removed, report.unchanged) == (1, 1)


def test_gmail_thread_ids_join_what_the_headers_do_not(tmp_path):
    """Takeout's X-GM-THRID: Gmail threaded a reply that names no id of its thread."""
    texts = [
        message(1).replace("Message-ID:", "X-GM-THRID: 1790000000000000001\nMessage-ID:"),
        message(2).replace("Message-ID:", "X-GM-THRID: 1790000000000000001\nMessage-ID:"),  # no References at all
        message(3).replace("Message-ID:", "X-GM-THRID: 1790000000000000002\nMessage-ID:"),
    ]
    lake = Lake(tmp_path / "data")
    import_mail(lake, SETTINGS, [mbox(tmp_path / "All mail.mbox", *texts)], ANN)
    threads = {m: row["thread_id"] for m, row in by_message(lake).items()}
    assert threads == {"m1@acme.com": "m1@acme.com", "m2@acme.com": "m1@acme.com", "m3@acme.com": "m3@acme.com"}
