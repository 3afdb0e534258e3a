"""Mail files (mbox, Maildir, folders of message files and trees of them) as a mirror source.

Mail is one record per message and account, whatever mailboxes hold it (as Gmail's All Mail
holds it): its id is its Message-ID, its labels are those of every copy, each mailbox holding
it among them as ``mailbox:<digest>``. A message one mailbox no longer holds is removed only
when no other mailbox holds it; threads are joined over all of the account's messages
(``connectors.mail.threads``). Records an older version imported with the mailbox's name in
their ids ("inbox/<id>") are replaced when their mailbox is imported again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ReadNotes
from connectors.files import FilesSource, Progress
from connectors.mail.reader import MAILBOX_LABEL, SOURCE, ImportFileError, mail_folders, mailbox_of, read_mail
from connectors.mail.threads import joined_threads, own_node
from timeaudit.core.config import Settings


@dataclass(frozen=True)
class MailCoverage:
    """The lake's messages that only the mailboxes read hold, and those an older version
    imported from the same paths ("<slug>/<id>")."""

    mailboxes: frozenset[str]  # the mailboxes' labels (``connectors.mail.folders.Folder.key``)
    slugs: frozenset[str]  # ``connectors.mail.reader.mailbox_of`` of each path read

    def covers(self, row: dict) -> bool:
        held = _mailboxes(row["labels"])
        if held:
            return held <= self.mailboxes
        return row["id"].split("/", 1)[0] in self.slugs


class MailSource(FilesSource):
    name = SOURCE
    file_error = ImportFileError
    table = "messages"

    def __init__(
        self,
        settings: Settings,
        paths: Sequence[Path],
        account: str,
        aliases: Iterable[str] = (),
        progress: Progress | None = None,
        base: Path | None = None,
    ):
        self.settings, self.paths, self.account, self.aliases = settings, list(paths), account, list(aliases)
        self.progress, self.base = progress, base
        self.notes = ReadNotes()
        self._mailboxes: set[str] = set()
        self._slugs: set[str] = set()
        self._gmail_threads: list[pa.Table] = []  # (node, gmail_thread) of the messages read with one

    def _read_file(self, path: Path) -> Iterator:
        total = path.stat().st_size if path.is_file() else None

        def advanced(done: int) -> None:  # the reader reports running totals
            if self.progress:
                self.progress(path.name, done, total)

        folders = mail_folders(path, self.base)
        items = read_mail(path, self.account, self.settings, self.aliases, self.notes.skip, advanced, folders=folders)
        for item in items:
            self._gmail_threads.append(_gmail_threads(item))
            yield item
        self.notes.folders += len(folders)
        self._mailboxes.update(folder.key for folder in folders)
        self._slugs.add(mailbox_of(path))

    def coverage(self) -> MailCoverage:
        return MailCoverage(frozenset(self._mailboxes), frozenset(self._slugs))

    def one_per_id(self, records: pa.Table) -> pa.Table:
        return _one_per_message(records)

    def combine(self, read: pa.Table, held: pa.Table) -> pa.Table:
        threads = pa.concat_tables(self._gmail_threads) if self._gmail_threads else None
        return _with_every_copy(read, held, self.coverage(), threads)


def _mailboxes(labels: list[str] | None) -> set[str]:
    return {label for label in labels or () if label.startswith(MAILBOX_LABEL)}


def _one_per_message(data: pa.Table) -> pa.Table:
    """One row per id: the copies of a message read from several mailboxes become one with the
    labels of all (``_merged_copies``), where the first copy was read."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:
        return data
    counts = data.group_by("id", use_threads=False).aggregate([("id", "count")])
    copied = pc.is_in(data["id"], value_set=counts.filter(pc.greater(counts["id_count"], 1))["id"])
    positions = pa.array(range(data.num_rows), pa.int64())
    merged: dict[str, tuple[int, dict]] = {}
    for at, row in zip(positions.filter(copied).to_pylist(), data.filter(copied).to_pylist(), strict=True):
        first = merged.get(row["id"])
        merged[row["id"]] = (at, row) if first is None else (first[0], _merged_copies(first[1], row))
    rows = [row for _, row in merged.values()]
    at = pa.array([at for at, _ in merged.values()], pa.int64())
    joined = pa.concat_tables(
        [
            data.filter(pc.invert(copied)).append_column("at", positions.filter(pc.invert(copied))),
            pa.Table.from_pylist(rows, schema=data.schema).append_column("at", at),
        ]
    )
    return joined.sort_by("at").drop_columns(["at"])


def _merged_copies(earlier: dict, later: dict) -> dict:
    """Two copies of one message as one: the later one's fields, the labels of both (in sorted
    order, so that any order of reading gives the same record), sent when either copy is, unread
    only when both are."""
    unread = bool(earlier["unread"]) and bool(later["unread"])
    labels = sorted(set(earlier["labels"] or ()) | set(later["labels"] or ()))
    row = dict(later, labels=[label for label in labels if unread or label != "UNREAD"], unread=unread)
    if "sent" in (earlier["direction"], later["direction"]):
        row.update(direction="sent", self_in="from")
    return row


def _gmail_threads(item: dict | pa.Table) -> pa.Table:
    """(node, gmail_thread) of the messages read that have Gmail's thread id (X-GM-THRID), their
    node as ``connectors.mail.threads.own_node`` names it."""
    if isinstance(item, dict):
        item = pa.Table.from_pylist([item]).select(["id", "message_id", "gmail_thread"])
    item = item.filter(pc.not_equal(item["gmail_thread"], ""))
    return pa.table([own_node(item["id"], item["message_id"]), item["gmail_thread"]], GMAIL_THREADS)


GMAIL_THREADS = pa.schema([("node", pa.string()), ("gmail_thread", pa.string())])


def _with_every_copy(
    new: pa.Table, live: pa.Table, scope: MailCoverage, gmail_threads: pa.Table | None = None
) -> pa.Table:
    """The messages read, each merged with the lake's copy where mailboxes this import did not
    read hold it too; the lake's messages that the mailboxes read no longer hold but others
    still do, without the mailboxes read; and the lake's messages whose thread the messages
    read change. Messages only the mailboxes read held are left out: they are removed."""
    new = _with_copies_elsewhere(new, live, scope)
    kept = live.filter(pc.invert(pc.is_in(live["id"], value_set=new["id"])))
    held_here, held_elsewhere = _held(kept, scope)
    legacy = pc.is_in(
        pc.list_element(pc.split_pattern(kept["id"], "/", max_splits=1), 0), pa.array(sorted(scope.slugs))
    )
    covered = np.where(held_here | held_elsewhere, held_here & ~held_elsewhere, np.asarray(legacy))
    return _threaded(new, kept.filter(pa.array(~covered)), gmail_threads)


def _held(rows: pa.Table, scope: MailCoverage) -> tuple[np.ndarray, np.ndarray]:
    """For each row, whether mailboxes the import read hold it, and whether others do."""
    labels = rows["labels"].combine_chunks()
    flat, row = pc.list_flatten(labels), np.asarray(pc.list_parent_indices(labels))
    box = np.asarray(pc.starts_with(pc.fill_null(flat, ""), MAILBOX_LABEL))
    read = np.asarray(pc.is_in(flat, value_set=pa.array(sorted(scope.mailboxes), pa.string())))
    here, elsewhere = np.zeros(rows.num_rows, bool), np.zeros(rows.num_rows, bool)
    here[row[box & read]] = True
    elsewhere[row[box & ~read]] = True
    return here, elsewhere


def _with_copies_elsewhere(new: pa.Table, live: pa.Table, scope: MailCoverage) -> pa.Table:
    others = live.filter(pa.array(_held(live, scope)[1]))
    if not others.num_rows:
        return new
    at_new = pc.index_in(others["id"], value_set=new["id"])
    reread = pc.is_valid(at_new)
    read_again = dict(zip(pc.drop_null(at_new).to_pylist(), new.take(pc.drop_null(at_new)).to_pylist(), strict=True))
    changed: dict[int, dict] = {}
    added: list[dict] = []
    ingested_at = datetime.now(UTC)
    for row, at, again in zip(others.to_pylist(), at_new.to_pylist(), reread.to_pylist(), strict=True):
        rest = dict(row, labels=[label for label in row["labels"] if label not in scope.mailboxes])
        if again:
            changed[at] = _merged_copies(rest, read_again[at])
        elif len(rest["labels"]) < len(row["labels"]):  # a mailbox read no longer holds it
            added.append(dict(rest, ingested_at=ingested_at))
    if changed:
        keep = np.ones(new.num_rows, bool)
        keep[list(changed)] = False
        parts = [new.filter(pa.array(keep)).append_column("at", pa.array(np.flatnonzero(keep)))]
        redone = pa.Table.from_pylist(list(changed.values()), schema=new.schema)
        parts.append(redone.append_column("at", pa.array(list(changed), pa.int64())))
        new = pa.concat_tables(parts).sort_by("at").drop_columns(["at"])
    if added:
        new = pa.concat_tables([new, pa.Table.from_pylist(added, schema=new.schema)])
    return new


def _threaded(new: pa.Table, kept: pa.Table, gmail_threads: pa.Table | None) -> pa.Table:
    """``new`` with each message's thread joined over all of the account's messages (and Gmail's
    thread ids of the messages read), and the ``kept`` ones (the lake's, not read again) whose
    thread that changes."""
    both = pa.concat_tables([new, kept.select(new.schema.names)])
    groups = (gmail_threads["node"], gmail_threads["gmail_thread"]) if gmail_threads else None
    threads = joined_threads(
        both["id"], both["message_id"], both["thread_id"], both["in_reply_to"], both["ts"], groups=groups
    )
    column = new.schema.get_field_index("thread_id")
    new = new.set_column(column, "thread_id", threads.slice(0, new.num_rows))
    kept_threads = threads.slice(new.num_rows)
    moved = pc.fill_null(pc.not_equal(kept_threads, kept["thread_id"]), False)
    if not pc.any(moved).as_py():
        return new
    moved_rows = kept.filter(moved).set_column(column, "thread_id", kept_threads.filter(moved))
    ingested = pa.repeat(pa.scalar(datetime.now(UTC), new.schema.field("ingested_at").type), moved_rows.num_rows)
    moved_rows = moved_rows.set_column(new.schema.get_field_index("ingested_at"), "ingested_at", ingested)
    return pa.concat_tables([new, moved_rows.select(new.schema.names)])
