"""The `hostile` step: files built to cost an import as much as possible, each imported into an
empty lake in a process of its own, so that its time and peak memory are its own.

Each must finish in under ``SECONDS`` and ``RSS_MB`` of peak memory, with what it imported,
skipped or refused. The files are written once into ``bench/cache/hostile/``.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

SECONDS, RSS_MB = 30.0, 1024.0
ACCOUNT = "ann@northwind.com"
WINDOW = (datetime(2025, 11, 24, tzinfo=UTC), datetime(2027, 1, 25, tzinfo=UTC))  # the default 52 + 8 weeks
COPIES = 150_000
ZIP_MEMBERS, ZIP_MEMBER_MB = 3, 300
TO_LIST = 40_000  # addresses on one message: a header block just under the mail reader's 1 MB
HEADER_LINES = 200_000  # header lines of one message


def _calendar(events: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nX-WR-CALNAME:Hostile\r\n{events}END:VCALENDAR\r\n"


def _event(uid: str, start: str, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTART:{start}\r\nDURATION:PT30M\r\nDTSTAMP:20261101T000000Z\r\n"
        f"SUMMARY:Sync\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@northwind.com\r\n{extra}END:VEVENT\r\n"
    )


def endless_minutely(path: Path) -> None:
    """One event repeating every minute without end, from the window's start."""
    path.write_text(_calendar(_event("every-minute", "20251124T000000Z", "RRULE:FREQ=MINUTELY\r\n")), newline="")


def endless_secondly_since_2020(path: Path) -> None:
    """One event repeating every second since 2020: 185 million steps before the window."""
    path.write_text(_calendar(_event("every-second", "20200101T000000Z", "RRULE:FREQ=SECONDLY\r\n")), newline="")


def copies_of_one_uid(path: Path) -> None:
    """150,000 byte-for-byte copies of one event."""
    path.write_text(_calendar(_event("same", "20261110T090000Z") * COPIES), newline="")


def overrides_of_one_uid(path: Path) -> None:
    """A daily series and 150,000 RECURRENCE-ID overrides of it, each a newer SEQUENCE of one of
    its first 200 days."""
    first = datetime(2025, 12, 1, 9, tzinfo=UTC)
    with path.open("w", newline="") as out:
        out.write(_calendar("").removesuffix("END:VCALENDAR\r\n"))
        out.write(_event("daily", f"{first:%Y%m%dT%H%M%SZ}", "RRULE:FREQ=DAILY\r\n"))
        for n in range(COPIES):
            day = first + timedelta(days=n % 200)
            stamp = f"{day:%Y%m%dT%H%M%SZ}"
            out.write(_event("daily", stamp, f"RECURRENCE-ID:{stamp}\r\nSEQUENCE:{n}\r\n"))
        out.write("END:VCALENDAR\r\n")


def zip_bomb(path: Path) -> None:
    """A zip of three 300 MB calendars of one event written again and again (about 1 MB packed each)."""
    block = _event("bomb", "20261110T090000Z").encode() * 4096
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(ZIP_MEMBERS):
            with z.open(f"Calendar/{n}.ics", "w") as member:
                member.write(_calendar("").removesuffix("END:VCALENDAR\r\n").encode())
                for _ in range(ZIP_MEMBER_MB * 2**20 // len(block)):
                    member.write(block)
                member.write(b"END:VCALENDAR\r\n")


def _message(headers: str) -> str:
    return f"From bob@northwind.com Tue Nov 10 09:00:00 2026\nFrom: bob@northwind.com\n{headers}\nHi\n\n"


def long_to_list(path: Path) -> None:
    """One message addressed to 40,000 people."""
    people = ",\n ".join(f"person{n}@example.com" for n in range(TO_LIST))
    headers = f"To: {ACCOUNT},\n {people}\nSubject: All hands\nDate: Tue, 10 Nov 2026 09:00:00 +0000\n"
    path.write_text(_message(headers + "Message-ID: <to@northwind.com>\n"))


def huge_header_block(path: Path) -> None:
    """One message with 200,000 header lines."""
    padding = "".join(f"X-Trace-{n}: {'x' * 60}\n" for n in range(HEADER_LINES))
    headers = f"To: {ACCOUNT}\nSubject: Trace\nDate: Tue, 10 Nov 2026 09:00:00 +0000\nMessage-ID: <h@n.com>\n"
    path.write_text(_message(headers + padding))


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {  # by case: its file's name, what writes it
    "endless_minutely_rule": ("endless-minutely.ics", endless_minutely),
    "endless_secondly_rule_since_2020": ("endless-secondly.ics", endless_secondly_since_2020),
    "150k_copies_of_one_uid": ("copies-of-one-uid.ics", copies_of_one_uid),
    "150k_overrides_of_one_uid": ("overrides-of-one-uid.ics", overrides_of_one_uid),
    "zip_bomb_3x300mb": ("zip-bomb.zip", zip_bomb),
    "mail_long_to_list": ("long-to-list.mbox", long_to_list),
    "mail_huge_header_block": ("huge-header-block.mbox", huge_header_block),
}


def _import(path: str, queue) -> None:
    """Imports one file into an empty lake (in its own process) and reports what came of it."""
    from timeaudit.core.config import Settings
    from timeaudit.core.errors import UserError
    from timeaudit.lake.imports import import_ics, import_mail
    from timeaudit.lake.store import Lake

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        lake, settings = Lake(Path(tmp)), Settings()
        try:
            if path.endswith(".mbox"):
                report = import_mail(lake, settings, [Path(path)], ACCOUNT)
            else:
                since, until = (day.date() for day in WINDOW)
                report = import_ics(lake, settings, [Path(path)], ACCOUNT, since=since, until=until)
            outcome = {"imported": report.imported, "skipped": len(report.skipped)}
            outcome["said"] = [f"{item}: {reason}" for item, reason in report.skipped[:2]]
        except UserError as e:
            outcome = {"refused": str(e)[:300]}
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"seconds": seconds, "peak_rss_mb": peak, **outcome})


def _run_alone(path: Path) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_import, args=(str(path), queue))
    proc.start()
    deadline = time.monotonic() + 20 * SECONDS
    result = None
    while result is None and time.monotonic() < deadline:
        try:
            result = queue.get(timeout=1)
        except Exception:  # queue.Empty: still working, or died (killed for memory)
            if not proc.is_alive():
                result = {"error": f"the process ended with exit code {proc.exitcode} and no result"}
    if result is None:
        proc.kill()
        result = {"error": f"still running after {20 * SECONDS:.0f} s; stopped"}
    proc.join()
    return result


def hostile(data: Path, **_) -> dict:
    """Every hostile file, imported alone; ``within_bounds`` per case and for all of them."""
    folder = data.parent.parent / "hostile"
    folder.mkdir(parents=True, exist_ok=True)
    cases = {}
    for name, (file_name, write) in CASES.items():
        path = _cached(folder / file_name, write)
        result = _run_alone(path)
        result["file_mb"] = round(path.stat().st_size / 2**20, 1)
        ok = "error" not in result and result["seconds"] < SECONDS and result["peak_rss_mb"] < RSS_MB
        cases[name] = {**result, "within_bounds": ok}
        print(f"  {name}: {result.get('seconds', 0):.1f} s, {result.get('peak_rss_mb', 0):.0f} MB", flush=True)
    return {
        "bounds": {"seconds": SECONDS, "peak_rss_mb": RSS_MB},
        "cases": cases,
        "over_bounds": sum(not c["within_bounds"] for c in cases.values()),
    }


def _cached(path: Path, write: Callable[[Path], None]) -> Path:
    """``path``, written by ``write`` once (under another name, then renamed into place)."""
    if not path.exists():
        partial = path.with_name(f".{path.name}.partial")
        write(partial)
        partial.rename(path)
    return path
