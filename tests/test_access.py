"""Who sees what: each role of the demo roster signed in, page by page, in Streamlit's AppTest.

The demo roster has members, a lead per team (Kira Chen leads Support) and an admin. Sign-in
is switched on by an ``[auth]`` section in the app's secrets; ``AppTest.user`` plays the
identity provider's answer.
"""

from __future__ import annotations

import csv

import pytest
from streamlit.testing.v1 import AppTest

from timeaudit.core.config import load_settings
from timeaudit.core.roster import read_roster
from timeaudit.privacy import HIDDEN, AccessDenied, access_for, local_access

from conftest import ROOT

APP = str(ROOT / "dashboard" / "app.py")
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "not-a-secret-only-a-test",
    "client_id": "timeaudit",
    "client_secret": "test",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


def roster(demo_dir) -> list[dict]:
    with (demo_dir / "people.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def first(demo_dir, role: str, team: str | None = None) -> str:
    return next(r["email"] for r in roster(demo_dir) if r["role"] == role and (team is None or r["team"] == team))


@pytest.fixture
def config(demo_dir, tmp_path, monkeypatch):
    """A copy of the demo's settings that tests can add privacy keys to."""

    def write(extra: str = ""):
        text = (
            (demo_dir / "timeaudit.toml")
            .read_text()
            .replace('roster = "people.csv"', f'roster = "{demo_dir / "people.csv"}"')
        )
        path = tmp_path / "timeaudit.toml"
        path.write_text(text + ("\n[privacy]\n" + extra + "\n" if extra else ""))
        monkeypatch.setenv("TIMEAUDIT_CONFIG", str(path))
        return path

    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    write()
    return write


def signed_in(email: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": email} if email else {"is_logged_in": False}
    return at.run()


def people_offered(at: AppTest) -> list[str]:
    return list(at.selectbox(key="person").options)


def test_nobody_signed_in_sees_only_the_sign_in_button(config):
    at = signed_in(None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.get("plotly_chart")


def test_an_address_not_on_the_roster_gets_that_page_and_nothing_else(config):
    at = signed_in("stranger@elsewhere.com")
    assert not at.exception
    assert at.title[0].value == "Not on the roster"
    assert "stranger@elsewhere.com is not on the roster" in at.error[0].value
    assert not at.metric and not at.get("plotly_chart") and not at.selectbox


def test_a_member_sees_only_their_own_week(config, demo_dir):
    member = first(demo_dir, "member", "Support")
    at = signed_in(member)
    assert not at.exception
    assert [o.split(" (")[0] for o in people_offered(at)] == [
        next(r["name"] for r in roster(demo_dir) if r["email"] == member)
    ]
    assert at.selectbox(key="person").value == member
    assert any("Signed in as " + member in c.value for c in at.sidebar.caption)


def test_a_member_gets_team_aggregates_but_nobody_elses_figures(config, demo_dir):
    member = first(demo_dir, "member", "Support")
    at = signed_in(member)
    at.switch_page("views/team.py").run()
    assert not at.exception and at.metric  # team aggregates are for everyone
    at.switch_page("views/wasters.py").run()
    assert not at.exception
    names = {r["email"]: r["name"] for r in roster(demo_dir)}
    for frame in at.dataframe:
        value = frame.value
        for column in ("name", "person", "Person"):
            if column in value.columns:
                assert set(value[column]) <= {names[member], member, HIDDEN}, column
    at.switch_page("views/customers.py").run()
    picker = at.selectbox(key="customer-emails")
    at = picker.select(picker.options[0]).run()  # every email of one customer, with who got and answered it
    assert not at.exception
    assert any("replier" in frame.value.columns for frame in at.dataframe)
    for frame in at.dataframe:
        value = frame.value
        for column in ("Held by", "Person", "person", "replier"):
            if column in value.columns:
                assert set(value[column].dropna()) <= {member, HIDDEN}, column


def test_configuration_pages_are_for_admins_only(config, demo_dir):
    member = signed_in(first(demo_dir, "member"))
    for page in ("views/rules.py", "views/data.py"):  # not even in a member's navigation
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            member.switch_page(page)

    admin = signed_in(first(demo_dir, "admin"))
    admin.switch_page("views/data.py").run()
    assert not admin.exception and not admin.error and admin.table
    admin.switch_page("views/rules.py").run()
    assert not admin.exception and not admin.error
    assert len(people_offered(signed_in(first(demo_dir, "admin")))) == 1  # and only their own week


def test_a_lead_sees_their_team_per_person_only_when_the_config_allows(config, demo_dir):
    lead = first(demo_dir, "lead", "Support")
    support = {f"{r['name']} (Support)" for r in roster(demo_dir) if r["team"] == "Support"}
    assert len(people_offered(signed_in(lead))) == 1

    config("leads_see_individuals = true")
    at = signed_in(lead)
    assert not at.exception
    offered = people_offered(at)
    assert set(offered) == support
    at.switch_page("views/wasters.py").run()
    assert not at.exception


def test_group_figures_disappear_below_the_minimum_group_size(config, demo_dir):
    config("min_group_size = 9")  # only Support (10 people) is large enough
    at = signed_in(first(demo_dir, "member", "Support"))
    at.switch_page("views/team.py").run()
    assert not at.exception
    assert list(at.selectbox(key="team").options) == ["Support"]
    assert "Hidden:" in at.warning[0].value and "Finance (6 people)" in at.warning[0].value
    at.switch_page("views/wasters.py").run()
    assert list(at.selectbox(key="wasters-team").options) == ["Everyone", "Support"]


# -- the rules themselves, without the dashboard -------------------------------------------
def test_access_refuses_what_the_role_does_not_show(demo_dir):
    settings = load_settings(demo_dir / "timeaudit.toml")
    people = read_roster(demo_dir / "people.csv")
    teams = {p.email: p.team for p in people}
    member = next(p for p in people if p.role == "member" and p.team == "Finance")
    colleague = next(p for p in people if p.team == "Finance" and p.email != member.email)
    access = access_for(member.email, settings, people, teams)
    access.require_person(member.email)
    with pytest.raises(AccessDenied, match="may not see"):
        access.require_person(colleague.email)
    access.require_group("Finance")
    tiny = settings.model_copy(update={"privacy": settings.privacy.model_copy(update={"min_group_size": 7})})
    with pytest.raises(AccessDenied, match="fewer than 7"):
        access_for(member.email, tiny, people, teams).require_group("Finance")
    assert local_access(settings, teams).individuals is None
