"""What the sources of exported files share: each path read in turn, a missing or unreadable
file noted while the rest are read, and one record per id among what was read."""

from __future__ import annotations

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
