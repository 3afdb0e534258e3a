"""The browser step: the dashboard in headless Chromium (Playwright), against Streamlit's own floor.

On a lake whose derived tables are current (`timeaudit metrics` is run first when they are
not), the step:

1. starts `timeaudit dashboard` once per page and opens that page as soon as the server
   answers: each page's first chart after the server starts (``pages_at_start``), each after
   the empty page served and opened the same way (its floor at that moment);
2. serves, beside a started dashboard whose start-up work is done, an empty Streamlit page
   (``bench/floor_page.py``) with the same Streamlit and the same options, and loads it and
   the team page alternately, each load a first visit (a new browser context: an empty HTTP
   cache, a new Streamlit session): the floor's time to its heading, the team page's to its
   first chart's SVG, and the team page's median time above the floor;
3. opens every page once more and counts Streamlit exceptions and script errors.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from timeaudit.outputs.export import CHROMIUM_FLAGS

PAGES = {"/": "My week", "/team": "Team", "/wasters": "Time wasters", "/customers": "Customers"}
WAIT_MS = 900_000  # a cold page of the 1,000-person organisation computes its tables first
VIEWPORT = {"width": 1400, "height": 1000}
LOADS = 9  # floor and team loads each, interleaved
FLOOR_PAGE = Path(__file__).with_name("floor_page.py")
# The options `timeaudit dashboard` gives Streamlit (timeaudit/cli/dashboard.py), for the floor too.
STREAMLIT_OPTIONS = [
    "--server.headless",
    "true",
    "--browser.gatherUsageStats",
    "false",
    "--server.fileWatcherType",
    "none",
    "--runner.postScriptGC",
    "false",
]

# Marks, in ms from navigation, of the steps before the first chart: Streamlit's websocket
# open (its scripts loaded and started), the page title drawn (the page script's first output
# shown), the chart's element made, plotly.js fetched and run, the chart's SVG drawn.
_MARKS_JS = """
window.__timeauditMarks = {};
const mark = (name) => { if (!(name in window.__timeauditMarks)) window.__timeauditMarks[name] = performance.now(); };
const Socket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Socket(...args);
  socket.addEventListener("open", () => mark("websocket"));
  return socket;
};
window.WebSocket.prototype = Socket.prototype;
Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
document.addEventListener("load", (e) => { if (/plotly/.test(e.target.src || "")) mark("plotly"); }, true);
new MutationObserver(() => {
  if (document.querySelector("h1")) mark("title");
  if (document.querySelector("div.timeaudit-chart, .js-plotly-plot")) mark("chart");
  if (document.querySelector(".js-plotly-plot .main-svg")) mark("drawn");
}).observe(document, { childList: true, subtree: true });
"""
PHASES = ("websocket", "title", "chart", "plotly", "drawn")
CHART = ".js-plotly-plot .main-svg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """``command`` (given ``--port PORT``'s value as ``{port}``) on a free loopback port, waited
    for until Streamlit answers its health check; (process, URL)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "TIMEAUDIT_CONFIG"}
    with log.open("wb") as out:  # the child keeps its own copy of the file
        # Its own process group, so that _stop can kill the Streamlit server too if the CLI hangs.
        proc = subprocess.Popen(
            [sys.executable, *(str(port) if c == "{port}" else c for c in command)],
            env=env,
            start_new_session=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    _stop(proc)
    raise RuntimeError(f"{command[:3]} did not start within 120 s (log: {log})")


def _serve(data: Path) -> tuple[subprocess.Popen, str]:
    """`timeaudit dashboard` on the data, waited for."""
    command = ["-m", "timeaudit.cli", "dashboard", "--data", str(data), "--host", "127.0.0.1", "--port", "{port}"]
    return _start(command, _server_log(data))


def _serve_floor(data: Path) -> tuple[subprocess.Popen, str]:
    """The empty page, served by `streamlit run` with the dashboard's options, waited for."""
    command = ["-m", "streamlit", "run", str(FLOOR_PAGE), "--server.address", "127.0.0.1", "--server.port", "{port}"]
    return _start(command + STREAMLIT_OPTIONS, data.parent / "floor.log")


def _server_log(data: Path) -> Path:
    return data.parent / "dashboard.log"


def _wait_until_ready(data: Path, timeout: float = 600) -> float:
    """Wait for the server to say its start-up work is done (dashboard/server.py); seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if b"Every page's figures are ready" in _server_log(data).read_bytes():
            return time.perf_counter() - t
        time.sleep(0.2)
    raise RuntimeError(f"the dashboard did not say its figures were ready within {timeout:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    """End the process (the CLI stops the Streamlit server it runs); kill its group if that hangs."""
    import signal

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and everything under it (the CLI and its Streamlit server)."""
    import psutil

    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def _load(browser, url: str, selector: str) -> tuple[float, dict[str, float]]:
    """From navigation until ``selector`` is visible, in a new browser context (an empty HTTP
    cache: a first visit, which fetches all of Streamlit's scripts; a new Streamlit session),
    and the browser's own marks of the steps on the way (``PHASES``, ms from navigation)."""
    page = browser.new_page(viewport=VIEWPORT)
    page.add_init_script(_MARKS_JS)
    t = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.locator(selector).first.wait_for(state="visible", timeout=WAIT_MS)
    ms = (time.perf_counter() - t) * 1000
    marks = page.evaluate("window.__timeauditMarks")
    page.close()
    return ms, marks


def _median_phases(marks: list[dict[str, float]]) -> dict[str, float]:
    return {p: round(statistics.median(m[p] for m in marks)) for p in PHASES if all(p in m for m in marks)}


def _launch(p):
    return p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_FLAGS)


def pages_at_start(p, data: Path) -> dict[str, dict]:
    """Each page's first chart, opened alone as soon as a newly started dashboard answers (the
    server's start-up work under way): one server start per page. Before each, the same for
    the empty page (a new server, a new browser: ``floor_ms``), so that a page's time can be
    told apart from the machine's speed at that moment."""
    found = {}
    for path in PAGES:
        floor_ms = _first_visit(p, *_serve_floor(data), "", "h1")[0]
        started = time.perf_counter()
        proc, url = _serve(data)
        answered = time.perf_counter() - started
        ms, marks = _first_visit(p, proc, url, path, CHART)
        found[path] = {
            "first_chart_ms": round(ms),
            "floor_ms": round(floor_ms),
            "server_answered_s": round(answered, 2),
            "phases_ms": marks,
        }
    return found


def _first_visit(p, proc: subprocess.Popen, url: str, path: str, selector: str) -> tuple[float, dict]:
    """``_load`` of the path in a newly launched browser; the server stopped after."""
    try:
        b = _launch(p)
        found = _load(b, url + path, selector)
        b.close()
    finally:
        _stop(proc)
    return found


def against_floor(b, url: str, floor_url: str) -> dict:
    """The empty page and the team page loaded alternately, ``LOADS`` times each."""
    floor, team, floor_marks, marks = [], [], [], []
    for _ in range(LOADS):
        ms, m = _load(b, floor_url, "h1")
        floor.append(ms)
        floor_marks.append(m)
        ms, m = _load(b, f"{url}/team", CHART)
        team.append(ms)
        marks.append(m)
    return {
        "floor_ms": [round(x) for x in floor],
        "team_ms": [round(x) for x in team],
        "floor_median_ms": statistics.median(floor),
        "team_median_ms": statistics.median(team),
        # the headline: how much longer than Streamlit's own empty page the team page takes
        "team_above_floor_ms": statistics.median(team) - statistics.median(floor),
        "team_above_floor_pairs_median_ms": statistics.median(t - f for t, f in zip(team, floor, strict=True)),
        "team_phases_ms": _median_phases(marks),
        "floor_phases_ms": _median_phases(floor_marks),
    }


def every_page(b, url: str) -> dict[str, dict]:
    """Every page once, checked for Streamlit exceptions and script errors."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pages = {}
    for path, heading in PAGES.items():
        page = b.new_page(viewport={"width": 1400, "height": 1800})
        errors: list[str] = []
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        t = time.perf_counter()
        page.goto(url + path, wait_until="commit")
        try:  # a page that never draws is a finding, not a reason to lose the other figures
            page.get_by_role("heading", name=heading).first.wait_for(timeout=WAIT_MS)
            page.locator(CHART).first.wait_for(state="visible", timeout=WAIT_MS)
            first_chart_ms = (time.perf_counter() - t) * 1000
        except PlaywrightTimeout:
            first_chart_ms = None
        page.wait_for_timeout(1500)  # let the remaining charts settle
        pages[path] = {
            "first_chart_ms": round(first_chart_ms) if first_chart_ms is not None else "timed out",
            "charts": page.locator(".js-plotly-plot").count(),
            "exceptions": page.locator('[data-testid="stException"]').count(),
            "script_errors": len(errors),
            "drawn": first_chart_ms is not None,
        }
        page.close()
    return pages


def derived_current(data: Path) -> float:
    """Seconds spent making the stored derived tables current (`timeaudit metrics`; 0 when they were)."""
    from datetime import UTC, datetime

    from timeaudit.core.config import load_settings
    from timeaudit.lake.store import Lake
    from timeaudit.outputs.derived import manifest_in_use, run_duckdb

    lake, settings = Lake(data), load_settings(data / "timeaudit.toml")
    if manifest_in_use(lake, settings):
        return 0.0
    t = time.perf_counter()
    run_duckdb(lake, settings, datetime.now(UTC))
    return time.perf_counter() - t


def browser(data: Path, **_) -> dict:
    from playwright.sync_api import sync_playwright

    metrics_seconds = derived_current(data)
    with sync_playwright() as p:
        at_start = pages_at_start(p, data)
        proc, url = _serve(data)
        floor_proc, floor_url = _serve_floor(data)
        try:
            ready_after = _wait_until_ready(data)
            b = _launch(p)
            _load(b, floor_url, "h1")  # each server's first page run, not counted
            _load(b, f"{url}/team", CHART)
            floor = against_floor(b, url, floor_url)
            pages = every_page(b, url)
            b.close()
            server_mb = _rss_mb(proc.pid)
        finally:
            _stop(floor_proc)
            _stop(proc)
    return {
        "derived_tables_made_s": round(metrics_seconds, 1),
        "pages_at_start": at_start,
        "slowest_page_at_start_ms": max(v["first_chart_ms"] for v in at_start.values()),
        "floor_at_start_median_ms": statistics.median(v["floor_ms"] for v in at_start.values()),
        "slowest_page_above_floor_at_start_ms": max(v["first_chart_ms"] - v["floor_ms"] for v in at_start.values()),
        "ready_after_seconds": round(ready_after, 1),  # the server's start-up work, after it answered
        **floor,
        "pages": pages,
        "dashboard_rss_mb": round(server_mb),  # the server's memory after the pass (not a peak)
    }
