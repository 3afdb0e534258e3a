"""Google Calendar into the lake, for one person (OAuth token) or a roster (service account),
and what every Google source's sync shares (``load_google_identity``, ``targets``,
``run_accounts``, ``Refused``/``refusal_error``, ``describe_failure``, ``AccountReport``,
``Totals``); ``timeaudit.lake.gmail_sync`` reuses them.

Each calendar of each account runs through ``sync_account``: its events land in batches,
then its sync token is saved beside the other calendars' tokens of that account. One
person's failure (403 not delegated, 404 unknown user or calendar, Google unavailable) is
recorded and the others go on; a refused personal token stops the run with one line
telling the user to authorise again, and so does a token endpoint that cannot be reached
(once for the whole run). The summary counts what changed and every request sent, retries
and token requests included, saying how many were retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.base import Cursor
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
from connectors.google.http import (
    ApiError,
    GoogleClient,
    RetryPolicy,
    TokenEndpointUnreachable,
    TokenGate,
    build_service,
    http_error_details,
)
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Event
from timeaudit.core.roster import load_people
from timeaudit.lake.shards import Shard, check_workers, in_shard, run_each
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_account

TABLE = "events"
R = TypeVar("R")
BATCH_SIZE = 2500  # one full Google page per batch file at most


class GoogleAuthError(UserError):
    """The saved Google credentials are missing or were refused."""


@dataclass
class AccountReport:
    """What one account's sync (a calendar of it, its mailbox) did, and the requests it cost."""

    account: str
    _: KW_ONLY
    requests: int = 0  # every request sent: retries and token requests included
    retries: int = 0  # of which requests repeating an earlier one
    full_sync: bool = False
    error: str = ""


@contextlib.contextmanager
def counting(client: GoogleClient, report: AccountReport) -> Iterator[None]:
    """Put the requests ``client`` sends meanwhile (and how many were retries) in ``report``."""
    stats = client.http.stats
    requests, retries = stats.requests, stats.retries
    try:
        yield
    finally:
        report.requests, report.retries = stats.requests - requests, stats.retries - retries


class Totals:
    """Sums over a summary's per-account ``reports``."""

    @property
    def reports(self) -> list[AccountReport]:
        raise NotImplementedError

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.reports)

    requests = property(lambda self: self.total("requests"))
    retries = property(lambda self: self.total("retries"))
    failed = property(lambda self: sum(1 for r in self.reports if r.error))

    def requests_text(self) -> str:
        return f"{self.requests:,} requests ({self.retries:,} {'retry' if self.retries == 1 else 'retries'})"


@dataclass
class CalendarReport(AccountReport):
    calendar: str
    pages: int = 0
    events: int = 0  # records received, tombstones included
    added: int = 0
    updated: int = 0
    cancelled: int = 0


@dataclass
class SyncSummary(Totals):
    mode: str  # "personal" | "service account"
    calendars: list[CalendarReport] = field(default_factory=list)

    reports = property(lambda self: self.calendars)
    added = property(lambda self: self.total("added"))
    updated = property(lambda self: self.total("updated"))
    cancelled = property(lambda self: self.total("cancelled"))

    def line(self) -> str:
        return (
            f"Google Calendar: {len(self.calendars)} calendar(s), {self.added:,} added, {self.updated:,} updated, "
            f"{self.cancelled:,} cancelled, {self.failed} failed, {self.requests_text()}"
        )


class Reporter(Protocol):
    def start(self, account: str, calendar: str) -> None: ...
    def page(self, account: str, calendar: str, items: int) -> None: ...
    def done(self, report: CalendarReport) -> None: ...


class _Silent:
    def start(self, account: str, calendar: str) -> None:
        pass

    def page(self, account: str, calendar: str, items: int) -> None:
        pass

    def done(self, report: CalendarReport) -> None:
        pass


class _LiveRecords:
    """What the lake holds live for this source, read once before the run: id -> (start, end, updated)."""

    def __init__(self, lake: Lake):
        con = lake.connect()
        try:
            rows = con.execute(
                'SELECT account, id, start, "end", updated FROM events WHERE source = ?', [SOURCE]
            ).fetchall()
        finally:
            con.close()
        self.by_account: dict[str, dict[str, tuple[datetime, datetime, datetime]]] = {}
        for account, id_, start, end, updated in rows:
            self.by_account.setdefault(account, {})[id_] = (start, end, updated)

    def of(self, account: str, calendar: str) -> dict[str, tuple[datetime, datetime, datetime]]:
        return {i: v for i, v in self.by_account.get(account, {}).items() if belongs_to(calendar, account, i)}


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


def describe_failure(e: Exception, account: str) -> str:
    """One line for a failure that is not the source's own business (tokens, Google down)."""
    if isinstance(e, HttpError):
        status, reason, message = http_error_details(e)
        return f"{status} {reason}: {message}".strip()
    if isinstance(e, RefreshError | TransportError):
        return f"Google refused a token for {account} ({auth.describe_refusal(e)})"
    return str(e)


def _failure(e: Exception, account: str, calendar: str) -> str:
    if isinstance(e, HttpError):
        status, reason, message = http_error_details(e)
        if status == 403:
            return (
                f"403 {reason or 'forbidden'}: {message}; {account} may not read '{calendar}' "
                "(with a service account: is domain-wide delegation set up for this user?)"
            )
        if status == 404:
            return f"404 {reason or 'notFound'}: no calendar '{calendar}' for {account}"
    if isinstance(e, FullSyncRequired):
        return "410 Gone while paging a full sync; run the sync again"
    return describe_failure(e, account)


def _sync_calendar(
    lake: Lake,
    client: GoogleClient,
    account: str,
    calendar: str,
    settings: Settings,
    window: Window,
    chosen: dict[str, str],
    live: dict[str, tuple[datetime, datetime, datetime]],
    reporter: Reporter,
) -> CalendarReport:
    report = CalendarReport(account, calendar)
    outcome: dict[str, str] = {}  # lake id -> added | updated | cancelled | unchanged

    def known(w: Window) -> dict[str, datetime]:
        return {i: updated for i, (start, end, updated) in live.items() if w.overlaps(start, end)}

    def on_page(items: int) -> None:
        report.pages += 1
        reporter.page(account, calendar, items)

    def note(event: Event) -> None:
        before = live.get(event.id)
        if event.deleted:
            outcome[event.id] = "cancelled" if before else "unchanged"
        elif before is None:
            outcome[event.id] = "added"
        else:
            outcome[event.id] = "updated" if event.updated != before[2] else "unchanged"

    def fetch(cursor: Cursor) -> Iterator[Event]:
        tokens = dict((cursor.value or {}).get("calendars", {}))
        stored = tokens.get(calendar)
        if stored and any(stored.get(bound) != value for bound, value in chosen.items()):
            stored = None  # a window with other bounds: read it whole
        inner = Cursor(value=stored)
        report.full_sync = not (stored and stored.get("sync_token"))
        for event in iter_events(
            client.service,
            calendar,
            account,
            cursor=inner,
            settings=settings,
            window=window,
            known=known,
            on_page=on_page,
        ):
            report.events += 1
            note(event)
            yield event
        report.full_sync = report.full_sync or inner.reset
        if inner.new_value is not None:
            tokens[calendar] = inner.new_value
            cursor.new_value = dict(cursor.value or {}, calendars=tokens)

    reporter.start(account, calendar)
    try:
        with counting(client, report):
            sync_account(lake, TABLE, SOURCE, account, fetch, batch_size=BATCH_SIZE)
    except (HttpError, RefreshError, TransportError, ApiError, FullSyncRequired) as e:
        report.error = _failure(e, account, calendar)
        if auth.refused(e):
            raise Refused(e, report) from e
    if not report.error:
        kinds = list(outcome.values())
        report.added, report.updated, report.cancelled = (kinds.count(k) for k in ("added", "updated", "cancelled"))
    reporter.done(report)
    return report


class Refused(Exception):
    """Google refused the credentials while syncing one account; ``report`` is that account's."""

    def __init__(self, cause: BaseException, report):
        super().__init__(str(cause))
        self.cause, self.report = cause, report


def load_google_identity(identity: auth.Identity | None = None) -> auth.Identity:
    """The identity given, else the saved one; a clear error when there is none or it is unusable."""
    try:
        identity = identity or auth.load_identity()
    except auth.AuthError as e:
        raise GoogleAuthError(str(e)) from None
    if identity is None:
        raise GoogleAuthError(
            f"no Google credentials in {auth.token_dir()}; run `timeaudit auth google --client-secrets "
            "client_secret.json` (or --service-account key.json) first"
        )
    return identity


Whose = Callable[[object, TokenGate], str]  # credentials -> the address they belong to (one request)


def targets(
    identity: auth.Identity,
    settings: Settings,
    scopes: list[str],
    shard: Shard | None = None,
    *,
    whose: Whose | None = None,
    gate: TokenGate | None = None,
) -> list[tuple[str, object]]:
    """(account, credentials) to sync: the signed-in person, or every roster member through the
    service account (those of ``shard`` only), asking only for ``scopes`` (each source its own,
    so delegating one is enough). A token saved without its ``account`` (an older version's) is
    asked ``whose`` it is once, and saved again with it."""
    if isinstance(identity, auth.UserIdentity):
        if not identity.account:
            if whose is None:
                raise GoogleAuthError(f"{identity.path}: the token does not say whose it is; {auth.REAUTH}")
            _identify(identity, whose, gate or TokenGate())
        return [(identity.account, identity.credentials)]
    people = load_people(settings)
    if not people:
        where = settings.path or "timeaudit.toml"
        raise UserError(
            f"{where}: 'roster' is empty; a service account syncs the roster's people, so set roster = \"people.csv\""
        )
    return [(p.email, identity.for_user(p.email, scopes)) for p in in_shard(people, shard, lambda p: p.email)]


def _identify(identity: auth.UserIdentity, whose: Whose, gate: TokenGate) -> None:
    """Ask the API whose the saved token is, and write the token file back with that ``account``."""
    try:
        account = whose(identity.credentials, gate).strip().lower()
    except TokenEndpointUnreachable as e:
        raise unreachable_error(identity, e) from None
    except (HttpError, RefreshError, TransportError, ApiError) as e:
        if auth.refused(e):
            raise refusal_error(identity, "you", e) from None
        raise GoogleAuthError(
            f"{identity.path}: the token does not say whose it is and asking Google failed "
            f"({describe_failure(e, 'you')}); {auth.REAUTH}"
        ) from None
    if not account:
        raise GoogleAuthError(f"{identity.path}: the token does not say whose it is; {auth.REAUTH}")
    identity.account = account
    auth.save_user(identity.credentials, account, identity.path.parent)


def unreachable_error(identity: auth.Identity, e: TokenEndpointUnreachable) -> GoogleAuthError:
    """The one line that ends a run whose token endpoint cannot be reached."""
    return GoogleAuthError(
        f"{identity.path}: the token endpoint {e.host} (its token_uri) did not answer ({e.cause}); "
        f"check that this machine can reach {e.host} (network, proxy, firewall), then sync again"
    )


def run_accounts(
    identity: auth.Identity,
    accounts: list[tuple[str, object]],
    work: Callable[[str, object], R],
    workers: int,
) -> list[R]:
    """``work(account, credentials)`` for every account, on up to ``workers`` at a time; an
    unreachable token endpoint ends the whole run with one line; a refreshed personal token is
    kept for the next run."""
    personal = isinstance(identity, auth.UserIdentity)
    token_before = identity.credentials.token if personal else None

    def one(target: tuple[str, object]) -> R:
        try:
            return work(*target)
        except TokenEndpointUnreachable as e:
            raise unreachable_error(identity, e) from None

    results = run_each(accounts, one, workers)
    if personal:
        identity.save_if_refreshed(token_before)
    return results


def refusal_error(identity: auth.Identity, account: str, cause: BaseException) -> GoogleAuthError | None:
    """The error that ends the run when Google refused ``account``'s credentials, or None when only
    that person is refused (a service account not delegated for them) and the others go on."""
    if isinstance(identity, auth.UserIdentity):
        return GoogleAuthError(
            f"{identity.path}: Google refused the saved token for {account} "
            f"({auth.describe_refusal(cause)}); {auth.REAUTH}"
        )
    if _key_refused(cause):
        return GoogleAuthError(
            f"{identity.path}: Google refused the service-account key "
            f"({auth.describe_refusal(cause)}); create a new key and re-run "
            "`timeaudit auth google --service-account KEY`"
        )
    return None


def sync_google_calendar(
    lake: Lake,
    settings: Settings,
    *,
    calendars: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    reporter: Reporter | None = None,
    identity: auth.Identity | None = None,
    policy: RetryPolicy | None = None,
    shard: Shard | None = None,
    workers: int = 1,
) -> SyncSummary:
    """Sync the saved identity's calendars (a roster's, with a service account) into ``lake``;
    with ``shard`` only that share of the roster, on up to ``workers`` accounts at a time."""
    reporter = reporter or _Silent()
    lake.check_schema()
    workers = check_workers(workers)
    identity = load_google_identity(identity)
    window, chosen = resolve_window(settings, since, until)
    calendars = calendars or settings.google.calendars
    summary = SyncSummary("personal" if isinstance(identity, auth.UserIdentity) else "service account")
    gate = TokenGate()
    accounts = targets(identity, settings, [auth.CALENDAR_READONLY], shard, whose=calendar_owner(policy), gate=gate)
    live = _LiveRecords(lake)

    def sync_account_calendars(account: str, credentials: object) -> list[CalendarReport]:
        client = build_service(
            "calendar",
            "v3",
            credentials,
            policy=policy,
            requests_per_minute=settings.google.requests_per_minute,
            gate=gate,
        )
        reports = []
        for calendar in calendars:
            try:
                reports.append(
                    _sync_calendar(
                        lake, client, account, calendar, settings, window, chosen, live.of(account, calendar), reporter
                    )
                )
            except Refused as refusal:
                error = refusal_error(identity, account, refusal.cause)
                if error:
                    raise error from None
                reports.append(refusal.report)
                reporter.done(refusal.report)
                break  # this person's other calendars would be refused too
        return reports

    for reports in run_accounts(identity, accounts, sync_account_calendars, workers):
        summary.calendars.extend(reports)
    return summary


def calendar_owner(policy: RetryPolicy | None = None) -> Whose:
    """Whose credentials these are, for Calendar: the id of their primary calendar."""

    def whose(credentials: object, gate: TokenGate) -> str:
        return primary_address(build_service("calendar", "v3", credentials, policy=policy, gate=gate).service)

    return whose


def _key_refused(e: BaseException) -> bool:
    """A refusal of the service account itself (bad or deleted key), not of one delegated user."""
    text = auth.describe_refusal(e)
    return text.startswith("invalid_client") or "JWT" in text
