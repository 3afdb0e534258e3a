"""`timeaudit compact`, `upgrade` and `doctor`: keep the lake's files few, convert a lake of the
format before Delta tables, and say what data, settings and sources are found and what is wrong."""

from __future__ import annotations

import typer

from timeaudit.cli.common import ConfigOption, DataOption, open_workspace, out, user_errors
from timeaudit.lake.store import default_data_dir


@user_errors
def compact(data: DataOption = None, config: ConfigOption = None) -> None:
    """Rewrite each table's small files into few (Delta optimize), then remove the files no
    snapshot of the last hour uses (vacuum), so a reader mid-read keeps its files."""
    lake, _ = open_workspace(data, config)
    lake.check_schema()
    for table in ("events", "messages"):
        before, after = lake.compact(table)
        out.print(f"{table}: {compaction_line(before, after)}")


def compaction_line(before: int, after: int) -> str:
    def files(n: int) -> str:
        return f"{n:,} file{'s' if n != 1 else ''}"

    if before > after:
        return f"{files(before)} merged into {after:,}"
    return f"{files(before)}, nothing to do"


@user_errors
def upgrade(data: DataOption = None, config: ConfigOption = None) -> None:
    """Convert a lake of the format before Delta tables (batch files) into Delta tables."""
    from timeaudit.lake.upgrade import upgrade_lake

    lake, _ = open_workspace(data, config)
    converted = upgrade_lake(lake)
    if not converted:
        out.print(f"{lake.lake_dir}: already Delta tables, nothing to do")
    for table in converted:
        out.print(table.line(), highlight=False)


@user_errors
def doctor(data: DataOption = None, config: ConfigOption = None) -> None:
    """Show what data, settings and sources timeaudit finds, and what is wrong."""
    from timeaudit.lake.doctor import diagnose

    data_dir = data or default_data_dir()
    findings = diagnose(data_dir, config)
    problems = 0
    for level, text in findings:
        colour = {"ok": "green", "info": "cyan", "warn": "yellow", "error": "red"}[level]
        out.print(f"[{colour}]{level:>5}[/{colour}]  {text}", highlight=False, soft_wrap=True)
        problems += level == "error"
    if problems:
        raise typer.Exit(2)
