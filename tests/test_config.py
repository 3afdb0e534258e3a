"""Settings: defaults with no file, the example file, and one clear line for each mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from timeaudit.core.config import Settings, load_settings, parse_settings
from timeaudit.core.errors import ConfigError

ROOT = Path(__file__).parent.parent


def test_no_file_gives_working_defaults():
    s = load_settings(None)
    assert s.privacy.min_group_size == 5
    assert s.rules.focus_min_hours == 2
    assert s.rules.large_meeting == 8
    assert s.rules.long_meeting_minutes == 60
    assert s.privacy.store_titles is False and s.privacy.store_subjects is False


def test_example_file_documents_every_key_and_loads():
    example = ROOT / "timeaudit.example.toml"
    loaded, defaults = load_settings(example), Settings()
    assert loaded.rules.email_minutes_per_read == pytest.approx(defaults.rules.email_minutes_per_read, abs=1e-4)
    loaded.rules.email_minutes_per_read = defaults.rules.email_minutes_per_read
    assert loaded.model_dump() == defaults.model_dump(), "the example must show the defaults"
    text = example.read_text()
    for section in ("organisation", "rules", "audit", "privacy"):
        assert f"[{section}]" in text
        for key in type(getattr(defaults, section)).model_fields:
            assert f"{key} =" in text or f"[{section}.{key}]" in text, f"{section}.{key} is not documented"
    assert "roster =" in text and "[[customers]]" in text


def test_roster_path_is_relative_to_the_file(tmp_path):
    cfg = tmp_path / "timeaudit.toml"
    cfg.write_text('roster = "people.csv"\n')
    assert load_settings(cfg).roster_path() == tmp_path / "people.csv"


BAD_CONFIGS = {
    "unknown_key": ("[organisation]\nnmae = 'x'\n", "unknown key 'organisation.nmae'"),
    "wrong_type": ("[rules]\nlarge_meeting = 'eight'\n", "'rules.large_meeting' is invalid"),
    "bad_domain": ("[[customers]]\nname = 'Acme'\ndomains = ['acme com']\n", "'customers.0.domains' is invalid"),
    "bad_timezone": ("[organisation]\ntimezone = 'Mars/Base'\n", "not an IANA time zone"),
    "bad_hours": ("[organisation]\nworking_hours = '17:00-09:00'\n", "must end after it starts"),
    "missing_customer_name": ("[[customers]]\ndomains = ['acme.com']\n", "'customers.0.name' is required"),
    "not_toml": ("[organisation\n", "not valid TOML"),
    "goal_out_of_range": ("[goals]\ncustomer_share = 1.5\n", "'goals.customer_share' is invalid"),
    "team_goal_misspelt": (
        "[goals.teams.Support]\nmeeting_hour = 6\n",
        "unknown key 'goals.teams.Support.meeting_hour'",
    ),
    "smtp_plain_remote": ("[digest.smtp]\nhost = 'smtp.example.com'\nsecurity = 'plain'\n", "'digest.smtp' is invalid"),
    "channel_kind": ("[[digest.channels]]\nteam = 'S'\nkind = 'irc'\nwebhook_file = 'x'\n", "'digest.channels.0.kind'"),
    "opt_in_not_address": ("[digest]\npeople_opt_in = ['ana']\n", "'digest.people_opt_in' is invalid"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_names_the_key(tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    cfg = tmp_path / f"{case}.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")) as info:
        load_settings(cfg)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize("case", ["unknown_key", "wrong_type", "bad_domain"])
def test_cli_ends_bad_config_with_one_line_and_exit_2(tmp_path, case):
    text, expected = BAD_CONFIGS[case]
    cfg = tmp_path / "timeaudit.toml"
    cfg.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "report", "--config", str(cfg), "--data", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "fix" in lines[0] or "remove it" in lines[0]
    assert "Traceback" not in result.stderr


def test_summary_definitions_say_the_constants_in_force():
    """The email cost, focus gap and neglect threshold a summary states are the settings', not fixed text."""
    from timeaudit.outputs.summary import definitions

    settings = parse_settings(
        {
            "rules": {"email_minutes_per_read": 1.0, "email_minutes_per_sent": 3.0, "focus_min_hours": 1.0},
            "audit": {"neglected_after_days": 14},
        }
    )
    said = definitions(settings)
    assert "60 s per read email, 3 min per sent one" in said["Customer email"]
    assert "gaps of 1 hour or more" in said["Focus"]
    assert "14 days" in said["Neglected customers"]


def test_a_team_overrides_single_goals_and_customer_share_falls_back_to_the_audit_target():
    s = parse_settings(
        {
            "audit": {"target_customer_share": 0.4},
            "goals": {"meeting_hours": 6, "teams": {"Support": {"customer_share": 0.7, "focus_hours": 12}}},
        }
    )
    org, support = s.goals_for(None), s.goals_for("Support")
    assert (org.customer_share, org.meeting_hours, org.focus_hours) == (0.4, 6, 10)
    assert (support.customer_share, support.meeting_hours, support.focus_hours) == (0.7, 6, 12)
    assert s.goals_for("Sales") == org
