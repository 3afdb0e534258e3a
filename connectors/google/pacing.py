"""Pacing by quota: units spent in sliding windows (Gmail's 250 units a second and 15,000 a
minute, Calendar's 600 requests a minute), each unit given back one window after its call was
answered, so the server never sees more than the limit in any window."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

REQUESTS_PER_MINUTE = 600  # Google's default per-user quota for Calendar (and Gmail's unit budget is per user too)
IN_FLIGHT_POLL = 0.05  # seconds between looks at a budget whose units are all still in flight


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
