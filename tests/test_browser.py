"""The dashboard in a real headless Chromium, served by `timeaudit dashboard` on the demo."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from timeaudit.lake.store import Lake

from conftest import ROOT

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGES = [  # path, heading, name, charts drawn on opening (the team page draws its open tab's only)
    ("", "My week", "my_week", 3),
    ("team", "Team", "team", 1),
    ("wasters", "Time wasters", "wasters", 2),
    ("customers", "Customers", "customers", 2),
]


def require_chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing on CI: .ci/run must install it (apt-get install chromium)")
    pytest.skip("Debian's chromium is not installed (apt-get install chromium); browser tests skipped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(data_dir: Path, port: int | None = None, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """Start `timeaudit dashboard` on ``data_dir`` at a (free) loopback port; (process, URL) once it answers."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k != "TIMEAUDIT_CONFIG"}
    command = ["dashboard", "--data", str(data_dir), "--port", str(port), "--host", "127.0.0.1", *extra]
    proc = subprocess.Popen(
        [sys.executable, "-m", "timeaudit.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        start_new_session=True,  # its own process group: stop() can still kill it all if the CLI hangs
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if answers(url):
            return proc, url
        time.sleep(0.3)
    stop(proc)
    pytest.fail(f"the dashboard did not start: {proc.stdout.read()}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def serve_dashboard(data_dir: Path, port: int | None = None, extra: list[str] = ()) -> Iterator[str]:
    """`timeaudit dashboard` on ``data_dir`` at a (free) loopback port; yields its URL."""
    require_chromium()
    proc, url = start_dashboard(data_dir, port, extra)
    try:
        yield url
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Stop the CLI, which stops the Streamlit server it started; kill both if that hangs."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server(demo_dir):
    with serve_dashboard(demo_dir) as url:
        yield url


@pytest.mark.parametrize(("path", "heading", "name", "charts"), PAGES, ids=[p[2] for p in PAGES])
def test_page_loads_and_draws_its_charts(server, browser, path, heading, name, charts, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)  # let the remaining charts settle
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= charts
    assert "Customer share" in page.inner_text("body") or "person-hours" in page.inner_text("body")
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if os.environ.get("TIMEAUDIT_UPDATE_DOCS") == "1":
        target = ROOT / "docs" / ("dashboard.png" if name == "my_week" else f"{name}.png")
        page.screenshot(path=str(target), full_page=False)
    assert not errors, errors
    page.close()


def test_team_page_tabs_draw_each_chart(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    errors: list[str] = []
    scripts: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(f"{server}/team", wait_until="domcontentloaded")
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    # Opened directly, the sidebar holds the app's navigation and viewer line, not the
    # file names Streamlit lists for a pages/ folder beside the main script.
    sidebar = page.locator('[data-testid="stSidebar"]')
    links = {t.splitlines()[-1].strip() for t in sidebar.get_by_role("link").all_inner_texts() if t.strip()}
    assert {"My week", "Team", "Time wasters", "Customers"} <= links, links
    assert not {"app", "my week", "team", "wasters", "customers"} & links, links
    assert "Local mode" in sidebar.inner_text()
    first = page.locator(".js-plotly-plot").first
    assert "hours by category, per week" in first.inner_text()
    # Drawn with the light plotly.js, not Streamlit's whole one, and as interactive: hovering
    # over the bars names the week and the hours.
    assert any(url.endswith("/app/static/plotly-basic.min.js") for url in scripts)
    assert not [url for url in scripts if "PlotlyChart" in url]
    box = first.locator(".nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 5)
    first.locator(".hoverlayer .hovertext").first.wait_for(timeout=10_000)
    assert " h" in first.locator(".hoverlayer").text_content()
    for tab, title in (
        ("Customer share by team", "Customer share by team, 2026-W47"),
        ("Customer share over time", "Customer share per team, per week"),
        ("Goals", "hours per person against the goals"),
    ):
        page.get_by_role("tab", name=tab).click()
        page.locator(".js-plotly-plot", has_text=title).first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert not errors, errors
    page.close()


@pytest.mark.parametrize("fmt", ["md", "pdf"])
def test_summary_is_made_when_asked_for_and_downloads(server, browser, fmt, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
    page.goto(f"{server}/team", wait_until="domcontentloaded")
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
    assert page.get_by_role("button", name=f"Summary .{fmt}").count() == 0  # nothing made on opening
    page.get_by_role("button", name="Prepare the weekly summary for download").click()
    button = page.get_by_role("button", name=f"Summary .{fmt}")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=120_000) as download:
        button.click()
    target = tmp_path / download.value.suggested_filename
    download.value.save_as(target)
    assert target.name.endswith(f"-2026-W47.{fmt}") and target.name.startswith("timeaudit-")
    head = target.read_bytes()[:40]
    assert head.startswith(b"# timeaudit weekly summary" if fmt == "md" else b"%PDF")
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_navigation_between_pages(server, browser):
    """Page icons are Streamlit's Material Symbols, drawn with the font it serves (emoji would
    need a font a plain Linux machine lacks); the favicon is an SVG in the page."""
    page = browser.new_page()
    page.goto(server, wait_until="domcontentloaded")
    page.get_by_role("heading", name="My week").first.wait_for(timeout=60_000)
    icons = page.locator('[data-testid="stSidebarNav"] [data-testid="stIconMaterial"]')
    assert icons.all_inner_texts()[:4] == ["person", "groups", "hourglass_bottom", "handshake"]
    family = icons.first.evaluate("e => getComputedStyle(e).fontFamily")
    assert "Material Symbols" in family
    # document.fonts.ready can resolve before the browser has even asked for the icon font, so
    # ask for it: load() rejects if the font cannot be fetched, and resolves once it is loaded.
    load = "family => document.fonts.load(`24px ${family}`, 'person').then(faces => faces.map(f => f.family))"
    faces = page.evaluate(load, family)
    assert any("Material Symbols" in face for face in faces)
    loaded = "[...document.fonts].some(f => /Material Symbols/.test(f.family) && f.status == 'loaded')"
    page.wait_for_function(loaded, timeout=30_000)
    assert page.evaluate("document.querySelector(\"link[rel='shortcut icon']\").href").startswith("data:image/svg")
    page.get_by_role("link", name="Team").first.click()
    page.get_by_role("heading", name="Team").first.wait_for(timeout=60_000)
    assert page.url.rstrip("/").endswith("/team")
    page.close()


def test_rules_page_loads(server, browser):
    page = browser.new_page()
    page.goto(f"{server}/rules", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Rules").first.wait_for(timeout=60_000)
    page.get_by_text("Events that would change category").wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


def test_data_page_imports_an_uploaded_calendar(browser, tmp_path):
    from test_imports import ANN, QBR, SYNC, calendar

    export = tmp_path / "work.ics"
    export.write_text(calendar("Work", QBR, SYNC), newline="")
    data = tmp_path / "data"
    with serve_dashboard(data) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/data", wait_until="domcontentloaded")
        page.get_by_role("heading", name="Data").first.wait_for(timeout=60_000)
        page.get_by_text("No data yet").wait_for(timeout=30_000)
        page.locator('input[type="file"]').first.set_input_files(str(export))
        page.get_by_label("Whose calendar is it?").fill(ANN)
        page.get_by_role("button", name="Import calendar").click()
        page.get_by_text("2 imported").wait_for(timeout=60_000)
        page.get_by_text("Calendar files").wait_for(timeout=30_000)  # the holdings table now lists them
        assert page.locator('[data-testid="stException"]').count() == 0
        page.close()
    con = Lake(data).connect()
    ids = [i for (i,) in con.execute("SELECT id FROM events").fetchall()]
    calendars = {i.split("/", 1)[0] for i in ids}  # one calendar, known by a digest, not by its name
    assert sorted(i.split("/", 1)[1] for i in ids) == ["qbr", "sync"]
    assert len(calendars) == 1 and calendars.pop().startswith("calendar:")


def test_a_member_signs_in_and_cannot_reach_anyone_elses_view(browser, demo_dir, tmp_path):
    """Sign-in through a real OpenID Connect provider on loopback (oidc-provider-mock), then
    tampering with the URL and the widgets: a member sees their own week and nothing more."""
    import csv

    from oidc_provider_mock import User, run_server_in_thread

    people = list(csv.DictReader((demo_dir / "people.csv").open(newline="")))
    member = next(r for r in people if r["role"] == "member" and r["team"] == "Sales")
    other = next(r for r in people if r["team"] == "Sales" and r["email"] != member["email"])
    port = free_port()
    with run_server_in_thread(user_claims=[User(sub=member["email"], claims={"email": member["email"]})]) as idp:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "a-long-random-string-for-the-test-only"\n'
            'client_id = "timeaudit"\nclient_secret = "timeaudit-test"\n'
            f'server_metadata_url = "http://localhost:{idp.server_port}/.well-known/openid-configuration"\n'
        )
        secrets.chmod(0o600)
        with serve_dashboard(demo_dir, port=port, extra=["--secrets", str(secrets)]) as url:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("button", name="Sign in").click()
            page.locator('input[name="sub"]').fill(member["email"])
            page.get_by_role("button", name="Authorize").click()
            page.get_by_role("heading", name="My week").first.wait_for(timeout=60_000)
            page.get_by_text(f"Signed in as {member['email']}").wait_for(timeout=30_000)
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert other["name"] not in body

            # The person picker offers nobody else.
            page.get_by_label("Person").first.click()
            options = page.get_by_role("option").all_inner_texts()
            assert options == [f"{member['name']} (Sales)"]
            page.keyboard.press("Escape")

            # Nor do URLs: another person's address, the rules and data pages.
            for path in (f"/?person={other['email']}", "/rules", "/data"):
                page.goto(url + path, wait_until="domcontentloaded")
                page.get_by_role("heading", name="My week").first.wait_for(timeout=60_000)
                page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
                body = page.inner_text("body")
                assert other["name"] not in body and "Keyword rules" not in body and "Import exports" not in body
            assert page.locator('[data-testid="stException"]').count() == 0
            page.close()


def test_the_server_sends_the_frontends_files_whole(server):
    """dashboard/server.py: Streamlit's scripts and the app's plotly.js come from memory, as
    they are on disk (never gzipped on each request), cached as Streamlit caches them, and not
    sent again to a browser that has them; the page itself is Streamlit's."""
    import re

    import streamlit

    from dashboard.widgets import PLOTLY_JS, STATIC

    with urllib.request.urlopen(f"{server}/team") as r:
        page = r.read()
    assert b"<title>Streamlit</title>" in page and int(r.headers["Content-Length"]) == len(page)

    bundle = re.search(rb'src="\./(static/js/[^"]+\.js)"', page)[1].decode()
    on_disk = Path(streamlit.__file__).parent / "static" / bundle
    for path, expected, cache in (
        (bundle, on_disk.read_bytes(), "immutable"),
        (f"app/static/{PLOTLY_JS}", (STATIC / PLOTLY_JS).read_bytes(), "no-cache"),
    ):
        request = urllib.request.Request(f"{server}/{path}", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request) as r:
            assert r.read() == expected
            assert r.headers["Content-Encoding"] is None
            assert "javascript" in r.headers["Content-Type"]
            assert cache in r.headers["Cache-Control"]
            etag = r.headers["ETag"]
        with urllib.request.urlopen(urllib.request.Request(f"{server}/{path}", method="HEAD")) as r:
            assert r.read() == b"" and int(r.headers["Content-Length"]) == len(expected)
        again = urllib.request.Request(f"{server}/{path}", headers={"If-None-Match": etag})
        with pytest.raises(urllib.error.HTTPError) as unchanged:  # urllib raises on a 304
            urllib.request.urlopen(again)
        assert unchanged.value.code == 304
    # Anything else is Streamlit's to answer, as before: an unknown file gets the app's page.
    with urllib.request.urlopen(f"{server}/static/js/no-such-file.js") as r:
        assert r.headers["Content-Type"].startswith("text/html")
