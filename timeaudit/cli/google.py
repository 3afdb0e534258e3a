"""`timeaudit auth google`, `timeaudit sync google-calendar` and `timeaudit sync gmail`: thin
commands over ``connectors.google.auth``, ``timeaudit.lake.google_sync`` and ``timeaudit.lake.gmail_sync``.

``timeaudit.cli`` registers ``auth_app`` as `auth` and ``sync_app`` as `sync`.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from timeaudit.cli.common import ConfigOption, DataOption, err, open_workspace, out, user_errors
from timeaudit.core.errors import UserError
from timeaudit.lake.shards import parse_shard

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


auth_app = typer.Typer(
    help="Connect timeaudit to your calendar and mail. Tokens are kept in your user config folder "
    "(mode 0600), never in the --data folder or the --config file.",
    no_args_is_help=True,
)
sync_app = typer.Typer(
    help="Pull records from a connected source into the lake; each sync command takes --data and --config "
    "and fetches only what changed since its last run.",
    no_args_is_help=True,
)


@auth_app.command("google")
@user_errors
def auth_google(
    client_secrets: Annotated[
        Path | None,
        typer.Option(
            "--client-secrets",
            help="OAuth client JSON (type 'Desktop app') for syncing your own calendar; see docs/google.md.",
        ),
    ] = None,
    service_account: Annotated[
        Path | None,
        typer.Option(
            "--service-account",
            help="Service-account JSON key with domain-wide delegation, for syncing every roster member.",
        ),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="Print the sign-in URL and read back the address instead of opening a browser."
        ),
    ] = False,
) -> None:
    """Authorise timeaudit to read Google Calendar and Gmail metadata (scopes calendar.readonly, gmail.metadata).

    With --client-secrets you sign in as yourself in a browser; with --service-account an
    administrator's delegated service account reads each roster member's calendar and mail
    headers (never bodies). Either
    replaces the credentials saved before.
    """
    from connectors.google import auth

    if bool(client_secrets) == bool(service_account):
        raise UserError("give exactly one of --client-secrets FILE (yourself) or --service-account KEY (the roster)")
    try:
        if service_account:
            identity = auth.save_service_account(service_account)
            out.print(f"Service account {identity.email} saved to {identity.path} (readable by you only).")
            out.print(
                "In the Google Admin console (Security > Access and data control > API controls > Domain-wide "
                f"delegation) allow client ID {_client_id(identity.path)} the scopes "
                f"{auth.CALENDAR_READONLY},{auth.GMAIL_METADATA} (or only the one of the source you sync); "
                "then run `timeaudit sync google-calendar` or `timeaudit sync gmail` with a roster."
            )
            return
        credentials = auth.authorize_installed_app(
            client_secrets,
            open_browser=not no_browser,
            read_redirect=lambda prompt: typer.prompt(prompt.rstrip(": "), err=True),
            announce=lambda text: err.print(text, highlight=False, soft_wrap=True),
        )
        account = _account_of(credentials)
        path = auth.save_user(credentials, account)
    except auth.AuthError as e:
        raise UserError(str(e)) from None
    out.print(f"Authorised {account}; token saved to {path} (readable by you only).")
    out.print("Next: `timeaudit sync google-calendar` and `timeaudit sync gmail`.")


def _client_id(key_path: Path) -> str:
    import json

    return str(json.loads(key_path.read_text(encoding="utf-8")).get("client_id", "(see the key file)"))


def _account_of(credentials) -> str:
    """The signed-in person's address: the id of their primary calendar (one request)."""
    from googleapiclient.errors import HttpError

    from connectors.google.auth import AuthError
    from connectors.google.calendar import primary_address
    from connectors.google.http import build_service, http_error_details

    try:
        return primary_address(build_service("calendar", "v3", credentials).service)
    except HttpError as e:
        status, reason, message = http_error_details(e)
        raise AuthError(
            f"signed in, but reading your primary calendar failed ({status} {reason}: {message}); "
            "check the Calendar API is enabled for the OAuth client's project"
        ) from None


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise UserError(f"{option} {value}: not a date; use YYYY-MM-DD, e.g. 2026-01-05") from None


def _outcome(report) -> str:
    return "full sync" if report.full_sync else "changes only"


class _ProgressReporter:
    """On a terminal: one live progress line per calendar, events and pages received so far."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[tuple[str, str], int] = {}
        self.pages: dict[tuple[str, str], int] = {}

    def start(self, account: str, calendar: str) -> None:
        key = (account, calendar)
        self.tasks[key] = self.progress.add_task(f"{account} {calendar}", total=None, pages=0, state="")
        self.pages[key] = 0

    def page(self, account: str, calendar: str, items: int) -> None:
        key = (account, calendar)
        self.pages[key] += 1
        self.progress.update(self.tasks[key], advance=items, pages=self.pages[key])

    def done(self, report) -> None:
        task = self.tasks.get((report.account, report.calendar))
        if task is not None:
            state = "[red]failed[/red]" if report.error else _outcome(report)
            self.progress.update(task, total=report.events, completed=report.events, state=state)


class _LineReporter:
    """Elsewhere (a log, cron): one plain line per calendar synced; failures come at the end."""

    def start(self, account: str, calendar: str) -> None:
        pass

    def page(self, account: str, calendar: str, items: int) -> None:
        pass

    def done(self, report) -> None:
        if not report.error:
            err.print(
                f"{report.account} {report.calendar}: {report.events:,} events, {report.pages} pages, "
                f"{_outcome(report)}",
                highlight=False,
                soft_wrap=True,
            )


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
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull Google Calendar events into the lake: yours, or with a service account every roster member's.

    The first run reads the whole window; later runs fetch only what changed. A window given
    with --since/--until that differs from the last one reads that window whole again.
    One person's failure is reported and the others go on; the exit code is then 1.
    """
    from timeaudit.lake.google_sync import sync_google_calendar

    # The client library warns of every 403 it sees; ours are retried or reported once.
    logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)
    lake, settings = open_workspace(data, config)
    first, last = _day(since, "--since"), _day(until, "--until")
    run = functools.partial(
        sync_google_calendar,
        lake,
        settings,
        calendars=calendar,
        since=first,
        until=last,
        workers=workers,
        shard=parse_shard(shard),
    )
    _run_sync(
        run,
        lines=_LineReporter(),
        live=_ProgressReporter,
        counts="{task.completed:,} events, {task.fields[pages]} pages {task.fields[state]}",
        failures=lambda s: [(f"{r.account} {r.calendar}", r.error) for r in s.calendars if r.error],
    )


def _run_sync(run, *, lines, live, counts: str, failures) -> None:
    """Run a sync with a live progress line per account on a terminal (``live``), plain lines
    elsewhere (``lines``); then each failure, the summary line, and exit code 1 if any failed."""
    if not err.is_terminal:
        summary = run(reporter=lines)
    else:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn(counts),
            TimeElapsedColumn(),
            console=err,
        )
        with progress:
            try:
                summary = run(reporter=live(progress))
            except UserError:
                progress.live.transient = True  # the error alone says what happened
                raise
    failed = failures(summary)
    for what, error in failed:
        err.print(f"[red]failed:[/red] {what}: {error}", highlight=False, soft_wrap=True)
    out.print(summary.line(), highlight=False)
    if failed:
        raise typer.Exit(1)


class _MailboxProgress:
    """On a terminal: one live progress line per mailbox, messages read of those to read."""

    def __init__(self, progress: Progress):
        self.bar = progress
        self.tasks: dict[str, int] = {}

    def start(self, account: str) -> None:
        self.tasks[account] = self.bar.add_task(account, total=None, state="")

    def progress(self, account: str, done: int, total: int) -> None:
        self.bar.update(self.tasks[account], completed=done, total=total or None)

    def done(self, report) -> None:
        task = self.tasks.get(report.account)
        if task is not None:
            state = "[red]failed[/red]" if report.error else _outcome(report)
            self.bar.update(task, state=f"{report.units:,} units, {state}")


class _MailboxLines:
    """Elsewhere (a log, cron): one plain line per mailbox synced; failures come at the end."""

    def start(self, account: str) -> None:
        pass

    def progress(self, account: str, done: int, total: int) -> None:
        pass

    def done(self, report) -> None:
        if not report.error:
            err.print(
                f"{report.account}: {report.messages:,} messages, {report.requests:,} requests "
                f"({report.retries:,} retries), {report.units:,} quota units, {_outcome(report)}",
                highlight=False,
                soft_wrap=True,
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
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Pull Gmail message metadata (headers and labels, never bodies) into the lake: yours, or with a
    service account every roster member's.

    The first run reads the window's messages; later runs read only what changed (Gmail's
    history), and read the window whole again when that history has expired. One person's
    failure is reported and the others go on; the exit code is then 1.
    """
    from timeaudit.lake.gmail_sync import sync_gmail

    logging.getLogger("googleapiclient.http").setLevel(logging.ERROR)
    lake, settings = open_workspace(data, config)
    run = functools.partial(
        sync_gmail, lake, settings, since=_day(since, "--since"), workers=workers, shard=parse_shard(shard)
    )
    _run_sync(
        run,
        lines=_MailboxLines(),
        live=_MailboxProgress,
        counts="{task.completed:,} messages read {task.fields[state]}",
        failures=lambda s: [(r.account, r.error) for r in s.mailboxes if r.error],
    )
