"""`timeaudit sync ...`: one thin command per registered source (``connectors.registry``), each
parsing its options and handing them to the sync driver (``timeaudit.lake.sync``).

``timeaudit.cli`` registers ``sync_app`` as `sync`.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from connectors.base import Report
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
from timeaudit.lake.shards import parse_shard
from timeaudit.lake.sync import Silent

WorkersOption = Annotated[
    int,
    typer.Option("--workers", min=1, help="Accounts synced at the same time (with a service account); at most 16."),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="Sync only share i of n of the roster, e.g. 2/8: run n machines or jobs with 1/n .. n/n, "
        "each account lands in exactly one.",
    ),
]

sync_app = typer.Typer(
    help="Pull records from a connected source into the lake; each sync command takes --data and --config "
    "and fetches only what changed since its last run.",
    no_args_is_help=True,
)


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise UserError(f"{option} {value}: not a date; use YYYY-MM-DD, e.g. 2026-01-05") from None


class _LiveReporter:
    """On a terminal: one live progress line per read (an account, or one of its calendars)."""

    def __init__(self, progress: Progress):
        self.bar = progress
        self.tasks: dict[tuple[str, str], int] = {}

    def start(self, report: Report) -> None:
        name = f"{report.account} {report.part}".strip()
        self.tasks[(report.account, report.part)] = self.bar.add_task(name, total=None, text="")

    def progress(self, report: Report) -> None:
        self.bar.update(self.tasks[(report.account, report.part)], text=report.progress_text())

    def done(self, report: Report) -> None:
        task = self.tasks.get((report.account, report.part))
        if task is not None:
            self.bar.update(task, total=1, completed=1, text=report.progress_text())


class _LineReporter(Silent):
    """Elsewhere (a log, cron): one plain line per read that went well; failures come at the end."""

    def done(self, report: Report) -> None:
        if not report.error:
            err.print(report.line(), highlight=False, soft_wrap=True)


def _run_sync(
    name: str, data, config, *, shard: str | None, workers: int, refresh: bool = True, **options: Any
) -> None:
    """Sync the registered source ``name`` with a live progress line per read on a terminal,
    plain lines elsewhere; then each failure, the summary line, the derived tables refreshed
    (unless ``refresh`` is off), and exit code 1 if any failed."""
    from timeaudit.lake.sync import sync_registered

    # The client library warns of every 403 it sees; ours are retried or reported once.
    logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)
    lake, settings = open_workspace(data, config)
    run = functools.partial(sync_registered, lake, settings, name, shard=parse_shard(shard), workers=workers, **options)
    if not err.is_terminal:
        summary = run(reporter=_LineReporter())
    else:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[text]}"),
            TimeElapsedColumn(),
            console=err,
        )
        with progress:
            try:
                summary = run(reporter=_LiveReporter(progress))
            except UserError:
                progress.live.transient = True  # the error alone says what happened
                raise
    failed = summary.failures()
    for what, error in failed:
        err.print(f"[red]failed:[/red] {what}: {error}", highlight=False, soft_wrap=True)
    out.print(summary.line(), highlight=False)
    if refresh:
        refresh_derived_tables(lake, settings)
    if failed:
        raise typer.Exit(1)


@sync_app.command("google-calendar")
@user_errors
def sync_google_calendar_command(
    calendar: Annotated[
        list[str] | None,
        typer.Option("--calendar", help="Calendar id to sync; repeat for several. (default: \\[google] calendars)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="First day of the full-sync window, YYYY-MM-DD. (default: \\[google] weeks_back)"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Day after the window, YYYY-MM-DD. (default: \\[google] weeks_ahead)"),
    ] = None,
    workers: WorkersOption = 1,
    shard: ShardOption = None,
    refresh: RefreshOption = True,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull Google Calendar events into the lake: yours, or with a service account every roster member's.

    The first run reads the whole window; later runs fetch only what changed. A window given
    with --since/--until that differs from the last one reads that window whole again.
    One person's failure is reported and the others go on; the exit code is then 1.
    """
    first, last = _day(since, "--since"), _day(until, "--until")
    _run_sync(
        "google-calendar",
        data,
        config,
        shard=shard,
        workers=workers,
        refresh=refresh,
        calendars=calendar,
        since=first,
        until=last,
    )


@sync_app.command("gmail")
@user_errors
def sync_gmail_command(
    since: Annotated[
        str | None,
        typer.Option(help="First day a first sync reads from, YYYY-MM-DD. (default: \\[google] weeks_back)"),
    ] = None,
    workers: WorkersOption = 1,
    shard: ShardOption = None,
    refresh: RefreshOption = True,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull Gmail message metadata (headers and labels, never bodies) into the lake: yours, or with a
    service account every roster member's.

    The first run reads the window's messages; later runs read only what changed (Gmail's
    history), and read the window whole again when that history has expired. One person's
    failure is reported and the others go on; the exit code is then 1.
    """
    _run_sync("gmail", data, config, shard=shard, workers=workers, refresh=refresh, since=_day(since, "--since"))


@sync_app.command("microsoft")
@user_errors
def sync_microsoft_command(
    since: Annotated[
        str | None,
        typer.Option(help="First day of the window, YYYY-MM-DD. (default: \\[microsoft] weeks_back)"),
    ] = None,
    workers: WorkersOption = 1,
    shard: ShardOption = None,
    refresh: RefreshOption = True,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull Outlook calendars and mail metadata (never bodies) from Microsoft 365 into the lake: yours, or
    with an app every roster member's and every [[shared_mailboxes]] one.

    The first run reads the window (calendarView and each mail folder); later runs fetch only
    what changed (Graph's delta links), and read a part whole again when Graph has forgotten
    its delta. One mailbox's failure is reported and the others go on; the exit code is then 1.
    """
    _run_sync("microsoft", data, config, shard=shard, workers=workers, refresh=refresh, since=_day(since, "--since"))


AccountOption = Annotated[
    list[str] | None,
    typer.Option("--account", help="Sync only this configured account; repeat for several. (default: all)"),
]


@sync_app.command("imap")
@user_errors
def sync_imap_command(
    account: AccountOption = None,
    since: Annotated[
        str | None,
        typer.Option(help="First day a first sync reads from, YYYY-MM-DD. (default: the account's weeks_back)"),
    ] = None,
    workers: WorkersOption = 1,
    shard: ShardOption = None,
    refresh: RefreshOption = True,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull mail metadata (header fields and flags, never bodies) from the [[imap]] accounts of the settings.

    TLS by default; each password is read from the account's password_file (mode 0600), or with
    auth = "xoauth2" an OAuth token from its token_file (renewed in place) or token_command. The
    first run reads every folder's messages since --since (junk and trash skipped); later runs
    ask each folder whether anything changed and read only that (QRESYNC where offered). A
    server that cannot be reached, a refused login or token or an untrusted certificate stops
    the run with the fix (exit 2).
    """
    _run_sync(
        "imap",
        data,
        config,
        shard=shard,
        workers=workers,
        refresh=refresh,
        accounts=account,
        since=_day(since, "--since"),
    )


@sync_app.command("caldav")
@user_errors
def sync_caldav_command(
    account: AccountOption = None,
    workers: WorkersOption = 1,
    shard: ShardOption = None,
    refresh: RefreshOption = True,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull calendar events from the [[caldav]] accounts of the settings (Nextcloud, iCloud, Fastmail, ...).

    Calendars are discovered from each account's URL; later runs fetch only what changed (WebDAV
    sync tokens, else ETags), and events deleted upstream are deleted. Events are read like
    `timeaudit import ics` reads them. A server that cannot be reached, a refused login or an
    untrusted certificate stops the run with the fix (exit 2).
    """
    _run_sync("caldav", data, config, shard=shard, workers=workers, refresh=refresh, accounts=account)


@sync_app.command("slack")
@user_errors
def sync_slack_command(
    since: Annotated[
        str | None,
        typer.Option(help="First day a first sync reads from, YYYY-MM-DD. (default: \\[slack] weeks_back)"),
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull chat metadata (never the text) from a Slack workspace with the token in \\[slack] token_file.

    Reads the users (for their emails), the conversations the token may read (public, private,
    group DMs, DMs; Slack Connect channels with the other organisations' domains), each one's
    history since the last sync and its recent threads. Rate limits are waited out. A refused
    token stops the run with the fix (exit 2).
    """
    _run_sync("slack", data, config, shard=None, workers=1, since=_day(since, "--since"))
