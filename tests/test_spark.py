"""The same SQL on Apache Spark: every file in timeaudit/{lake,analysis}/sql translates to Spark SQL that
Spark accepts, and PySpark in local mode computes the demo organisation's weekly metrics and
audit tables equal, row for row, to DuckDB's.

Rounding: floats (hours, minutes, shares, costs) agree to 1e-6; everything else exactly.
One SparkSession (local[2], two shuffle partitions) serves the whole module.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from timeaudit.analysis import metrics
from timeaudit.analysis.metrics import open_analysis
from timeaudit.cli import app
from timeaudit.core.config import load_settings
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import (
    CLASSIFIED,
    COVER_MAIL,
    DERIVED_DIR,
    DERIVED_TABLES,
    MANIFEST,
    PAGE_AUDIT,
    duckdb_writer,
    manifest_in_use,
    replace_folder,
    weekly_metrics,
    write_derived,
)

pyspark = pytest.importorskip("pyspark")
if not shutil.which("java"):
    pytest.skip("Spark needs Java", allow_module_level=True)

from timeaudit.outputs.spark import local_folder, open_session, run_metrics, translate  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

SQL_FOLDERS = [Path(__file__).parent.parent / "timeaudit" / layer / "sql" for layer in ("lake", "analysis")]
SQL_FILES = sorted(p.name for folder in SQL_FOLDERS for p in folder.glob("*.sql"))
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)  # the audit's "now": noon on the demo's end Monday
ROUNDING = 1e-6


@pytest.fixture(scope="module")
def spark():
    session = open_session("local[2]", {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def settings(demo_dir):
    return load_settings(demo_dir / "timeaudit.toml")


@pytest.fixture(scope="module")
def spark_out(spark, demo_dir, settings, tmp_path_factory) -> Path:
    """The derived tables computed by Spark; the session keeps every view the run made."""
    out = tmp_path_factory.mktemp("spark-derived")
    _, names = run_metrics(spark, str(demo_dir), settings, NOW, str(out))
    assert names == list(DERIVED_TABLES)
    return out


@pytest.fixture(scope="module")
def duckdb_out(demo_dir, settings, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("duckdb-derived")
    a = open_analysis(Lake(demo_dir), settings)
    write_derived(a, NOW, duckdb_writer(a, out))
    return out


def _runnable(name: str) -> str:
    """A SQL file as the code runs it: templates filled in, $parameters given a value."""
    sql = next((folder / name).read_text(encoding="utf-8") for folder in SQL_FOLDERS if (folder / name).exists())
    fill = {
        "table": "events",
        "raw": "raw_events",
        "name": "event_counterparts",
        "lists": "event_party_lists",
        "addresses": "any_value(p.addresses) AS addresses,",
    }
    if name == "changed_records.sql":  # the records of the files a run of commits added and removed
        fill["added"] = fill["removed"] = '(SELECT account, start AS t0, "end" AS t1 FROM events)'
    if name == "newest_per_key.sql":  # a batch being written, with each row's place in it
        fill["raw"] = "(SELECT *, 0 AS position FROM raw_events)"
    if name.startswith("party_"):  # records without their party key, or with it
        table = name.removesuffix(".sql").rsplit("_", 1)[1]
        fill["raw"] = f"raw_{table}" if name.startswith("party_keys_") else table
    used = {k: v for k, v in fill.items() if "{" + k + "}" in sql}
    sql = sql.format(**used) if used else sql  # a template; other braces are SQL (struct literals)
    return re.sub(r"\$\w+", "'someone@example.com'", sql)


@pytest.mark.parametrize("name", SQL_FILES)
def test_sql_file_translates_and_spark_accepts_it(name, spark, spark_out):
    tree = sqlglot.parse_one(_runnable(name), read="duckdb")
    translate(tree.sql(dialect="duckdb"))  # the whole statement, with ErrorLevel.RAISE
    query = tree.expression if isinstance(tree, exp.Create) else tree
    # Analysing a query checks every table, column and function against the views the
    # Spark run registered, without running it.
    schema = spark.sql(translate(query.sql(dialect="duckdb"))).schema
    assert len(schema.fields) > 0


def test_translation_keeps_duckdb_meaning(spark):
    """Where sqlglot's plain translation would differ from DuckDB, ours does not."""
    import duckdb

    sql = """SELECT epoch(TIMESTAMP '2026-03-29 00:59:59.25') AS seconds,
                    avg(CASE WHEN x < 1 THEN 1.0 ELSE 0.0 END) AS share,
                    strftime(timezone('Europe/London', TIMESTAMPTZ '2026-03-29 01:30:00+00'), '%a %d %b %H:%M') AS local
             FROM (SELECT 0 AS x UNION ALL SELECT 1 UNION ALL SELECT 2) AS t"""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    duck = con.execute(sql).fetchall()[0]
    on_spark = tuple(spark.sql(translate(sql)).collect()[0])
    assert duck[0] == on_spark[0] == 1774745999.25
    assert on_spark[1] == pytest.approx(duck[1], abs=1e-12)  # 1/3, not a rounded decimal
    assert duck[2] == on_spark[2] == "Sun 29 Mar 02:30"


def _frame(folder: Path, name: str) -> tuple[pd.DataFrame, object]:
    data = ds.dataset(folder / name, format="parquet").to_table()
    return data.to_pandas(), data.schema


def _assert_same_rows(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert len(spark) == len(duck)
    floats = [c for c in duck.columns if pd.api.types.is_float_dtype(duck[c])]
    keys = [c for c in duck.columns if c not in floats]
    duck = duck.sort_values(keys + floats).reset_index(drop=True)
    spark = spark.sort_values(keys + floats).reset_index(drop=True)
    pd.testing.assert_frame_equal(spark[keys], duck[keys])
    for c in floats:
        np.testing.assert_allclose(spark[c], duck[c], rtol=0, atol=ROUNDING, err_msg=c)


def test_weekly_metrics_on_spark_equal_duckdb(spark_out, demo_dir, settings):
    duck = weekly_metrics(Lake(demo_dir), settings)
    on_spark, _ = _frame(spark_out, "weekly_metrics")
    on_spark["week_start"] = pd.to_datetime(on_spark["week_start"]).dt.date
    assert len(duck) == 40 * 10  # every person, every demo week
    _assert_same_rows(duck, on_spark)
    assert on_spark["customer_meeting_hours"].sum() > 100  # the demo has real work in it


@pytest.mark.parametrize("name", list(DERIVED_TABLES))
def test_derived_table_on_spark_equals_duckdb(name, spark_out, duckdb_out):
    duck, duck_schema = _frame(duckdb_out, name)
    on_spark, spark_schema = _frame(spark_out, name)
    assert len(duck) > 0
    assert [(f.name, f.type) for f in spark_schema] == [(f.name, f.type) for f in duck_schema]
    _assert_same_rows(duck, on_spark)


def test_metrics_command_writes_duckdb_tables(demo_dir, tmp_path):
    result = CliRunner().invoke(
        app, ["metrics", "--data", str(demo_dir), "--config", str(demo_dir / "timeaudit.toml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    # and what the dashboard's pages open on (write_page_audit)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*DERIVED_TABLES, COVER_MAIL, PAGE_AUDIT, *CLASSIFIED, MANIFEST]
    )
    weekly = pd.read_parquet(tmp_path / "weekly_metrics")
    assert len(weekly) == 400 and not list(tmp_path.glob(".*"))


def test_metrics_command_tells_duckdb_it_reads_local_folders():
    result = CliRunner().invoke(app, ["metrics", "--data", "s3a://bucket/timeaudit"])
    assert result.exit_code == 2
    assert "--engine spark" in result.output


def test_metrics_command_takes_spark_settings_only_for_spark(demo_dir):
    result = CliRunner().invoke(app, ["metrics", "--data", str(demo_dir), "--conf", "spark.driver.memory=6g"])
    assert result.exit_code == 2 and "--engine spark" in result.output
    result = CliRunner().invoke(app, ["metrics", "--engine", "spark", "--data", str(demo_dir), "--conf", "6g"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


# -- writing whole tables, and the dashboard reading them ------------------------------------
def test_spark_run_writes_whole_tables_and_a_manifest(spark_out):
    manifest = json.loads((spark_out / MANIFEST).read_text())
    assert manifest["engine"] == "spark" and manifest["tables"] == list(DERIVED_TABLES)
    assert not list(spark_out.glob(".*")), "no staging folder is left"
    assert all(list((spark_out / name).glob("part-*.parquet")) for name in DERIVED_TABLES)


def test_weekly_metrics_reads_spark_tables_as_dashboard_needs(spark_out, demo_dir, settings, tmp_path, monkeypatch):
    """A data folder whose derived tables Spark wrote (copies keep modification times, so the
    manifest written for the demo lake matches the copy) serves weekly_metrics unchanged."""
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    shutil.copytree(spark_out, data / DERIVED_DIR)
    lake = Lake(data)
    fresh = weekly_metrics(lake, settings, open_analysis(lake, settings))
    assert manifest_in_use(lake, settings) is not None

    def refuse(*_, **__):
        raise AssertionError("computed instead of reading Spark's table")

    monkeypatch.setattr(metrics, "open_analysis", refuse)
    stored = weekly_metrics(lake, settings)
    pd.testing.assert_frame_equal(stored, fresh, check_exact=False, rtol=0, atol=ROUNDING)


def test_a_failing_spark_write_leaves_the_old_table(spark, tmp_path):
    final = tmp_path / "weekly_metrics"
    spark.range(3).write.parquet(final.as_uri())
    failing = spark.sql("SELECT raise_error('boom') AS x FROM range(3)")
    with pytest.raises(Exception, match="boom"):
        replace_folder(final, lambda staging: failing.write.parquet(staging.as_uri()))
    assert [p.name for p in tmp_path.iterdir()] == ["weekly_metrics"]
    assert sorted(spark.read.parquet(final.as_uri()).toPandas()["id"]) == [0, 1, 2]


def test_local_folders_and_uris(spark, tmp_path):
    assert local_folder(spark, str(tmp_path)) == tmp_path
    assert local_folder(spark, tmp_path.as_uri()) == tmp_path
    assert local_folder(spark, "s3a://bucket/timeaudit") is None
