"""Microsoft 365 as one source under the contract of ``connectors.base``: each mailbox (the
signed-in person; with an app, every roster member and every ``[[shared_mailboxes]]``) is
read part by part: its calendar (``events``) and each mail folder (``messages``), each part
with its own delta link in the mailbox's cursor.

One mailbox's failure (403: outside the app's Exchange application access policy; 404: no
such mailbox) is reported and the others go on; a refused credential ends the run with one
line naming the fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connectors.base import Cursor, OnFailure, Report, Summary
from connectors.microsoft import auth
from connectors.microsoft.calendar import SOURCE, FullSyncRequired, iter_events, stamp, window_of
from connectors.microsoft.graph import GraphClient, GraphError, RetryPolicy, endpoint
from connectors.microsoft.mail import iter_folder, resolve_folders
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.roster import load_people

CALENDAR = "calendar"
BATCH_SIZE = 2000


class MicrosoftAuthError(UserError):
    """The saved Microsoft credentials are missing or were refused."""


@dataclass
class MicrosoftReport(Report):
    requests: int = 0
    throttled: int = 0  # 429/503 answers waited out
    pages: int = 0

    @property
    def kind(self) -> str:
        return "events" if self.part == CALENDAR else "messages"

    def line(self) -> str:
        return (
            f"{self.account} {self.part}: {self.records:,} {self.kind}, {self.pages} pages, "
            f"{self.requests} requests, {self.outcome}"
        )

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.records:,} {self.kind}, {self.pages} pages {state}"


class MicrosoftSummary(Summary):
    requests = property(lambda self: self.total("requests"))
    throttled = property(lambda self: self.total("throttled"))
    events = property(lambda self: sum(r.records for r in self.reports if r.part == CALENDAR))
    messages = property(lambda self: sum(r.records for r in self.reports if r.part != CALENDAR))

    def line(self) -> str:
        users = len({r.account for r in self.reports})
        return (
            f"Microsoft 365: {users} mailbox(es), {self.events:,} events, {self.messages:,} messages "
            f"({self.added:,} added, {self.updated:,} updated, {self.deleted:,} deleted), {self.failed} failed, "
            f"{self.requests:,} requests, {self.throttled:,} throttled waits"
        )


@contextlib.contextmanager
def counting(client: GraphClient, report: MicrosoftReport) -> Iterator[None]:
    stats = client.stats
    requests, throttled = stats.requests, stats.throttled
    try:
        yield
    finally:
        report.requests += stats.requests - requests
        report.throttled += stats.throttled - throttled


def load_microsoft_identity(identity: auth.Identity | None = None) -> auth.Identity:
    try:
        identity = identity or auth.load_identity()
    except auth.AuthError as e:
        raise MicrosoftAuthError(str(e)) from None
    if identity is None:
        raise MicrosoftAuthError(
            f"no Microsoft credentials in {auth.token_dir()}; run `timeaudit auth microsoft --device-code "
            "--client-id ID` (yourself) or `--client-id ID --tenant TENANT --client-secret-file FILE` (the roster)"
        )
    return identity


class MicrosoftSource:
    """Outlook calendars and mail folders of the saved identity's mailboxes."""

    name = SOURCE
    table = "events"  # the calendar part; mail folders fill ``messages`` (``table_of``)
    write_disposition = "merge"
    held_columns = ("start", "end", "updated")
    tables = {"events": ("start", "end", "updated"), "messages": ("ts", "updated")}

    def __init__(
        self,
        settings: Settings,
        *,
        since: datetime | None = None,
        identity: auth.Identity | None = None,
        policy: RetryPolicy | None = None,
    ):
        self.settings, self.policy = settings, policy
        self.identity = load_microsoft_identity(identity)
        self.personal = self.identity.personal
        self.shardable = not self.personal
        self.batch_size = BATCH_SIZE
        self.root = endpoint()
        self.window = window_of(settings)
        if since:
            if since >= self.window[1]:
                raise UserError("--since is after the window's end; give the first day of the window, e.g. 2026-01-05")
            self.window = (since, self.window[1])
        self.since = since or (
            datetime.now(UTC).replace(microsecond=0) - timedelta(weeks=settings.microsoft.weeks_back)
        )
        self.chosen = stamp(since) if since else None
        self.shared = {m.address: m.team for m in settings.shared_mailboxes}
        self._clients: dict[str, GraphClient] = {}
        self._folders: dict[str, dict[str, str | None]] = {}

    # -- what is read ---------------------------------------------------------------------------
    def token(self) -> str:
        try:
            return self.identity.token(self.root)
        except auth.AuthError as e:
            raise MicrosoftAuthError(str(e)) from None

    def accounts(self) -> list[str]:
        if self.personal:
            if not self.identity.account:
                me = GraphClient(self.token, self.policy, self.root).get("me", params={"$select": "userPrincipalName"})
                self.identity.account = str(me.get("userPrincipalName", "")).lower()
                self.identity.save()
            return [self.identity.account]
        people = [p.email for p in load_people(self.settings)]
        if not people and not self.shared:
            where = self.settings.path or "timeaudit.toml"
            raise UserError(
                f"{where}: 'roster' is empty; an app syncs the roster's people and [[shared_mailboxes]], "
                'so set roster = "people.csv"'
            )
        return list(dict.fromkeys([*people, *self.shared]))

    def parts(self, account: str) -> Sequence[str]:
        folders = list(self.settings.microsoft.folders)
        return folders if account in self.shared else [CALENDAR, *folders]

    def table_of(self, part: str) -> str:
        return "events" if part == CALENDAR else "messages"

    def report(self, account: str, part: str) -> MicrosoftReport:
        return MicrosoftReport(account, part)

    def summary(self, reports: Sequence[Report]) -> MicrosoftSummary:
        return MicrosoftSummary(reports)

    def client(self, account: str) -> GraphClient:
        if account not in self._clients:
            self._clients[account] = GraphClient(self.token, self.policy, self.root)
        return self._clients[account]

    # -- reading ----------------------------------------------------------------------------------
    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator:
        report = report or self.report(account, cursor.part)
        part, client = cursor.part, self.client(account)
        states = dict((cursor.value or {}).get("parts", {}))
        stored = states.get(part)
        if stored and self.chosen and self.chosen not in (stored.get("start"), stored.get("since")):
            stored = None  # a first day other than the last run's: that window whole again
        inner = Cursor(value=stored)
        report.full_sync = not (stored and (stored.get("delta_link") or stored.get("missing")))

        def on_page() -> None:
            report.pages += 1
            report.show_progress()

        with counting(client, report):
            if part == CALENDAR:
                records = iter_events(
                    client,
                    account,
                    cursor=inner,
                    settings=self.settings,
                    window=self.window,
                    held=cursor.held,
                    on_page=on_page,
                )
            else:
                records = self._folder(client, account, part, inner, states, cursor, on_page)
            yield from records
        report.full_sync = report.full_sync or inner.reset
        if inner.new_value is not None:
            states[part] = inner.new_value
            cursor.new_value = dict(cursor.value or {}, parts=states)

    def _folder(self, client, account, part, inner: Cursor, states: dict, cursor: Cursor, on_page) -> Iterator:
        stored = inner.value or {}
        if stored.get("missing"):
            return
        folder_id = stored.get("folder_id")
        if not folder_id:
            if account not in self._folders:
                names = [p for p in self.parts(account) if p != CALENDAR]
                self._folders[account] = resolve_folders(client, account, names)
            folder_id = self._folders[account].get(part)
            if folder_id is None:
                inner.new_value = {"missing": True}
                return
        elsewhere = {
            lid for name, s in states.items() if name not in (part, CALENDAR) for lid in (s.get("ids") or {}).values()
        }
        yield from iter_folder(
            client,
            account,
            part,
            folder_id,
            cursor=inner,
            settings=self.settings,
            since=self.since,
            held=cursor.held,
            elsewhere=elsewhere,
            on_page=on_page,
        )
        if inner.new_value is not None:
            inner.new_value["folder_id"] = folder_id

    # -- failures --------------------------------------------------------------------------------
    def failed(self, report: Report, error: Exception) -> OnFailure | None:
        if isinstance(error, MicrosoftAuthError):
            raise error
        if isinstance(error, FullSyncRequired):
            report.error = "410 SyncStateNotFound while paging a full sync; run the sync again"
            return "next part"
        if not isinstance(error, GraphError):
            return None
        if error.status == 401:
            raise MicrosoftAuthError(
                f"Microsoft Graph refused the saved credentials for {report.account} "
                f"({error.code or 'InvalidAuthenticationToken'}); "
                f"{self.identity.fix()}"
            ) from None
        if error.status == 403:
            report.error = (
                f"403 {error.code or 'ErrorAccessDenied'}: {error.message}; {report.account} is outside what the app "
                "may read (the Exchange application access policy, or a missing permission)"
            )
            return "next account"
        if error.status == 404:
            report.error = f"404 {error.code or 'ErrorItemNotFound'}: no mailbox {report.account} in this tenant"
            return "next account"
        report.error = str(error)
        return "next part"

    def finish(self) -> None:
        self.identity.save_cache()
