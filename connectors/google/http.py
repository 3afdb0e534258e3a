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
  than a ``Retry-After`` header asks, and a count of requests sent.
- ``execute_batch`` sends many calls as batch requests of at most 50 calls (a batch is one
  HTTP request, so it is paced and its own 429/5xx retried as above); the calls inside that
  failed with a retryable status, and only those, are sent again in a new batch after the
  same backoff.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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


class RateLimiter:
    """At most ``limit`` requests in any sliding ``window`` seconds (Google counts per minute, sliding)."""

    def __init__(
        self,
        limit: int = REQUESTS_PER_MINUTE,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            while self._sent and now - self._sent[0] >= self.window:
                self._sent.popleft()
            if len(self._sent) >= self.limit:
                pause = self.window - (now - self._sent[0])
                self._sleep(pause)
                self.waited += pause
                now = self._clock()
                self._sent.popleft()
            self._sent.append(now)


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
    requests: int = 0  # every attempt sent, retries included
    retries: int = 0
    waited: float = 0.0  # seconds spent in backoff
    by_status: dict[int, int] = field(default_factory=dict)


class RetryingHttp:
    """An httplib2-compatible object: pacing, bounded retries with backoff, request counting.

    Wraps the authorised HTTP object, so a 401 is first answered by google-auth's own token
    refresh; a refresh that fails raises ``google.auth.exceptions.RefreshError`` through here.
    """

    def __init__(
        self,
        inner,
        policy: RetryPolicy = DEFAULT_POLICY,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.inner = inner
        self.policy = policy
        self.limiter = limiter or RateLimiter()
        self.stats = RequestStats()
        self._sleep = sleep

    def __getattr__(self, name):  # credentials, timeout, ... as the client library expects
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        attempt = 0
        while True:
            self.limiter.acquire()
            self.stats.requests += 1
            try:
                resp, content = self.inner.request(uri, method, body=body, headers=headers, **kwargs)
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

    def backoff(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait before retry number ``attempt + 1`` (used for failed calls inside a batch)."""
        self._pause(self.policy.delay(attempt, retry_after))

    def _pause(self, seconds: float) -> None:
        self.stats.retries += 1
        self.stats.waited += seconds
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
) -> GoogleClient:
    """A discovery-free client of ``name`` ``version`` authorised by ``credentials``."""
    doc = discovery_document(name, version)
    authorised = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    http = RetryingHttp(authorised, policy or DEFAULT_POLICY, RateLimiter(requests_per_minute))
    service = build_from_document(doc, http=http, client_options={"api_endpoint": api_endpoint(doc)})
    return GoogleClient(service=service, http=http, document=doc)


def execute_batch(
    client: GoogleClient,
    calls: Sequence[tuple[str, HttpRequest]],
    *,
    on_send: Callable[[HttpRequest], None] | None = None,
) -> dict[str, object]:
    """Run ``calls`` (key, request) as batch requests; {key: parsed response, or the HttpError
    of a call that failed for good}. ``on_send`` is told of every call sent, retries included.

    Only the calls that failed with a retryable status go again, after the client's backoff
    (and never sooner than the longest ``Retry-After`` among them); a call still failing after
    ``max_retries`` raises ``ApiError``.
    """
    results: dict[str, object] = {}
    pending = list(calls)
    attempt = 0
    while pending:
        for start in range(0, len(pending), BATCH_LIMIT):
            results.update(_send_batch(client, pending[start : start + BATCH_LIMIT], on_send))
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


def _retryable(result: object) -> bool:
    return isinstance(result, HttpError) and is_retryable(*http_error_details(result)[:2])


def _send_batch(
    client: GoogleClient, chunk: Sequence[tuple[str, HttpRequest]], on_send: Callable[[HttpRequest], None] | None
) -> dict[str, object]:
    """One batch request (the client's ``new_batch_http_request()`` would ignore the endpoint override)."""
    answers: dict[str, object] = {}

    def done(key: str, response, exception) -> None:
        answers[key] = exception if exception is not None else response

    batch = BatchHttpRequest(callback=done, batch_uri=client.batch_uri)
    for key, request in chunk:
        batch.add(request, request_id=key)
        if on_send:
            on_send(request)
    batch.execute(http=client.http)
    return answers
