"""A Slack workspace export (the .zip an owner downloads) as a mirror source.

The zip holds users.json, channels.json (public channels, Slack Connect ones among them),
groups.json (private channels), mpims.json (group DMs), dms.json (DMs), and a folder per
conversation (named after the channel, or the DM's id) of daily files ``YYYY-MM-DD.json``, each a
list of messages. It is read one member at a time, within ``imports.max_zip_mb`` and
``imports.max_zip_ratio``, checked on what the zip declares and on what it unpacks to.

A read covers the conversations it met, over the days the export spans: a newer export of
the same workspace replaces what an older one gave there, and leaves the rest alone.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from connectors.base import Cursor, ReadNotes
from connectors.files import BoundedZip, Progress, last_of_each_id
from connectors.slack.records import SOURCE, BadRecord, Conversation, Directory, as_fields, chat_record, is_chat
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError

LISTS = {"channels.json": "public", "groups.json": "private", "mpims.json": "mpim", "dms.json": "im"}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ExportError(UserError):
    """A Slack export that cannot be read at all."""


@dataclass(frozen=True)
class ExportCoverage:
    """The lake's chat records of the conversations read, inside the days the export spans."""

    account: str
    conversations: frozenset[str]
    start: datetime
    end: datetime

    def covers(self, row: dict) -> bool:
        return row["conversation"] in self.conversations and self.start <= row["ts"] < self.end


def _too_big(path: Path, max_bytes: int) -> Callable[[int], ExportError]:
    return lambda size: ExportError(
        f"{path.name}: its files unpack to {size / 2**20:,.0f} MB or more, over the limit of "
        f"{max_bytes / 2**20:,.0f} MB (imports.max_zip_mb); raise the limit or export fewer days"
    )


def _too_packed(path: Path, max_ratio: int) -> Callable[[zipfile.ZipInfo, float], ExportError]:
    return lambda member, ratio: ExportError(
        f"{path.name}/{member.filename}: unpacks to {ratio:,.0f} times its packed size, over the limit of "
        f"{max_ratio} (imports.max_zip_ratio); a Slack export does not pack that well, so it is not read"
    )


class SlackExportSource:
    """One workspace export; its account ("slack:<team id>") is known once users.json is read."""

    name = SOURCE
    table = "chat"
    write_disposition = "mirror"

    def __init__(self, settings: Settings, path: Path, progress: Progress | None = None):
        self.settings, self.path, self.progress = settings, Path(path), progress
        self.notes = ReadNotes()
        self._archive: zipfile.ZipFile | None = None
        self._zip: BoundedZip | None = None
        self.directory: Directory | None = None
        self._read: set[str] = set()
        self._days: set[str] = set()

    def _open(self) -> BoundedZip:
        if self._zip is None:
            if not self.path.is_file():
                raise ExportError(f"{self.path}: no such file; give the .zip Slack's export gave you")
            try:
                self._archive = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
                raise ExportError(
                    f"{self.path.name}: not a readable zip file ({e}); download the export again"
                ) from None
            max_bytes, max_ratio = self.settings.imports.max_zip_mb * 2**20, self.settings.imports.max_zip_ratio
            members = [
                m
                for m in self._archive.infolist()
                if not m.is_dir() and m.filename.endswith(".json") and "__MACOSX" not in m.filename
            ]
            self._zip = BoundedZip(
                self._archive,
                members,
                max_bytes,
                max_ratio,
                _too_big(self.path, max_bytes),
                _too_packed(self.path, max_ratio),
            )
            if "users.json" not in self._zip.members:
                raise ExportError(
                    f"{self.path.name}: no users.json at the top of the zip; this is not a Slack workspace export"
                )
            self.directory = Directory(self._json("users.json"))
        return self._zip

    def _json(self, name: str):
        try:
            return json.loads(self._zip.read(name))
        except (ValueError, UnicodeDecodeError) as e:
            raise ExportError(f"{self.path.name}/{name}: not valid JSON ({e}); download the export again") from None

    def accounts(self) -> list[str]:
        self._open()
        return [self.directory.account]

    def read(self, account: str, cursor: Cursor) -> Iterator[dict]:
        archive = self._open()
        self.notes.files += 1
        conversations = self._conversations(archive)
        folders = {name.rpartition("/")[0] for name in archive.members if name.count("/") == 1}
        for folder in sorted(folders - set(conversations)):
            self.notes.skip(f"{folder}/", "a folder no channel, group or DM list names; left out")
        days = sorted(
            (folder, name)
            for name in archive.members
            if (folder := name.rpartition("/")[0]) in conversations and "/" not in folder
        )
        for done, (folder, name) in enumerate(days, 1):
            conversation = conversations[folder]
            day = name.rpartition("/")[2].removesuffix(".json")
            if not _DAY.fullmatch(day):
                self.notes.skip(name, "not a daily file (YYYY-MM-DD.json)")
                continue
            self._read.add(conversation.id)
            self._days.add(day)
            try:
                messages = json.loads(archive.read(name))
            except (ValueError, UnicodeDecodeError) as e:
                self.notes.skip(name, f"not valid JSON ({e})")
                continue
            for message in messages if isinstance(messages, list) else []:
                if not isinstance(message, dict) or not is_chat(message):
                    continue
                try:
                    yield as_fields(chat_record(message, conversation, self.directory, self.settings))
                except BadRecord as e:
                    self.notes.skip(name, str(e))
            if self.progress:
                self.progress(self.path.name, done, len(days))

    def _conversations(self, archive: BoundedZip) -> dict[str, Conversation]:
        """folder -> the conversation it holds, from the four lists."""
        found = {}
        for file, kind in LISTS.items():
            if file not in archive.members:
                continue
            for item in self._json(file):
                if not isinstance(item, dict) or not item.get("id"):
                    continue
                folder = item["id"] if kind == "im" else item.get("name") or item["id"]
                found[folder] = self.directory.conversation(item["id"], kind, item.get("members") or [])
        return found

    def coverage(self) -> ExportCoverage:
        days = sorted(self._days) or ["1970-01-01"]  # no day read: nothing is covered
        start = datetime.fromisoformat(days[0] + "T00:00:00+00:00")
        end = datetime.fromisoformat(days[-1] + "T00:00:00+00:00") + timedelta(days=1)
        if self._archive is not None:
            self._archive.close()
        return ExportCoverage(self.directory.account, frozenset(self._read), start, end)

    def one_per_id(self, records: pa.Table) -> pa.Table:
        return last_of_each_id(records)

    def combine(self, read: pa.Table, held: pa.Table) -> pa.Table:
        return read
