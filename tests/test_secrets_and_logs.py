"""Secrets stay private: the dashboard refuses to start while a secrets file or a saved token
is readable by others, `timeaudit doctor` says so; and what the commands print never holds a
token, an event title or an email subject."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

import connectors.demo.records as demo_records
from connectors.demo.org import build_org
from timeaudit.core.config import find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.secret_files import check_private, check_secret_files
from timeaudit.lake.store import Lake

from conftest import DEMO_END

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX file modes")

REFRESH_TOKEN = "1//0gPlantedRefreshToken7Qx9LmZ3"
ACCESS_TOKEN = "ya29.PlantedAccessToken4Hk2Jd8"
CLIENT_SECRET = "GOCSPX-PlantedClientSecret5Rt1"
COOKIE_SECRET = "planted-cookie-secret-8Vb3Nq6Wz"
SYNC_TOKEN = "CPDAlvWDx70CEPDAlvWDx70CGAU="
PLANTED = (REFRESH_TOKEN, ACCESS_TOKEN, CLIENT_SECRET, COOKIE_SECRET, SYNC_TOKEN)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A clean current folder, home folder and token folder, for this process and its children."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TIMEAUDIT_TOKEN_DIR", str(tmp_path / "tokens"))
    (tmp_path / "home").mkdir()
    return tmp_path


def write(path: Path, text: str, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def secrets_toml(folder: Path, mode: int) -> Path:
    return write(folder / ".streamlit" / "secrets.toml", f'[auth]\ncookie_secret = "{COOKIE_SECRET}"\n', mode)


def google_token(folder: Path, mode: int) -> Path:
    text = f'{{"refresh_token": "{REFRESH_TOKEN}", "token": "{ACCESS_TOKEN}", "client_secret": "{CLIENT_SECRET}"}}'
    return write(folder / "tokens" / "google-token.json", text, mode)


def timeaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- permissions ------------------------------------------------------------------------------
def test_check_private_names_the_file_the_mode_and_the_fix(tmp_path):
    path = write(tmp_path / "secrets.toml", "x", 0o644)
    with pytest.raises(UserError) as e:
        check_private(path, "Streamlit's secrets file")
    assert str(e.value) == (
        f"{path}: Streamlit's secrets file is readable by other users (mode 0644); run `chmod 600 {path}`"
    )
    path.chmod(0o620)
    with pytest.raises(UserError, match=r"writable by other users \(mode 0620\)"):
        check_private(path, "x")
    path.chmod(0o600)
    check_private(path, "x")
    check_private(tmp_path / "missing.toml", "x")


@pytest.mark.parametrize("where", ["current folder", "home folder", "token folder"])
def test_check_secret_files_finds_each_kind(home, where):
    if where == "token folder":
        path = google_token(home, 0o640)
    else:
        path = secrets_toml(home if where == "current folder" else home / "home", 0o644)
    with pytest.raises(UserError, match=re.escape(f"{path}: ")):
        check_secret_files()
    path.chmod(0o600)
    check_secret_files()


@pytest.mark.parametrize("kind", ["secrets.toml", "google token", "--secrets file"])
def test_dashboard_refuses_to_start_with_secrets_others_can_read(home, kind):
    args = ["dashboard", "--port", str(unused_port()), "--data", "data"]
    if kind == "secrets.toml":
        path = secrets_toml(home, 0o644)
    elif kind == "google token":
        path = google_token(home, 0o644)
    else:
        path = write(home / "elsewhere" / "auth.toml", f'[auth]\ncookie_secret = "{COOKIE_SECRET}"\n', 0o604)
        args += ["--secrets", str(path)]
    result = timeaudit(*args, cwd=home)
    assert result.returncode == 2
    assert f"{path.absolute()}: " in result.stderr and "readable by other users" in result.stderr
    assert f"run `chmod 600 {path.absolute()}`" in " ".join(result.stderr.split())
    assert "timeaudit dashboard: http" not in result.stdout, "refused before serving"


def test_dashboard_starts_when_secrets_are_private(home):
    secrets_toml(home, 0o600)
    google_token(home, 0o600)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "timeaudit.cli", "dashboard", "--port", str(unused_port()), "--data", "data"]
    # The check runs before Streamlit starts; the first line printed after it is the address.
    proc = subprocess.Popen(
        command, cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        first = _first_line(proc, timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert first.startswith("timeaudit dashboard: http://localhost:"), first


def _first_line(proc: subprocess.Popen, timeout: float) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=1):
                return proc.stdout.readline().decode()
            if proc.poll() is not None:
                return proc.stderr.read().decode()
    return ""


def test_doctor_reports_secret_files_others_can_read(home):
    token = google_token(home, 0o644)
    result = timeaudit("doctor", "--data", "data", cwd=home)
    assert result.returncode == 2
    assert "the saved Google token is readable by other users (mode 0644)" in result.stdout
    assert str(token) in result.stdout
    token.chmod(0o600)
    result = timeaudit("doctor", "--data", "data", cwd=home)
    assert "secret files: 1, readable by you only" in result.stdout


# -- logs -------------------------------------------------------------------------------------
def demo_titles_and_subjects(people: int, weeks: int, monkeypatch) -> set[str]:
    """Every title and subject the demo generates, as written before they become tags."""
    seen: set[str] = set()
    keep = demo_records.tags

    def note(text: str) -> list[str]:
        seen.add(text)
        return keep(text)

    monkeypatch.setattr(demo_records, "tags", note)
    org = build_org(people=people, weeks=weeks, seed=7, end=date.fromisoformat(DEMO_END))
    for _ in demo_records.iter_events(org):
        pass
    for _ in demo_records.iter_messages(org):
        pass
    return seen


def leaked(text: str, output: str) -> bool:
    """Shown as written (case kept); or in any case when it says more than its keyword tags.
    A title that is nothing but keywords ("Status update") may show as its tags."""
    bounded = rf"(?<![\w]){re.escape(text)}(?![\w])"
    if re.search(bounded, output):
        return True
    words = set(re.findall(r"[a-z0-9]+", text.lower()))
    tag_words = set(re.findall(r"[a-z0-9]+", " ".join(demo_records.tags(text))))
    return bool(words - tag_words) and bool(re.search(bounded, output, re.IGNORECASE))


def token_like(output: str) -> list[str]:
    """Strings shaped like credentials: Google's prefixes, PEM keys, long mixed letter-digit runs."""
    found = re.findall(r"ya29\.\S+|1//0\S+|GOCSPX-\S+|-----BEGIN [A-Z ]*KEY-----", output)
    runs = re.findall(r"[A-Za-z0-9_\-+/=]{32,}", output)
    found += [r for r in runs if re.search(r"\d", r) and re.search(r"[A-Za-z]", r)]
    return found


def test_a_full_demo_run_prints_no_token_title_or_subject(home, monkeypatch):
    secrets_toml(home, 0o600)
    google_token(home, 0o600)
    outputs = []
    result = timeaudit("demo", "--people", "12", "--weeks", "2", "--end", DEMO_END, "--data", "data", cwd=home)
    assert result.returncode == 0, result.stderr
    outputs.append(result.stdout + result.stderr)
    settings = load_settings(find_config(None, home / "data"))
    assert not settings.privacy.store_titles and not settings.privacy.store_subjects
    lake = Lake(home / "data")
    person = settings.roster_path().read_text().splitlines()[1].split(",")[0]
    lake.write_cursor("google-calendar", person, {"calendars": {"primary": {"sync_token": SYNC_TOKEN}}})
    for command in (["doctor"], ["report", "--format", "md"], ["audit"], ["customers"]):
        result = timeaudit(*command, "--data", "data", cwd=home)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    output = "\n".join(outputs)
    assert "Top wasters" in output and "Customers" in output and "sync cursors: 1" in output

    texts = demo_titles_and_subjects(12, 2, monkeypatch)
    assert len(texts) > 40 and "Steering committee" in texts and "Question about invoice" in texts
    assert [t for t in sorted(texts) if leaked(t, output)] == []
    assert [p for p in PLANTED if p in output] == []
    assert token_like(output) == []


def test_the_leak_checks_would_catch_a_leak():
    assert leaked("Steering committee", "meeting: Steering committee, 90 min")
    assert leaked("Question about invoice", "QUESTION ABOUT INVOICE")
    assert not leaked("Status update", "status update   10")
    assert not leaked("1:1", "at 11:15")
    assert token_like(f"token={REFRESH_TOKEN}") and token_like("x " + "a1" * 20)
    assert not token_like("-" * 80 + " 2026-11-09 kira.chen@northwind-demo.com")
