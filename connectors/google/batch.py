"""Many Google API calls as batch requests of at most ``BATCH_LIMIT`` calls, each batch one paced
HTTP request; the calls inside that failed with a retryable status, and only those, go again.
With a ``UnitMeter`` (Gmail's quota units) each batch carries at most the budget's per-second
capacity and waits until its units fit every window."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest, HttpRequest

from connectors.google.http import (
    BATCH_LIMIT,
    ApiError,
    GoogleClient,
    host_of,
    http_error_details,
    is_retryable,
    retry_after,
)
from connectors.google.pacing import UnitBudget


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
                f"{host_of(client.batch_uri)} still answered {status} {reason or message} to {len(retry)} call(s) "
                f"of a batch after {attempt} retries; try again later"
            )
        client.http.backoff(attempt, max(retry_after(results[key].resp) or 0.0 for key, _ in retry))
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
