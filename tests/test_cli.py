"""The command line: every command helps, errors are one line with exit code 2."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from timeaudit.cli import app

from conftest import ROOT


def leaf_commands(group, prefix=()) -> dict[tuple[str, ...], object]:
    """Every runnable command, sub-commands of groups (`sync google-calendar`) included."""
    found = {}
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.update(leaf_commands(command, path) if hasattr(command, "commands") else {path: command})
    return found


LEAVES = leaf_commands(get_command(app))
COMMANDS = sorted(get_command(app).commands)


def test_the_commands_the_design_promises_exist():
    assert {"demo", "dashboard", "report", "doctor", "compact"} <= set(COMMANDS)
    assert {("sync", "google-calendar"), ("import", "ics"), ("import", "mail")} <= set(LEAVES)


def test_every_sync_command_runs_a_registered_source():
    from connectors.registry import SOURCES, source_factory

    synced = {path[1] for path in LEAVES if path[0] == "sync"}
    assert synced == set(SOURCES)
    for name in SOURCES:
        source = source_factory(name)
        assert source.held_columns[-1] == "updated" and source.write_disposition == "merge"


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_command_has_help(path):
    command = LEAVES[path]
    name = " ".join(path)
    assert command.help and len(command.help.strip()) > 20, f"{name} needs a help text"
    for param in command.params:
        if param.name != "help":
            assert getattr(param, "help", None), f"{name} --{param.name} needs a help text"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0
    if path[0] != "auth":  # authorising touches no data folder
        assert "--data" in result.output and "--config" in result.output


@pytest.mark.parametrize("name", [n for n in COMMANDS if hasattr(get_command(app).commands[n], "commands")])
def test_every_command_group_explains_itself(name):
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0 and len(get_command(app).commands[name].help.strip()) > 20


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_report_on_an_empty_lake_says_what_to_do(tmp_path):
    result = run("report", "--data", str(tmp_path), "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2
    assert "config file not found" in result.stderr
    result = run("report", "--data", str(tmp_path))
    assert result.returncode == 2
    assert "timeaudit demo" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_week_is_named(tmp_path):
    result = run("report", "--week", "2026-47", "--data", str(tmp_path))
    assert result.returncode == 2
    assert "--week 2026-47: not an ISO week" in result.stderr


def test_doctor_on_an_empty_folder_points_to_the_demo(tmp_path):
    result = run("doctor", "--data", str(tmp_path))
    assert result.returncode == 0
    assert "no data yet" in result.stdout and "timeaudit demo" in result.stdout


def test_stopping_the_dashboard_command_stops_the_server(demo_dir):
    """SIGTERM to `timeaudit dashboard` alone reaches the Streamlit server it started."""
    import psutil
    from test_browser import answers, start_dashboard, stop

    proc, url = start_dashboard(demo_dir)
    children = []
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the CLI runs Streamlit as its child"
        proc.send_signal(signal.SIGTERM)  # the CLI only, not its process group
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, alive
        assert not answers(url)
    finally:
        stop(proc)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def test_compaction_says_what_it_did():
    from timeaudit.cli.maintenance import compaction_line

    assert compaction_line(12, 1) == "12 files merged into 1"
    assert compaction_line(1, 1) == "1 file, nothing to do"
    assert compaction_line(0, 0) == "0 files, nothing to do"


def test_an_import_ends_by_refreshing_the_derived_tables_unless_told_not_to(demo_dir, tmp_path):
    """After `timeaudit metrics`, an import brings the stored tables up to date by recomputing
    the person-weeks it touched (a progress line, then what was done); --no-refresh leaves them."""
    import json
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    ics = str(ROOT / "tests" / "fixtures" / "ics" / "dst_transition_weekly.ics")
    person = (data / "people.csv").read_text().splitlines()[1].split(",")[0]
    window = ["--since", "2026-09-01", "--until", "2026-11-23"]
    account = ["--account", person, "--data", str(data), *window]
    assert run("metrics", "--data", str(data)).returncode == 0
    before = json.loads((data / "derived" / "manifest.json").read_text())
    skipped = run("import", "ics", ics, *account, "--no-refresh")
    assert skipped.returncode == 0, skipped.stderr
    assert "Derived tables" not in skipped.stdout
    assert json.loads((data / "derived" / "manifest.json").read_text()) == before
    done = run("import", "ics", ics, *account)  # nothing new: the first import's records are refreshed
    assert done.returncode == 0, done.stderr
    assert "Derived tables:" in done.stdout and "person-weeks of 1 people recomputed" in done.stdout, done.stdout
    after = json.loads((data / "derived" / "manifest.json").read_text())
    assert after["lake_version"] != before["lake_version"]
    again = run("import", "ics", ics, *account)
    assert "Derived tables: already up to date." in again.stdout
