"""The audit on the demo organisation: what the generator plants shows up where it belongs.

Expected rankings are computed here from the raw records, not by the code under test.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from connectors.demo.org import NEGLECTED
from timeaudit.analysis import audit
from timeaudit.analysis.metrics import open_analysis
from timeaudit.core.config import load_settings
from timeaudit.core.weeks import weeks_ending
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics

from conftest import ROOT

WEEKS = weeks_ending("2026-W47", 4)
NOW = datetime(2026, 11, 23, tzinfo=UTC)
APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def demo(demo_dir):
    lake, settings = Lake(demo_dir), load_settings(demo_dir / "timeaudit.toml")
    analysis = open_analysis(lake, settings)
    scope = audit.open_scope(analysis, WEEKS, now=NOW)
    return lake, settings, analysis, scope


@pytest.fixture(scope="module")
def raw(demo_dir):
    lake = Lake(demo_dir)
    con = lake.connect()
    events = con.execute("SELECT * FROM events").df()
    messages = con.execute('SELECT account, ts, sender, "to", cc FROM messages').df()
    return events, messages


def test_top_series_is_the_planted_steering_committee(demo, raw):
    events, _ = raw
    settings = demo[1]
    customer_domains = {d for c in settings.customers for d in c.domains}
    t0, t1 = NOW - timedelta(weeks=4, days=1), NOW + timedelta(days=1)
    hours: dict[str, float] = defaultdict(float)
    for e in events.itertuples():
        domains = {a["email"].split("@")[1] for a in e.attendees}
        if (
            e.series_id
            and e.status == "confirmed"
            and e.self_response == "accepted"
            and len(e.attendees) > 1
            and not domains & customer_domains
            and t0 <= e.start < t1
        ):
            hours[e.series_id] += (e.end - e.start).total_seconds() / 3600
    expected = max(hours, key=hours.get)
    assert expected == "steering-committee"
    series = audit.meeting_series(demo[2], demo[3])
    assert series.iloc[0]["series_key"] == expected
    top = series.iloc[0]
    assert "committee" in top["flags"] and "no agenda" in top["flags"] and "long" in top["flags"]
    assert top["action"] == "replace with a written update"
    assert top["hours_back_per_week"] > 0
    assert top["goal"] == "Meeting budget"  # a committee's hours come out of the meeting budget


def test_each_suggestion_names_the_goal_it_serves(demo):
    series = audit.meeting_series(demo[2], demo[3])
    admin = series["admin_kind"].notna() & (series["admin_kind"] != "")
    acted = series["action"] != "keep"
    assert set(series.loc[acted & admin, "goal"]) == {"Admin budget"}
    assert set(series.loc[acted & ~admin, "goal"]) == {"Meeting budget"}
    assert (series.loc[~acted, "goal"] == "").all()
    assert (acted & admin).any()  # the demo's policy review board is admin


def test_what_if_raises_the_customer_share(demo):
    lake, settings, analysis, scope = demo
    weekly = weekly_metrics(lake, settings, analysis)
    series = audit.meeting_series(analysis, scope)
    result = audit.what_if(weekly, series, list(series["series_key"][:3]), WEEKS)
    assert result["after"] > result["before"]
    assert result["hours_back_per_week"] == pytest.approx(series["hours_back_per_week"][:3].sum())


def test_neglected_customers_are_the_planted_ones(demo, raw):
    events, messages = raw
    settings = demo[1]
    silent = []
    for c in settings.customers:
        touched_events = events[[any(a["email"].split("@")[1] in c.domains for a in att) for att in events.attendees]]
        touched_mail = messages[
            [
                any(x.split("@")[1] in c.domains for x in [s, *t, *cc])
                for s, t, cc in zip(messages.sender, messages.to, messages.cc, strict=True)
            ]
        ]
        last = max([*touched_events.start, *touched_mail.ts], default=None)
        if last is None or (NOW - last).days >= 30:
            silent.append(c.name)
    assert sorted(silent) == sorted(NEGLECTED)
    found = audit.neglected_customers(demo[2], audit.customer_contacts(demo[2], demo[3]))
    assert sorted(found["customer"]) == sorted(NEGLECTED)
    assert list(found["tier"]) == sorted(found["tier"], key=["gold", "silver", "bronze"].index)


def test_waiting_threads_are_unanswered_customer_emails(demo):
    replies = audit.customer_replies(demo[2], demo[3])
    waiting = audit.waiting_threads(replies)
    assert len(waiting) > 0
    assert list(waiting["received_at"]) == sorted(waiting["received_at"])
    answered = replies[replies["replied_at"].notna()]
    assert (answered["replied_at"] > answered["received_at"]).all()
    assert answered["working_hours"].median() < 8


def test_admin_by_kind_puts_operations_first(demo):
    admin = audit.admin_by_kind(demo[2], demo[3])
    per_team = admin.groupby("team")["hours"].sum()
    assert per_team.idxmax() == "Operations"
    assert {"budgets", "records", "forms", "policy", "reports"} & set(admin["kind"])


def run_cli(demo_dir, *args):
    return subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", *args, "--data", str(demo_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def test_cli_and_pages_show_the_same_figures(demo_dir, monkeypatch):
    text = run_cli(demo_dir, "audit", "--week", "2026-W47")
    assert text.splitlines()[5].startswith("steering, committee")
    customers = run_cli(demo_dir, "customers", "--week", "2026-W47", "--markdown")
    for name in NEGLECTED:
        assert f"| {name} |" in customers.split("## Neglected")[1].split("##")[0]
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/wasters.py").run()
    assert not at.exception and at.title[0].value == "Time wasters"
    table = at.dataframe[0].value
    assert table.iloc[0]["Meeting (title tags)"] == "steering, committee"
    assert len(at.get("plotly_chart")) >= 3
    at.switch_page("views/customers.py").run()
    assert not at.exception and at.title[0].value == "Customers"
    shown = {m.label: m.value for m in at.metric}
    assert shown["Neglected customers"] == str(len(NEGLECTED))
    neglected = at.dataframe[0].value
    assert sorted(neglected["Customer"]) == sorted(NEGLECTED)


def test_what_if_control_on_the_page(demo_dir, monkeypatch):
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/wasters.py").run()
    before = {m.label: m.value for m in at.metric}["Customer share now"]
    at = at.multiselect(key="what-if").select("steering-committee").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Customer share now"] == before
    assert shown["Hours back per week"] != "0.0 h"
    assert shown["Customer share after"] >= before


def test_chat_shows_on_time_wasters_and_customers(demo, demo_dir, monkeypatch):
    from timeaudit.analysis.chat import customer_chat_waiting

    waiting = customer_chat_waiting(demo[2], demo[3])
    assert len(waiting) > 0 and (waiting["working_hours"] > 0).all()
    assert list(waiting["waiting_since"]) == sorted(waiting["waiting_since"])
    text = run_cli(demo_dir, "customers", "--week", "2026-W47", "--markdown")
    chat_part = text.split("## Customer chat waiting for an answer, oldest first")[1]
    assert chat_part.count("\n| 20") == len(waiting)  # one row per waiting conversation, by its day
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/wasters.py").run()
    assert not at.exception
    assert "Chat" in [s.value for s in at.subheader]
    assert any("Internal chat and the focus it interrupted cost" in c.value for c in at.caption)
    at.switch_page("views/customers.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Chats waiting for an answer"] == str(len(waiting))
    assert "Customer chat waiting for an answer, oldest first" in [s.value for s in at.subheader]
