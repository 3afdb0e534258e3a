"""What timeaudit holds about one person: forgetting it (`timeaudit forget`) and handing a
copy to them (`timeaudit export-mine`).

A person is in the lake twice over: as the account whose calendar and mailbox were read,
and as a name in everyone else's records (organizer, attendee, sender, recipient, cc).
Forgetting removes the first and scrubs the second: in other people's records their address
becomes ``forgotten@<their domain>``, so attendee counts and the internal/external/customer
split still hold while nobody is named. Both happen in one commit per table that swaps each
file mentioning them for its scrubbed copy (no other file is rewritten), then a vacuum removes
every file no longer in the table, so no file under the data folder holds them (the
transaction log keeps statistics of time columns only and names no one).

The roster is the user's own file: it is read, never edited; the user is told to remove the
person there. A later sync of their account, or of a calendar shared with them, brings
records back: forget them again after such a sync.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import secrets
import shutil
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake.transaction import AddAction, RemoveAction

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import TABLES
from timeaudit.core.roster import ROSTER_COLUMNS
from timeaudit.core.safe_text import neutralise, safe_frame
from timeaudit.lake.sql import read_sql
from timeaudit.lake.store import (
    BUCKET,
    PARTITION,
    PARTY_COLUMNS,
    PARTY_KEY,
    PRUNING_COLUMNS,
    STATS_COLUMNS,
    Lake,
    _atomic_write_bytes,
    dictionary_leaves,
    stored_schema,
    with_party_key,
    write_parquet,
)

FORGOTTEN = "forgotten"
DERIVED_DIR = "derived"  # timeaudit.outputs.derived.DERIVED_DIR, without importing the metrics engine
# The lake's own records as `timeaudit metrics` stored them classified (timeaudit.analysis.classify.CLASSIFIED):
# events.csv and messages.csv hold them, with what is a colleague's own left out of their copies.
DERIVED_RECORDS = ("classified_events", "classified_messages")


def checked_address(email: str) -> str:
    address = email.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        raise UserError(f"--person {email}: not an email address; give it as in their calendar, e.g. ann@example.com")
    return address


class Scrubber:
    """Finds one address in any value and replaces it.

    A value that *is* the address (organizer, an attendee, sender, to, cc) becomes
    ``forgotten@<domain>``. An address *inside* a longer value (an id such as
    ``1on1-ann@example.com-3``, a kept title, a cursor's calendar id) becomes
    ``forgotten-<random>@<domain>``, the same within one run: ids stay consistent across
    files and tables and never collide with the ids of someone forgotten earlier.
    """

    def __init__(self, address: str):
        self.address = address
        domain = address.rsplit("@", 1)[1]
        self.whole = f"{FORGOTTEN}@{domain}"
        self.inside = f"{FORGOTTEN}-{secrets.token_hex(4)}@{domain}"
        # Not part of a longer address: "bob.ann@..." and "ann@example.com.au" are others.
        self._pattern = re.compile(
            rf"(?<![A-Za-z0-9._%+]){re.escape(address)}(?![A-Za-z0-9_]|\.[A-Za-z0-9])", re.IGNORECASE
        )

    def may_be_in(self, strings: pa.Array) -> bool:
        """Whether any of ``strings`` may contain the address. An ASCII address in ASCII strings
        (nearly always) is looked for in their bytes at once, three times as fast as Arrow's
        search without case, which the rest take."""
        data = strings.buffers()[2]
        if data is None:
            return False
        raw = data.to_pybytes()
        if self.address.isascii() and raw.isascii():
            return self.address.encode() in raw.lower()
        return pc.any(pc.match_substring(strings, self.address, ignore_case=True)).as_py()

    def mentions(self, text: str) -> bool:
        return bool(self._pattern.search(text))

    def text(self, value: str) -> str:
        if value.strip().lower() == self.address:
            return self.whole
        return self._pattern.sub(self.inside, value)

    def value(self, value):
        """Any decoded value: strings, lists and dicts (struct fields, JSON keys) all the way down."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        return value


# -- forgetting -------------------------------------------------------------------------------
@dataclass
class TableReport:
    removed: int = 0  # rows of the person's own account
    scrubbed: int = 0  # rows of others in which their address was replaced
    files: int = 0
    rewritten: int = 0  # files rewritten or, when nothing was left in them, deleted


@dataclass
class ForgetReport:
    address: str
    replacement: str
    tables: dict[str, TableReport] = field(default_factory=dict)
    cursors_removed: list[str] = field(default_factory=list)  # sources
    cursors_scrubbed: int = 0
    derived_removed: list[str] = field(default_factory=list)


def forget_person(lake: Lake, email: str) -> ForgetReport:
    """Remove ``email``'s own records and cursors, and scrub their address from everything else
    under the data folder: other people's records, other cursors, derived tables."""
    scrub = Scrubber(checked_address(email))
    report = ForgetReport(scrub.address, scrub.whole)
    report.tables = _forget_in_tables(lake, scrub)
    _forget_in_state(lake, scrub, report)
    _forget_in_derived(lake, report)
    return report


def _forget_in_tables(lake: Lake, scrub: Scrubber) -> dict[str, TableReport]:
    """Delete their own records and scrub others' with one commit per table that swaps each file
    naming them for its scrubbed copy, then vacuum every file the tables no longer use. Run
    while no sync is running: the vacuum keeps no older snapshot.

    Each file is read, scrubbed and written by Arrow alone, a few at a time (memory holds a few
    files, not a table), the files of every table in one pool, largest first, so that no large
    file is left to one core at the end; a Delta merge did the same work matching every changed
    row back to its file, 20 times slower."""
    work = []
    for table in TABLES:
        dt = lake.table(table)
        if dt is None:
            continue
        files = pa.table(dt.get_add_actions(flatten=True)).select(
            ["path", "size_bytes", f"partition.{PARTITION}", f"partition.{BUCKET}"]
        )
        file_schema = pa.schema([f for f in stored_schema(table) if f.name not in (PARTITION, BUCKET)])
        work += [(table, file_schema, file) for file in files.to_pylist()]
    work.sort(key=lambda item: -item[2]["size_bytes"])
    reports = {table: TableReport() for table in TABLES}  # a table not made yet: nothing to forget
    actions: dict[str, list] = {table: [] for table in reports}

    def forget_in(item):
        table, file_schema, file = item
        return table, _forget_in_file(lake.table_path(table), table, file_schema, scrub, file)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for table, done in pool.map(forget_in, work):
            result = reports[table]
            result.files += 1
            if done is None:
                continue
            removed, scrubbed, changes = done
            result.removed += removed
            result.scrubbed += scrubbed
            result.rewritten += 1
            actions[table] += changes
    for table, changes in actions.items():
        if changes:
            lake.commit(
                table,
                lambda dt, changes=changes: dt.create_write_transaction(
                    changes, mode="append", schema=dt.schema(), partition_by=[PARTITION, BUCKET]
                ),
            )
        lake.vacuum(table, retention_hours=0, full=True)
    return reports


def _forget_in_file(root: Path, table: str, file_schema: pa.Schema, scrub: Scrubber, file: dict):
    """(their records removed, others' scrubbed, the file's Delta actions: its removal and the
    add of its scrubbed copy) for one data file; None when it does not name them."""
    data = _read_with_dictionaries(root / unquote(file["path"]), file_schema)
    own = _holding(data["account"].combine_chunks(), scrub.address)
    removed = pc.sum(own.cast("int64")).as_py() or 0
    if removed:
        data = data.filter(pc.invert(own))
    repeated = [path for name in data.column_names for path in _repeated_strings(name, data[name])]
    columns, changed = [], np.zeros(data.num_rows, dtype=bool)
    for column in data.columns:
        after, rows = _scrubbed(column.chunk(0), scrub) if column.num_chunks else (column, None)
        columns.append(after)
        if rows is not None:
            changed |= rows
    scrubbed = int(changed.sum())
    if not removed and not scrubbed:
        return None
    partition = {PARTITION: file[f"partition.{PARTITION}"], BUCKET: str(file[f"partition.{BUCKET}"])}
    now = int(time.time() * 1000)
    gone = RemoveAction(file["path"], True, now, file["size_bytes"], partition)
    if not data.num_rows:
        return removed, scrubbed, [gone]
    data = pa.Table.from_arrays(columns, names=data.column_names)
    if PARTY_KEY in data.column_names and scrubbed:  # hashed again for the rows whose party changed alone
        parties = pa.schema([file_schema.field(name) for name in PARTY_COLUMNS[table]])
        fresh = with_party_key(table, data.select(parties.names).filter(changed).cast(parties))[PARTY_KEY]
        fresh = fresh.combine_chunks()
        keys = pc.replace_with_mask(data[PARTY_KEY].combine_chunks(), pa.array(changed), fresh)
        data = data.set_column(data.schema.get_field_index(PARTY_KEY), PARTY_KEY, keys)
    # Their own rows gone, a dictionary may still hold values only those rows had: decoded then.
    data = _as_written(data, file_schema, kept=set() if removed else set(repeated))
    folder = f"{PARTITION}={partition[PARTITION]}/{BUCKET}={partition[BUCKET]}"
    name = f"{folder}/part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    path = root / name
    write_parquet(data, path, use_dictionary=repeated, statistics=PRUNING_COLUMNS[table])
    added = AddAction(name, path.stat().st_size, partition, now, True, _file_stats(table, data))
    return removed, scrubbed, [gone, added]


def _read_with_dictionaries(path: Path, file_schema: pa.Schema) -> pa.Table:
    """One data file with every string column whose values repeat as a dictionary array, as
    Parquet stores them: nothing decodes the millions of repeated addresses, and the scrub looks
    at each distinct value once (reading 2.4 times and scrubbing 4.5 times as fast as with plain
    strings). Ids, nearly unique, are read plain: a dictionary of them costs a hash per row."""
    metadata = pq.read_metadata(path)
    file = pq.ParquetFile(path, metadata=metadata, read_dictionary=_repeated_in_file(metadata))
    # Row group by row group: Arrow reads nested dictionaries of one row group at a time.
    groups = [file.read_row_group(i) for i in range(file.metadata.num_row_groups)]
    data = pa.concat_tables(groups).unify_dictionaries() if groups else file.schema_arrow.empty_table()
    read = data.schema
    as_read = pa.schema([pa.field(f.name, _as_read(f.type, read.field(f.name).type)) for f in file_schema])
    return data.cast(as_read).combine_chunks()


def _repeated_in_file(metadata: pq.FileMetaData) -> list[str]:
    """The Parquet paths of the string columns stored as dictionaries of repeated values in every
    row group: the dictionary page under half the column's bytes (ids fill theirs, and then
    fall back to plain pages)."""
    found = None
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        chunks = [group.column(i) for i in range(group.num_columns)]
        here = {
            c.path_in_schema
            for c in chunks
            if c.physical_type == "BYTE_ARRAY"
            and c.has_dictionary_page
            and (c.data_page_offset - c.dictionary_page_offset) * 2 < c.total_compressed_size
        }
        found = here if found is None else found & here
    return sorted(found or ())


def _holding(column: pa.Array, address: str) -> pa.Array:
    """Which rows of a string column are ``address`` (in any case); of a dictionary, each
    distinct value is compared once."""
    if pa.types.is_dictionary(column.type):
        return pc.fill_null(_holding(column.dictionary, address).take(column.indices), False)
    return pc.fill_null(pc.equal(pc.utf8_lower(column), address), False)


def _as_written(data: pa.Table, file_schema: pa.Schema, kept: set[str]) -> pa.Table:
    """``data`` in the lake's types, but for the columns whose every string is in ``kept`` (the
    repeated ones): those stay dictionaries, which the writer stores without encoding them again
    (the write takes about half as long)."""
    columns = []
    for lake_field in file_schema:
        column = data[lake_field.name]
        leaves = dictionary_leaves(lake_field.name, column.type)
        columns.append(column if leaves and set(leaves) <= kept else column.cast(lake_field.type))
    return pa.Table.from_arrays(columns, names=file_schema.names)


def _repeated_strings(path: str, column) -> list[str]:
    """The Parquet paths of the string leaves of ``column`` (read as dictionaries) whose values
    repeat (a dictionary under half their count): worth dictionary-encoding when written again;
    ids, each nearly unique, are written plain (encoding the file goes 20% faster)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 0:
            return []
        column = column.chunk(0)  # the table was combined: one chunk
    array, kind = column, column.type
    if pa.types.is_dictionary(kind):
        return [path] if len(array.dictionary) * 2 < len(array) else []
    if pa.types.is_list(kind):
        first, last = array.offsets[0].as_py(), array.offsets[-1].as_py()
        return _repeated_strings(f"{path}.list.element", array.values.slice(first, last - first))
    if pa.types.is_struct(kind):
        return [leaf for j, f in enumerate(kind) for leaf in _repeated_strings(f"{path}.{f.name}", array.field(j))]
    return []


def _as_read(kind: pa.DataType, read: pa.DataType) -> pa.DataType:
    """The lake's type ``kind`` with each string a dictionary where the file was read as one
    (``read``, through lists and structs)."""
    if pa.types.is_dictionary(read):
        return pa.dictionary(pa.int32(), pa.string())
    if pa.types.is_list(kind):
        return pa.list_(kind.value_field.with_type(_as_read(kind.value_type, read.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_as_read(f.type, read.field(f.name).type)) for f in kind])
    return kind


def _file_stats(table: str, data: pa.Table) -> str:
    """A data file's statistics as delta-rs writes them: of the time columns alone (none names
    anyone), to the millisecond, the maximum rounded up so that no row falls outside."""
    low, high, nulls = {}, {}, {}
    for name in STATS_COLUMNS[table].split(","):
        column = data[name]
        nulls[name] = column.null_count
        bounds = pc.min_max(column)
        if bounds["min"].is_valid:
            least, most = bounds["min"].as_py(), bounds["max"].as_py()
            low[name] = _millis(least - timedelta(microseconds=least.microsecond % 1000))
            high[name] = _millis(most + timedelta(microseconds=-most.microsecond % 1000))
    return json.dumps({"numRecords": data.num_rows, "minValues": low, "maxValues": high, "nullCount": nulls})


def _millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _scrubbed(array: pa.Array, scrub: Scrubber) -> tuple[pa.Array, np.ndarray | None]:
    """``array`` with the address replaced in every string, through lists and structs, and which
    of its values changed (None: none did). Arrow finds the few strings that contain it; only
    their distinct values go through the ``Scrubber``."""
    kind = array.type
    if pa.types.is_dictionary(kind):  # each distinct value once, then its rows
        values, changed = _scrubbed(array.dictionary, scrub)
        if changed is None:
            return array, None
        rows = changed[pc.fill_null(array.indices, 0).to_numpy(zero_copy_only=False)]
        if array.null_count:
            rows &= array.is_valid().to_numpy(zero_copy_only=False)
        return pa.DictionaryArray.from_arrays(array.indices, values), rows
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if not scrub.may_be_in(array):
            return array, None
        candidates = pc.fill_null(pc.match_substring(array, scrub.address, ignore_case=True), False)
        if not pc.any(candidates).as_py():
            return array, None
        before = pc.unique(array.filter(candidates))
        after = pa.array([scrub.text(v) for v in before.to_pylist()], kind).take(pc.index_in(array, value_set=before))
        changed = pc.fill_null(pc.not_equal(after, array), False)
        if not pc.any(changed).as_py():
            return array, None
        return pc.if_else(changed, after, array), changed.to_numpy(zero_copy_only=False)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = array.offsets
        first = offsets[0].as_py()
        values, changed = _scrubbed(array.values.slice(first, offsets[-1].as_py() - first), scrub)
        if changed is None:
            return array, None
        offsets = pc.subtract(offsets, pa.scalar(first, offsets.type))
        rows = np.zeros(len(array), dtype=bool)
        rows[np.repeat(np.arange(len(array)), np.diff(offsets.to_numpy()))[changed]] = True
        mask = array.is_null() if array.null_count else None
        return type(array).from_arrays(offsets, values, type=kind, mask=mask), rows
    if pa.types.is_struct(kind):
        children, rows = [], None
        for j in range(kind.num_fields):
            child, changed = _scrubbed(array.field(j), scrub)
            children.append(child)
            if changed is not None:
                rows = changed if rows is None else rows | changed
        if rows is None:
            return array, None
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(kind), mask=mask), rows
    return array, None


def _may_mention(column, scrub: Scrubber) -> bool:
    """A quick test before decoding: does any string in the column contain the address?"""
    return any(scrub.may_be_in(leaf) for leaf in _strings(column))


def _strings(array) -> list:
    """Every string array inside ``array``, through lists and structs."""
    if isinstance(array, pa.ChunkedArray):
        return [leaf for chunk in array.chunks for leaf in _strings(chunk)]
    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [array]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _strings(array.flatten())
    if pa.types.is_struct(kind):
        return [leaf for j in range(kind.num_fields) for leaf in _strings(array.field(j))]
    return []


def _forget_in_state(lake: Lake, scrub: Scrubber, report: ForgetReport) -> None:
    if not lake.state_dir.exists():
        return
    for source in sorted(p for p in lake.state_dir.iterdir() if p.is_dir()):
        if lake.read_cursor(source.name, scrub.address) is not None:
            lake.clear_cursor(source.name, scrub.address)
            report.cursors_removed.append(source.name)
    # Other accounts' cursors can name them too, e.g. a shared calendar's id.
    for path in sorted(p for p in lake.state_dir.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if scrub.mentions(text):
            try:
                cleaned = json.dumps(scrub.value(json.loads(text)), indent=1)
            except ValueError:
                cleaned = scrub.text(text)
            _atomic_write_bytes(path, cleaned.encode())
            report.cursors_scrubbed += 1


def _forget_in_derived(lake: Lake, report: ForgetReport) -> None:
    """Every derived table (`timeaudit.outputs.derived`) was computed with the person's records: their
    hours are in every team's sums, their threads and replies among the audit's, whether or not
    a row names them. So all of them go, with the manifest that vouches for them, and any
    unfinished write; `timeaudit metrics` computes them again from what is left."""
    folder = lake.root / DERIVED_DIR
    if not folder.is_dir():
        return
    report.derived_removed = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    shutil.rmtree(folder)


def roster_mentions(settings: Settings, address: str) -> tuple[Path | None, list[dict[str, str]], int]:
    """(roster file, the person's rows as written, how many rows name them as manager)."""
    path = settings.roster_path()
    if not path or not path.is_file():
        return path, [], 0
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    own = [r for r in rows if (r.get("email") or "").strip().lower() == address]
    managed = sum((r.get("manager") or "").strip().lower() == address for r in rows)
    return path, own, managed


def user_files_naming(settings: Settings, address: str) -> list[tuple[Path, str]]:
    """The user's own files that still name the person, with where: timeaudit reads the
    roster and the settings but never edits them, so the user is told instead."""
    found = []
    roster, rows, managed = roster_mentions(settings, address)
    if rows or managed:
        where = ["their row"] * bool(rows) + [f"manager of {managed}"] * bool(managed)
        found.append((roster, ", ".join(where)))
    config = Path(settings.path) if settings.path else None
    if config and config.is_file():
        scrub = Scrubber(address)
        text = config.read_text(encoding="utf-8").splitlines()
        lines = [str(n) for n, line in enumerate(text, 1) if scrub.mentions(line)]
        if lines:
            found.append((config, "line " + ", ".join(lines)))
    return found


# -- a person's copy --------------------------------------------------------------------------
README_TEXT = """\
What timeaudit holds about {address}, exported on {when}.

events.csv     Calendar events: the ones in your own calendar ("own" in the relation column)
               and every event in a colleague's calendar that names you as "organizer" or
               "attendee". On colleagues' copies their own answer is left out: it is theirs.
messages.csv   Email metadata: the messages of your own mailbox ("own") and every message in
               a colleague's mailbox that names you as "sender", "recipient" (To) or "cc".
               On colleagues' copies their labels, unread flag and the way they received it
               (self_in) are left out. Message bodies are never read or stored.
chat.csv       Chat metadata (Slack): the messages you sent, those that mention you and the
               replies in threads you started. Message text is never read into the lake.
derived/       Rows of the figures computed from those records and stored (`timeaudit metrics`)
               that name you: your weekly and daily hours, customer emails you received or
               answered, one file per table. Figures of groups that include you without
               naming anyone are not listed, nor the stored copies of the records above.
roster.csv     Your row in the roster (team, manager, role, hours), if you are on it.
sync-state.json  Where each sync of your account left off; tokens are shown as "(present)".

{titles}
{subjects}
Times are in UTC.
"""


def export_mine(lake: Lake, settings: Settings, email: str) -> tuple[bytes, dict[str, int]]:
    """A zip of everything held about ``email``, and the rows per file."""
    address = checked_address(email)
    con = lake.connect()
    files: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for table in TABLES:
        frame = con.execute(read_sql(f"mine_{table}.sql"), {"email": address}).df()
        counts[f"{table}.csv"] = len(frame)
        files[f"{table}.csv"] = safe_frame(frame).to_csv(index=False).encode("utf-8")
    for name, frame in derived_rows_naming(lake, Scrubber(address)).items():
        counts[name] = len(frame)
        files[name] = safe_frame(frame).to_csv(index=False).encode("utf-8")
    _, rows, _ = roster_mentions(settings, address)
    counts["roster.csv"] = len(rows)
    files["roster.csv"] = _roster_csv(rows)
    files["sync-state.json"] = json.dumps(_cursors(lake, address), indent=1, sort_keys=True).encode()
    privacy = settings.privacy
    files["README.txt"] = README_TEXT.format(
        address=address,
        when=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        titles="Event titles are kept in full (store_titles = true)."
        if privacy.store_titles
        else "Event titles are not kept: only keyword tags taken from them (title_tags).",
        subjects="Email subjects are kept in full (store_subjects = true)."
        if privacy.store_subjects
        else "Email subjects are not kept: only keyword tags taken from them (subject_tags).",
    ).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, payload in files.items():
            z.writestr(name, payload)
    return buffer.getvalue(), counts


def derived_rows_naming(lake: Lake, scrub: Scrubber) -> dict[str, pd.DataFrame]:
    """``derived/<table>.csv`` -> the rows of each stored derived table that name the person
    (their weekly and daily figures, the customer emails they received or answered, ...), but
    the stored classified records (``DERIVED_RECORDS``): those are events.csv's and messages.csv's."""
    folder = lake.root / DERIVED_DIR
    if not folder.is_dir():
        return {}
    found = {}
    for table in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if table.name in DERIVED_RECORDS:
            continue
        files = sorted(table.glob("*.parquet"))
        # A table is a folder of part files; the dashboard's stored audit, a folder of tables.
        named = (
            {table.name: files}
            if all(f.name.startswith("part-") for f in files)
            else {f"{table.name}/{f.stem}": [f] for f in files}
        )
        for name, group in named.items():
            parts = [_rows_naming(pq.ParquetFile(f).read(), scrub) for f in group]
            if parts:
                found[f"{DERIVED_DIR}/{name}.csv"] = pa.concat_tables(parts).to_pandas()
    return found


def _rows_naming(data: pa.Table, scrub: Scrubber) -> pa.Table:
    """The rows of ``data`` in which any value names the person; columns that cannot are not decoded."""
    naming = [False] * data.num_rows
    for column in data.columns:
        if _may_mention(column, scrub):
            values = column.to_pylist()
            naming = [n or scrub.mentions(json.dumps(v, default=str)) for n, v in zip(naming, values, strict=True)]
    return data.filter(pa.array(naming, pa.bool_()))


def _roster_csv(rows: list[dict[str, str]]) -> bytes:

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ROSTER_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: neutralise(v) for k, v in r.items()} for r in rows)
    return out.getvalue().encode("utf-8")


def _cursors(lake: Lake, address: str) -> dict:
    if not lake.state_dir.exists():
        return {}
    held = {}
    for source in sorted(p.name for p in lake.state_dir.iterdir() if p.is_dir()):
        cursor = lake.read_cursor(source, address)
        if cursor is not None:
            held[source] = _hide_tokens(cursor)
    return held


def _hide_tokens(value):
    """Sync tokens are credentials of a kind and mean nothing to a reader: say one is held."""
    if isinstance(value, dict):
        return {k: "(present)" if _is_token(k) and v else _hide_tokens(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_tokens(v) for v in value]
    return value


def _is_token(key: str) -> bool:
    key = key.lower()
    return "token" in key or key in ("history_id", "historyid")
