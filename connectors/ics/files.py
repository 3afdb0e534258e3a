"""Calendar files: a .ics file, the .ics members of a .zip export (Google exports a zip), or
every .ics and .zip in a folder, as (display name, bytes). A zip is unpacked one member at a
time, within ``ZipLimits`` (``imports.max_zip_mb``, ``imports.max_zip_ratio``), checked on what
it declares and on what it actually unpacks to."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.files import BoundedZip
from timeaudit.core.errors import UserError


class ImportFileError(UserError):
    """A calendar file that cannot be read at all."""


@dataclass(frozen=True)
class ZipLimits:
    """What a .zip export may unpack to (``imports.max_zip_mb``, ``imports.max_zip_ratio``)."""

    max_bytes: int = 1024 * 2**20
    max_ratio: int = 100


def calendar_files(path: Path, limits: ZipLimits = ZipLimits()) -> Iterator[tuple[str, bytes]]:
    """(display name, bytes) of a .ics file, of each .ics in a .zip, or of each .ics/.zip in a
    folder, one at a time. A zip is unpacked one member at a time, within ``limits``."""
    path = Path(path)
    if path.is_dir():
        for p in _calendar_paths(path):
            yield from calendar_files(p, limits)
        return
    if path.suffix.lower() == ".zip":
        yield from _zip_members(path, limits)
        return
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImportFileError(f"{path.name}: cannot be read ({e.strerror or e}); check the path") from None
    yield path.name, data


def calendar_file_count(path: Path) -> int:
    """How many calendars ``calendar_files`` gives (for progress), without unpacking any."""
    path = Path(path)
    if path.is_dir():
        return sum(calendar_file_count(p) for p in _calendar_paths(path))
    if path.suffix.lower() != ".zip":
        return 1
    try:
        with zipfile.ZipFile(path) as archive:
            return len(_ics_members(archive))
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        return 1  # calendar_files says what is wrong


def _calendar_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ics", ".zip") and p.is_file())


def _ics_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [
        m
        for m in archive.infolist()
        if not m.is_dir() and m.filename.lower().endswith(".ics") and "__MACOSX" not in m.filename
    ]


def _zip_members(path: Path, limits: ZipLimits) -> Iterator[tuple[str, bytes]]:
    """Each .ics member of a zip, unpacked one at a time; ImportFileError for a broken zip, or
    one whose members would unpack past ``limits`` (``connectors.files.BoundedZip``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = _ics_members(archive)
            if not members:
                raise ImportFileError(f"{path.name}: the zip holds no .ics file; export the calendars again")
            bounded = BoundedZip(
                archive,
                members,
                limits.max_bytes,
                limits.max_ratio,
                lambda size: _too_big(path, size, limits),
                lambda member, ratio: _too_packed(path, member, ratio, limits),
            )
            for member in members:
                item = (f"{path.name}/{member.filename}", bounded.read_member(member))
                yield item
                del item  # the next member is unpacked with this one let go
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise ImportFileError(
            f"{path.name}: not a readable zip file ({e}); download the export again, or unpack it and import the .ics"
        ) from None


def _too_big(path: Path, size: int, limits: ZipLimits) -> ImportFileError:
    return ImportFileError(
        f"{path.name}: its .ics files unpack to {_mb(size)} or more, over the limit of {_mb(limits.max_bytes)} "
        "(imports.max_zip_mb); unpack it and import the .ics files one by one, or raise the limit"
    )


def _too_packed(path: Path, member: zipfile.ZipInfo, ratio: float, limits: ZipLimits) -> ImportFileError:
    return ImportFileError(
        f"{path.name}/{member.filename}: unpacks to {ratio:,.0f} times its packed size, over the limit of "
        f"{limits.max_ratio} (imports.max_zip_ratio); a calendar export does not pack that well, so it is not read"
    )


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"
