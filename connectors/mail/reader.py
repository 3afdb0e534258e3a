"""Mail files -> ``Message`` records: mbox (Google Takeout, Thunderbird, any mboxrd/mboxo), Maildir, .eml.

Only header blocks are ever read into memory (``connectors.mail.blocks``); bodies are never
parsed or kept. Two ways from header blocks to records give the same records:

- One by one (``iter_mail_records``; Maildir and .eml always, and the messages of an mbox the
  other way leaves): ``connectors.mail.record`` reads each block as compat32 gives it and
  ``connectors.mail.headers`` decodes it under rules that never raise (the Gmail connector's).
- Column by column (``read_mail``, what an import reads): the header blocks of up to
  MESSAGES_PER_TABLE messages of an mbox become one Arrow table (``connectors.mail.columns``).
  It reads only messages in the plain form nearly every mailer writes and hands every other one
  back to be read one by one, in its place, so an odd header never changes a record;
  tests/test_mail_import.py holds the two ways to the same tables.

A folder is read whole, each of its folders a mailbox (``connectors.mail.folders``). Each
message carries its folder's labels: its role (INBOX, SENT: mail in a Sent folder is sent),
its name where subjects are kept, and its identity (``mailbox:<digest>``), which tells an
import which mailboxes hold it. Threads follow the root Message-ID, which joins a conversation
across mailboxes (``connectors.mail.threads``); Takeout's X-GM-THRID, known only within one
mailbox, is the thread only of a message with no ids to thread by. Drafts, spam, trash and
messages the client already deleted are left out, as Gmail's API would.

Ids are "<Message-ID>" (``connectors.mail.record.message_key``), or a hash of the message's stable headers when it has
none, and ``updated`` is the message's own time: importing the same file twice yields identical
records. A message that cannot be read is reported through ``on_skip`` and the others still
come out; input that is not mail at all raises ``ImportFileError`` naming the file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from connectors.mail import columns as mail_columns
from connectors.mail.blocks import BLOCKS, MAX_HEADER_BYTES, MAX_LINE, Block, Heads, mbox_parts
from connectors.mail.folders import Folder, file_folder, sniff, tree_folders
from connectors.mail.headers import BadHeaders
from connectors.mail.record import SOURCE as SOURCE
from connectors.mail.record import Mailbox, header_labels, message_record
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Message
from timeaudit.core.tags import vocabulary

EXPECTED = "an mbox file, a Maildir folder (with cur/ and new/), an .eml file or a folder of message files"
MAILBOX_LABEL = "mailbox:"  # + a digest of a mailbox's identity: which mailboxes hold a message
SNIFF_BYTES = 1 << 16

OnSkip = Callable[[str, str], None]


class ImportFileError(UserError):
    """The path is not mail this importer can read; the message names it and what was expected."""


def detect_format(path: Path) -> str:
    """Which reader fits ``path`` ("mbox", "maildir" or "eml": a message file or a folder of
    mail other than a Maildir), judged by content, not by name."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        if tree_folders(path):
            return "eml"
        raise ImportFileError(f"{path}: no mail found in this folder; expected {EXPECTED}")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file or folder; expected {EXPECTED}")
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise ImportFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise ImportFileError(f"{path}: the file is empty; expected {EXPECTED}")
    if kind := sniff(head):
        return kind
    raise ImportFileError(
        f"{path}: not a mail file (no mbox 'From ' line and no message headers at the start); expected {EXPECTED}"
    )


def mail_folders(path: Path, base: Path | None = None) -> list[Folder]:
    """The mailboxes at ``path``: the file's, or every one in the folder and its subfolders.
    ``base``: what their places are told from (``Folder.place``), when not the file system's root."""
    path = Path(path)
    if not path.is_dir():
        return [file_folder(path, detect_format(path), base)]
    if folders := tree_folders(path, base):
        return folders
    raise ImportFileError(f"{path}: no mail found in this folder; expected {EXPECTED}")


def mailbox_of(path: Path) -> str:
    """The slug that ids of the form "<slug>/<Message-ID>" (e.g. "inbox/<id>") carry: an import
    finds by it the records of that form it replaces. The file's stem for an mbox, the folder's
    name for a Maildir or a folder of .eml files, the folder's name for a single .eml."""
    path = Path(path).resolve()
    if path.is_file():
        name = path.parent.name if path.suffix.lower() == ".eml" else path.stem
    else:
        name = path.name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "mail"


def iter_mail_messages(*args, **kwargs) -> Iterator[Message]:
    """``iter_mail_records`` as ``Message`` objects."""
    for record in iter_mail_records(*args, **kwargs):
        record.pop("gmail_thread")
        yield Message(**record)


def iter_mail_records(*args, **kwargs) -> Iterator[dict]:
    """Every readable message of the mail file or folder at ``path``, as seen by ``account``
    (``Message`` fields by name), read one by one: ``read_mail`` with ``column_wise=False``.

    ``on_progress`` gets the running total of bytes read (mbox) or of messages read (Maildir, .eml).
    Raises ``ImportFileError`` when ``path`` is not mail, or when not one of its messages was readable.
    """
    return read_mail(*args, **kwargs, column_wise=False)


def read_mail(
    path: Path,
    account: str,
    settings: Settings,
    aliases: Iterable[str],
    on_skip: OnSkip,
    on_progress: Callable[[int], None] | None = None,
    folders: list[Folder] | None = None,
    *,
    column_wise: bool = True,
) -> Iterator[dict | pa.Table]:
    """``iter_mail_records``' records in the same order, what an import reads: those of an mbox
    file as Arrow tables of many messages each (the lake's message columns but ``ingested_at``),
    read column by column, with dicts between them for the messages read alone (see
    ``mbox_parts``); those of a Maildir or a folder of message files as dicts.
    ``folders`` are ``mail_folders(path)`` when the caller has them already; ``column_wise=False``
    reads every message one by one (``iter_mail_records``)."""
    path = Path(path)
    reading = _Reading(path, account, settings, aliases, on_skip)
    for folder, progress in _with_progress(path, folders or mail_folders(path), on_progress, reading):
        reading.open(folder)
        if folder.format != "mbox" or not column_wise:
            yield from reading.records(BLOCKS[folder.format](folder, progress))
            continue
        for part in mbox_parts(folder.path, progress):
            if isinstance(part, Heads):
                yield reading.table(part)
            else:
                yield from reading.records([part])
    reading.finish()


def _with_progress(
    path: Path, folders: list[Folder], on_progress: Callable[[int], None] | None, reading: _Reading
) -> Iterator[tuple[Folder, Callable[[int], None] | None]]:
    """Each folder with what to tell ``on_progress``: a file's own running total (bytes of an
    mbox, messages of a message file); for a folder, the messages read so far in all of it."""
    if on_progress is None or not path.is_dir():
        yield from ((folder, on_progress) for folder in folders)
        return
    for folder in folders:
        if folder.format == "mbox":
            yield folder, None
            on_progress(reading.read + reading.skipped)
        else:
            yield folder, functools.partial(_counted_on, on_progress, reading.read + reading.skipped)


def _counted_on(on_progress: Callable[[int], None], before: int, done: int) -> None:
    on_progress(before + done)


class _Reading:
    """The reading of one file: header blocks -> records; unreadable messages are reported and counted."""

    def __init__(self, path: Path, account: str, settings: Settings, aliases: Iterable[str], on_skip: OnSkip):
        self.path, self.on_skip = path, on_skip
        self.account, self.settings, self.aliases = account, settings, tuple(aliases)
        self.words = vocabulary(settings.rules)
        self.read = self.skipped = 0
        self.folders = 0
        self.box = self._mailbox(None)

    def open(self, folder: Folder) -> None:
        """Read the next messages as ``folder``'s."""
        self.box = self._mailbox(folder)
        self.folders += 1

    def _mailbox(self, folder: Folder | None) -> Mailbox:
        labels: tuple[str, ...] = ()
        if folder is not None:
            kept_name = (folder.name,) if self.settings.privacy.store_subjects and folder.name else ()
            labels = (*filter(None, [folder.role]), *kept_name, folder.key)
        label_rule = functools.partial(header_labels, folder_labels=labels)
        return Mailbox(self.account, self.settings, self.aliases, self.words, labels, label_rule)

    def records(self, blocks: Iterable[Block]) -> Iterator[dict]:
        for block in blocks:
            record = self.record(block)
            if record is not None:
                yield record

    def record(self, block: Block) -> dict | None:
        """The record of one message; None when it is left out or unreadable (then reported)."""
        where, header, fallback_time, flags, problem = block
        if problem:
            return self._skip(where, problem)
        try:
            message = message_record(header, self.box, fallback_time, flags)
        except BadHeaders as e:
            return self._skip(where, str(e))
        except Exception as e:  # a parser or decoder surprise on hostile bytes must not end the import
            return self._skip(where, f"unreadable headers ({type(e).__name__}: {e})")
        if message is not None:
            self.read += 1
        return message

    def table(self, heads: Heads) -> pa.Table:
        """The records of many messages, in file order: the plain ones read column by column
        (``mail_columns``), the others one by one."""
        # A "From " line longer than _Window.line reads: such messages are read one by one.
        too_long = pc.greater_equal(pc.binary_length(heads.from_lines), MAX_LINE)
        blocks = pc.if_else(too_long, pa.scalar(b"", pa.binary()), heads.blocks)
        table, others = mail_columns.message_table(blocks, self.box, self.box.label_rule, MAX_HEADER_BYTES)
        self.read += table.num_rows  # (mail_columns reads no empty block)
        records = []
        for i in others:
            record = self.record(heads.block(i))
            if record is not None:
                records.append(dict(record, position=i))
        if records:
            table = pa.concat_tables([table, pa.Table.from_pylist(records, schema=mail_columns.SCHEMA)])
            table = table.sort_by("position")
        return table.drop_columns(["position"])

    def finish(self) -> None:
        if self.skipped and not self.read:
            raise ImportFileError(
                f"{self.path}: none of its {self.skipped} message(s) had readable headers; expected {EXPECTED}"
            )

    def _skip(self, where: str, why: str) -> None:
        self.skipped += 1
        self.on_skip(where, why)
