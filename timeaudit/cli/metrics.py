"""`timeaudit metrics`: compute the weekly metrics and the audit tables and write them as
Parquet (``<data>/derived/<table>/``, see ``timeaudit.outputs.derived``), on DuckDB in this process
or on Apache Spark (``--engine spark``, docs/spark.md).

``--data`` is a string here, not a path, so that Spark can be given an object-store URI
(s3a://, abfss://, gs://); the settings and the roster are always local files of the driver.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, err, open_workspace, out, user_errors
from timeaudit.core.config import find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.store import DATA_ENV, default_data_dir


class Engine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


def _is_uri(location: str) -> bool:
    return "://" in location


def _spark_conf(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--conf {pair}: give KEY=VALUE, e.g. --conf spark.driver.memory=6g")
        settings[key.strip()] = value.strip()
    return settings


@user_errors
def metrics(
    engine: Annotated[Engine, typer.Option(help="Where the SQL runs: DuckDB here, or Apache Spark.")] = Engine.duckdb,
    master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL, e.g. local[4], yarn, spark://host:7077. (default: spark-submit's, else local[2])"
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", envvar=DATA_ENV, help="Data folder holding the lake; with Spark also a URI. (default: ./data)"
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--out", help="Where the tables go, one folder each. (default: <data>/derived)")
    ] = None,
    conf: Annotated[
        list[str] | None,
        typer.Option(
            "--conf",
            metavar="KEY=VALUE",
            help="A Spark setting for a session timeaudit starts, e.g. spark.driver.memory=6g; repeatable.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Compute the weekly metrics and the audit tables over the whole lake and write them as Parquet."""
    location = data or str(default_data_dir())
    now = datetime.now(UTC)
    started = time.monotonic()
    spark_conf = _spark_conf(conf or [])
    if engine is Engine.duckdb:
        if spark_conf:
            raise UserError("--conf: Spark settings go with --engine spark")
        if _is_uri(location) or (output and _is_uri(output)):
            raise UserError(f"--data {location}: the DuckDB engine reads a local folder; use --engine spark for URIs")
        from timeaudit.outputs.derived import run_duckdb

        lake, settings = open_workspace(Path(location), config)
        target, names = run_duckdb(lake, settings, now, Path(output) if output else None)
    else:
        try:
            from timeaudit.outputs.spark import open_session, run_metrics
        except ImportError:
            raise UserError("--engine spark needs pyspark; install it (pip install pyspark) and Java 17") from None
        local_dir = Path(".") if _is_uri(location) else Path(location)
        settings = load_settings(find_config(config, local_dir))
        err.print(f"Starting Spark ({master or 'spark-submit master, else local[2]'})…", highlight=False)
        from pyspark.sql import SparkSession

        ours = SparkSession.getActiveSession() is None  # a notebook's or job's session is left running
        spark = open_session(master, spark_conf)
        try:
            target, names = run_metrics(spark, location, settings, now, output)
        finally:
            if ours:
                spark.stop()
    out.print(
        f"{len(names)} tables written to {target} with {engine.value} in {time.monotonic() - started:.0f} s: "
        + ", ".join(names),
        highlight=False,
        soft_wrap=True,
    )
