"""`timeaudit import ics` and `timeaudit import mail`: thin commands over ``timeaudit.lake.imports``."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from timeaudit.cli.common import (
    ConfigOption,
    DataOption,
    RefreshOption,
    err,
    open_workspace,
    out,
    refresh_derived_tables,
    user_errors,
)
from timeaudit.core.errors import UserError
from timeaudit.lake.imports import import_ics, import_mail, import_slack
from timeaudit.lake.mirror import ImportReport

SKIPPED_SHOWN = 20

import_app = typer.Typer(
    help="Bring in exported calendars, mail and Slack workspaces instead of connecting an account. "
    "Importing the same export again changes nothing; a newer export updates what changed and removes what "
    "it no longer holds.",
    no_args_is_help=True,
)

AccountOption = Annotated[
    str,
    typer.Option("--account", help="Whose calendar or mailbox this is, e.g. ann@example.com.", show_default=False),
]


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value}: not a date; use YYYY-MM-DD, e.g. 2026-01-05") from None


def _amount(done: int, total: int | None, unit: str) -> str:
    if unit == "bytes" and total is None:  # a Maildir or .eml folder counts messages
        return f"{done:,} messages"
    if unit == "bytes":
        shown = f"{done / 1e6:,.1f} MB"
        return shown + (f" of {total / 1e6:,.1f} MB" if total else "")
    return f"{done:,} {unit}" + (f" of {total:,}" if total else "")


def _run_with_progress(run, unit: str) -> ImportReport:
    """Run an import with a progress bar per file on a terminal, silently elsewhere."""
    if not err.is_terminal:
        return run(None)
    tasks: dict[str, int] = {}
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[amount]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:

        def advance(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total, amount="")
            bar.update(tasks[name], completed=done, total=total, amount=_amount(done, total, unit))

        return run(advance)


def _print_report(report: ImportReport) -> None:
    for problem in report.failed_files:
        err.print(f"[red]unreadable:[/red] {problem}", highlight=False, soft_wrap=True)
    for item, reason in report.skipped[:SKIPPED_SHOWN]:
        err.print(f"[yellow]skipped:[/yellow] {item}: {reason}", highlight=False, soft_wrap=True)
    if len(report.skipped) > SKIPPED_SHOWN:
        err.print(f"... and {len(report.skipped) - SKIPPED_SHOWN:,} more skipped", highlight=False)
    out.print(report.line(), highlight=False)


def _refresh(lake, settings, refresh: bool) -> None:
    if refresh:
        refresh_derived_tables(lake, settings)


@import_app.command("ics")
@user_errors
def import_ics_command(
    files: Annotated[list[Path], typer.Argument(help=".ics files, or .zip files holding them.", show_default=False)],
    account: AccountOption,
    since: Annotated[
        str | None, typer.Option(help="First day of recurring events to expand, YYYY-MM-DD. (default: \\[imports])")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Day after the last, YYYY-MM-DD. (default: \\[imports])")] = None,
    data: DataOption = None,
    config: ConfigOption = None,
    refresh: RefreshOption = True,
) -> None:
    """Import calendar exports from Google Calendar, Outlook/Exchange, Apple Calendar or Thunderbird.

    Recurring events are expanded over the window (\\[imports] weeks_back/weeks_ahead). Each
    calendar in the files is kept apart, so importing a newer export of one calendar never
    touches another. Broken items are skipped and listed; exit code 2 when no file was readable.
    """
    lake, settings = open_workspace(data, config)
    first, last = _day(since, "--since"), _day(until, "--until")
    report = _run_with_progress(
        lambda progress: import_ics(lake, settings, files, account, since=first, until=last, progress=progress),
        unit="calendars",
    )
    _print_report(report)
    _refresh(lake, settings, refresh)


@import_app.command("mail")
@user_errors
def import_mail_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="mbox files (Google Takeout, Thunderbird), Maildir folders and trees, or message files and folders.",
            show_default=False,
        ),
    ],
    account: AccountOption,
    alias: Annotated[
        list[str] | None,
        typer.Option("--alias", help="Another address of the same person; repeat for several."),
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
    refresh: RefreshOption = True,
) -> None:
    """Import mail headers (never bodies) from mbox, Maildir or message files; the format is detected.

    A folder is read whole, each subfolder a mailbox (Maildir++, Thunderbird, Evolution, MH);
    drafts, spam and trash folders are left out. A message held by several mailboxes counts
    once. Sent mail is recognised by its folder (Sent, Sent Items, ...), Takeout's labels, or the
    sender being --account or an --alias. Broken messages are skipped and listed; exit code 2
    when no file was readable.
    """
    lake, settings = open_workspace(data, config)
    report = _run_with_progress(
        lambda progress: import_mail(lake, settings, paths, account, aliases=alias or [], progress=progress),
        unit="bytes",
    )
    _print_report(report)
    _refresh(lake, settings, refresh)


@import_app.command("slack")
@user_errors
def import_slack_command(
    export: Annotated[Path, typer.Argument(help="The .zip of a Slack workspace export.", show_default=False)],
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Import chat metadata (who, when, where, threads, mentions, reactions; never the text) from a Slack export.

    Public and private channels, group DMs, DMs and Slack Connect channels, as far as the export
    holds them. The zip is read one file at a time, within \\[imports] max_zip_mb and
    max_zip_ratio. Importing a newer export updates what changed within the days it spans.
    """
    lake, settings = open_workspace(data, config)
    report = _run_with_progress(
        lambda progress: import_slack(lake, settings, export, progress=progress),
        unit="days",
    )
    _print_report(report)
