"""A small Microsoft Graph client: GET with paging headers, JSON ``$batch`` (at most 20 calls),
throttling respected (429 and 503 wait what ``Retry-After`` says, per mailbox: each mailbox is
read by one thread, one request at a time, well under Graph's 4 concurrent requests per
mailbox), and every request counted.

``TIMEAUDIT_GRAPH_ENDPOINT`` replaces ``https://graph.microsoft.com/`` (a national cloud such
as ``https://graph.microsoft.us/``, a proxy, the tests' stand-in); ``v1.0/`` is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

ENDPOINT_ENV = "TIMEAUDIT_GRAPH_ENDPOINT"
DEFAULT_ENDPOINT = "https://graph.microsoft.com/"
MAX_BATCH = 20  # Graph's limit of calls in one $batch
THROTTLED = (429, 503, 504)


def endpoint() -> str:
    root = os.environ.get(ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT
    return root if root.endswith("/") else root + "/"


class GraphError(Exception):
    """Graph answered with an error: ``status``, ``code`` (e.g. SyncStateNotFound) and message."""

    def __init__(self, status: int, code: str = "", message: str = ""):
        super().__init__(f"{status} {code}: {message}".strip())
        self.status, self.code, self.message = status, code, message


@dataclass
class RetryPolicy:
    retries: int = 6
    first_wait: float = 1.0  # without Retry-After: 1, 2, 4 ... seconds
    max_wait: float = 64.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def wait(self, attempt: int, retry_after: str | None) -> float:
        try:
            asked = float(retry_after) if retry_after is not None else None
        except ValueError:
            asked = None
        if asked is None:
            asked = min(self.max_wait, self.first_wait * 2**attempt)
        return max(0.0, asked)


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0  # answers 429/503/504 waited out (inside a $batch too)
    waited: float = 0.0  # seconds spent waiting


def _error(status: int, body: object) -> GraphError:
    info = body.get("error") if isinstance(body, dict) else None
    info = info if isinstance(info, dict) else {}
    return GraphError(status, str(info.get("code", "")), str(info.get("message", "")))


class GraphClient:
    """Graph for one mailbox's reads; ``token()`` gives a bearer token (MSAL caches it)."""

    def __init__(self, token: Callable[[], str], policy: RetryPolicy | None = None, root: str | None = None):
        self.token, self.policy = token, policy or RetryPolicy()
        self.root = (root or endpoint()) + "v1.0/"
        self.session = requests.Session()  # honours REQUESTS_CA_BUNDLE
        self.stats = Stats()

    def url(self, path: str) -> str:
        return path if path.startswith("https://") or path.startswith("http://") else self.root + path.lstrip("/")

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        seconds = self.policy.wait(attempt, retry_after)
        self.stats.throttled += 1
        self.stats.waited += seconds
        self.policy.sleep(seconds)

    def get(self, path: str, params: dict | None = None, headers: dict | None = None) -> dict:
        """One GET (a nextLink or deltaLink is followed as given); retried when throttled."""
        return self._send("GET", self.url(path), params=params, headers=headers)

    def _send(self, method: str, url: str, **kwargs) -> dict:
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in range(self.policy.retries + 1):
            headers["Authorization"] = f"Bearer {self.token()}"
            self.stats.requests += 1
            try:
                answer = self.session.request(method, url, headers=headers, timeout=60, **kwargs)
            except requests.ConnectionError as e:
                raise GraphError(0, "unreachable", f"{url.split('?')[0]} did not answer ({type(e).__name__})") from None
            if answer.status_code in THROTTLED and attempt < self.policy.retries:
                self._pause(attempt, answer.headers.get("Retry-After"))
                continue
            try:
                body = answer.json() if answer.content else {}
            except ValueError:
                body = {}
            if answer.status_code >= 400:
                raise _error(answer.status_code, body)
            return body
        raise AssertionError("unreachable")

    def batch(self, calls: dict[str, str], headers: dict | None = None) -> dict[str, tuple[int, dict]]:
        """{id: relative GET url} -> {id: (status, body)}, in ``$batch`` requests of at most 20
        calls; a call throttled inside a batch is sent again after its ``Retry-After``."""
        results: dict[str, tuple[int, dict]] = {}
        pending = dict(calls)
        attempt = 0
        while pending:
            waits: list[str | None] = []
            chunk = dict(list(pending.items())[:MAX_BATCH])
            payload = {
                "requests": [
                    {"id": key, "method": "GET", "url": "/" + url.lstrip("/"), "headers": dict(headers or {})}
                    for key, url in chunk.items()
                ]
            }
            answer = self._send("POST", self.url("$batch"), json=payload)
            for response in answer.get("responses") or []:
                key, status = str(response.get("id")), int(response.get("status", 0))
                if key not in chunk:
                    continue
                if status in THROTTLED and attempt < self.policy.retries:
                    waits.append((response.get("headers") or {}).get("Retry-After"))
                    continue
                results[key] = (status, response.get("body") or {})
                pending.pop(key)
            if waits:
                self._pause(attempt, max(waits, key=lambda w: float(w or 0)))
                attempt += 1
            elif any(key in pending for key in chunk):  # a call the answer left out: ask again
                attempt += 1
                if attempt > self.policy.retries:
                    raise GraphError(502, "batchIncomplete", "a $batch answer left calls out")
        return results


def check(status: int, body: dict) -> dict:
    """A call's answer inside a batch, or its error raised."""
    if status >= 400:
        raise _error(status, body)
    return body


PAGE_SIZE = 200  # items a delta page may hold (Prefer: odata.maxpagesize)
RESYNC_CODES = {"SyncStateNotFound", "SyncStateInvalid", "resyncRequired"}


class FullSyncRequired(Exception):
    """Graph no longer knows the saved delta token."""


def needs_resync(e: GraphError) -> bool:
    return e.status == 410 or e.code in RESYNC_CODES


def delta_pages(
    client: GraphClient, first: str, params: dict | None, on_page: Callable[[], None] | None, prefer: str = ""
) -> Iterator[dict]:
    """The pages of a delta query from ``first``, following ``@odata.nextLink``; a delta token
    Graph has forgotten raises ``FullSyncRequired``."""
    headers = {"Prefer": ", ".join(filter(None, [f"odata.maxpagesize={PAGE_SIZE}", prefer]))}
    url, query = first, params
    while True:
        try:
            page = client.get(url, params=query, headers=headers)
        except GraphError as e:
            if needs_resync(e):
                raise FullSyncRequired() from e
            raise
        if on_page:
            on_page()
        yield page
        url, query = page.get("@odata.nextLink"), None
        if not url:
            return
