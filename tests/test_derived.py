"""The tables `timeaudit metrics` writes, and weekly_metrics reading them back.

A run writes each table beside the old one and swaps it in, then ``manifest.json`` last;
``weekly_metrics(lake, settings)`` reads ``<data>/derived/weekly_metrics`` instead of
computing only while the manifest matches the lake, the settings and the roster, and gives
the same frame (columns, order, dtypes) computing would. The Spark side is in test_spark.py.
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from timeaudit.analysis import metrics
from timeaudit.analysis.metrics import open_analysis, typed_weekly
from timeaudit.cli import app
from timeaudit.core.config import load_settings
from timeaudit.core.model import EVENT_SCHEMA, MESSAGE_SCHEMA
from timeaudit.lake.store import Lake, capped_duckdb
from timeaudit.outputs import derived
from timeaudit.outputs.derived import (
    CLASSIFIED,
    CLASSIFIED_PATCH,
    COVER_MAIL,
    DERIVED_TABLES,
    MANIFEST,
    PAGE_AUDIT,
    manifest_in_use,
    replace_folder,
    run_duckdb,
    stored_classification,
    stored_cover_mail,
    stored_page_audit,
    weekly_metrics,
)
from timeaudit.outputs.refresh import refresh_derived

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
# DuckDB sums floats in parallel, so two runs over the same rows can differ in the last bit.
LAST_BITS = 1e-9


@pytest.fixture(scope="module")
def data(demo_dir, tmp_path_factory) -> Path:
    """A copy of the demo organisation with its tables written by `timeaudit metrics`."""
    folder = tmp_path_factory.mktemp("derived") / "data"
    shutil.copytree(demo_dir, folder)
    result = CliRunner().invoke(app, ["metrics", "--data", str(folder), "--config", str(folder / "timeaudit.toml")])
    assert result.exit_code == 0, result.output
    return folder


def computed(lake: Lake, settings) -> pd.DataFrame:
    return weekly_metrics(lake, settings, open_analysis(lake, settings))


def assert_same_weekly(stored: pd.DataFrame, fresh: pd.DataFrame, atol: float) -> None:
    """Same columns in the same order, same dtypes, same rows; floats to ``atol``."""
    pd.testing.assert_frame_equal(stored, fresh, check_exact=False, rtol=0, atol=atol)
    assert stored["week_start"].map(type).eq(type(fresh["week_start"].iloc[0])).all()


def no_computing(monkeypatch) -> None:
    def refuse(*_, **__):
        raise AssertionError("weekly_metrics computed instead of reading the stored table")

    monkeypatch.setattr(metrics, "open_analysis", refuse)


def test_metrics_writes_a_manifest_last(data):
    manifest = json.loads((data / "derived" / MANIFEST).read_text())
    assert manifest["engine"] == "duckdb"
    assert manifest["tables"] == [*DERIVED_TABLES, COVER_MAIL, PAGE_AUDIT, *CLASSIFIED]
    assert datetime.fromisoformat(manifest["computed_at"]).tzinfo is not None
    assert {"lake_version", "fingerprint"} <= set(manifest)
    assert not list((data / "derived").glob(".*")), "no staging folder or temporary file is left"


def test_weekly_metrics_reads_the_stored_table_as_computing_gives_it(data, monkeypatch):
    lake, settings = Lake(data), load_settings(data / "timeaudit.toml")
    fresh = computed(lake, settings)
    assert manifest_in_use(lake, settings) is not None
    no_computing(monkeypatch)
    stored = weekly_metrics(lake, settings)
    assert len(stored) == 400
    assert_same_weekly(stored, fresh, LAST_BITS)


def test_the_stored_chat_table_reads_back_as_computing_gives_it(data, monkeypatch):
    from timeaudit.analysis.chat import chat_weekly, typed_chat

    lake, settings = Lake(data), load_settings(data / "timeaudit.toml")
    fresh = chat_weekly(open_analysis(lake, settings))
    no_computing(monkeypatch)
    stored = typed_chat(derived.stored_table(lake, settings, "chat_weekly", ["week", "person"]))
    assert len(stored) == 400 and stored["chats_sent"].sum() > 0
    pd.testing.assert_frame_equal(stored, fresh, check_exact=False, rtol=0, atol=LAST_BITS)
    assert type(stored["week_start"].iloc[0]) is type(fresh["week_start"].iloc[0])


def test_the_stored_page_audit_is_what_computing_it_gives(copy):
    """`timeaudit metrics` stores the audit the Time wasters and Customers pages open on
    (everyone, the default weeks) and everyone's cover-yourself mail: read back, each table
    equals the live computation's, dtypes and all; the audit is read only for those weeks, and
    both only while the manifest matches the lake."""
    from timeaudit.analysis.audit import cover_mail, open_scope
    from timeaudit.analysis.page_audit import default_weeks, page_audit

    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    run_duckdb(lake, settings, NOW)
    weeks = default_weeks(sorted(weekly_metrics(lake, settings)["week"].unique()), NOW.date())
    assert weeks == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    assert json.loads((copy / "derived" / MANIFEST).read_text())["page_audit_weeks"] == weeks
    stored = stored_page_audit(lake, settings, weeks)
    a = open_analysis(lake, settings)
    live = page_audit(a, open_scope(a, weeks, now=NOW), None, cover_mail(a))
    assert stored is not None and list(stored) == sorted(live)
    for name, frame in live.items():
        assert not frame.empty or name in {"shared", "chat_waiting", "neglected"}, name
        pd.testing.assert_frame_equal(stored[name], frame, check_exact=False, rtol=0, atol=LAST_BITS, obj=name)
    pd.testing.assert_frame_equal(stored_cover_mail(lake, settings), cover_mail(a))
    assert stored_page_audit(lake, settings, weeks[1:]) is None
    columns = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
    (source,) = lake.sources("events")
    lake.write_arrow("events", source, lake.connect().sql(f"SELECT {columns} FROM events LIMIT 1").to_arrow_table())
    assert stored_page_audit(lake, settings, weeks) is None and stored_cover_mail(lake, settings) is None


def test_a_relative_data_path_matches_the_manifest(data, monkeypatch):
    monkeypatch.chdir(data.parent)
    assert manifest_in_use(Lake(Path(data.name)), load_settings(data / "timeaudit.toml")) is not None


@pytest.fixture
def copy(data, tmp_path) -> Path:
    """The data folder with its derived tables, to change without touching the others'."""
    folder = tmp_path / "data"
    shutil.copytree(data, folder)  # keeps modification times: the manifest still matches
    assert manifest_in_use(Lake(folder), load_settings(folder / "timeaudit.toml")) is not None
    return folder


def test_a_commit_landing_after_metrics_makes_the_manifest_stale(copy):
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    columns = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
    (source,) = lake.sources("events")
    one = lake.connect().sql(f"SELECT {columns} FROM events LIMIT 1").to_arrow_table()
    lake.write_arrow("events", source, one)  # the same record again: a new table version
    assert manifest_in_use(lake, settings) is None
    # Stored figures that disagree with the lake would show if they were read.
    weekly = copy / "derived" / "weekly_metrics" / "part-00000.parquet"
    frame = pd.read_parquet(weekly)
    frame["customer_meeting_hours"] = 999.0
    frame.to_parquet(weekly)
    assert (weekly_metrics(lake, settings)["customer_meeting_hours"] < 999).all()


def test_changed_settings_or_roster_make_the_manifest_stale(copy):
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    edited = settings.model_copy(deep=True)
    edited.rules.long_meeting_minutes += 15
    assert manifest_in_use(lake, edited) is None
    roster = copy / "people.csv"
    roster.write_text(roster.read_text() + "new.person@example.com,New Person,Support,,member,,,,\n")
    assert manifest_in_use(lake, settings) is None


def test_a_failing_run_leaves_the_old_tables_and_no_manifest(copy, monkeypatch):
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    old_daily = pd.read_parquet(copy / "derived" / "daily_metrics")

    def broken(a, now):
        yield "weekly_metrics", "SELECT 1 AS one"
        yield "daily_metrics", "SELECT * FROM no_such_table"

    monkeypatch.setattr(derived, "derived_queries", broken)
    with pytest.raises(Exception, match="no_such_table"):
        run_duckdb(lake, settings, NOW)
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "derived" / "daily_metrics"), old_daily)
    assert sorted(p.name for p in (copy / "derived").iterdir()) == sorted(
        [*DERIVED_TABLES, COVER_MAIL, PAGE_AUDIT, *CLASSIFIED]
    )
    # The weekly table was replaced before the failure: no manifest vouches for the mix.
    assert list(pd.read_parquet(copy / "derived" / "weekly_metrics").columns) == ["one"]
    assert manifest_in_use(lake, settings) is None
    assert len(weekly_metrics(lake, settings)) == 400  # computed from the lake


def test_replace_folder_keeps_the_old_folder_when_filling_fails(tmp_path):
    final = tmp_path / "weekly_metrics"
    final.mkdir()
    (final / "part-00000.parquet").write_text("old")

    def fill(staging: Path) -> None:
        staging.mkdir()
        (staging / "part-00000.parquet").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_folder(final, fill)
    assert [p.name for p in tmp_path.iterdir()] == ["weekly_metrics"]
    assert (final / "part-00000.parquet").read_text() == "old"

    replace_folder(final, lambda staging: (staging.mkdir(), (staging / "part-00000.parquet").write_text("new")))
    assert [p.name for p in tmp_path.iterdir()] == ["weekly_metrics"]
    assert (final / "part-00000.parquet").read_text() == "new"


def test_bench_weekly_step_computes_from_the_lake(copy, monkeypatch):
    """The benchmark times the computation, even where derived tables are in use."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))  # bench/ is not installed
    from bench.steps import weekly

    calls = []
    real = metrics.open_analysis
    monkeypatch.setattr(metrics, "open_analysis", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = weekly(copy)
    assert result["person_weeks"] == 400
    # The floor groups by UTC weeks, the metrics by each person's local week: a few more rows.
    assert result["floor_person_weeks"] >= 400 and result["over_floor"] > 1
    assert calls


def test_data_page_says_whether_the_stored_tables_are_in_use(copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    monkeypatch.setenv("TIMEAUDIT_DATA", str(copy))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    assert any("read from the tables `timeaudit metrics` computed with duckdb" in c.value for c in at.caption)
    (copy / "derived" / MANIFEST).unlink()
    at.switch_page("views/data.py").run()
    assert any("computed from the data when first shown" in c.value for c in at.caption)


# -- refreshing what changed -------------------------------------------------------------------
def _batch(lake: Lake, rng: random.Random) -> int:
    """One random sync's worth of changes, as merges of whole records: for one to three people,
    records moved, deleted, written again unchanged, and new ones (now and then in a week past
    the lake's last, which widens its span for everyone). Returns the records written."""
    con = lake.connect()
    accounts = [a for (a,) in con.execute("SELECT DISTINCT account FROM events ORDER BY account").fetchall()]
    chosen = rng.sample(accounts, rng.randint(1, 3))
    listing = ", ".join(f"'{a}'" for a in chosen)
    written = 0
    for table, schema, times in (("events", EVENT_SCHEMA, ("start", "end")), ("messages", MESSAGE_SCHEMA, ("ts",))):
        (source,) = lake.sources(table)
        columns = ", ".join(f'"{name}"' for name in schema.names)
        query = f"SELECT {columns} FROM {table} WHERE account IN ({listing}) ORDER BY id"
        rows = con.sql(query).to_arrow_table().to_pylist()
        picked = rng.sample(rows, min(len(rows), rng.randint(1, 25)))
        out = []
        for row in picked:
            row = dict(row, updated=row["updated"] + timedelta(seconds=1))
            what = rng.random()
            if what < 0.3:
                shift = timedelta(minutes=rng.choice([-90, -30, 15, 45, 60 * 26, 60 * 24 * 6]))
                row.update({t: row[t] + shift for t in times})
            elif what < 0.5:
                row["deleted"] = True
            elif what < 0.8:
                fresh = dict(row, id=f"{row['id']}-new-{rng.randrange(10**9)}")
                if rng.random() < 0.15:  # past the last week: a new week for everyone
                    fresh.update({t: fresh[t] + timedelta(weeks=rng.randint(1, 2)) for t in times})
                out.append(fresh)
            out.append(row)
        if out:
            lake.write_arrow(table, source, pa.Table.from_pylist(out, schema=schema))
            written += len(out)
    con.close()
    return written


@pytest.mark.parametrize("feed", [True, False], ids=["change-feed", "commit-files"])
def test_a_refresh_after_random_batches_equals_a_full_computation(copy, tmp_path, monkeypatch, feed):
    """Seeded random syncs, each followed by a refresh: the refreshed tables are, every time,
    what computing everything from the lake gives; whether the changes are read from the
    tables' change data feed (lakes made on 2026-12-03 have it on) or, for tables without it
    (as new tables are), from the files the commits swapped. The records classified anew are
    read through the patch over the stored ones, or written into them."""
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    weeks = json.loads((copy / "derived" / MANIFEST).read_text())["page_audit_weeks"]
    assert stored_page_audit(lake, settings, weeks) is not None
    if feed:
        for table in ("events", "messages"):
            lake.commit(table, lambda dt: dt.alter.set_table_properties({"delta.enableChangeDataFeed": "true"}))
        refresh_derived(lake, settings, NOW)
    assert refresh_derived(lake, settings, NOW).how == "current"
    monkeypatch.setattr(derived, "FOLD_SHARE", 0.125 if feed else 0.0)
    rng = random.Random(27 if feed else 28)
    patches, utc = [], capped_duckdb()
    for round_ in range(5 if feed else 3):
        assert _batch(lake, rng) > 0
        done = refresh_derived(lake, settings, NOW)
        assert done.how == "incremental", done
        assert 0 < done.person_weeks
        full, _ = run_duckdb(lake, settings, NOW, tmp_path / f"full-{round_}")
        for name, order in (("weekly_metrics", ["week", "person"]), ("daily_metrics", ["day", "person"])):
            refreshed = pd.read_parquet(copy / "derived" / name)
            computed_ = pd.read_parquet(full / name)
            assert refreshed[order].equals(computed_[order]), f"{name}: other rows after round {round_}"
            pd.testing.assert_frame_equal(refreshed, computed_, check_exact=False, rtol=0, atol=LAST_BITS)
        stored = stored_classification(lake, settings)  # a report reads the records refreshed
        for name in CLASSIFIED:
            computed_ = f"read_parquet('{full / name}/*.parquet')"
            refreshed, computed_ = (
                utc.sql(f"SELECT * FROM {rows} ORDER BY account, id").df() for rows in (stored[name], computed_)
            )
            pd.testing.assert_frame_equal(refreshed, computed_, obj=f"{name} after round {round_}")
        manifest = json.loads((copy / "derived" / MANIFEST).read_text())
        assert manifest_in_use(lake, settings) is not None
        assert set(manifest["behind"]) == set(DERIVED_TABLES) - {"weekly_metrics", "daily_metrics"} | {PAGE_AUDIT}
        assert stored_page_audit(lake, settings, weeks) is None  # behind: the dashboard computes it
        pd.testing.assert_frame_equal(
            stored_cover_mail(lake, settings),
            pd.read_parquet(full / COVER_MAIL / f"{COVER_MAIL}.parquet"),
            check_exact=False,
            rtol=0,
            atol=LAST_BITS,
            obj=f"cover mail after round {round_}",
        )
        patches.append(manifest.get(CLASSIFIED_PATCH))
        assert {f.name for f in (copy / "derived" / "classified_events").glob("patch-*")} == (
            {patches[-1]["files"]["classified_events"]} if patches[-1] else set()
        )
    # With the change feed the patch grew over the rounds, and past an eighth of the 40 people was
    # written into the tables; without it (FOLD_SHARE 0) it was written into them every time.
    assert (any(patches), None in patches) == (feed, True)
    # What the pages read: the refreshed table, as computing would give it.
    stored = weekly_metrics(lake, settings)
    pd.testing.assert_frame_equal(
        stored, typed_weekly(pd.read_parquet(full / "weekly_metrics")), check_exact=False, rtol=0, atol=LAST_BITS
    )


def test_a_refresh_recomputes_only_the_touched_person_weeks(copy):
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    con = lake.connect()
    (source,) = lake.sources("events")
    columns = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
    query = f"SELECT {columns} FROM events WHERE hour(start) = 10 ORDER BY id LIMIT 1"
    row = con.sql(query).to_arrow_table().to_pylist()[0]
    row.update(updated=row["updated"] + timedelta(seconds=1), start=row["start"] + timedelta(minutes=30))
    lake.write_arrow("events", source, pa.Table.from_pylist([row], schema=EVENT_SCHEMA))
    done = refresh_derived(lake, settings, NOW)
    # The old and new times fall in one week of one person (no event sits across midnight here).
    assert (done.how, done.person_weeks, done.people) == ("incremental", 1, 1)


def test_a_refresh_starts_over_when_it_cannot_tell_what_changed(copy):
    lake, settings = Lake(copy), load_settings(copy / "timeaudit.toml")
    assert refresh_derived(lake, settings, NOW).how == "current"
    edited = settings.model_copy(deep=True)
    edited.rules.long_meeting_minutes += 15
    done = refresh_derived(lake, edited, NOW)
    assert (done.how, done.why) == ("full", "settings, roster or code changed")
    assert refresh_derived(lake, edited, NOW).how == "current"
    (copy / "derived" / MANIFEST).unlink()
    assert refresh_derived(lake, edited, NOW).why == "no stored tables yet"


def test_a_refresh_starts_over_when_the_organisations_domains_change(tmp_path):
    """Without a roster the people are the lake's accounts, and their domains the organisation's.
    An account of a new domain makes every meeting with that domain internal, not only its own
    person-weeks: the refresh recomputes every table."""
    from timeaudit.core.config import Settings

    from records import event, utc

    lake, settings = Lake(tmp_path / "data"), Settings()
    settings.rules.external_is_customer = True
    ann, bob = "ann@alpha.example", "bob@beta.example"
    lake.write_batch("events", "test", [event(ann, utc(2026, 11, 16, 9), utc(2026, 11, 16, 11), with_=[bob])])
    run_duckdb(lake, settings, NOW)
    before = weekly_metrics(lake, settings)
    assert before["customer_meeting_hours"].sum() == 2  # an outsider, and outsiders count as customers
    lake.write_batch("events", "test", [event(bob, utc(2026, 11, 17, 9), utc(2026, 11, 17, 10))])
    done = refresh_derived(lake, settings, NOW)
    assert (done.how, done.why) == ("full", "the organisation's domains changed")
    after = weekly_metrics(lake, settings)
    assert after["customer_meeting_hours"].sum() == 0 and after["internal_meeting_hours"].sum() == 2
