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
  same backoff. With a ``UnitMeter`` (Gmail's quota units) each batch carries at most the
  budget's per-second capacity and waits until its units fit every window (``UnitBudget``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import google_auth_httplib2
import httplib2
from google.auth.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.discovery_cache import get_static_doc
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

ENDPOINT_ENV = "TIMEAUDIT_GOOGLE_API_ENDPOINT"
REQUESTS_PER_MINUTE = 600  # Google's default per-user quota for Calendar (and Gmail's unit budget is per user too)
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "RESOURCE_EXHAUSTED"}
TIMEOUT_SECONDS = 60
BATCH_LIMIT = 50  # Google: "larger batch sizes are likely to trigger rate limiting"; 100 is the hard cap
IN_FLIGHT_POLL = 0.05  # seconds between looks at a budget whose units are all still in flight
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


class UnitBudget:
    """Token buckets on several windows at once: at most ``limit`` units in any sliding
    ``seconds`` for each ``(limit, seconds)``. A unit taken comes back to its bucket one window
    after the call that spent it was *answered* (``settle``), so the server, whatever the
    latency, never receives more than ``limit`` units in a window of its own clock."""

    def __init__(
        self,
        limits: Sequence[tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not limits or any(limit < 1 or seconds <= 0 for limit, seconds in limits):
            raise ValueError("every limit must be at least 1 unit over a positive window")
        self.limits = [(int(limit), float(seconds)) for limit, seconds in limits]
        self._clock, self._sleep = clock, sleep
        self._spent: deque[list[float]] = deque()  # [answered at (inf while in flight), units]
        self._lock = threading.Lock()
        self.waited = 0.0

    @property
    def capacity(self) -> int:
        """The most units one request (a whole batch) may carry."""
        return min(limit for limit, _ in self.limits)

    def take(self, units: int) -> list[float]:
        """Wait until ``units`` fit in every window; they count as in flight until ``settle``."""
        while True:
            with self._lock:
                pause = self._pause_for(units, self._clock())
                if pause <= 0:
                    entry = [float("inf"), float(units)]
                    self._spent.append(entry)
                    return entry
            self._sleep(pause)
            self.waited += pause

    def settle(self, entry: list[float]) -> None:
        """The call that took ``entry`` was answered: its units leave each window from now."""
        with self._lock:
            entry[0] = self._clock()

    @contextlib.contextmanager
    def spending(self, units: int) -> Iterator[None]:
        entry = self.take(units)
        try:
            yield
        finally:
            self.settle(entry)

    def _pause_for(self, units: int, now: float) -> float:
        longest = max(seconds for _, seconds in self.limits)
        while self._spent and self._spent[0][0] <= now - longest:
            self._spent.popleft()
        pause = 0.0
        for limit, seconds in self.limits:
            inside = [(at, spent) for at, spent in self._spent if at > now - seconds]
            used = sum(spent for _, spent in inside)
            if used + units <= limit or not inside:
                continue
            free, wait = used + units - limit, IN_FLIGHT_POLL
            for at, spent in sorted(inside):  # the earliest moment enough settled units have left
                if at == float("inf"):
                    break
                free -= spent
                if free <= 0:
                    wait = at + seconds - now
                    break
            pause = max(pause, wait, 1e-3)
        return pause


class RateLimiter(UnitBudget):
    """At most ``limit`` requests in any sliding ``window`` seconds (Google counts per minute, sliding)."""

    def __init__(
        self,
        limit: int = REQUESTS_PER_MINUTE,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__([(limit, window)], clock, sleep)

    def acquire(self) -> None:
        """Take one request's place, counted from now."""
        self.settle(self.take(1))


class UnitMeter:
    """Quota units per API method (``costs``): calls paced under ``budget`` and counted only
    when answered; calls refused for the rate or a server fault (and sent again) apart."""

    def __init__(self, costs: dict[str, int], budget: UnitBudget):
        self.costs, self.budget = costs, budget
        self.units = 0  # units of the calls the API answered
        self.refused = 0  # calls refused (429, rate-limit 403, 5xx) and so sent again
        self.refused_units = 0
        self.by_method: dict[str, int] = {}
        self._lock = threading.Lock()

    def cost(self, request: HttpRequest) -> int:
        return self.costs.get(request.methodId, 0)

    def spending(self, requests: Sequence[HttpRequest]) -> contextlib.AbstractContextManager[None]:
        """Wait until these calls' units fit (they go out together, as one batch); settle on exit."""
        return self.budget.spending(sum(self.cost(r) for r in requests))

    def record(self, request: HttpRequest, answered: bool) -> None:
        cost = self.cost(request)
        with self._lock:
            if answered:
                self.units += cost
                self.by_method[request.methodId] = self.by_method.get(request.methodId, 0) + 1
            else:
                self.refused += 1
                self.refused_units += cost

    def chunks(self, calls: Sequence[tuple[str, HttpRequest]]) -> Iterator[list[tuple[str, HttpRequest]]]:
        """``calls`` in batches of at most ``BATCH_LIMIT`` calls and ``budget.capacity`` units."""
        chunk: list[tuple[str, HttpRequest]] = []
        units = 0
        for key, request in calls:
            cost = self.cost(request)
            if chunk and (len(chunk) >= BATCH_LIMIT or units + cost > self.budget.capacity):
                yield chunk
                chunk, units = [], 0
            chunk.append((key, request))
            units += cost
        if chunk:
            yield chunk

    def execute(self, request: HttpRequest) -> object:
        """One call on its own, paced and counted."""
        with self.spending([request]):
            try:
                answer = request.execute()
            except HttpError as e:
                self.record(request, answered=not is_retryable(*http_error_details(e)[:2]))
                raise
        self.record(request, answered=True)
        return answer


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


def _retry_after(resp) -> float | None:
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
                raise TokenEndpointUnreachable(_host(uri), e) from e
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
                    raise ApiError(f"{_host(uri)} did not answer after {attempt + 1} attempts ({e})") from e
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
            retry_after = _retry_after(resp)
            if retry_after is not None and retry_after > self.policy.max_retry_after:
                raise ApiError(
                    f"{_host(uri)} asks to wait {retry_after:.0f} s ({status} {reason or message}); try again later"
                )
            if attempt >= self.policy.max_retries:
                raise ApiError(
                    f"{_host(uri)} still answered {status} {reason or message} after {attempt} retries; try again later"
                )
            self._pause(self.policy.delay(attempt, retry_after))
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


def _host(uri: str) -> str:
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


def execute_batch(
    client: GoogleClient,
    calls: Sequence[tuple[str, HttpRequest]],
    *,
    meter: UnitMeter | None = None,
) -> dict[str, object]:
    """Run ``calls`` (key, request) as batch requests; {key: parsed response, or the HttpError
    of a call that failed for good}.

    With ``meter`` each batch carries no more units than its budget's capacity and waits until
    they fit; only answered calls' units are counted. Only the calls that failed with a
    retryable status go again, after the client's backoff (and never sooner than the longest
    ``Retry-After`` among them); a call still failing after ``max_retries`` raises ``ApiError``.
    """
    results: dict[str, object] = {}
    pending = list(calls)
    attempt = 0
    while pending:
        chunks = meter.chunks(pending) if meter else _chunks(pending)
        for chunk in chunks:
            client.http.retrying = attempt > 0
            results.update(_send_batch(client, chunk, meter))
        retry = [(key, request) for key, request in pending if _retryable(results[key])]
        if not retry:
            break
        if attempt >= client.http.policy.max_retries:
            status, reason, message = http_error_details(results[retry[0][0]])
            raise ApiError(
                f"{_host(client.batch_uri)} still answered {status} {reason or message} to {len(retry)} call(s) "
                f"of a batch after {attempt} retries; try again later"
            )
        client.http.backoff(attempt, max(_retry_after(results[key].resp) or 0.0 for key, _ in retry))
        attempt += 1
        pending = retry
    return results


def _chunks(calls: Sequence[tuple[str, HttpRequest]]) -> Iterator[Sequence[tuple[str, HttpRequest]]]:
    for start in range(0, len(calls), BATCH_LIMIT):
        yield calls[start : start + BATCH_LIMIT]


def _retryable(result: object) -> bool:
    return isinstance(result, HttpError) and is_retryable(*http_error_details(result)[:2])


def _send_batch(
    client: GoogleClient, chunk: Sequence[tuple[str, HttpRequest]], meter: UnitMeter | None
) -> dict[str, object]:
    """One batch request (the client's ``new_batch_http_request()`` would ignore the endpoint override)."""
    answers: dict[str, object] = {}

    def done(key: str, response, exception) -> None:
        answers[key] = exception if exception is not None else response

    batch = BatchHttpRequest(callback=done, batch_uri=client.batch_uri)
    for key, request in chunk:
        batch.add(request, request_id=key)
    client.http.ensure_token()
    with meter.spending([r for _, r in chunk]) if meter else contextlib.nullcontext():
        batch.execute(http=client.http)
    if meter:
        for key, request in chunk:
            meter.record(request, answered=not _retryable(answers[key]))
    return answers
