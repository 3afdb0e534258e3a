"""What the Google sources (``calendar_source``, ``gmail_source``) share under the contract of
``connectors.base``: the saved identity and the accounts it reaches, one paced client per
account behind one token gate, requests counted per read, and how a failure is told.

One person's failure (403 not delegated, 404 unknown user or calendar, Google unavailable)
is recorded and the others go on; a refused personal token or service-account key, and a
token endpoint that cannot be reached, end the run with one line. A personal token that was
refreshed is saved for the next run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.base import OnFailure, Report, Summary
from connectors.google import auth
from connectors.google.http import (
    ApiError,
    GoogleClient,
    RetryPolicy,
    TokenEndpointUnreachable,
    TokenGate,
    build_service,
    http_error_details,
)
from connectors.google.targets import (
    describe_failure,
    load_google_identity,
    refusal_error,
    targets,
    unreachable_error,
)
from timeaudit.core.config import Settings

ERRORS: tuple[type[Exception], ...] = (HttpError, RefreshError, TransportError, ApiError)


@dataclass
class GoogleReport(Report):
    requests: int = 0  # every request sent: retries and token requests included
    retries: int = 0  # of which requests repeating an earlier one


class GoogleSummary(Summary):
    """Sums over a Google run's reports, with the requests they cost."""

    def __init__(self, reports: Sequence[Report], mode: str):
        super().__init__(reports)
        self.mode = mode  # "personal" | "service account"

    requests = property(lambda self: self.total("requests"))
    retries = property(lambda self: self.total("retries"))

    def requests_text(self) -> str:
        return f"{self.requests:,} requests ({self.retries:,} {'retry' if self.retries == 1 else 'retries'})"


@contextlib.contextmanager
def counting(client: GoogleClient, report: GoogleReport) -> Iterator[None]:
    """Put the requests ``client`` sends meanwhile (and how many were retries) in ``report``."""
    stats = client.http.stats
    requests, retries = stats.requests, stats.retries
    try:
        yield
    finally:
        report.requests, report.retries = stats.requests - requests, stats.retries - retries


class GoogleSource:
    """A Google API read as the saved identity; subclasses name the API, scope and records."""

    api: tuple[str, str]  # (name, version) of the discovery document
    scope: str
    forbidden: str  # what a 403 means for this API, with {account} and {part}
    write_disposition = "merge"
    errors: tuple[type[Exception], ...] = ERRORS  # failures recorded per read

    def __init__(self, settings: Settings, *, identity: auth.Identity | None = None, policy: RetryPolicy | None = None):
        self.settings, self.policy = settings, policy
        self.identity = load_google_identity(identity)
        self.gate = TokenGate()
        self.personal = isinstance(self.identity, auth.UserIdentity)
        self.mode = "personal" if self.personal else "service account"
        self.shardable = not self.personal
        self._credentials: dict[str, object] = {}
        self._clients: dict[str, GoogleClient] = {}
        self._token_before: str | None = None

    def owner(self, credentials: object, gate: TokenGate) -> str:
        """The address ``credentials`` belong to (one request)."""
        raise NotImplementedError

    def accounts(self) -> list[str]:
        self._credentials = targets(self.identity, self.settings, [self.scope], whose=self.owner, gate=self.gate)
        self._token_before = self.identity.credentials.token if self.personal else None
        return list(self._credentials)

    def client(self, account: str) -> GoogleClient:
        """The account's client, built on its first read (each account is read by one thread)."""
        if account not in self._clients:
            rate = self.settings.google.requests_per_minute
            self._clients[account] = self.build(self._credentials[account], requests_per_minute=rate)
        return self._clients[account]

    def build(self, credentials: object, gate: TokenGate | None = None, **options) -> GoogleClient:
        name, version = self.api
        return build_service(name, version, credentials, policy=self.policy, gate=gate or self.gate, **options)

    def describe(self, error: Exception, report: Report) -> str:
        """One line for a failure of ``report``'s read."""
        if isinstance(error, HttpError):
            status, reason, message = http_error_details(error)
            if status == 403:
                hint = self.forbidden.format(account=report.account, part=report.part)
                return f"403 {reason or 'forbidden'}: {message}; {hint}"
            missing = self.missing(status, reason, message, report)
            if missing:
                return missing
        return describe_failure(error, report.account)

    def missing(self, status: int, reason: str, message: str, report: Report) -> str | None:
        """One line for an answer saying the read's account or part does not exist, else None."""
        return None

    def failed(self, report: Report, error: Exception) -> OnFailure | None:
        if isinstance(error, TokenEndpointUnreachable):
            raise unreachable_error(self.identity, error) from None
        if not isinstance(error, self.errors):
            return None
        report.error = self.describe(error, report)
        if auth.refused(error):
            stop = refusal_error(self.identity, report.account, error)
            if stop:
                raise stop from None
            return "next account"  # this person's other parts would be refused too
        return "next part"

    def finish(self) -> None:
        if self.personal:
            self.identity.save_if_refreshed(self._token_before)
