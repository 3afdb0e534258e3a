"""What the sources of exported files share: each path read in turn, a missing or unreadable
file noted while the rest are read, and one record per id among what was read."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Cursor, ReadNotes

Progress = Callable[[str, int, int | None], None]  # (file shown, amount done, total or None)


class FilesSource:
    """What the mirror sources of exported files share: one account, read file by file, each
    file by ``_read_file``; a file ``file_error`` names is noted as unreadable and the rest read."""

    write_disposition = "mirror"
    file_error: type[Exception]
    account: str
    paths: list[Path]
    notes: ReadNotes

    def accounts(self) -> list[str]:
        return [self.account]

    def read(self, account: str, cursor: Cursor) -> Iterator:
        return read_each_file(self.paths, self._read_file, self.file_error, self.notes)

    def _read_file(self, path: Path) -> Iterator:
        raise NotImplementedError


def read_each_file(
    paths: Iterable[Path], read_one: Callable[[Path], Iterator], file_error: type[Exception], notes: ReadNotes
) -> Iterator:
    for path in map(Path, paths):
        notes.files += 1
        if not path.exists():
            notes.failed.append(f"{path}: no such file or folder")
            continue
        try:
            yield from read_one(path)
        except file_error as e:
            notes.failed.append(str(e))


def last_of_each_id(data: pa.Table) -> pa.Table:
    """One row per id: the last one read, where the id was first read (as a dict by id keeps them)."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:
        return data
    positions = pa.table({"id": data["id"], "at": pa.array(range(data.num_rows), pa.int64())})
    each = positions.group_by("id", use_threads=False).aggregate([("at", "min"), ("at", "max")])
    return data.take(each.sort_by("at_min")["at_max"])


def place(path: Path, base: Path | None) -> str:
    """A file's or folder's full path, or its path below ``base`` (files uploaded to a temporary folder)."""
    path = path.resolve()
    return path.relative_to(base.resolve()).as_posix() if base else path.as_posix()


ZIP_CHUNK = 2**20


class BoundedZip:
    """``members`` of an open zip, each unpacked whole but within the limits of
    ``imports.max_zip_mb`` and ``imports.max_zip_ratio``: in all at most ``max_bytes``, each at
    most ``max_ratio`` times its packed size. Checked on what the zip declares before anything is
    unpacked, and on what is actually unpacked, a chunk at a time (a zip may declare sizes it
    does not keep to). ``too_big(size)`` and ``too_packed(member, ratio)`` make the source's own
    error, naming the file and the fix."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        members: list[zipfile.ZipInfo],
        max_bytes: int,
        max_ratio: int,
        too_big: Callable[[int], Exception],
        too_packed: Callable[[zipfile.ZipInfo, float], Exception],
    ):
        self.archive, self.max_bytes, self.max_ratio = archive, max_bytes, max_ratio
        self.too_big, self.too_packed = too_big, too_packed
        self.members = {m.filename: m for m in members}
        self.unpacked = 0
        declared = sum(m.file_size for m in members)
        if declared > max_bytes:
            raise too_big(declared)
        for m in members:
            if m.file_size > max_ratio * max(m.compress_size, 1):
                raise too_packed(m, m.file_size / max(m.compress_size, 1))

    def read(self, name: str) -> bytes:
        return self.read_member(self.members[name])

    def read_member(self, member: zipfile.ZipInfo) -> bytes:
        most = min(self.max_bytes - self.unpacked, self.max_ratio * max(member.compress_size, 1))
        chunks, size = [], 0
        with self.archive.open(member) as stream:
            while chunk := stream.read(ZIP_CHUNK):
                size += len(chunk)
                if size > most:
                    if self.unpacked + size > self.max_bytes:
                        raise self.too_big(self.unpacked + size)
                    raise self.too_packed(member, size / max(member.compress_size, 1))
                chunks.append(chunk)
        self.unpacked += size
        return b"".join(chunks)
