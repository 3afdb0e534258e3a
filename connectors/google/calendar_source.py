"""Google Calendar as a source: each calendar of each account is one read, with its own sync
token kept beside the account's other calendars' tokens in the account's cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from connectors.base import Cursor, Report
from connectors.google import auth
from connectors.google.calendar import (
    SOURCE,
    FullSyncRequired,
    Window,
    belongs_to,
    default_window,
    iter_events,
    primary_address,
)
from connectors.google.http import RetryPolicy, TokenGate
from connectors.google.source import ERRORS, GoogleReport, GoogleSource, GoogleSummary, counting
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Event

BATCH_SIZE = 2500  # one full Google page per batch file at most


@dataclass
class CalendarReport(GoogleReport):
    pages: int = 0

    calendar = property(lambda self: self.part)
    events = property(lambda self: self.records)  # records received, tombstones included
    cancelled = property(lambda self: self.deleted)

    def line(self) -> str:
        return f"{self.account} {self.calendar}: {self.events:,} events, {self.pages} pages, {self.outcome}"

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.events:,} events, {self.pages} pages {state}"


class CalendarSummary(GoogleSummary):
    calendars = property(lambda self: self.reports)
    cancelled = property(lambda self: self.deleted)

    def line(self) -> str:
        return (
            f"Google Calendar: {len(self.calendars)} calendar(s), {self.added:,} added, {self.updated:,} updated, "
            f"{self.cancelled:,} cancelled, {self.failed} failed, {self.requests_text()}"
        )


def resolve_window(settings: Settings, since: datetime | None, until: datetime | None) -> tuple[Window, dict[str, str]]:
    """The full-sync window, and the bounds the user chose (a calendar last synced with other
    bounds is read whole again; the default window moves with the clock and forces nothing)."""
    default = default_window(settings)
    window = Window(since or default.start, until or default.end)
    if window.end <= window.start:
        raise UserError("--since must be before --until; give the first and last day of the window")
    chosen = {}
    if since:
        chosen["time_min"] = _stamp(window.start)
    if until:
        chosen["time_max"] = _stamp(window.end)
    return window, chosen


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class CalendarSource(GoogleSource):
    """The calendars of the saved identity (every roster member's, with a service account)."""

    name = SOURCE
    table = "events"
    api = ("calendar", "v3")
    scope = auth.CALENDAR_READONLY
    held_columns = ("start", "end", "updated")
    errors = (*ERRORS, FullSyncRequired)
    forbidden = (
        "{account} may not read '{part}' (with a service account: is domain-wide delegation set up for this user?)"
    )

    def __init__(
        self,
        settings: Settings,
        *,
        calendars: list[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        identity: auth.Identity | None = None,
        policy: RetryPolicy | None = None,
    ):
        super().__init__(settings, identity=identity, policy=policy)
        self.batch_size = BATCH_SIZE
        self.window, self.chosen = resolve_window(settings, since, until)
        self.calendars = calendars or settings.google.calendars

    def owner(self, credentials: object, gate: TokenGate) -> str:
        """Whose credentials these are, for Calendar: the id of their primary calendar."""
        return primary_address(self.build(credentials, gate).service)

    def parts(self, account: str) -> Sequence[str]:
        return self.calendars

    def report(self, account: str, part: str) -> CalendarReport:
        return CalendarReport(account, part)

    def summary(self, reports: Sequence[Report]) -> CalendarSummary:
        return CalendarSummary(reports, self.mode)

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Event]:
        """One calendar's (``cursor.part``) changed events; the window whole when its token is
        missing, dead, or was saved for other bounds than those chosen now."""
        report = report or self.report(account, cursor.part)
        calendar, client = cursor.part, self.client(account)
        tokens = dict((cursor.value or {}).get("calendars", {}))
        stored = tokens.get(calendar)
        if stored and any(stored.get(bound) != value for bound, value in self.chosen.items()):
            stored = None
        inner = Cursor(value=stored)
        report.full_sync = not (stored and stored.get("sync_token"))
        live = {i: v for i, v in cursor.held.items() if belongs_to(calendar, account, i)}

        def known(w: Window) -> dict[str, datetime]:
            return {i: updated for i, (start, end, updated) in live.items() if w.overlaps(start, end)}

        def on_page(items: int) -> None:
            report.pages += 1
            report.show_progress()

        with counting(client, report):
            yield from iter_events(
                client.service,
                calendar,
                account,
                cursor=inner,
                settings=self.settings,
                window=self.window,
                known=known,
                on_page=on_page,
            )
        report.full_sync = report.full_sync or inner.reset
        if inner.new_value is not None:
            tokens[calendar] = inner.new_value
            cursor.new_value = dict(cursor.value or {}, calendars=tokens)

    def missing(self, status: int, reason: str, message: str, report: Report) -> str | None:
        if status == 404:
            return f"404 {reason or 'notFound'}: no calendar '{report.part}' for {report.account}"
        return None

    def describe(self, error: Exception, report: Report) -> str:
        if isinstance(error, FullSyncRequired):
            return "410 Gone while paging a full sync; run the sync again"
        return super().describe(error, report)
