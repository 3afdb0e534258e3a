"""Bring ``<data>/derived`` up to date after new records land, recomputing only what they touch.

A person-week's figures depend on that person's own records in that week, the rules, the
roster and the weeks the lake spans, nothing else (``analysis/sql/daily.sql`` sweeps each
person's days on their own). So when the manifest (``timeaudit.outputs.derived``) was written
for an older version of the same tables, with the same settings, roster and code:

1. the Delta commit log says which records changed since (``timeaudit.lake.changes``);
2. their accounts and times give the person-weeks touched, plus every person-week of a week
   the lake now spans and did not before, and of a person new to the roster or the lake;
3. only those people's records are classified, only those person-weeks' days swept, and their
   rows replace the old ones in ``weekly_metrics`` and ``daily_metrics`` (rows of weeks or people
   gone are dropped), and in the dashboard's stored cover-yourself mail; their records
   classified are stored as a patch over ``classified_events`` and ``classified_messages`` (a
   person's records are classified on their own);
4. the audit tables (and the dashboard's stored page audit), which rank across
   weeks and count up to the moment they were computed, are left as they were: the manifest
   lists them under ``behind`` with the lake version they match, and `timeaudit metrics`
   recomputes them (the dashboard shows them, saying so, while it computes newer ones).

Anything else (no manifest, another engine, changed settings or code, a commit log cleaned up
or a replaced file vacuumed, an account that adds a domain to the organisation's when there is
no roster) recomputes every table (``run_duckdb``). Either way the result is
what a full computation gives (tests/test_derived.py checks it on random batches).
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from timeaudit.analysis.audit import cover_mail
from timeaudit.analysis.classify import CLASSIFIED
from timeaudit.analysis.metrics import open_analysis
from timeaudit.analysis.sql import read_sql as analysis_sql
from timeaudit.core.config import Settings
from timeaudit.core.model import TABLES
from timeaudit.lake.changes import changed_records
from timeaudit.lake.store import Lake, sql_string
from timeaudit.outputs.derived import (
    CLASSIFIED_PATCH,
    COVER_MAIL,
    DERIVED_DIR,
    MANIFEST,
    ORG_DOMAINS,
    PAGE_AUDIT_WEEKS,
    begin_manifest,
    fingerprint,
    finish_manifest,
    lake_version,
    org_domains,
    prune_patches,
    refresh_classified,
    run_duckdb,
    swap_table,
    write_frames,
)
from timeaudit.outputs.sql import read_sql

# Tables a refresh keeps by person-week; it also keeps the cover-yourself mail by person-week and the
# classified records by account, and leaves the audit tables behind.
BY_PERSON_WEEK = {"weekly_metrics": "week, person", "daily_metrics": "day, person"}
LOCK = ".refresh.lock"


@dataclass
class Refresh:
    """What a refresh did: ``how`` is "current" (nothing to do), "incremental" or "full"."""

    how: str
    seconds: float = 0.0
    person_weeks: int = 0  # recomputed (incremental) or all of them (full)
    people: int = 0  # whose records were classified again (incremental)
    tables: list[str] = field(default_factory=list)
    why: str = ""  # why a full recomputation

    def line(self) -> str:
        if self.how == "current":
            return "Derived tables: already up to date."
        if self.how == "full":
            return f"Derived tables: recomputed in full ({self.why}) in {self.seconds:.1f} s."
        return (
            f"Derived tables: {self.person_weeks:,} person-weeks of {self.people:,} people recomputed "
            f"in {self.seconds:.1f} s."
        )


def read_manifest(out: Path) -> dict | None:
    try:
        found = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def refresh_derived(lake: Lake, settings: Settings, now: datetime, say: Callable[[str], None] | None = None) -> Refresh:
    """Make ``<data>/derived`` match the lake: nothing when it does, the touched person-weeks
    when it can, every table otherwise. ``say`` hears each step, for a progress line."""
    say = say or (lambda _: None)
    started = time.perf_counter()
    out = lake.root / DERIVED_DIR
    with _one_at_a_time(lake):  # sharded syncs end together: the later ones find less or nothing to do
        return _refresh(lake, settings, now, say, started, out)


@contextmanager
def _one_at_a_time(lake: Lake) -> Iterator[None]:
    """Refreshes of one data folder take turns, across processes."""
    lake.root.mkdir(parents=True, exist_ok=True)
    with open(lake.root / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _refresh(lake, settings, now, say, started, out) -> Refresh:
    found = read_manifest(out)
    # Read once: the changes are read up to these versions and the manifest says these, so a
    # commit landing meanwhile is the next refresh's to read, never skipped.
    versions = lake.version()
    why = _why_full(found, lake, settings, versions)
    if why == "":
        return Refresh("current")
    if why is None:
        say("finding the records that changed")
        changes = _changes(lake, found["versions"], versions)
        if changes is None:
            why = "the commit log no longer shows every change"
        else:
            done = _incremental(lake, settings, now, out, found, changes, versions, say)
            if isinstance(done, str):
                why = done
            else:
                done.seconds = time.perf_counter() - started
                return done
    say(f"recomputing every table ({why})")
    _, names = run_duckdb(lake, settings, now)
    return Refresh("full", time.perf_counter() - started, tables=names, why=why)


def _why_full(found: dict | None, lake: Lake, settings: Settings, versions: tuple) -> str | None:
    """Why the tables must be recomputed whole; "" when they are current; None when a refresh
    of what changed will do."""
    if found is None:
        return "no stored tables yet"
    if found.get("engine") != "duckdb" or "versions" not in found:
        return "the stored tables were not written by this refresh's engine"
    if found.get("fingerprint") != fingerprint(settings):
        return "settings, roster or code changed"
    if found.get("lake_version") == lake_version(lake, versions):
        return ""
    now = {table: (table_id, version) for table, table_id, version in versions}
    for table, (table_id, version) in now.items():
        was = found["versions"].get(table)
        if was is None or was[0] != table_id or was[1] > version:
            return f"the {table} table was replaced"
    return None


def _changes(lake: Lake, versions: dict, latest: tuple) -> pa.Table | None:
    now = {table: version for table, _, version in latest}
    parts = []
    for table in TABLES:
        if table not in versions:
            continue
        part = changed_records(lake, table, versions[table][1], now[table])
        if part is None:
            return None
        parts.append(part)
    return pa.concat_tables(parts) if parts else None


def _incremental(lake, settings, now, out, found, changes, versions, say) -> Refresh | str:
    """What the refresh did, or why it must recompute every table instead."""
    if any(not (out / name).is_dir() for name in found.get("tables", [])) or not set(BY_PERSON_WEEK) <= set(
        found.get("tables", [])
    ):
        return "a stored table is missing"
    stamp = begin_manifest(out, lake, settings, "duckdb")
    if stamp is not None:
        stamp["lake_version"] = lake_version(lake, versions)
        stamp["versions"] = {table: [table_id, version] for table, table_id, version in versions}
    accounts = sorted(set(changes["account"].to_pylist()))
    say(f"classifying the records of {len(accounts):,} people")
    a = open_analysis(lake, settings, only=accounts)
    domains = org_domains(a)
    if domains != found.get(ORG_DOMAINS):
        return "the organisation's domains changed"
    if stamp is not None:
        stamp[ORG_DOMAINS] = domains
    names, patch = list(BY_PERSON_WEEK), None
    if set(CLASSIFIED) <= set(found["tables"]):
        say(f"storing the records of {len(accounts):,} people classified")
        patch = refresh_classified(a, out, accounts, found.get(CLASSIFIED_PATCH))
        names += CLASSIFIED
    con = a.con
    con.register("changed_records", changes)
    stored = {name: sql_string(out / name / "*.parquet") for name in BY_PERSON_WEEK}
    con.execute(read_sql("refresh_keys.sql").format(weekly=stored["weekly_metrics"]))
    widened = con.execute("SELECT count(*) FROM refresh_keys WHERE NOT touched").fetchall()[0][0]
    if widened:  # new weeks or people: everyone's (or the newcomers') records are needed too
        people = [p for (p,) in con.execute("SELECT DISTINCT person FROM refresh_keys").fetchall()]
        keys = con.sql("SELECT * FROM refresh_keys").to_arrow_table()
        a = open_analysis(lake, settings, only=people)
        con = a.con
        con.register("refresh_keys", keys)
    n_keys, n_people = con.execute("SELECT count(*), count(DISTINCT person) FROM refresh_keys").fetchall()[0]
    say(f"recomputing {n_keys:,} person-weeks")
    con.execute(read_sql("refresh_days.sql"))
    con.execute("CREATE OR REPLACE TEMP TABLE daily_metrics AS " + analysis_sql("daily.sql"))
    queries = {
        "daily_metrics": "SELECT * FROM daily_metrics",
        "weekly_metrics": analysis_sql("weekly.sql"),
    }
    for name, order in BY_PERSON_WEEK.items():
        merged = read_sql("refresh_merge.sql").format(stored=stored[name], fresh=queries[name], order=order)
        data = con.sql(merged).to_arrow_table()
        swap_table(out / name, data)
    if COVER_MAIL in found["tables"]:
        _refresh_cover_mail(a, out)
        names.append(COVER_MAIL)
    # The audit tables rank across every week and count up to the moment they were computed:
    # they stay as they were, and the manifest says from which lake version (`timeaudit metrics`
    # recomputes them).
    behind = found.get("behind", {}) | {t: found["lake_version"] for t in found["tables"] if t not in names}
    kept = {PAGE_AUDIT_WEEKS: found[PAGE_AUDIT_WEEKS]} if PAGE_AUDIT_WEEKS in found else {}  # the audit's, behind too
    if patch is not None:
        kept[CLASSIFIED_PATCH] = patch
    stamp = stamp | {"behind": behind} | kept if stamp is not None else None
    finish_manifest(out, stamp, now, names)
    prune_patches(out, patch)
    return Refresh("incremental", person_weeks=n_keys, people=n_people, tables=names)


def _refresh_cover_mail(a, out: Path) -> None:
    """The stored cover-yourself mail (per person-week, of the person's own sent mail) with the
    recomputed person-weeks' rows in place: ``person_days`` holds only theirs by now."""
    fresh = cover_mail(a)
    a.con.register("fresh_cover_mail", fresh)
    stored = sql_string(out / COVER_MAIL / f"{COVER_MAIL}.parquet")
    merged = read_sql("refresh_merge.sql").format(
        stored=stored, fresh="SELECT * FROM fresh_cover_mail", order="week, person"
    )
    write_frames(out / COVER_MAIL, {COVER_MAIL: a.con.sql(merged).df().astype(fresh.dtypes.to_dict())})
