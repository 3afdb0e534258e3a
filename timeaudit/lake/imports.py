"""Exports brought in by hand: .ics calendars, mail files and Slack workspace exports, each read by its mirror source
(``connectors.ics.source``, ``connectors.mail.source``) and run by the sync driver."""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from connectors.files import Progress
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.lake.mirror import ImportReport
from timeaudit.lake.store import Lake, utc_now
from timeaudit.lake.sync import run_source


def import_window(settings: Settings, since: date | None, until: date | None) -> tuple[datetime, datetime]:
    today = utc_now().date()
    start = since or today - timedelta(weeks=settings.imports.weeks_back)
    end = until or today + timedelta(weeks=settings.imports.weeks_ahead)
    if end <= start:
        raise UserError("--since must be before --until; give the first day and the day after the window")
    return datetime.combine(start, time(0), tzinfo=UTC), datetime.combine(end, time(0), tzinfo=UTC)


def _without_cycle_collection(function):
    """Runs ``function`` with Python's cycle collector paused. An import holds hundreds of
    thousands of records, none in a cycle, and the collector went over all of them again and
    again as they were made: a fifth of an import's time."""

    @functools.wraps(function)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return paused


@_without_cycle_collection
def import_ics(
    lake: Lake,
    settings: Settings,
    paths: Iterable[Path],
    account: str,
    *,
    since: date | None = None,
    until: date | None = None,
    progress: Progress | None = None,
    base: Path | None = None,
) -> ImportReport:
    """Import calendar exports (.ics files, or .zip files of them) into ``account``'s calendar
    (``connectors.ics.source``); ``base``: where uploaded files were put, for their places."""
    from connectors.ics.source import IcsSource

    window = import_window(settings, since, until)
    [report] = run_source(lake, IcsSource(settings, list(paths), _account(account), window, progress, base))
    return report


@_without_cycle_collection
def import_mail(
    lake: Lake,
    settings: Settings,
    paths: Iterable[Path],
    account: str,
    *,
    aliases: Iterable[str] = (),
    progress: Progress | None = None,
    base: Path | None = None,
) -> ImportReport:
    """Import mbox files, Maildirs, folders of message files and trees of them (headers only)
    into ``account``'s mail (``connectors.mail.source``)."""
    from connectors.mail.source import MailSource

    aliases = [_account(a) for a in aliases]
    [report] = run_source(lake, MailSource(settings, list(paths), _account(account), aliases, progress, base))
    return report


@_without_cycle_collection
def import_slack(lake: Lake, settings: Settings, path: Path, *, progress: Progress | None = None) -> ImportReport:
    """Import a Slack workspace export (.zip): chat metadata, never the text (``connectors.slack.export``)."""
    from connectors.slack.export import SlackExportSource

    [report] = run_source(lake, SlackExportSource(settings, path, progress))
    return report


def _account(value: str) -> str:
    address = value.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise UserError(f"--account {value!r}: not an email address; give whose calendar or mailbox this is")
    return address
