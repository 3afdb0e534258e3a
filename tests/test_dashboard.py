"""Each dashboard page run by Streamlit's AppTest on the demo organisation."""

from __future__ import annotations

import json
from functools import partial

import pytest
from streamlit.testing.v1 import AppTest

from timeaudit.analysis.chat import chat_weekly, team_chat_weekly
from timeaudit.analysis.metrics import event_reasons, open_analysis, team_weekly
from timeaudit.core.config import Settings, load_settings
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics

from conftest import ROOT

APP = str(ROOT / "dashboard" / "app.py")
LAST_WEEK = "2026-W47"


@pytest.fixture
def app(demo_dir, monkeypatch):
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    return AppTest.from_file(APP, default_timeout=120)


@pytest.fixture(scope="module")
def weekly(demo_dir):
    return weekly_metrics(Lake(demo_dir), load_settings(demo_dir / "timeaudit.toml"))


@pytest.fixture(scope="module")
def chat(demo_dir):
    """The demo's chat per person-week, as timeaudit.analysis.chat computes it."""
    return chat_weekly(open_analysis(Lake(demo_dir), load_settings(demo_dir / "timeaudit.toml")))


def metrics_of(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


SUMMARY_LABELS = {f"Summary .{fmt}" for fmt in ("csv", "xlsx", "md", "html", "pdf")}


def download_labels(at) -> set[str]:
    return {b.proto.label for b in at.get("download_button")}


def chart_titles(at) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


def test_my_week_shows_the_chosen_persons_figures(app, weekly, chat):
    at = app.run()
    assert not at.exception
    assert at.title[0].value == "My week"
    person = at.selectbox(key="person").value
    assert at.selectbox(key="week").value == LAST_WEEK
    row = weekly[(weekly["person"] == person) & (weekly["week"] == LAST_WEEK)].iloc[0]
    shown = metrics_of(at)
    assert shown["Customer share"] == f"{row['customer_share']:.0%}"
    assert shown["Internal meetings"] == f"{row['internal_meeting_hours']:.1f} h"
    assert shown["Admin"] == f"{row['admin_hours']:.1f} h"
    assert shown["Focus"] == f"{row['focus_hours']:.1f} h"
    assert chart_titles(at)[2] == "Your hours against the goals"
    assert at.subheader[0].value == "This week against your team's goals"
    goals = at.dataframe[0].value.set_index("Goal")
    meetings_ok = row["internal_meeting_hours"] <= Settings().goals.meeting_hours
    assert goals.loc["Meeting budget", "This week"] == f"{row['internal_meeting_hours']:.1f} h/person"
    assert goals.loc["Meeting budget", "Status"] == ("on track" if meetings_ok else "off track")
    assert at.subheader[1].value == "Most expensive internal meetings this week"
    assert len(at.dataframe) == 3  # goals, top meetings and the reasons behind every event
    mine = chat[(chat["person"] == person) & (chat["week"] == LAST_WEEK)].iloc[0]
    assert mine["chats_sent"] > 0  # the demo plants chat for everyone
    assert at.subheader[2].value == "Chat this week"
    assert shown["Chat"] == f"{mine['chat_hours']:.1f} h"
    assert shown["Chat with customers"] == f"{mine['customer_chat_hours']:.1f} h"
    assert shown["Interruptions"] == str(mine["interruptions"])
    assert shown["Focus lost to refocusing"] == f"{mine['refocus_hours']:.1f} h"
    reasons = at.dataframe[2].value
    assert {"Category", "Reason"} <= set(reasons.columns) and len(reasons) > 0
    assert download_labels(at) == {"Download CSV"}  # the summary is made only when asked for
    at = at.button(key="person-summary-prepare").click().run()
    assert not at.exception
    assert download_labels(at) == {"Download CSV"} | SUMMARY_LABELS


def test_my_week_follows_the_person_picker(app, weekly):
    at = app.run()
    person = sorted(set(weekly.loc[weekly["team"] == "Operations", "person"]))[0]
    at = at.selectbox(key="person").set_value(person).run()
    assert at.selectbox(key="person").value == person
    row = weekly[(weekly["person"] == person) & (weekly["week"] == LAST_WEEK)].iloc[0]
    assert metrics_of(at)["Admin"] == f"{row['admin_hours']:.1f} h"
    assert row["admin_hours"] > 0  # Operations is buried in admin


def test_team_page_shows_team_figures(app, weekly, chat):
    at = app.run()
    at.switch_page("views/team.py").run()
    assert not at.exception
    assert at.title[0].value == "Team"
    team = at.selectbox(key="team").value
    teams = team_weekly(weekly, 5)
    row = teams[(teams["team"] == team) & (teams["week"] == LAST_WEEK)].iloc[0]
    shown = metrics_of(at)
    assert shown["Customer share"] == f"{row['customer_share']:.0%}"
    assert shown["People"] == str(row["people"])
    team_chat = team_chat_weekly(chat, 5)
    chat_row = team_chat[(team_chat["team"] == team) & (team_chat["week"] == LAST_WEEK)].iloc[0]
    assert shown["Chat"] == f"{chat_row['chat_hours']:.1f} h" and chat_row["chat_hours"] > 0
    assert shown["Interruptions of focus"] == str(chat_row["interruptions"])
    assert not at.warning  # every demo team is big enough
    # One chart at a time, the open tab's: the team's hours first, the comparisons a tab away.
    assert chart_titles(at) == [f"{team}: hours by category, per week"]
    at.session_state["team-chart"] = "Customer share by team"
    at.run()
    assert chart_titles(at) == [f"Customer share by team, {LAST_WEEK}"]
    at.session_state["team-chart"] = "Customer share over time"
    at.run()
    assert chart_titles(at) == ["Customer share per team, per week"]
    at.session_state["team-chart"] = "Goals"
    at.run()
    assert chart_titles(at) == [f"{team}: customer share, per week", f"{team}: hours per person against the goals"]
    goals = at.dataframe[0].value.set_index("Goal")
    per_person = row["admin_hours"] / row["people"]
    assert goals.loc["Admin budget", "This week"] == f"{per_person:.1f} h/person"
    assert set(goals["Status"]) <= {"on track", "off track", "no data"}
    assert "Customer reply time (90th percentile)" in goals.index  # the tab computes the week's replies
    assert not at.exception
    assert download_labels(at) == {"Download CSV"}
    at = at.button(key="team-summary-prepare").click().run()
    assert download_labels(at) == {"Download CSV"} | SUMMARY_LABELS


def test_summary_downloads_are_made_for_what_the_page_shows_when_asked(app):
    at = app.run()
    at.switch_page("views/team.py").run()
    at = at.button(key="team-summary-prepare").click().run()
    assert download_labels(at) == {"Download CSV"} | SUMMARY_LABELS
    at = at.selectbox(key="team-week").set_value("2026-W46").run()  # another week: asked again
    assert not at.exception
    assert download_labels(at) == {"Download CSV"}
    assert at.button(key="team-summary-prepare").label == "Prepare the weekly summary for download"
    at = at.button(key="team-summary-prepare").click().run()
    assert download_labels(at) == {"Download CSV"} | SUMMARY_LABELS


def test_team_page_hides_groups_under_the_minimum(app, demo_dir, tmp_path, monkeypatch):
    config = tmp_path / "timeaudit.toml"
    config.write_text(
        (demo_dir / "timeaudit.toml")
        .read_text()
        .replace('roster = "people.csv"', f'roster = "{demo_dir / "people.csv"}"')
        + "\n[privacy]\nmin_group_size = 100\n"
    )
    monkeypatch.setenv("TIMEAUDIT_CONFIG", str(config))
    at = app.run()
    at.switch_page("views/team.py").run()
    assert not at.exception
    assert "fewer" not in at.warning[0].value  # it names the rule, in plain words
    assert "at least 100 people" in at.warning[0].value
    assert "Support" in at.warning[0].value
    assert not at.get("plotly_chart")


def test_empty_lake_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMEAUDIT_DATA", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert "timeaudit demo" in at.info[0].value


def test_data_page_lists_what_the_lake_holds_and_offers_imports(app):
    at = app.run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    assert at.title[0].value == "Data"
    held = at.table[0].value
    assert set(held["Source"]) == {"Demo organisation"}
    assert set(held.index) == {"Calendar events", "Emails", "Chat messages"}
    assert (held["People"][["Calendar events", "Emails"]] == 40).all()
    assert held["People"]["Chat messages"] > 40  # the staff and the customers who wrote
    buttons = {b.label for b in at.button}
    assert {"Import calendar", "Import mail"} <= buttons or len(at.get("form")) == 2


def test_the_light_plotly_bundle_matches_the_plotly_the_figures_are_made_for():
    """dashboard/static's plotly.js (the basic bundle the served dashboard draws with) is the
    version the Python plotly package writes its figures for; after upgrading plotly, fetch
    the same version of npm's plotly.js-basic-dist-min."""
    import re

    from plotly.offline import get_plotlyjs_version

    from dashboard.widgets import PLOTLY_JS, STATIC

    head = (STATIC / PLOTLY_JS).read_text(encoding="utf-8")[:300]
    assert "plotly.js (basic - minified)" in head and "MIT" in head
    assert re.search(r"v(\d+\.\d+\.\d+)", head).group(1) == get_plotlyjs_version()


def test_warming_up_fills_the_caches_the_first_visitors_pages_read(demo_dir, monkeypatch):
    """dashboard/server.py runs data.warm_up_weekly, then warm_up_audit when the server starts: afterwards the weekly
    table, the team figures and the default audit period are in the pages' own caches."""
    from streamlit.runtime.caching.cache_data_api import get_data_cache_stats_provider
    from streamlit.runtime.caching.cache_resource_api import get_resource_cache_stats_provider

    from dashboard import data

    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    st_cache_clear()

    def cached() -> set[str]:
        providers = (get_data_cache_stats_provider(), get_resource_cache_stats_provider())
        stats = [stat for p in providers for family in p.get_stats().values() for stat in family]
        return {stat.cache_name.rsplit(".", 1)[-1] for stat in stats}

    assert not {"_weekly", "_teams_weekly", "_audit"} & cached()
    data.warm_up_weekly()
    assert {"_weekly", "_teams_weekly"} <= cached() and "_audit" not in cached()
    data.warm_up_audit()
    assert {"_weekly", "_teams_weekly", "_audit"} <= cached()
    weeks = data.audit_weeks(LAST_WEEK, data.DEFAULT_AUDIT_WEEKS)
    assert weeks == ["2026-W44", "2026-W45", "2026-W46", "2026-W47"]


def st_cache_clear() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def test_pages_show_the_figures_they_have_while_those_of_new_data_are_computed(demo_dir, tmp_path, monkeypatch):
    """After new data lands, every page shows the last weekly table at once and says newer
    figures are being computed (in the background, once for all sessions); then the new table."""
    import shutil
    import threading
    import time

    from dashboard import data
    from timeaudit.core.roster import load_people

    from records import event, utc

    folder = tmp_path / "data"
    shutil.copytree(demo_dir, folder)
    monkeypatch.setenv("TIMEAUDIT_DATA", str(folder))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    st_cache_clear()
    before = data._all_weekly()
    assert data.refreshing() is None

    computing = threading.Event()  # the refresh holds until the page has been seen
    compute = data.weekly_metrics
    monkeypatch.setattr(data, "weekly_metrics", lambda *a, **k: computing.wait(60) and compute(*a, **k))
    lake, settings = Lake(folder), load_settings(folder / "timeaudit.toml")
    one, other = (p.email for p in load_people(settings)[:2])
    lake.write_batch("events", "test", [event(one, utc(2026, 11, 18, 9), utc(2026, 11, 18, 11), with_=[other])])

    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/team.py")
    at.run()
    assert not at.exception
    assert any("New data arrived" in info.value for info in at.info)
    assert at.title[0].value == "Team" and at.metric  # the figures it has, shown at once
    assert data._all_weekly() is before and data.refreshing() is not None

    computing.set()
    deadline = time.monotonic() + 60
    while data.refreshing() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    after = data._all_weekly()
    assert after is not before
    assert not after.equals(before)
    at.run()
    assert not any("New data arrived" in info.value for info in at.info)


def test_the_pages_and_their_downloads_classify_the_records_once(demo_dir, monkeypatch):
    """My week (with its reasons and meetings), Team (with the summary's downloads), Time
    wasters and Customers, opened in one process, read one analysis of the lake's version:
    every classification goes through ``metrics.prepare``, counted here."""
    from timeaudit.analysis import session

    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    st_cache_clear()
    session.forget_analyses()
    classified = count_classifications(monkeypatch)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and at.title[0].value == "My week"
    assert any("category" in table.value.columns.str.lower() for table in at.dataframe)  # the reasons
    at.switch_page("views/team.py").run()
    at = at.button(key="team-summary-prepare").click().run()
    assert not at.exception and download_labels(at) >= SUMMARY_LABELS
    for page, title in (("views/wasters.py", "Time wasters"), ("views/customers.py", "Customers")):
        at.switch_page(page).run()
        assert not at.exception and at.title[0].value == title
    assert classified == [None], "the records were classified more than once"
    session.forget_analyses()


def count_classifications(monkeypatch) -> list:
    """The ``only`` of every classification from now on (``metrics.prepare``; None: everyone)."""
    from timeaudit.analysis import metrics

    classified = []
    real = metrics.prepare

    def counting(*args, **kwargs):
        classified.append(kwargs.get("only", args[2] if len(args) > 2 else None))
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "prepare", counting)
    return classified


@pytest.fixture(scope="module")
def current(demo_dir, tmp_path_factory):
    """A copy of the demo organisation whose derived tables `timeaudit metrics` has just written."""
    return copy_with_metrics(demo_dir, tmp_path_factory.mktemp("current") / "data")


def copy_with_metrics(source, folder):
    """``source`` copied to ``folder``, then `timeaudit metrics` run on the copy."""
    import shutil

    from typer.testing import CliRunner

    from timeaudit.cli import app as cli

    shutil.copytree(source, folder)
    result = CliRunner().invoke(cli, ["metrics", "--data", str(folder), "--config", str(folder / "timeaudit.toml")])
    assert result.exit_code == 0, result.output
    return folder


def test_the_pages_open_on_the_stored_tables_without_classifying(current, monkeypatch):
    """On a lake whose derived tables are current, the server's warm-up and every page read the
    stored weekly, chat, cover-mail and default audit tables, and what is not stored (My week's
    costliest meetings and the reasons behind every event, a summary's downloads, another
    period's audit) from the records `timeaudit metrics` stored classified: no record is
    classified, and the reasons are those classifying gives. A commit after `timeaudit metrics`
    makes them stale: the pages then compute, on one classification."""
    from dashboard import data
    from timeaudit.analysis import metrics, session
    from timeaudit.core.roster import load_people

    from records import event, utc

    monkeypatch.setenv("TIMEAUDIT_DATA", str(current))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    monkeypatch.setattr(data, "_latest", {})
    monkeypatch.setattr(data, "_refreshing", {})
    st_cache_clear()
    session.forget_analyses()
    classified = []
    real = metrics.register_rules
    monkeypatch.setattr(metrics, "register_rules", lambda *args: classified.append(args) or real(*args))

    def open_pages() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120).run()
        assert not at.exception and at.title[0].value == "My week"
        at.switch_page("views/team.py").run()
        at = at.button(key="team-summary-prepare").click().run()
        assert not at.exception and download_labels(at) >= SUMMARY_LABELS
        for page, title in (("views/wasters.py", "Time wasters"), ("views/customers.py", "Customers")):
            at.switch_page(page).run()
            assert not at.exception and at.title[0].value == title
            assert at.get("plotly_chart")
        return at.switch_page("views/my_week.py").run()

    data.warm_up_weekly()
    data.warm_up_audit()
    weeks = tuple(data.audit_weeks(LAST_WEEK, data.DEFAULT_AUDIT_WEEKS))
    stored = data._audit(data.lake_version(), weeks, None)
    at = open_pages()
    data._audit(data.lake_version(), tuple(data.audit_weeks("2026-W40", data.DEFAULT_AUDIT_WEEKS)), None)
    assert classified == [], "the stored tables were not read"
    lake, settings = Lake(current), load_settings(current / "timeaudit.toml")
    person = at.selectbox(key="person").value
    shown = at.dataframe[-1].value
    assert list(shown.columns) == ["When", "Minutes", "Title tags", "Category", "Reason"] and len(shown) > 0
    classifying = event_reasons(lake, settings, person, LAST_WEEK, analysis=open_analysis(lake, settings))
    assert shown.to_numpy().tolist() == classifying.to_numpy().tolist()

    classified.clear()
    one, other = (p.email for p in load_people(settings)[:2])
    lake.write_batch("events", "test", [event(one, utc(2026, 11, 18, 9), utc(2026, 11, 18, 11), with_=[other])])
    live = data._audit(data.lake_version(), weeks, None)
    assert len(classified) == 1
    assert len(live["occurrences"]) > len(stored["occurrences"])  # the new meeting counts
    open_pages()
    assert len(classified) == 1, "the records were classified more than once"
    session.forget_analyses()


def test_a_page_classifies_again_when_the_stored_records_vanish(demo_dir, tmp_path, monkeypatch):
    """The stored classified records gone under a running dashboard (`timeaudit forget` removes
    them, `timeaudit metrics` replaces them): My week's reasons are then classified, the same."""
    import shutil

    from timeaudit.analysis import metrics, session

    folder = copy_with_metrics(demo_dir, tmp_path / "data")
    monkeypatch.setenv("TIMEAUDIT_DATA", str(folder))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    st_cache_clear()
    session.forget_analyses()
    classified = []
    real = metrics.register_rules
    monkeypatch.setattr(metrics, "register_rules", lambda *args: classified.append(args) or real(*args))
    at = AppTest.from_file(APP, default_timeout=120).run()
    on_stored = at.dataframe[-1].value
    assert not at.exception and len(on_stored) > 0 and classified == []

    shutil.rmtree(folder / "derived" / "classified_events")
    st_cache_clear()
    at.run()
    assert not at.exception and len(classified) == 1
    assert at.dataframe[-1].value.equals(on_stored)
    session.forget_analyses()


def test_customer_emails_are_listed_one_customer_at_a_time(app):
    """The Customers page lists every customer email and its reply only for the customer picked
    (the whole table is hundreds of thousands of rows at 1,000 people), newest first: exactly
    that customer's rows of the audit."""
    from dashboard import data

    at = app.switch_page("views/customers.py").run()
    picker = at.selectbox(key="customer-emails")
    assert not at.exception and picker.value is None
    assert not any("replier" in frame.value.columns for frame in at.dataframe)
    replies = data.audit_tables(data.audit_weeks(LAST_WEEK, data.DEFAULT_AUDIT_WEEKS))["replies"]
    customer = replies["customer"].value_counts().index[0]
    assert sorted(picker.options) == picker.options and customer in picker.options
    at = picker.select(customer).run()
    shown = next(frame.value for frame in at.dataframe if "replier" in frame.value.columns)
    theirs = replies[replies["customer"] == customer]
    assert len(shown) == min(len(theirs), 1_000) and set(shown["customer"]) == {customer}
    assert shown["received_at"].is_monotonic_decreasing
    assert set(shown["id"]) <= set(theirs["id"])


def test_a_page_run_asks_the_lake_for_its_version_once(app, monkeypatch):
    """Every figure of a page run is of one version of the lake, asked once when the run begins
    (each ask reads three tables' logs), however many figures the page shows."""
    asked = []
    real = Lake.version
    monkeypatch.setattr(Lake, "version", lambda self: asked.append(1) or real(self))
    for page in ("views/my_week.py", "views/team.py", "views/wasters.py", "views/customers.py"):
        at = app.switch_page(page).run()  # the caches filled
        asked.clear()
        at.run()
        assert not at.exception and at.get("plotly_chart")
        assert len(asked) == 1, page


def test_the_audit_pages_show_the_audit_they_have_while_that_of_new_data_is_computed(demo_dir, tmp_path, monkeypatch):
    """After new data lands, Time wasters shows the last audit of its period at once and says a
    newer one is being computed (in the background, once), even after the weekly figures are
    new; then the new audit, with the new meeting counted."""
    import shutil
    import threading
    import time

    from dashboard import data
    from timeaudit.core.roster import load_people

    from records import event, utc

    folder = tmp_path / "data"
    shutil.copytree(demo_dir, folder)
    monkeypatch.setenv("TIMEAUDIT_DATA", str(folder))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    monkeypatch.setattr(data, "_latest", {})
    monkeypatch.setattr(data, "_refreshing", {})
    st_cache_clear()
    at = AppTest.from_file(APP, default_timeout=120).switch_page("views/wasters.py").run()
    assert not at.exception and not any("New data arrived" in info.value for info in at.info)
    weeks = data.audit_weeks(LAST_WEEK, data.DEFAULT_AUDIT_WEEKS)
    before = len(data.audit_tables(weeks)["occurrences"])

    computing = threading.Event()  # the new audit holds until the page has been seen
    make = data._audit_of
    monkeypatch.setattr(data, "_audit_of", lambda *args: computing.wait(60) and make(*args))
    lake, settings = Lake(folder), load_settings(folder / "timeaudit.toml")
    one, other = (p.email for p in load_people(settings)[:2])
    lake.write_batch("events", "test", [event(one, utc(2026, 11, 18, 9), utc(2026, 11, 18, 11), with_=[other])])

    def settled(waited) -> None:
        deadline = time.monotonic() + 60
        while waited() is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    at.run()
    assert not at.exception and at.title[0].value == "Time wasters" and at.get("plotly_chart")
    settled(data.refreshing)  # the weekly figures are new
    at.run()
    assert any("New data arrived" in info.value for info in at.info)
    assert data.audit_refreshing(weeks) is not None
    assert len(data.audit_tables(weeks)["occurrences"]) == before  # the audit it has, shown at once

    computing.set()
    settled(partial(data.audit_refreshing, weeks))
    at.run()
    assert not any("New data arrived" in info.value for info in at.info)
    assert len(data.audit_tables(weeks)["occurrences"]) > before


def test_after_a_sync_the_pages_open_on_the_figures_stored_before_it(demo_dir, tmp_path, monkeypatch):
    """A sync's refresh brings the weekly tables and the cover-yourself mail up to date and
    leaves the stored audit behind. A dashboard started then shows My week on current figures
    and the Time wasters on the stored audit at once (the server's warm-up computes nothing),
    says newer figures are being computed, computes them in the background, then shows them."""
    import threading
    import time

    from dashboard import data

    weeks, before = synced(demo_dir, tmp_path, monkeypatch)
    computing = threading.Event()  # the new figures hold until the pages have been seen
    make_audit = data._audit_of
    monkeypatch.setattr(data, "_audit_of", lambda *args: computing.wait(60) and make_audit(*args))
    started = time.monotonic()
    data.warm_up_weekly()
    data.warm_up_audit()
    assert time.monotonic() - started < 30 and not computing.is_set()

    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and not any("New data arrived" in info.value for info in at.info)
    assert "Emails copying your manager" in {m.label for m in at.metric}
    at.switch_page("views/wasters.py").run()
    assert not at.exception and any("New data arrived" in info.value for info in at.info)
    assert len(data.audit_tables(weeks)["occurrences"]) == len(before["occurrences"])

    computing.set()
    deadline = time.monotonic() + 60
    while (data.refreshing() or data.audit_refreshing(weeks)) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    at.run()
    assert not any("New data arrived" in info.value for info in at.info)
    assert len(data.audit_tables(weeks)["occurrences"]) > len(before["occurrences"])


def synced(demo_dir, tmp_path, monkeypatch) -> tuple[list[str], dict]:
    """The demo with its derived tables, a new meeting synced in and the refresh a sync ends
    with, as the dashboard's data; (the default audit weeks, the audit stored before the sync)."""
    from datetime import UTC, datetime

    from dashboard import data
    from timeaudit.analysis.page_audit import default_weeks
    from timeaudit.core.roster import load_people
    from timeaudit.outputs.derived import stored_cover_mail, stored_page_audit
    from timeaudit.outputs.refresh import refresh_derived

    from records import event, utc

    folder = copy_with_metrics(demo_dir, tmp_path / "data")
    monkeypatch.setenv("TIMEAUDIT_DATA", str(folder))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    monkeypatch.setattr(data, "_latest", {})
    monkeypatch.setattr(data, "_refreshing", {})
    monkeypatch.setattr(data, "_failed", set())
    st_cache_clear()
    lake, settings = Lake(folder), load_settings(folder / "timeaudit.toml")
    weeks = sorted(default_weeks(data.all_weeks()))
    before = stored_page_audit(lake, settings, weeks)
    one, other = (p.email for p in load_people(settings)[:2])
    lake.write_batch("events", "test", [event(one, utc(2026, 11, 18, 9), utc(2026, 11, 18, 11), with_=[other])])
    assert refresh_derived(lake, settings, datetime.now(UTC)).how == "incremental"  # as a sync ends
    assert stored_page_audit(lake, settings, weeks) is None and stored_cover_mail(lake, settings) is not None
    assert stored_page_audit(lake, settings, weeks, behind=True)["occurrences"].equals(before["occurrences"])
    st_cache_clear()
    return weeks, before


def test_a_failed_refresh_in_the_background_is_shown_by_the_next_page(demo_dir, tmp_path, monkeypatch):
    """Should computing the new audit in the background fail, the next page computes it itself
    and shows the problem, rather than the older audit for ever."""
    import time

    from dashboard import data

    weeks, _ = synced(demo_dir, tmp_path, monkeypatch)

    def broken(*args):
        raise RuntimeError("the audit could not be computed")

    monkeypatch.setattr(data, "_audit_of", broken)
    data.warm_up_weekly()
    data.warm_up_audit()  # shows the stored audit; the new one fails in the background
    deadline = time.monotonic() + 60
    while data.audit_refreshing(weeks) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    at = AppTest.from_file(APP, default_timeout=120).switch_page("views/wasters.py").run()
    assert "the audit could not be computed" in at.exception[0].message
