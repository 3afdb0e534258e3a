"""The metrics and audit tables on Apache Spark, from the same SQL files as DuckDB.

Nothing here defines a metric. The SQL in ``timeaudit/sql/`` is written for DuckDB and
translated at run time with sqlglot (DuckDB -> Spark dialect, see ``translate``); the rule
tables, the people and their days come from the same Python code as on DuckDB
(``metrics.prepare``), which talks to ``SparkConnection`` as it would to a DuckDB connection.
Only SQL and Arrow data reach Spark: there are no Python UDFs, so executors need no Python
packages, only the driver needs timeaudit.

Input: the lake's Delta tables, ``<data>/lake/<table>``, from a local path or an object-store
URI that ``deltalake`` opens. Spark reads the data files of one snapshot of each table (its
file list, as ``Lake.connect`` gives DuckDB), with ``source`` from the partition folders; the
table holds each record once, so nothing is ranked.

Output: each table of ``timeaudit.outputs.derived.DERIVED_TABLES`` as a folder of Parquet part
files, ``<out>/<name>/part-*.parquet``, by default ``<data>/derived/<name>/``. In a local
folder each table is written beside the old one and swapped in with renames, as the DuckDB
writer does (``derived.replace_folder``), and the run's manifest is written last; at an
object-store URI Spark's overwrite replaces the folder in place (docs/spark.md says what
readers see meanwhile). Timestamps are written as UTC microseconds, so pandas, DuckDB and the
dashboard read them as they read the lake.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import sqlglot
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import DataFrame, SparkSession
from sqlglot import exp

from timeaudit.analysis.metrics import Analysis, prepare
from timeaudit.core.config import Settings
from timeaudit.core.model import TABLES
from timeaudit.lake.sql import read_sql
from timeaudit.lake.store import PARTY_TABLES, Lake, party_lists_view
from timeaudit.outputs.derived import DERIVED_DIR, begin_manifest, finish_manifest, replace_folder, write_derived

DEFAULT_MASTER = "local[2]"


# -- translation ------------------------------------------------------------------------------
def translate(sql: str) -> str:
    """One statement or query of ``timeaudit/sql`` in Spark SQL. Raises when sqlglot meets a
    construct it cannot express in Spark, rather than emitting something that means less."""
    return _spark_sql(sqlglot.parse_one(sql, read="duckdb"))


def _spark_sql(tree: exp.Expression) -> str:
    return tree.transform(_spark_meaning).sql(dialect="spark", pretty=True, unsupported_level=sqlglot.ErrorLevel.RAISE)


def _spark_meaning(node: exp.Expression) -> exp.Expression:
    """Where sqlglot's direct translation would change a result, say it the Spark way."""
    if isinstance(node, exp.TimeToUnix):
        # DuckDB's epoch() keeps fractions of a second; Spark's unix_timestamp() drops them.
        micros = exp.Anonymous(this="unix_micros", expressions=[node.this])
        return exp.Paren(this=exp.Div(this=micros, expression=_double(exp.Literal.number(1_000_000))))
    if isinstance(node, exp.Anonymous) and node.name.lower() == "timezone" and len(node.expressions) == 2:
        # DuckDB timezone(zone, instant) is the local wall-clock time of the instant.
        zone, instant = node.expressions
        return exp.Anonymous(this="from_utc_timestamp", expressions=[instant, zone])
    if isinstance(node, exp.Anonymous) and node.name.lower() == "hash":
        # DuckDB's hash() is 64 bits; Spark's is 32, which would give the party lists of a
        # large organisation shared party keys (counterparts.sql). xxhash64 is Spark's 64-bit one.
        return exp.Anonymous(this="xxhash64", expressions=node.expressions)
    if isinstance(node, exp.Literal) and node.is_number and "." in node.this:
        # 60.0 is a DECIMAL in both dialects, but avg() of decimals is DOUBLE in DuckDB and a
        # rounded DECIMAL in Spark; as a double the arithmetic matches DuckDB's.
        return _double(node.copy())
    return node


def _double(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("double"))


# -- a DuckDB-shaped connection over Spark ----------------------------------------------------
class SparkResult:
    """What ``SparkConnection.execute`` returns: the DataFrame, and DuckDB's fetchall()/df()."""

    def __init__(self, frame: DataFrame | None):
        self.frame = frame

    def fetchall(self) -> list[tuple]:
        return [] if self.frame is None else [tuple(row) for row in self.frame.collect()]

    def df(self) -> pd.DataFrame:
        return self.frame.toArrow().to_pandas()


class SparkConnection:
    """The two calls the shared analysis code makes on a DuckDB connection, on Spark:
    ``register(name, pandas or Arrow table)`` becomes a temp view, and ``execute(sql)`` runs a
    DuckDB statement or query of ``timeaudit/sql`` translated to Spark SQL."""

    def __init__(self, spark: SparkSession):
        self.spark = spark

    def register(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        self.spark.createDataFrame(_spark_arrow(table)).createOrReplaceTempView(name)

    def execute(self, sql: str) -> SparkResult:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if not isinstance(tree, exp.Create):
            return SparkResult(self.spark.sql(_spark_sql(tree)))
        # CREATE [OR REPLACE] [TEMP] TABLE|VIEW name AS query: a temp view of the query's
        # DataFrame. A TABLE, which DuckDB materialises because it is read many times, is
        # computed now and kept on the executors: the queries reading it then plan against
        # the stored rows instead of re-planning (and re-running) everything behind them.
        frame = self.spark.sql(_spark_sql(tree.expression))
        if str(tree.args.get("kind", "")).upper() == "TABLE":
            frame = frame.localCheckpoint(eager=True)
        frame.createOrReplaceTempView(tree.this.name)
        return SparkResult(None)


def _spark_arrow(table: pa.Table) -> pa.Table:
    """Arrow types Spark takes: plain strings, microsecond timestamps, no all-null columns."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_null(t):
            t = pa.string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp("us", tz=t.tz)
        fields.append(pa.field(f.name, t))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None)


# -- session and lake -------------------------------------------------------------------------
def open_session(master: str | None = None, conf: dict[str, str] | None = None) -> SparkSession:
    """A SparkSession in UTC. ``master`` None: the session already running (a notebook or
    job on a managed service), else the master spark-submit chose, else local[2]."""
    active = SparkSession.getActiveSession()
    if master is None and active is not None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        active.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        return active
    builder = SparkSession.builder.appName("timeaudit")
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    master = master or (None if launched_by_spark_submit else DEFAULT_MASTER)
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
        # Hadoop's file systems apply their own umask (022), not the process's: tables stay private.
        "spark.hadoop.fs.permissions.umask-mode": "077",
    }
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            settings |= {
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.sql.shuffle.partitions": "8",
            }
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def register_lake(con: SparkConnection, data: str) -> None:
    """Views ``events`` and ``messages`` over one snapshot of each Delta table under ``data``."""
    spark = con.spark
    lake = data.rstrip("/") + "/lake"
    _check_format(data)
    for table, (_, schema) in TABLES.items():
        empty = spark.createDataFrame(_spark_arrow(schema.append(pa.field("source", pa.string())).empty_table()))
        location = f"{lake}/{table}"
        files = _snapshot_files(location)
        base = location if "://" in location else f"file://{Path(location).absolute()}"
        # The schema is given, so Spark reads no footers to infer it, and `source` (the
        # partition folder) is a string even where a source's name looks like a number.
        # The store's buckets (a partition folder too) are left out.
        reader = spark.read.schema(empty.schema).option("basePath", base)
        raw = reader.parquet(*files).select(*empty.columns) if files else empty
        raw.createOrReplaceTempView(f"raw_{table}")
        if table not in PARTY_TABLES:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM raw_{table}")
            continue
        # Spark computes the party keys with its own hash (see _spark_meaning) and finds the
        # lists in the records, instead of reading DuckDB's keys.
        keyed = read_sql(f"party_keys_{table}.sql").format(raw=f"raw_{table}")
        con.execute(f"CREATE OR REPLACE VIEW {table} AS " + keyed)
        lists = read_sql(f"party_lists_{table}.sql").format(raw=table)
        con.execute(f"CREATE OR REPLACE VIEW {party_lists_view(table)} AS " + lists)


def _snapshot_files(location: str) -> list[str]:
    """The data files of the latest snapshot of the Delta table at ``location``; none before it exists."""
    try:
        dt = DeltaTable(location)
    except TableNotFoundError:
        return []
    return [uri if "://" in uri else f"file://{Path(uri).absolute()}" for uri in dt.file_uris()]


def _check_format(data: str) -> None:
    folder = local_path(data)
    if folder is not None:
        Lake(folder).check_schema()


def local_path(location: str) -> Path | None:
    """``location`` as a local path, or None for an object-store URI."""
    if location.startswith("file:"):
        return Path(urlparse(location).path)
    return None if "://" in location else Path(location)


def open_spark_analysis(spark: SparkSession, data: str, settings: Settings) -> Analysis:
    """The lake, the rules and the people's days registered on Spark, records classified."""
    con = SparkConnection(spark)
    register_lake(con, data)
    return Analysis(con, prepare(con, settings), settings)  # type: ignore[arg-type]


def local_folder(spark: SparkSession, location: str) -> Path | None:
    """The local folder ``location`` names (a path or a file: URI), or None where it is on
    another file system: an object-store URI, or a bare path that a cluster's default file
    system (HDFS) resolves."""
    if location.startswith("file:"):
        return Path(urlparse(location).path)
    if "://" in location:
        return None
    try:
        default_fs = spark.sparkContext._jsc.hadoopConfiguration().get("fs.defaultFS") or "file:///"
    except Exception:  # Spark Connect has no SparkContext to ask: take the path as remote
        return None
    return Path(location) if default_fs.startswith("file:") else None


def run_metrics(
    spark: SparkSession, data: str, settings: Settings, now: datetime, out: str | None = None
) -> tuple[str, list[str]]:
    """Compute every derived table on Spark and write it under ``out`` (default
    ``<data>/derived``), with the manifest when the lake and ``out`` are local folders.
    Returns ``out`` and the names of the tables written."""
    out = (out or f"{data.rstrip('/')}/{DERIVED_DIR}").rstrip("/")
    local_out, local_lake = local_folder(spark, out), local_folder(spark, data)
    stamp = begin_manifest(local_out, Lake(local_lake) if local_lake else None, settings, "spark")
    a = open_spark_analysis(spark, data, settings)

    def write(name: str, query: str) -> None:
        frame = a.con.execute(query).frame
        if local_out is None:
            frame.write.mode("overwrite").parquet(f"{out}/{name}")
        else:
            replace_folder(local_out / name, lambda staging: frame.write.parquet(staging.absolute().as_uri()))

    names = write_derived(a, now, write)
    spark.catalog.clearCache()
    finish_manifest(local_out, stamp, now, names)
    return out, names
