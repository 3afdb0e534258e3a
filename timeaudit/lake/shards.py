"""Splitting a roster's syncs: across machines (``--shard i/n``) and across threads (``--workers N``).

A shard is chosen by a stable hash of the account's address, so every machine of a job
array computes the same split without talking to the others, every account lands in
exactly one shard, and a roster that grows moves nobody else. Cursors are per account, so
shards never touch each other's state.

Workers run accounts side by side in threads (the work is waiting on Google). Each account
keeps its own per-user pace; ``MAX_WORKERS`` keeps a run within Google's per-project
limits (Calendar allows 10,000 requests a minute per project, and each worker may use up to
600 for its user).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from timeaudit.core.errors import UserError

MAX_WORKERS = 16
SHARD_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

T = TypeVar("T")
R = TypeVar("R")
Shard = tuple[int, int]  # (i, n), 1 <= i <= n


def parse_shard(text: str | None) -> Shard | None:
    if not text:
        return None
    match = SHARD_PATTERN.match(text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--shard {text}: give i/n with 1 <= i <= n, e.g. --shard 2/8 for the second of eight")
    return int(match[1]), int(match[2])


def shard_of(account: str, n: int) -> int:
    """The shard (1..n) that syncs ``account``."""
    digest = hashlib.sha256(account.strip().lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def in_shard(items: Iterable[T], shard: Shard | None, account: Callable[[T], str]) -> list[T]:
    items = list(items)
    if shard is None:
        return items
    i, n = shard
    return [item for item in items if shard_of(account(item), n) == i]


def check_workers(workers: int) -> int:
    if not 1 <= workers <= MAX_WORKERS:
        raise UserError(
            f"--workers {workers}: use 1 to {MAX_WORKERS}; more would exceed Google's per-project request limits"
        )
    return workers


def run_each(items: Sequence[T], work: Callable[[T], R], workers: int = 1) -> list[R]:
    """``work`` over ``items`` in order, on up to ``workers`` threads; results in the items' order.

    The first exception raised by any item is re-raised once every started item has finished;
    items not yet started are not run."""
    if workers <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync") as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
