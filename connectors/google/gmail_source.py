"""Gmail as a source: each account's mailbox is one read, its history id the cursor.

Calls are paced under a number of quota units per second and per minute for each mailbox
(Google's per-user limits). A report counts every HTTP request sent (a batch of calls is
one; retries and token requests included) and the quota units of the calls Gmail answered
(Google's per-call costs), with the calls refused and sent again apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connectors.base import Cursor, Report
from connectors.google import auth
from connectors.google.gmail import (
    SOURCE,
    UNITS_PER_MINUTE,
    UNITS_PER_SECOND,
    Progress,
    QuotaMeter,
    iter_messages,
    profile_address,
)
from connectors.google.http import RetryPolicy, TokenGate
from connectors.google.source import GoogleReport, GoogleSource, GoogleSummary, counting
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Message

BATCH_SIZE = 5000  # records per batch file
PROGRESS_EVERY = 500  # messages between two progress updates


@dataclass
class MailboxReport(GoogleReport):
    units: int = 0  # quota units of the calls Gmail answered
    refused: int = 0  # calls refused (rate limit, server fault) and sent again
    listed: int = 0  # message ids to read (full sync) or changes to apply (incremental)
    fetched: int = 0

    messages = property(lambda self: self.records)  # records received, tombstones included

    def line(self) -> str:
        return (
            f"{self.account}: {self.messages:,} messages, {self.requests:,} requests "
            f"({self.retries:,} retries), {self.units:,} quota units, {self.outcome}"
        )

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.fetched:,} messages read {self.units:,} units, {state}"


class GmailSummary(GoogleSummary):
    mailboxes = property(lambda self: self.reports)
    messages = property(lambda self: self.total("records"))
    units = property(lambda self: self.total("units"))
    refused = property(lambda self: self.total("refused"))

    def line(self) -> str:
        refused = f" ({self.refused:,} calls refused and sent again)" if self.refused else ""
        return (
            f"Gmail: {len(self.mailboxes)} mailbox(es), {self.messages:,} messages ({self.added:,} added, "
            f"{self.updated:,} updated, {self.deleted:,} deleted), {self.failed} failed, "
            f"{self.requests_text()}, {self.units:,} quota units{refused}"
        )


class GmailSource(GoogleSource):
    """The mailbox of the saved identity (every roster member's, with a service account).

    A first sync reads the messages received since ``since`` (default: ``[google] weeks_back``
    weeks ago); later syncs read only what changed.
    """

    name = SOURCE
    table = "messages"
    api = ("gmail", "v1")
    scope = auth.GMAIL_METADATA
    held_columns = ("ts", "updated")
    forbidden = "{account} may not be read (with a service account: is gmail.metadata delegated for this user?)"

    def __init__(
        self,
        settings: Settings,
        *,
        since: datetime | None = None,
        identity: auth.Identity | None = None,
        policy: RetryPolicy | None = None,
        units_per_second: int = UNITS_PER_SECOND,
        units_per_minute: int = UNITS_PER_MINUTE,
    ):
        super().__init__(settings, identity=identity, policy=policy)
        self.batch_size = BATCH_SIZE
        now = datetime.now(UTC)
        self.since = since or (now.replace(microsecond=0) - timedelta(weeks=settings.google.weeks_back))
        if self.since > now:
            raise UserError("--since is in the future; give the first day of the window, e.g. 2026-01-05")
        self.units = (units_per_second, units_per_minute)

    def owner(self, credentials: object, gate: TokenGate) -> str:
        """Whose credentials these are, for Gmail: the mailbox address ``getProfile`` gives."""
        return profile_address(self.build(credentials, gate).service)

    def parts(self, account: str) -> Sequence[str]:
        return [""]

    def report(self, account: str, part: str) -> MailboxReport:
        return MailboxReport(account, part)

    def summary(self, reports: Sequence[Report]) -> GmailSummary:
        return GmailSummary(reports, self.mode)

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Message]:
        """The mailbox's changed messages since its history id; the window's when there is none."""
        report = report or self.report(account, cursor.part)
        client, progress = self.client(account), Progress()
        meter = QuotaMeter(*self.units)  # Google's unit limits are per user
        report.full_sync = not (cursor.value or {}).get("history_id")

        def show(report: Report) -> None:
            report.listed, report.fetched = progress.listed, progress.fetched
            report.show_progress()

        try:
            with counting(client, report):
                for message in iter_messages(
                    client,
                    account,
                    cursor=cursor,
                    settings=self.settings,
                    since=self.since,
                    known=cursor.held,
                    meter=meter,
                    progress=progress,
                ):
                    yield message
                    if report.records % PROGRESS_EVERY == 0:
                        show(report)
        finally:
            report.units, report.refused = meter.units, meter.refused
        report.full_sync = report.full_sync or cursor.reset
        show(report)

    def missing(self, status: int, reason: str, message: str, report: Report) -> str | None:
        if status in (400, 404):
            return f"{status} {reason}: {message}; has {report.account} a Gmail mailbox?"
        return None
