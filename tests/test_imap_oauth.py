"""IMAP with XOAUTH2 against a real Dovecot whose oauth2 passdb checks each bearer token at a
loopback token-introspection endpoint (tests/mail_servers.py's TokenServer), which also renews
tokens: the real client library, real token files, a real lake. Nothing of the connector is mocked."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google_standin import StandIn
from graph_standin import CLIENT_ID, TENANT, GraphStandIn
from mail_servers import TokenServer, start_dovecot
from test_imap import ANN, PASSWORD, fill, imap_settings, live_by_id, sync
from typer.testing import CliRunner

from connectors.microsoft import auth as microsoft_auth
from timeaudit.cli import app
from timeaudit.core.config import parse_settings
from timeaudit.core.errors import ConfigError, UserError
from timeaudit.lake.store import Lake

ROOT = Path(__file__).parent.parent
MAILBOX = {"INBOX": [(1, True), (2, False)], "Sent": [(7, True)]}


@pytest.fixture
def oauth():
    tokens = TokenServer()
    server = start_dovecot({ANN: PASSWORD}, introspection_url=tokens.url + "/introspect")
    fill(server, MAILBOX)
    yield server, tokens
    server.stop()
    tokens.stop()


def token_settings(server, tmp_path: Path, **account) -> dict:
    settings = imap_settings(server, tmp_path, auth="xoauth2", **account)
    settings["imap"][0].pop("password_file")
    return settings


def token_file(tmp_path: Path, tokens: TokenServer, *, expires_in: timedelta = timedelta(hours=1)) -> Path:
    """A token file as Google's libraries write one (authorized_user), its access token
    expiring ``expires_in`` from now (negative: expired)."""
    access, refresh = tokens.issue(ANN)
    path = tmp_path / "imap-token.json"
    path.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "token": access,
                "refresh_token": refresh,
                "client_id": "timeaudit-test",
                "token_uri": tokens.url + "/token",
                "scopes": ["https://mail.google.com/"],
                "expiry": (datetime.now(UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    )
    path.chmod(0o600)
    return path


def write_config(settings: dict, tmp_path: Path) -> Path:
    """``settings``' one imap account as a timeaudit.toml."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings["imap"][0].items()]
    config = tmp_path / "timeaudit.toml"
    config.write_text("[[imap]]\n" + "\n".join(lines) + "\n")
    return config


def cli_sync(settings: dict, tmp_path: Path, *command: str) -> tuple[int, str]:
    """`timeaudit sync imap` (or ``command``) with ``settings``' one account in a timeaudit.toml."""
    config = write_config(settings, tmp_path)
    args = [*(command or ("sync", "imap")), "--data", str(tmp_path / "data"), "--config", str(config)]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def test_an_expired_token_is_renewed_saved_privately_and_reused(oauth, tmp_path):
    server, tokens = oauth
    path = token_file(tmp_path, tokens, expires_in=timedelta(minutes=-5))
    old = json.loads(path.read_text())
    settings = token_settings(server, tmp_path, token_file=str(path))
    lake = Lake(tmp_path / "data")

    summary = sync(lake, settings, tmp_path)
    assert summary.failed == 0 and summary.added == 3
    assert tokens.requests["/token"] == 1, "renewed before signing in, not after a refusal"
    saved = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert saved["token"] != old["token"] and saved["token"] in tokens.access
    assert saved["refresh_token"] != old["refresh_token"] and saved["refresh_token"] in tokens.refresh, "rotated"
    assert datetime.fromisoformat(saved["expiry"].rstrip("Z")).replace(tzinfo=UTC) > datetime.now(UTC)
    assert (saved["client_id"], saved["token_uri"], saved["scopes"]) == (
        old["client_id"],
        old["token_uri"],
        old["scopes"],
    )
    assert set(live_by_id(lake)) == {"<m1@test>", "<m2@test>", "<m7@test>"}

    again = sync(lake, settings, tmp_path)
    assert tokens.requests["/token"] == 1, "a valid saved token is used as it is"
    # authenticate, capability, enable, list, one STATUS per folder (INBOX, Sent, Archive), logout
    assert again.records == 0 and again.reports[0].commands == 4 + 3 + 1


def test_a_token_the_server_refuses_is_renewed_once_then_a_revoked_sign_in_is_one_line(oauth, tmp_path):
    server, tokens = oauth
    path = token_file(tmp_path, tokens)
    settings = token_settings(server, tmp_path, token_file=str(path))
    tokens.revoke(json.loads(path.read_text())["token"])  # revoked before its expiry

    code, output = cli_sync(settings, tmp_path)
    assert code == 0, output
    assert tokens.requests["/token"] == 1 and "IMAP: 1 mailbox(es), 3 messages" in output

    saved = path.read_bytes()
    info = json.loads(saved)
    tokens.revoke(info["token"])
    tokens.revoke(info["refresh_token"])  # the person revoked the app's access
    code, output = cli_sync(settings, tmp_path)
    assert code == 2
    assert "refused the refresh token (invalid_grant: Token has been revoked.)" in output
    assert "sign in again" in output and str(path) in output.replace("\n", "")
    assert path.read_bytes() == saved, "the token file is left as it was"
    assert info["token"] not in output and info["refresh_token"] not in output


def test_a_token_command_signs_in_and_a_refused_or_failing_one_is_one_line(oauth, tmp_path):
    server, tokens = oauth
    access, _ = tokens.issue(ANN)
    printer = f"{shlex.quote(sys.executable)} -c 'print(\"{access}\")'"
    code, output = cli_sync(token_settings(server, tmp_path, token_command=printer), tmp_path)
    assert code == 0 and "3 messages" in output, output

    tokens.revoke(access)
    code, output = cli_sync(token_settings(server, tmp_path, token_command=printer), tmp_path)
    assert code == 2 and "refused the XOAUTH2 sign-in" in output and "token_command" in output
    assert "expired or revoked" in output and access not in output

    failing = f"{shlex.quote(sys.executable)} -c 'import sys; sys.exit(\"no cached token; run oama authorize\")'"
    code, output = cli_sync(token_settings(server, tmp_path, token_command=failing), tmp_path)
    assert code == 2 and "failed (exit 1: no cached token; run oama authorize)" in output.replace("\n", "")


def test_a_server_without_xoauth2_a_shared_token_file_and_half_a_configuration_are_refused(tmp_path):
    server = start_dovecot({ANN: PASSWORD})  # no oauth2 passdb: AUTH=XOAUTH2 not offered
    try:
        tokens = TokenServer()
        path = token_file(tmp_path, tokens)
        code, output = cli_sync(token_settings(server, tmp_path, token_file=str(path)), tmp_path)
        assert code == 2 and "does not offer XOAUTH2 sign-in" in output and 'auth = "password"' in output
        tokens.stop()

        path.chmod(0o644)
        with pytest.raises(UserError, match="chmod 600"):
            sync(Lake(tmp_path / "data"), token_settings(server, tmp_path, token_file=str(path)), tmp_path)
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="needs one of token_file or token_command"):
        parse_settings({"imap": [{"account": ANN, "host": "imap.example.com", "auth": "xoauth2"}]})
    with pytest.raises(ConfigError, match="only with auth = 'xoauth2'"):
        parse_settings({"imap": [{"account": ANN, "host": "imap.example.com", "token_file": "t.json"}]})


def test_auth_imap_signs_in_with_a_microsoft_device_code_and_syncs_renew_the_token(tmp_path, monkeypatch):
    """`timeaudit auth imap --microsoft` against the Graph stand-in's sign-in endpoints; Dovecot
    takes the tokens that stand-in issued (as Exchange Online takes Entra ID's)."""
    graph = GraphStandIn(tmp_path / "tls").start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(graph.ca))
    monkeypatch.setenv(microsoft_auth.AUTHORITY_ENV, graph.url.rstrip("/"))
    monkeypatch.setenv(microsoft_auth.TOKEN_DIR_ENV, str(tmp_path / "tokens"))
    graph.device_user = ANN
    issued = lambda token: graph.access.get(token, ("", 0))[0] or None  # noqa: E731
    tokens = TokenServer(also=issued)
    server = start_dovecot({ANN: PASSWORD}, introspection_url=tokens.url + "/introspect")
    try:
        fill(server, MAILBOX)
        path = tmp_path / "outlook-imap.json"
        settings = token_settings(server, tmp_path, token_file=str(path))
        code, output = cli_sync(settings, tmp_path, "auth", "imap", ANN, "--microsoft", CLIENT_ID, "--tenant", TENANT)
        assert code == 0, output
        assert "ABCD-EFGH" in output and "IMAP token saved" in output
        saved = json.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert saved["token_uri"] == f"{graph.url.rstrip('/')}/{TENANT}/oauth2/v2.0/token"
        assert saved["client_id"] == CLIENT_ID and saved["refresh_token"] and saved["account"] == ANN
        assert microsoft_auth.IMAP_SCOPE in saved["scopes"]
        assert not (tmp_path / "tokens" / microsoft_auth.IDENTITY_FILE).exists(), "the Graph sign-in is left alone"

        code, output = cli_sync(settings, tmp_path)
        assert code == 0 and "3 messages" in output, output
        graph.expire_access()  # Entra ID ended the session's access tokens before their expiry
        code, output = cli_sync(settings, tmp_path)
        assert code == 0, output
        assert json.loads(path.read_text())["refresh_token"] != saved["refresh_token"], "renewed and rotated"
        assert [e.query["grant_type"] for e in graph.log if e.path.endswith("/token")][-1] == "refresh_token"

        graph.revoke_all()
        code, output = cli_sync(settings, tmp_path)
        assert code == 2 and "AADSTS70008" in output and "sign in again" in output
    finally:
        server.stop()
        tokens.stop()
        graph.stop()


def test_auth_imap_signs_in_to_google_for_the_full_mail_scope_and_the_sync_uses_it(tmp_path):
    """`timeaudit auth imap --google` through the installed-app flow against the Google stand-in
    (a browser in the background follows its consent page); Dovecot takes the tokens it issued."""
    google = StandIn().start()
    google.consent_user = ANN
    tokens = TokenServer(also=lambda token: google.access.get(token))
    server = start_dovecot({ANN: PASSWORD}, introspection_url=tokens.url + "/introspect")
    try:
        fill(server, MAILBOX)
        path = tmp_path / "gmail-imap.json"
        settings = token_settings(server, tmp_path, token_file=str(path))
        config = write_config(settings, tmp_path)
        client = tmp_path / "client_secret.json"
        client.write_text(json.dumps(google.client_secrets()))
        browser = tmp_path / "browser.sh"
        browser.write_text(f'#!/bin/sh\n"{sys.executable}" "{ROOT / "tests" / "google_standin.py"}" browse "$1" &\n')
        browser.chmod(0o755)
        env = dict(os.environ, BROWSER=str(browser), PYTHONPATH=str(ROOT), TIMEAUDIT_TOKEN_DIR=str(tmp_path / "t"))
        done = subprocess.run(
            [sys.executable, "-m", "timeaudit.cli", "auth", "imap", ANN, "--google", str(client),
             "--config", str(config)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        saved = json.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert saved["scopes"] == ["https://mail.google.com/"] and saved["token_uri"] == google.token_uri
        assert saved["refresh_token"] and saved["account"] == ANN
        consent = next(e for e in google.log if e.path == "/o/oauth2/auth")
        assert consent.query["scope"] == "https://mail.google.com/", "only the scope Gmail's IMAP takes"
        assert not (tmp_path / "t" / "google-token.json").exists(), "the Calendar/Gmail sign-in is left alone"

        code, output = cli_sync(settings, tmp_path)
        assert code == 0 and "3 messages" in output, output
        google.access.clear()  # access tokens ended early: the sync renews at the file's token_uri
        code, output = cli_sync(settings, tmp_path)
        assert code == 0, output
        assert json.loads(path.read_text())["token"] in google.access
    finally:
        server.stop()
        tokens.stop()
        google.stop()
