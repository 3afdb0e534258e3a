"""Header blocks of mail files: (where, header block, fallback time, flag labels, problem or "")
of each message of an mbox, a Maildir or a folder of message files; bodies are skipped, never read
into records.

An mbox is read in pieces into a sliding window that drops what lies behind (``_Window``), so
memory stays flat however large the file (``mailbox.mbox`` would index the whole file first). A
message starts at a "From " line at the start of the file or after a blank line. One by one,
``_mbox_block`` finds a message's header block and the next message; column by column,
``mbox_parts`` finds all messages of a window of whole messages at once with numpy
(``_message_heads``) and hands them on as ``Heads``; a message larger than a window, and the
file's last one, go one by one. Maildir: cur/ and new/ in name order; new/ or no "S" flag means
unread. The mbox "From " line's date (Maildir: the delivery time in the file name) stands in
for a missing or broken Date header."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from connectors.mail.folders import Folder
from connectors.mail.record import FallbackTime

MAX_HEADER_BYTES = 1 << 20  # a header block larger than this is not a real message's
MAX_LINE = 1 << 16  # lines are read in pieces of at most this, so a file without newlines stays cheap
_FROM_LINE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +([A-Z][a-z]{2}) +(\d{1,2}) +(\d{1,2}:\d{2}:\d{2})(?: +([+-]\d{4}))? +(\d{4})"
)
_MONTHS = {m.encode(): i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}


Block = tuple[str, bytes, FallbackTime, set[str], str]
TRUNCATED = "truncated: the file ends inside the message's headers"
TOO_LARGE = f"header block larger than {MAX_HEADER_BYTES // 1024} KB"


def _mbox_blocks(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    number = 0
    with path.open("rb") as f:
        window = _Window(f)
        start = window.search(_SEPARATOR, window.start)
        while start is not None:
            number += 1
            block, start = _mbox_block(window, start, f"{path} message {number}")
            yield block
            if on_progress and start is not None:
                on_progress(start)
        if on_progress:
            on_progress(window.end)


def _mbox_block(window: _Window, start: int, name: str) -> tuple[Block, int | None]:
    """The message starting at ``start``, and where the next one starts (None: the file ends)."""
    where = f"{name} (line {window.line_of(start)})"
    from_line = window.line(start)
    header_start = start + len(from_line)
    header_end = window.search(_HEADER_END, header_start - 1, keep=header_start)
    if header_end is None:
        # A header block only ends at a blank line: still inside one at the end of the file is truncation.
        return (where, b"", _no_time, set(), TRUNCATED), None
    if header_end - header_start > MAX_HEADER_BYTES:
        header, problem = b"", TOO_LARGE
    else:
        header, problem = window.bytes(header_start, header_end), ""
    block = (where, header, functools.partial(_from_line_date, from_line), set(), problem)
    return block, window.search(_SEPARATOR, header_end - 1)


def mbox_parts(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Heads | Block]:
    """An mbox file's messages: the header blocks of many at a time, found in windows of about
    WINDOW_BYTES of whole messages; a message larger than the window, and the file's last one,
    come alone, as ``_mbox_blocks`` gives them. Memory stays flat: the bodies go with the window."""
    number = 0
    heads = Heads(path)
    with path.open("rb") as f:
        window = _Window(f)
        start = window.search(_SEPARATOR, window.start)
        while start is not None:
            window.fill(start, WINDOW_BYTES)
            end = window.last_message_start(start)
            if end is None:
                if heads.count:
                    yield heads
                    heads = Heads(path)
                number += 1
                block, start = _mbox_block(window, start, f"{path} message {number}")
                yield block
            else:
                number += heads.add(window, start, end, number + 1)
                start = end
                if heads.full:
                    yield heads
                    heads = Heads(path)
            if on_progress and start is not None:
                on_progress(start)
        if heads.count:
            yield heads
        if on_progress:
            on_progress(window.end)


class Heads:
    """The header blocks of many messages of an mbox file, with what ``_mbox_block`` needs to
    give any of them as it would. Filled window by window (``add``), then read whole."""

    def __init__(self, path: Path):
        self.path = path
        self.count = self.size = 0  # messages, and bytes of their header blocks
        self._numbers: list[np.ndarray] = []  # of each message in the file
        self._lines: list[np.ndarray] = []  # where each starts
        self._from_lines: list[pa.Array] = []  # without the line break
        self._blocks: list[pa.Array] = []  # header lines, each after a "\n" (the form mail_columns reads)

    @property
    def full(self) -> bool:
        return self.count >= MESSAGES_PER_TABLE or self.size >= HEADER_BYTES_PER_TABLE

    def add(self, window: _Window, start: int, end: int, number: int) -> int:
        """Add the messages from ``start`` to ``end`` in ``window`` (whole messages, the first
        one's number given); returns how many there were."""
        buf, low, high = window.buf, max(start - _BLANK_LINE - window.base, 0), end - window.base
        starts, from_ends, header_ends, newlines = _message_heads(buf, low, high)
        offsets = np.empty(3 * len(starts) + 1, np.int32)
        offsets[0:-1:3], offsets[1:-1:3], offsets[2:-1:3], offsets[-1] = starts, from_ends, header_ends, high
        # One array of each message's "From " line, header lines and the rest, over the window's bytes.
        pieces = pa.Array.from_buffers(pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buf)])
        self._from_lines.append(pieces.take(np.arange(0, len(offsets) - 1, 3)))
        self._blocks.append(pieces.take(np.arange(1, len(offsets) - 1, 3)))
        self._numbers.append(np.arange(number, number + len(starts)))
        self._lines.append(window.line_of(start) + newlines)
        self.count += len(starts)
        self.size += int((header_ends - from_ends).sum())
        return len(starts)

    @functools.cached_property
    def blocks(self) -> pa.Array:
        return pa.concat_arrays(self._blocks)

    @functools.cached_property
    def from_lines(self) -> pa.Array:
        return pa.concat_arrays(self._from_lines)

    @functools.cached_property
    def _places(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self._numbers), np.concatenate(self._lines)

    def block(self, i: int) -> Block:
        """The ``i``th message as ``_mbox_block`` gives it."""
        numbers, lines = self._places
        where = f"{self.path} message {numbers[i]} (line {lines[i]})"
        block, from_line = self.blocks[i].as_py(), self.from_lines[i].as_py()
        whole = from_line + b"\n" + (block[1:] + b"\n" if block else b"")
        cut = min(len(from_line) + 1, MAX_LINE)  # _Window.line reads at most MAX_LINE bytes
        from_line, header = whole[:cut], whole[cut:]
        if len(header) > MAX_HEADER_BYTES:
            return where, b"", _no_time, set(), TOO_LARGE
        return where, header, functools.partial(_from_line_date, from_line), set(), ""


def _message_heads(buf: bytes, low: int, high: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The messages of ``buf[low:high]`` (whole messages, after the blank line before the first
    one), with numpy over all the bytes at once: where each starts, where its "From " line
    ends, where its header block ends (the line break before the first blank line, as in
    ``_mbox_block``), and how many line breaks lie between the first one's start and its own."""
    text = np.frombuffer(buf, np.uint8)[low : min(len(buf), high + 8)]
    breaks = np.flatnonzero(text == ord("\n"))

    def at(positions: np.ndarray) -> np.ndarray:
        # Past the end reads the last byte again: a line break there may look like one before a
        # blank line, but it lies past every message asked for.
        return text[np.minimum(positions, len(text) - 1)]

    blank = breaks + 1 + (at(breaks + 1) == ord("\r"))  # where the next line's "\n" is if it is blank
    before_blank = at(blank) == ord("\n")
    header_ends = breaks[before_blank]
    starts = blank[before_blank] + 1
    starts = starts[
        np.logical_and.reduce([at(starts + i) == c for i, c in enumerate(b"From ")]) & (starts < high - low)
    ]
    from_ends = breaks[np.searchsorted(breaks, starts)]
    header_ends = header_ends[np.searchsorted(header_ends, from_ends)]
    newlines = np.searchsorted(breaks, starts)
    return starts + low, from_ends + low, header_ends + low, newlines - newlines[:1]


# A message starts at a "From " line after a blank line (or at the start of the file), and its
# header block ends at the first blank line. A match ends where that line starts.
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
_HEADER_END = re.compile(rb"\n(?=\r?\n)")
_LONGEST_MATCH = 8  # "\n\r\nFrom ": a match this long can straddle two reads
_BLANK_LINE = 3  # "\n\r\n": the end of a line and a blank one before a message
CHUNK = 1 << 20
WINDOW_BYTES = 4 << 20  # whole messages read at a time, bodies and all
MESSAGES_PER_TABLE = 8192  # header blocks read column by column at a time...
HEADER_BYTES_PER_TABLE = 16 << 20  # ...and at most this much of them


class _Window:
    """A sliding window over a binary file for the mbox scan: regular-expression searches that
    read on as needed, and drop what lies behind, so memory stays flat however large the file.

    Positions are offsets in the file. The window opens with a virtual blank line before the
    file (offsets -2 and -1): the start of the file counts as "after a blank line".
    """

    start = -2

    def __init__(self, f: BinaryIO):
        self.f, self.buf, self.base, self.eof = f, b"\n\n", self.start, False
        self.lines = self.counted = 0  # newlines in the file before offset ``counted``

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    def search(self, pattern: re.Pattern, start: int, keep: int | None = None) -> int | None:
        """Where the first match at or after ``start`` ends, or None at the end of the file.

        Data from ``keep`` on stays readable with ``bytes`` unless it grows past a header block's
        largest size (the block is then too large to be read anyway)."""
        while True:
            found = pattern.search(self.buf, start - self.base)
            if found:
                return self.base + found.end()
            if self.eof:
                return None
            start = max(start, self.end - _LONGEST_MATCH + 1)
            if keep is None or self.end - keep > MAX_HEADER_BYTES + _LONGEST_MATCH:
                keep = start
            self._read(min(start, keep))

    def fill(self, start: int, size: int) -> None:
        """Read on until the window holds ``size`` bytes from ``start`` (or the rest of the file);
        what lies before the blank line before ``start`` may be dropped."""
        if not self.eof and self.end - start < size:
            self._read(start - _BLANK_LINE, size - (self.end - start))

    def last_message_start(self, start: int) -> int | None:
        """Where the last message that starts after ``start`` in the window starts ("From " after a
        blank line), or None."""
        low, at = start - self.base, len(self.buf)
        while (at := self.buf.rfind(b"\nFrom ", low, at)) > low:
            if self.buf[at - 1 : at] == b"\n" or self.buf[at - 2 : at] == b"\n\r":
                return self.base + at + 1
        return None

    def line(self, start: int) -> bytes:
        """The line at ``start`` with its newline, or its first MAX_LINE bytes (as ``readline`` reads)."""
        while (newline := self.buf.find(b"\n", start - self.base)) < 0 and not self.eof and self.end - start < MAX_LINE:
            self._read(start)
        end = self.end if newline < 0 else self.base + newline + 1
        return self.bytes(start, min(end, start + MAX_LINE))

    def bytes(self, start: int, end: int) -> bytes:
        return self.buf[start - self.base : end - self.base]

    def line_of(self, offset: int) -> int:
        """The line number at ``offset`` (offsets are asked for in increasing order)."""
        self._count(offset)
        return self.lines + 1

    def _count(self, upto: int) -> None:
        if upto > self.counted:
            self.lines += self.buf.count(b"\n", self.counted - self.base, upto - self.base)
            self.counted = upto

    def _read(self, keep: int, size: int = CHUNK) -> None:
        drop = max(0, keep - self.base)
        self._count(self.base + drop)
        data = self.f.read(max(size, CHUNK))
        self.eof = not data
        self.buf = self.buf[drop:] + data
        self.base += drop


def _pieces(f: BinaryIO) -> Iterator[bytes]:
    while piece := f.readline(MAX_LINE):
        yield piece


def _from_line_date(line: bytes) -> datetime | None:
    """The date of an mbox "From " line ("From - Mon Mar  2 09:00:00 2026", Takeout adds "+0000")."""
    m = _FROM_LINE_DATE.search(line)
    if not m:
        return None
    month, day, clock, zone, year = m.groups()
    try:
        hh, mm, ss = (int(x) for x in clock.split(b":"))
        ts = datetime(int(year), _MONTHS[month], int(day), hh, mm, ss, tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    if zone:  # local time with its offset
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        ts = ts - offset if zone[:1] == b"+" else ts + offset
    return ts


def _maildir_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    path, number = folder.path, 0
    for sub in ("new", "cur"):
        files = path / sub
        if not files.is_dir():
            continue
        for name in sorted(os.listdir(files)):
            file = files / name
            if name.startswith(".") or not file.is_file():
                continue
            info = name.rpartition(":2,")[2] if ":2," in name else ""
            if "T" in info or "D" in info:  # trashed, or a draft
                continue
            number += 1
            unseen = (sub == "new" or "S" not in info) and folder.role != "SENT"  # one's own mail is read
            flags = {"UNREAD"} if unseen else set()
            block, problem = _file_header(file)
            yield f"{file} message {number} (line 1)", block, functools.partial(_delivery_time, name), flags, problem
            if on_progress:
                on_progress(number)


def _no_time() -> None:
    return None


def _delivery_time(name: str) -> datetime | None:
    """Maildir file names start with the delivery time in Unix seconds."""
    m = re.match(r"(\d{9,10})\.", name)
    return datetime.fromtimestamp(int(m.group(1)), UTC) if m else None


def _file_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    """The messages of a folder of message files, or of one message file."""
    files = folder.files if folder.format == "files" else (folder.path,)
    for number, file in enumerate(files, start=1):
        block, problem = _file_header(file)
        yield f"{file} message {number} (line 1)", block, _no_time, set(), problem
        if on_progress:
            on_progress(number)


def _file_header(file: Path) -> tuple[bytes, str]:
    """The header block of one message file (its lines up to the first blank line), and a problem or ""."""
    lines: list[bytes] = []
    size = 0
    try:
        with file.open("rb") as f:
            for piece in _pieces(f):
                if piece in (b"\n", b"\r\n"):
                    break
                size += len(piece)
                if size > MAX_HEADER_BYTES:
                    return b"", TOO_LARGE
                lines.append(piece)
            else:
                # A file of headers only is fine, but one that stops in the middle of a line was cut short.
                if lines and not lines[-1].endswith(b"\n"):
                    return b"".join(lines), TRUNCATED
    except OSError as e:
        return b"", f"cannot be read ({e.strerror or e})"
    return b"".join(lines), ""


def _mbox_folder_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    return _mbox_blocks(folder.path, on_progress)


BLOCKS = {"mbox": _mbox_folder_blocks, "maildir": _maildir_blocks, "files": _file_blocks, "eml": _file_blocks}
