"""Files at rest: the data folder and everything timeaudit writes in it are its user's only,
and so are the reports and personal exports the CLI writes; `doctor` reports anything looser.

The commands run as a user would run them, under the usual umask (022), which alone would
leave every file readable by everyone on the machine.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEMO_END


def timeaudit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        preexec_fn=lambda: os.umask(0o022),
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A data folder made by `demo` and `metrics`, a report and an export-mine archive beside it."""
    root = tmp_path_factory.mktemp("private")
    data = root / "data"
    for args in (
        ("demo", "--people", "10", "--weeks", "2", "--end", DEMO_END),
        ("metrics",),
        ("report", "--output", str(root / "report.xlsx")),
        ("export-mine", "--person", "nobody@example.org", "--output", str(root / "mine.zip")),
    ):
        result = timeaudit(*args, "--data", str(data), cwd=root)
        assert result.returncode == 0, (args, result.stderr)
    return root


def test_the_data_folder_and_all_in_it_are_the_users_only(written):
    data = written / "data"
    assert mode(data) == 0o700
    everything = [data, *data.rglob("*")]
    assert {"lake", "derived", "people.csv", "timeaudit.toml"} <= {p.name for p in everything}
    assert any(p.suffix == ".parquet" for p in (data / "derived").rglob("*"))
    loose = [f"{p} {mode(p):o}" for p in everything if mode(p) & 0o077]
    assert not loose
    assert all(mode(p) == 0o600 for p in everything if p.is_file())


def test_reports_and_personal_exports_are_the_users_only(written):
    assert mode(written / "report.xlsx") == 0o600
    assert mode(written / "mine.zip") == 0o600


def test_doctor_reports_anything_looser(written, tmp_path):
    data = written / "data"
    result = timeaudit("doctor", "--data", str(data), cwd=written)
    assert f"{data}: readable by you only" in result.stdout

    batch = next((data / "lake").rglob("*.parquet"))
    batch.chmod(0o644)
    try:
        result = timeaudit("doctor", "--data", str(data), cwd=written)
    finally:
        batch.chmod(0o600)
    flat = " ".join(result.stdout.split())
    assert "warn" in flat and f"{batch} (644)" in flat and f"chmod -R go-rwx {data}" in flat
