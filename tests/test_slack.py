"""Slack as a source: an export built here and a sync from the loopback stand-in of the Web API
(tests/slack_standin.py) give the same records; reruns and a killed run double nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_standin import TOKEN, SlackStandin, export_zip, sample_workspace, serve
from typer.testing import CliRunner

from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.lake.imports import import_slack
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_registered

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC)


@pytest.fixture
def standin():
    s = SlackStandin(sample_workspace(NOW))
    server = serve(s)
    yield s
    server.shutdown()


def token_file(folder: Path, token: str = TOKEN, mode: int = 0o600) -> Path:
    path = folder / "slack-token"
    path.write_text(token + "\n")
    path.chmod(mode)
    return path


def settings_for(standin: SlackStandin, folder: Path, **slack):
    slack = {"token_file": str(token_file(folder)), "base_url": standin.base_url, **slack}
    return parse_settings({"slack": slack, "organisation": {"domains": ["northwind.test"]}})


def records(lake: Lake) -> list[tuple]:
    con = lake.connect()
    try:
        return con.execute("SELECT * EXCLUDE (ingested_at) FROM chat ORDER BY id").fetchall()
    finally:
        con.close()


def by_id(lake: Lake) -> dict[str, dict]:
    con = lake.connect()
    try:
        frame = con.execute("SELECT * FROM chat").df()
    finally:
        con.close()
    return {row["id"]: row for row in frame.to_dict("records")}


def test_an_export_and_a_sync_of_the_same_workspace_give_the_same_records(standin, tmp_path):
    settings = settings_for(standin, tmp_path)
    synced, imported = Lake(tmp_path / "synced"), Lake(tmp_path / "imported")
    summary = sync_registered(synced, settings, "slack")
    assert summary.failed == 0
    report = import_slack(imported, settings, export_zip(standin.workspace, tmp_path / "export.zip"))
    assert report.imported == summary.added > 60
    assert records(synced) == records(imported)
    # Paging: every list came in pages of at most three.
    assert sum(1 for method, params in standin.log if params.get("cursor")) > 10


def test_the_records_hold_metadata_only_and_know_slack_connect(standin, tmp_path):
    lake = Lake(tmp_path / "data")
    sync_registered(lake, settings_for(standin, tmp_path), "slack")
    rows = by_id(lake)
    assert "text" not in next(iter(rows.values()))
    workspace = standin.workspace
    shared = [r for r in rows.values() if r["conversation"] == "C03"]
    assert shared and all(list(r["shared_domains"]) == ["globex.test"] for r in shared)
    assert {r["conversation_kind"] for r in rows.values() if r["conversation"] == "D02"} == {"im"}
    assert all(list(r["shared_domains"]) == ["globex.test"] for r in rows.values() if r["conversation"] == "D02")
    assert all(len(r["shared_domains"]) == 0 for r in rows.values() if r["conversation"] in ("C01", "D01", "G02"))
    kinds = {r["conversation"]: r["conversation_kind"] for r in rows.values()}
    assert kinds["G01"] == "private" and kinds["G02"] == "mpim" and kinds["C01"] == "public"
    # Every message people wrote, and the bot's, but no join.
    wrote = [m for ms in workspace.messages.values() for m in ms if m.get("subtype") != "channel_join"]
    assert len(rows) == len(wrote)
    first = workspace.messages["C01"][0]
    row = rows[f"C01/{first['ts']}"]
    assert row["sender"] == "cat@northwind.test" and list(row["mentions"]) == ["@here"]
    mention = next(m for m in workspace.messages["C02"] if "<@U01>" in m["text"])
    assert list(rows[f"C02/{mention['ts']}"]["mentions"]) == ["ann@northwind.test"]
    reply = next(m for m in workspace.messages["C03"] if m.get("parent_user_id"))
    row = rows[f"C03/{reply['ts']}"]
    assert row["reply_to"] == "gus@globex.test" and row["thread"] == f"C03/{reply['thread_ts']}"
    parent = next(m for m in workspace.messages["C03"] if m.get("reactions"))
    assert rows[f"C03/{parent['ts']}"]["reactions"] == 2
    edited = next(m for m in workspace.messages["C01"] if m.get("edited"))
    assert rows[f"C01/{edited['ts']}"]["updated"] > rows[f"C01/{edited['ts']}"]["ts"]
    bot = next(r for r in rows.values() if r["bot"])
    assert bot["sender"] == "bot:B01"
    assert all(len(r["tags"]) == 0 for r in rows.values())  # privacy.chat_tags is off


def test_chat_tags_only_where_the_settings_allow(standin, tmp_path):
    lake = Lake(tmp_path / "data")
    settings = settings_for(standin, tmp_path)
    settings.privacy.chat_tags = True
    sync_registered(lake, settings, "slack")
    tags = {t for r in by_id(lake).values() for t in r["tags"]}
    assert tags == {"budget", "status update"}


def test_a_second_sync_adds_nothing_and_a_new_message_or_late_reply_is_read(standin, tmp_path):
    lake = Lake(tmp_path / "data")
    settings = settings_for(standin, tmp_path)
    sync_registered(lake, settings, "slack")
    before = records(lake)
    standin.log.clear()
    again = sync_registered(lake, settings, "slack")
    assert again.added == 0 and again.updated == 0 and records(lake) == before
    history = [p for m, p in standin.log if m == "conversations.history"]
    assert len(history) == len(standin.workspace.conversations)  # one request per conversation

    c02 = standin.workspace.messages["C02"]
    parent = next(m for m in reversed(c02) if m.get("reply_count"))
    now_ts = f"{NOW.timestamp():.6f}"
    c02.append(
        {
            "type": "message",
            "user": "U03",
            "text": "late",
            "ts": now_ts,
            "thread_ts": parent["ts"],
            "parent_user_id": parent["user"],
        }
    )
    c02.append({"type": "message", "user": "U02", "text": "new", "ts": f"{NOW.timestamp() + 1:.6f}"})
    third = sync_registered(lake, settings, "slack")
    assert third.added == 2 and len(records(lake)) == len(before) + 2


def test_rate_limits_are_waited_out(standin, tmp_path):
    standin.throttle = {"users.list": 1, "conversations.history": 2}
    lake = Lake(tmp_path / "data")
    summary = sync_registered(lake, settings_for(standin, tmp_path), "slack")
    assert summary.failed == 0 and summary.added > 60
    assert standin.throttle == {"users.list": 0, "conversations.history": 0}


def test_types_the_token_may_not_read_are_left_out_and_named(standin, tmp_path):
    standin.scopes = {"public_channel", "private_channel", "mpim"}
    lake = Lake(tmp_path / "data")
    summary = sync_registered(lake, settings_for(standin, tmp_path), "slack")
    [report] = summary.reports
    assert report.left_out == "im" and "lacks the scope" in report.line()
    assert {r["conversation_kind"] for r in by_id(lake).values()} == {"public", "private", "mpim"}


def _write_config(standin: SlackStandin, folder: Path, token: str = TOKEN, mode: int = 0o600) -> Path:
    config = folder / "timeaudit.toml"
    config.write_text(f'[slack]\ntoken_file = "{token_file(folder, token, mode)}"\nbase_url = "{standin.base_url}"\n')
    return config


def test_a_refused_token_or_a_token_file_others_can_read_end_in_one_line_with_the_fix(standin, tmp_path):
    data = tmp_path / "data"
    config = _write_config(standin, tmp_path, token="xoxb-revoked")
    result = CliRunner().invoke(app, ["sync", "slack", "--data", str(data), "--config", str(config)])
    assert result.exit_code == 2
    assert "Slack refused the token" in result.output and "invalid_auth" in result.output
    assert "slack.token_file" in result.output and "Traceback" not in result.output
    config = _write_config(standin, tmp_path, mode=0o644)
    result = CliRunner().invoke(app, ["sync", "slack", "--data", str(data), "--config", str(config)])
    assert result.exit_code == 2 and "chmod 600" in result.output


def test_the_cli_imports_and_syncs_with_a_summary(standin, tmp_path):
    config = _write_config(standin, tmp_path)
    data = tmp_path / "data"
    result = CliRunner().invoke(app, ["sync", "slack", "--data", str(data), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Slack:" in result.output and "messages" in result.output
    export = export_zip(standin.workspace, tmp_path / "export.zip")
    result = CliRunner().invoke(app, ["import", "slack", str(export), "--data", str(data), "--config", str(config)])
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.split())
    # The sync and the export agree: nothing to change.
    assert "Slack import for slack:T0HOME" in line and "0 imported, 0 updated, 0 removed" in line


def test_importing_the_same_export_twice_changes_nothing_and_a_newer_one_mirrors(standin, tmp_path):
    lake = Lake(tmp_path / "data")
    settings = settings_for(standin, tmp_path)
    export = export_zip(standin.workspace, tmp_path / "export.zip")
    first = import_slack(lake, settings, export)
    second = import_slack(lake, settings, export)
    assert second.imported == second.updated == second.removed == 0 and second.unchanged == first.imported
    gone = standin.workspace.messages["C01"].pop(-1)
    third = import_slack(lake, settings, export_zip(standin.workspace, tmp_path / "newer.zip"))
    assert third.removed == 1 and f"C01/{gone['ts']}" not in by_id(lake)


def test_a_zip_bomb_a_broken_zip_and_a_zip_without_users_are_refused_clearly(standin, tmp_path):
    lake = Lake(tmp_path / "data")
    settings = settings_for(standin, tmp_path)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("users.json", json.dumps(standin.workspace.users))
        z.writestr("general/2026-01-05.json", "[" + " " * 5_000_000 + "]")
    with pytest.raises(Exception, match="max_zip_ratio"):
        import_slack(lake, settings, bomb)
    settings.imports.max_zip_mb = 1
    settings.imports.max_zip_ratio = 100_000
    with pytest.raises(Exception, match="max_zip_mb"):
        import_slack(lake, settings, bomb)
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(Exception, match="not a readable zip file"):
        import_slack(lake, settings, broken)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("calendar.json", "[]")
    with pytest.raises(Exception, match="not a Slack workspace export"):
        import_slack(lake, settings, other)
    assert records(lake) == []


def test_a_killed_sync_rerun_gives_the_lake_of_an_uninterrupted_one(standin, tmp_path):
    config = _write_config(standin, tmp_path)
    killed, reference = Lake(tmp_path / "killed"), Lake(tmp_path / "reference")
    script = f"""
import os, signal
from pathlib import Path
from timeaudit.core.config import load_settings
from timeaudit.lake.store import Lake
from timeaudit.lake.sync import sync_accounts
from connectors.slack.source import SlackSource
lake = Lake({str(killed.root)!r})
written = 0
original = Lake.write_arrow
def write_then_die(self, *args, **kwargs):
    global written
    original(self, *args, **kwargs)
    written += 1
    if written == 2:
        os.kill(os.getpid(), signal.SIGKILL)
Lake.write_arrow = write_then_die
source = SlackSource(load_settings(Path({str(config)!r})))
source.batch_size = 10
sync_accounts(lake, source)
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert len(records(killed)) == 20 and killed.read_cursor("slack", "slack:T0HOME") is None
    settings = settings_for(standin, tmp_path)
    sync_registered(killed, settings, "slack")
    sync_registered(reference, settings, "slack")
    assert records(killed) == records(reference) and len(records(killed)) > 60


def test_export_mine_lists_their_chat_and_forget_scrubs_them(standin, tmp_path):
    import csv
    import io

    from timeaudit.lake.personal_data import export_mine, forget_person

    lake = Lake(tmp_path / "data")
    settings = settings_for(standin, tmp_path)
    sync_registered(lake, settings, "slack")
    rows = by_id(lake).values()
    theirs = [
        r for r in rows if "cat@northwind.test" in (r["sender"], r["reply_to"]) or "cat@northwind.test" in r["mentions"]
    ]
    blob, counts = export_mine(lake, settings, "cat@northwind.test")
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        listed = list(csv.DictReader(io.StringIO(z.read("chat.csv").decode())))
    assert counts["chat.csv"] == len(listed) == len(theirs) > 0
    forget_person(lake, "cat@northwind.test")
    left = by_id(lake).values()
    assert len(left) == len(rows)  # the workspace's records stay, without their address
    assert not any("cat@northwind.test" in (r["sender"], r["reply_to"]) for r in left)


def test_doctor_knows_the_slack_token_file(standin, tmp_path):
    from timeaudit.lake.secret_files import secret_file_problems

    settings = settings_for(standin, tmp_path)
    assert not [p for p in secret_file_problems(settings=settings) if "Slack" in p]
    token_file(tmp_path, mode=0o644)
    [problem] = [p for p in secret_file_problems(settings=settings) if "Slack" in p]
    assert "the Slack token is readable by other users" in problem and "chmod 600" in problem


def test_a_folder_no_list_names_and_a_broken_day_are_skipped_and_listed(standin, tmp_path):
    export = export_zip(standin.workspace, tmp_path / "export.zip")
    with zipfile.ZipFile(export, "a") as z:
        z.writestr("stray/2026-01-05.json", "[]")
        z.writestr("general/2026-01-05.json", "[{not json")
        z.writestr("general/notes.json", "[]")
    report = import_slack(Lake(tmp_path / "data"), settings_for(standin, tmp_path), export)
    skipped = dict(report.skipped)
    assert "no channel, group or DM list names" in skipped["stray/"]
    assert "not valid JSON" in skipped["general/2026-01-05.json"]
    assert "not a daily file" in skipped["general/notes.json"]
    assert report.imported == len(records(Lake(tmp_path / "data"))) > 60
