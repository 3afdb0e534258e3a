"""Gmail into the lake, for one person (OAuth token) or a roster (service account).

Each mailbox runs through ``sync_account``: its messages land in batches, then its history
id is saved. Credentials, roster targets and refusals are handled as for Calendar (shared in
``timeaudit.lake.google_sync``): one person's failure is recorded and the others go on; a refused
personal token or an unreachable token endpoint stops the run with one line. The summary
counts messages, every HTTP request sent (a batch of calls is one; retries and token requests
included, and how many were retries) and the quota units of the calls Gmail answered
(Google's per-call costs), with the calls refused and sent again apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.base import Cursor
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
from connectors.google.http import ApiError, GoogleClient, RetryPolicy, TokenGate, build_service, http_error_details
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Message
from timeaudit.lake.google_sync import (
    AccountReport,
    Refused,
    Totals,
    Whose,
    counting,
    describe_failure,
    load_google_identity,
    refusal_error,
    run_accounts,
    targets,
)
from timeaudit.lake.shards import Shard, check_workers
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_account

TABLE = "messages"
BATCH_SIZE = 5000  # records per batch file


@dataclass
class MailboxReport(AccountReport):
    messages: int = 0  # records received, tombstones included
    added: int = 0
    updated: int = 0
    deleted: int = 0
    units: int = 0  # quota units of the calls Gmail answered
    refused: int = 0  # calls refused (rate limit, server fault) and sent again


@dataclass
class GmailSummary(Totals):
    mode: str  # "personal" | "service account"
    mailboxes: list[MailboxReport] = field(default_factory=list)

    reports = property(lambda self: self.mailboxes)
    messages = property(lambda self: self.total("messages"))
    added = property(lambda self: self.total("added"))
    updated = property(lambda self: self.total("updated"))
    deleted = property(lambda self: self.total("deleted"))
    units = property(lambda self: self.total("units"))
    refused = property(lambda self: self.total("refused"))

    def line(self) -> str:
        refused = f" ({self.refused:,} calls refused and sent again)" if self.refused else ""
        return (
            f"Gmail: {len(self.mailboxes)} mailbox(es), {self.messages:,} messages ({self.added:,} added, "
            f"{self.updated:,} updated, {self.deleted:,} deleted), {self.failed} failed, "
            f"{self.requests_text()}, {self.units:,} quota units{refused}"
        )


class Reporter(Protocol):
    def start(self, account: str) -> None: ...
    def progress(self, account: str, done: int, total: int) -> None: ...
    def done(self, report: MailboxReport) -> None: ...


class _Silent:
    def start(self, account: str) -> None:
        pass

    def progress(self, account: str, done: int, total: int) -> None:
        pass

    def done(self, report: MailboxReport) -> None:
        pass


def _live_messages(lake: Lake) -> dict[str, dict[str, tuple[datetime, datetime]]]:
    """account -> {message id: (ts, updated)} of the live Gmail records, read once before the run."""
    con = lake.connect()
    try:
        rows = con.execute("SELECT account, id, ts, updated FROM messages WHERE source = ?", [SOURCE]).fetchall()
    finally:
        con.close()
    out: dict[str, dict[str, tuple[datetime, datetime]]] = {}
    for account, id_, ts, updated in rows:
        out.setdefault(account, {})[id_] = (ts, updated)
    return out


def _failure(e: Exception, account: str) -> str:
    if isinstance(e, HttpError):
        status, reason, message = http_error_details(e)
        if status == 403:
            return (
                f"403 {reason or 'forbidden'}: {message}; {account} may not be read "
                "(with a service account: is gmail.metadata delegated for this user?)"
            )
        if status in (400, 404):
            return f"{status} {reason}: {message}; has {account} a Gmail mailbox?"
    return describe_failure(e, account)


def _sync_mailbox(
    lake: Lake,
    client: GoogleClient,
    account: str,
    settings: Settings,
    since: datetime,
    live: dict[str, tuple[datetime, datetime]],
    meter: QuotaMeter,
    reporter: Reporter,
) -> MailboxReport:
    report = MailboxReport(account)
    outcome: dict[str, str] = {}
    progress = Progress()

    def note(message: Message) -> None:
        before = live.get(message.id)
        if message.deleted:
            outcome[message.id] = "deleted" if before else "unchanged"
        elif before is None:
            outcome[message.id] = "added"
        else:
            outcome[message.id] = "updated" if message.updated != before[1] else "unchanged"

    def fetch(cursor: Cursor) -> Iterator[Message]:
        report.full_sync = not (cursor.value or {}).get("history_id")
        for message in iter_messages(
            client, account, cursor=cursor, settings=settings, since=since, known=live, meter=meter, progress=progress
        ):
            report.messages += 1
            note(message)
            yield message
            if report.messages % 500 == 0:
                reporter.progress(account, progress.fetched, progress.listed)
        report.full_sync = report.full_sync or cursor.reset

    units_before, refused_before = meter.units, meter.refused
    reporter.start(account)
    try:
        with counting(client, report):
            sync_account(lake, TABLE, SOURCE, account, fetch, batch_size=BATCH_SIZE)
    except (HttpError, RefreshError, TransportError, ApiError) as e:
        report.error = _failure(e, account)
        if auth.refused(e):
            raise Refused(e, report) from e
    finally:
        report.units, report.refused = meter.units - units_before, meter.refused - refused_before
    if not report.error:
        kinds = list(outcome.values())
        report.added, report.updated, report.deleted = (kinds.count(k) for k in ("added", "updated", "deleted"))
        reporter.progress(account, progress.fetched, progress.listed)
    reporter.done(report)
    return report


def sync_gmail(
    lake: Lake,
    settings: Settings,
    *,
    since: datetime | None = None,
    reporter: Reporter | None = None,
    identity: auth.Identity | None = None,
    policy: RetryPolicy | None = None,
    units_per_second: int = UNITS_PER_SECOND,
    units_per_minute: int = UNITS_PER_MINUTE,
    shard: Shard | None = None,
    workers: int = 1,
) -> GmailSummary:
    """Sync the saved identity's mailbox (a roster's, with a service account) into ``lake``;
    with ``shard`` only that share of the roster, on up to ``workers`` mailboxes at a time.

    A first sync reads the messages received since ``since`` (default: ``[google] weeks_back``
    weeks ago); later syncs read only what changed. Calls are paced under ``units_per_second``
    and ``units_per_minute`` quota units per mailbox (Google's per-user limits).
    """
    reporter = reporter or _Silent()
    lake.check_schema()
    workers = check_workers(workers)
    identity = load_google_identity(identity)
    since = since or (datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=settings.google.weeks_back))
    if since > datetime.now(UTC):
        raise UserError("--since is in the future; give the first day of the window, e.g. 2026-01-05")
    summary = GmailSummary("personal" if isinstance(identity, auth.UserIdentity) else "service account")
    gate = TokenGate()
    accounts = targets(identity, settings, [auth.GMAIL_METADATA], shard, whose=mailbox_owner(policy), gate=gate)
    live = _live_messages(lake)

    def sync_one_mailbox(account: str, credentials: object) -> MailboxReport:
        client = build_service(
            "gmail",
            "v1",
            credentials,
            policy=policy,
            requests_per_minute=settings.google.requests_per_minute,
            gate=gate,
        )
        meter = QuotaMeter(units_per_second, units_per_minute)  # Google's unit limits are per user
        try:
            return _sync_mailbox(lake, client, account, settings, since, live.get(account, {}), meter, reporter)
        except Refused as refusal:
            error = refusal_error(identity, account, refusal.cause)
            if error:
                raise error from None
            reporter.done(refusal.report)
            return refusal.report

    summary.mailboxes.extend(run_accounts(identity, accounts, sync_one_mailbox, workers))
    return summary


def mailbox_owner(policy: RetryPolicy | None = None) -> Whose:
    """Whose credentials these are, for Gmail: the mailbox address ``getProfile`` gives."""

    def whose(credentials: object, gate: TokenGate) -> str:
        return profile_address(build_service("gmail", "v1", credentials, policy=policy, gate=gate).service)

    return whose
