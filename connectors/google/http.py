"""Google API clients built from the discovery documents shipped with google-api-python-client,
behind one HTTP layer that paces, retries and counts.

- No discovery request is made: ``build_service`` reads the static discovery document
  (``googleapiclient/discovery_cache/documents/<name>.<version>.json``).
- ``TIMEAUDIT_GOOGLE_API_ENDPOINT`` replaces Google's root URL (``https://www.googleapis.com/``
  for Calendar, ``https://gmail.googleapis.com/`` for Gmail) for every service, so a test
  server or a proxy gets exactly the requests Google would. ``batch_uri`` applies it to batch
  requests too (the client's ``new_batch_http_request()`` does not).
- Every request passes ``RetryingHttp``: at most ``requests_per_minute`` in any sliding
  minute (Google's per-user quota is 600), exponential backoff with jitter on 429, 403
  ``rateLimitExceeded``/``userRateLimitExceeded`` and 5xx, never sooner
  than a ``Retry-After`` header asks. Below google-auth, ``CountingHttp`` counts every
  request that left (token requests and a 401's repeat included) and, when the token
  endpoint cannot be reached, says so by name (``TokenEndpointUnreachable``): it is tried
  ``TOKEN_RETRIES`` more times, then the run's ``TokenGate`` closes for every account.
- ``execute_batch`` sends many calls as batch requests of at most 50 calls (a batch is one
  HTTP request, so it is paced and its own 429/5xx retried as above); the calls inside that
  failed with a retryable status, and only those, are sent again in a new batch after the
  same backoff (``connectors.google.batch``); pacing by quota units is ``connectors.google.pacing``.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError

from connectors.google.pacing import REQUESTS_PER_MINUTE, RateLimiter

ENDPOINT_ENV = "TIMEAUDIT_GOOGLE_API_ENDPOINT"
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"}
TIMEOUT_SECONDS = 60
BATCH_LIMIT = 50  # Google: "larger batch sizes are likely to trigger rate limiting"; 100 is the hard cap
TOKEN_RETRIES = 2  # a token endpoint refusing connections is tried this many more times, then the run stops


class ApiError(Exception):
    """Google kept failing after the bounded retries, or asked to wait longer than we will."""


@dataclass(frozen=True)
class RetryPolicy:
    """Truncated exponential backoff: ``base * 2**n`` plus up to ``base`` of jitter, at most ``max_delay``."""

    max_retries: int = 6
    base: float = 1.0
    max_delay: float = 64.0
    max_retry_after: float = 300.0  # a server asking for a longer wait gets a clear error instead

    def delay(self, attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random) -> float:
        backoff = min(self.max_delay, self.base * 2**attempt + self.base * rand())
        return max(backoff, retry_after or 0.0)


DEFAULT_POLICY = RetryPolicy()


def error_details(content: bytes | str | None) -> tuple[str, str]:
    """(reason, message) of a Google JSON error body; ("", "") when there is none."""
    try:
        data = json.loads(content or b"")
        error = data["error"]
    except (ValueError, KeyError, TypeError):
        return "", ""
    if isinstance(error, str):  # OAuth style: {"error": "invalid_grant", "error_description": ...}
        return error, str(data.get("error_description", ""))
    errors = error.get("errors") or [{}]
    reason = errors[0].get("reason") or error.get("status") or ""
    return str(reason), str(error.get("message", ""))


def http_error_details(e: HttpError) -> tuple[int, str, str]:
    """(status, reason, message) of an HttpError raised by the client library."""
    status = int(getattr(e.resp, "status", 0) or 0)
    reason, message = error_details(e.content)
    return status, reason, message or str(getattr(e, "reason", "")) or f"HTTP {status}"


def is_retryable(status: int, reason: str) -> bool:
    return status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS)


def retry_after(resp) -> float | None:
    value = resp.get("retry-after") if hasattr(resp, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


@dataclass
class RequestStats:
    requests: int = 0  # every HTTP request sent: API requests, retries and token requests
    refreshes: int = 0  # of which token requests (a refresh, a service account's grant)
    retries: int = 0  # of which requests repeating an earlier one (after 429/5xx, a failure, a 401)
    waited: float = 0.0  # seconds spent in backoff
    by_status: dict[int, int] = field(default_factory=dict)


class TokenEndpointUnreachable(Exception):
    """The OAuth token endpoint could not be reached; no account of this run can get a token."""

    def __init__(self, host: str, cause: BaseException | str):
        super().__init__(f"{host} did not answer ({cause})")
        self.host, self.cause = host, str(cause)
        self.timed_out = isinstance(cause, TimeoutError)  # waited a whole timeout already: no retry


@dataclass
class TokenGate:
    """Shared by every account of one run: once the token endpoint is given up on, it stays so."""

    down: TokenEndpointUnreachable | None = None


class CountingHttp:
    """The HTTP object google-auth sends through: counts every request that left this machine
    (token requests too) and names the token endpoint when it is the one that cannot be reached."""

    def __init__(self, http: httplib2.Http, token_uri: str, stats: RequestStats, gate: TokenGate):
        self.http, self.token_uri, self.stats, self.gate = http, token_uri, stats, gate

    def __getattr__(self, name):  # timeout, connections, close ... as google-auth expects
        if name == "http":
            raise AttributeError(name)
        return getattr(self.http, name)

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        token = bool(self.token_uri) and uri.split("?")[0] == self.token_uri
        if token and self.gate.down:
            raise self.gate.down
        try:
            answer = self.http.request(uri, method, body=body, headers=headers, **kwargs)
        except (OSError, httplib2.HttpLib2Error) as e:
            if not _never_sent(e):
                self._count(token)
            if token:
                raise TokenEndpointUnreachable(host_of(uri), e) from e
            raise
        self._count(token)
        return answer

    def _count(self, token: bool) -> None:
        self.stats.requests += 1
        self.stats.refreshes += token


def _never_sent(e: BaseException) -> bool:
    """A failure to connect at all: nothing reached the server."""
    return isinstance(e, ConnectionRefusedError | socket.gaierror | httplib2.ServerNotFoundError)


class RetryingHttp:
    """An httplib2-compatible object: pacing, bounded retries with backoff, request counting.

    Wraps the authorised HTTP object, so a 401 is first answered by google-auth's own token
    refresh; a refresh that fails raises ``google.auth.exceptions.RefreshError`` through here.
    Requests are counted below google-auth (``CountingHttp``, sharing ``stats``), so a 401's
    refresh and the request sent again after it are counted too.
    """

    def __init__(
        self,
        inner,
        policy: RetryPolicy = DEFAULT_POLICY,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        stats: RequestStats | None = None,
        gate: TokenGate | None = None,
    ):
        self.inner = inner
        self.policy = policy
        self.limiter = limiter or RateLimiter()
        self.stats = stats or RequestStats()
        self.gate = gate or TokenGate()
        self._sleep = sleep

    def __getattr__(self, name):  # credentials, timeout, ... as the client library expects
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        attempt = 0
        while True:
            self.limiter.acquire()
            try:
                resp, content = self._send_once(uri, method, body, headers, kwargs)
            except TokenEndpointUnreachable as e:
                self._wait_for_token_endpoint(e, attempt)
                attempt += 1
                continue
            except (OSError, httplib2.HttpLib2Error) as e:  # refused, reset, timed out
                if attempt >= self.policy.max_retries or isinstance(e, httplib2.RelativeURIError):
                    raise ApiError(f"{host_of(uri)} did not answer after {attempt + 1} attempts ({e})") from e
                self._pause(self.policy.delay(attempt))
                attempt += 1
                continue
            status = int(resp.status)
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
            if status < 400:
                return resp, content
            reason, message = error_details(content)
            if not is_retryable(status, reason):
                return resp, content
            wait = retry_after(resp)
            if wait is not None and wait > self.policy.max_retry_after:
                raise ApiError(
                    f"{host_of(uri)} asks to wait {wait:.0f} s ({status} {reason or message}); try again later"
                )
            if attempt >= self.policy.max_retries:
                raise ApiError(
                    f"{host_of(uri)} still answered {status} {reason or message} after {attempt} retries; "
                    "try again later"
                )
            self._pause(self.policy.delay(attempt, wait))
            attempt += 1

    def ensure_token(self) -> None:
        """Refresh an expired access token through this layer (counted, its endpoint named);
        a batch request would otherwise refresh it on a bare connection of its own."""
        credentials = self.inner.credentials
        attempt = 0
        while not credentials.valid:
            try:
                credentials.refresh(google_auth_httplib2.Request(self.inner.http))
            except TokenEndpointUnreachable as e:
                self._wait_for_token_endpoint(e, attempt)
                attempt += 1

    def _wait_for_token_endpoint(self, e: TokenEndpointUnreachable, attempt: int) -> None:
        """Back off before trying the token endpoint again, or give up on it for the whole run."""
        if attempt >= TOKEN_RETRIES or self.gate.down or e.timed_out:
            self.gate.down = self.gate.down or e
            raise self.gate.down from None
        pause = self.policy.delay(attempt)  # nothing was sent: what follows is no retry
        self.stats.waited += pause
        self._sleep(pause)

    def _send_once(self, uri, method, body, headers, kwargs):
        """One attempt through google-auth; every API request after the attempt's first (sent
        again after a 401 and a refresh), and the first of a retried attempt, is a retry."""
        api_before = self.stats.requests - self.stats.refreshes
        retry = self.retrying
        try:
            return self.inner.request(uri, method, body=body, headers=headers, **kwargs)
        finally:
            api_sent = self.stats.requests - self.stats.refreshes - api_before
            self.stats.retries += max(0, api_sent - 1) + (1 if retry and api_sent else 0)
            self.retrying = False

    retrying = False  # the next request repeats an earlier one (set after a backoff)

    def backoff(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait before retry number ``attempt + 1`` (used for failed calls inside a batch)."""
        self._pause(self.policy.delay(attempt, retry_after))

    def _pause(self, seconds: float) -> None:
        self.stats.waited += seconds
        self.retrying = True
        self._sleep(seconds)


def host_of(uri: str) -> str:
    return uri.split("/")[2] if "://" in uri else uri


def discovery_document(name: str, version: str) -> dict:
    text = get_static_doc(name, version)
    if text is None:
        raise ValueError(f"google-api-python-client ships no discovery document for {name} {version}")
    return json.loads(text)


def root_url(doc: dict) -> str:
    """Google's root URL for the service, or the ``TIMEAUDIT_GOOGLE_API_ENDPOINT`` override."""
    override = os.environ.get(ENDPOINT_ENV, "").strip()
    if override:
        return override.rstrip("/") + "/"
    return doc["rootUrl"]


def api_endpoint(doc: dict) -> str:
    return root_url(doc) + doc["servicePath"]


def batch_uri(doc: dict) -> str:
    """Where batch requests go, with the endpoint override applied (for ``BatchHttpRequest(batch_uri=...)``)."""
    return root_url(doc) + doc.get("batchPath", "batch")


@dataclass
class GoogleClient:
    """One API service for one identity, with its HTTP layer (counters, pacing) at hand."""

    service: object  # googleapiclient.discovery.Resource
    http: RetryingHttp
    document: dict

    @property
    def requests(self) -> int:
        return self.http.stats.requests

    @property
    def batch_uri(self) -> str:
        return batch_uri(self.document)


def build_service(
    name: str,
    version: str,
    credentials: Credentials,
    *,
    policy: RetryPolicy | None = None,
    requests_per_minute: int = REQUESTS_PER_MINUTE,
    timeout: float = TIMEOUT_SECONDS,
    gate: TokenGate | None = None,
) -> GoogleClient:
    """A discovery-free client of ``name`` ``version`` authorised by ``credentials``; ``gate``
    is shared by the clients of one run, so an unreachable token endpoint stops them all."""
    doc = discovery_document(name, version)
    stats, gate = RequestStats(), gate or TokenGate()
    transport = CountingHttp(httplib2.Http(timeout=timeout), token_uri_of(credentials), stats, gate)
    authorised = google_auth_httplib2.AuthorizedHttp(credentials, http=transport)
    http = RetryingHttp(authorised, policy or DEFAULT_POLICY, RateLimiter(requests_per_minute), stats=stats, gate=gate)
    service = build_from_document(doc, http=http, client_options={"api_endpoint": api_endpoint(doc)})
    return GoogleClient(service=service, http=http, document=doc)


def token_uri_of(credentials: Credentials) -> str:
    """Where ``credentials`` get their access tokens (a user token's or a service account's ``token_uri``)."""
    return str(getattr(credentials, "token_uri", None) or getattr(credentials, "_token_uri", None) or "")
