"""Fail-closed sign-in: with sign-in configured there is no local mode, and without it the
dashboard does not listen beyond loopback unless told so in so many words."""

from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest
from test_access import APP, AUTH, first

from timeaudit.core.sign_in import SignInRefused, check_exposure, is_loopback, verified_address

REFUSED = "Sign-in refused"
PAGES = ["views/my_week.py", "views/team.py", "views/wasters.py", "views/customers.py"]
PAGES += ["views/rules.py", "views/data.py"]


@pytest.fixture
def config(demo_dir, tmp_path, monkeypatch):
    """The demo's settings with its roster named by its full path: sign-in's roles come from it."""
    text = (demo_dir / "timeaudit.toml").read_text()
    path = tmp_path / "timeaudit.toml"
    path.write_text(text.replace('roster = "people.csv"', f'roster = "{demo_dir / "people.csv"}"'))
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(path))
    return path


def signed_in_as(user: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, **user}
    return at.run()


def assert_refusal_only(at: AppTest, title: str, reason: str) -> None:
    """The page says why, offers signing out, and shows nothing else (no figures, pickers or
    navigation), whichever page is asked for, Rules and Data included."""
    for page in (None, *PAGES):
        if page:
            at.switch_page(page).run()
        assert not at.exception, page
        assert [t.value for t in at.title] == [title], page
        assert reason in at.error[0].value
        assert [b.label for b in at.button] == ["Sign out"]
        assert not at.metric and not at.get("plotly_chart") and not at.selectbox and not at.dataframe
        assert not at.table and not at.get("download_button") and not at.sidebar.caption


def test_an_identity_without_an_email_claim_is_refused_everywhere(config):
    at = signed_in_as({"sub": "someone", "name": "Someone"})
    assert_refusal_only(at, REFUSED, "gave no email address")


def test_an_unverified_email_is_refused_everywhere(config, demo_dir):
    admin = first(demo_dir, "admin")
    for flag in (False, "false"):
        at = signed_in_as({"email": admin, "email_verified": flag})
        assert_refusal_only(at, REFUSED, f"{admin} is not verified")
    at = signed_in_as({"email": admin, "email_verified": True})
    assert not at.exception and not at.error and at.title[0].value != REFUSED


def test_sign_in_without_a_roster_refuses_everyone(config, demo_dir, tmp_path, monkeypatch):
    text = (demo_dir / "timeaudit.toml").read_text()
    bare = tmp_path / "no-roster.toml"
    bare.write_text("\n".join(line for line in text.splitlines() if not line.startswith("roster")))
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(bare))
    at = signed_in_as({"email": first(demo_dir, "admin")})
    assert_refusal_only(at, REFUSED, "no roster")


def test_the_identity_rules_themselves():
    assert verified_address({"email": " Ann@Example.com ", "email_verified": True}) == "ann@example.com"
    assert verified_address({"email": "ann@example.com"}) == "ann@example.com", "not sent: not a refusal"
    for claims in ({}, {"email": ""}, {"email": None}, {"email": "ann@example.com", "email_verified": False}):
        with pytest.raises(SignInRefused):
            verified_address(claims)


# -- without sign-in: loopback unless told otherwise --------------------------------------------
def test_loopback_is_told_from_the_network():
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.1")
    check_exposure("0.0.0.0", signs_in=True, allowed=False)
    check_exposure("0.0.0.0", signs_in=False, allowed=True)


def dashboard(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "dashboard", "--port", "9", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_the_dashboard_will_not_serve_the_network_without_sign_in(host, tmp_path):
    result = dashboard("--host", host, "--data", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--host {host}: without sign-in" in lines[0]
    assert "--allow-anyone-on-the-network" in lines[0]


def test_a_secrets_file_without_an_auth_section_is_no_sign_in(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('other = "x"\n')
    secrets.chmod(0o600)
    result = dashboard("--host", "0.0.0.0", "--secrets", str(secrets), "--data", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "without sign-in" in result.stderr
