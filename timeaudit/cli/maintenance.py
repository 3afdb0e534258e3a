"""`timeaudit compact` and `doctor`: keep the lake's files few and current, and say what data,
settings and sources are found and what is wrong."""

from __future__ import annotations

import typer

from timeaudit.cli.common import ConfigOption, DataOption, open_workspace, out, user_errors
from timeaudit.lake.store import default_data_dir


@user_errors
def compact(data: DataOption = None, config: ConfigOption = None) -> None:
    """Merge each source's small batch files into one, keeping only the latest versions, and
    bring files written by an older timeaudit up to date."""
    lake, _ = open_workspace(data, config)
    lake.check_schema()
    for table in ("events", "messages"):
        outdated = lake.outdated(table)
        before, after = lake.compact(table)
        out.print(f"{table}: {compaction_line(before, after, outdated)}")


def compaction_line(before: int, after: int, outdated: int) -> str:
    def files(n: int) -> str:
        return f"{n:,} file{'s' if n != 1 else ''}"

    if before > after:
        older = f" ({outdated:,} written by an older timeaudit)" if outdated else ""
        return f"{files(before)} merged into {after:,}{older}"
    if outdated:
        return f"{files(outdated)} brought up to date"
    return f"{files(before)}, nothing to do"


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
