"""The audit on the demo organisation: what the generator plants shows up where it belongs.

Expected rankings are computed here from the raw records, not by the code under test.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pandas as pd
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


# -- one analysis, shared ----------------------------------------------------------------------
def test_concurrent_summaries_of_different_scopes_share_one_classification(demo_dir, monkeypatch):
    """Four threads ask for summaries of different teams and the organisation at once: the
    records are classified once, and each summary is the one a separate analysis gives."""
    import threading

    from timeaudit.analysis import metrics, session
    from timeaudit.outputs.summary import build_summary

    lake, settings = Lake(demo_dir), load_settings(demo_dir / "timeaudit.toml")
    scopes = [{"team": "Support"}, {"team": "Sales"}, {"team": "Engineering"}, {}]
    alone = [build_summary(lake, settings, "2026-W47", analysis=open_analysis(lake, settings), **s) for s in scopes]

    session.forget_analyses()
    opened = []
    real = metrics.open_analysis

    def counting(*args, **kwargs):
        opened.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(metrics, "open_analysis", counting)
    results: dict[int, object] = {}
    start = threading.Barrier(len(scopes))

    def run(i: int) -> None:
        start.wait()
        results[i] = build_summary(lake, settings, "2026-W47", **scopes[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(scopes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1, "the records were classified more than once"
    for i, expected in enumerate(alone):
        got = results[i]
        assert (got.scope, got.subject) == (expected.scope, expected.subject)
        pd.testing.assert_frame_equal(got.weekly, expected.weekly, check_exact=False, rtol=0, atol=1e-9)
        pd.testing.assert_frame_equal(got.wasters, expected.wasters, check_exact=False, rtol=0, atol=1e-9)
        pd.testing.assert_frame_equal(got.waiting, expected.waiting)
        pd.testing.assert_frame_equal(got.neglected, expected.neglected)
    assert session.shared_analysis(lake, settings) is session.shared_analysis(lake, settings)
    session.forget_analyses()


def test_a_new_lake_version_gets_a_new_analysis(demo_dir, tmp_path):
    import shutil

    from timeaudit.analysis import session
    from timeaudit.core.model import EVENT_SCHEMA

    folder = tmp_path / "data"
    shutil.copytree(demo_dir, folder)
    lake, settings = Lake(folder), load_settings(folder / "timeaudit.toml")
    first = session.shared_analysis(lake, settings)
    columns = ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)
    (source,) = lake.sources("events")
    lake.write_arrow("events", source, lake.connect().sql(f"SELECT {columns} FROM events LIMIT 1").to_arrow_table())
    second = session.shared_analysis(lake, settings)
    assert second is not first
    assert session.shared_analysis(lake, settings) is second
    session.forget_analyses()


@pytest.mark.parametrize("stored", ["read", "gone", "damaged"])
def test_a_team_report_on_stored_figures_reads_the_stored_classification(demo_dir, tmp_path, monkeypatch, stored):
    """With the derived tables current, a team's summary reads the team's records (and
    everyone's sent mail, which may answer its customers) as `timeaudit metrics` stored them
    classified, classifies nothing, and shows what classifying everything shows. Stored files
    that vanish mid-report (a `timeaudit metrics` replacing them) or are damaged are classified
    instead."""
    import shutil

    from timeaudit.analysis import classify, metrics, session
    from timeaudit.outputs.derived import run_duckdb
    from timeaudit.outputs.summary import build_summary

    folder = tmp_path / "data"
    shutil.copytree(demo_dir, folder)
    lake, settings = Lake(folder), load_settings(folder / "timeaudit.toml")
    run_duckdb(lake, settings, NOW)
    session.forget_analyses()
    expected = build_summary(lake, settings, "2026-W47", team="Support", analysis=open_analysis(lake, settings))
    if stored == "gone":
        shutil.rmtree(folder / "derived" / "classified_messages")
    elif stored == "damaged":
        (folder / "derived" / "classified_messages" / "part-00000.parquet").write_bytes(b"PAR1 not Parquet PAR1")
    calls, classified = [], []
    real, real_rules = metrics.open_analysis, classify.register_rules

    def spying(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    def classifying(*args, **kwargs):
        classified.append(args)
        return real_rules(*args, **kwargs)

    monkeypatch.setattr(metrics, "open_analysis", spying)
    monkeypatch.setattr(metrics, "register_rules", classifying)
    got = build_summary(lake, settings, "2026-W47", team="Support")
    assert all(c["sent_by_anyone"] for c in calls)
    assert {frozenset(c["only"]) for c in calls} == {
        frozenset(p.email for p in metrics.load_people(settings) if p.team == "Support")
    }
    assert calls[0]["classified"] is not None
    if stored == "read":
        assert len(calls) == 1 and not classified
    else:
        assert len(calls) == 2 and calls[1].get("classified") is None and len(classified) == 1
    for name in ("weekly", "rows", "wasters", "suggestions", "storms", "neglected", "waiting", "admin", "replies"):
        pd.testing.assert_frame_equal(
            getattr(got, name).reset_index(drop=True),
            getattr(expected, name).reset_index(drop=True),
            check_exact=False,
            rtol=0,
            atol=1e-9,
        )
    assert not expected.waiting.empty
    session.forget_analyses()


def test_the_audit_commands_read_the_stored_classification(demo_dir, tmp_path, monkeypatch):
    """`timeaudit audit` and `customers` on current derived tables classify nothing and read the
    stored weekly table; with the stored records gone they classify, and show the same."""
    import shutil

    from typer.testing import CliRunner

    from timeaudit.analysis import metrics, session
    from timeaudit.cli import app
    from timeaudit.outputs.derived import run_duckdb

    folder = tmp_path / "data"
    shutil.copytree(demo_dir, folder)
    run_duckdb(Lake(folder), load_settings(folder / "timeaudit.toml"), NOW)
    classified, swept = [], []
    real, real_sweep = metrics.register_rules, metrics._ensure_daily
    monkeypatch.setattr(metrics, "register_rules", lambda *args: classified.append(args) or real(*args))
    monkeypatch.setattr(metrics, "_ensure_daily", lambda a: swept.append(a) or real_sweep(a))

    def run(command: str) -> str:
        session.forget_analyses()
        args = [command, "--week", "2026-W47", "--team", "Support", "--data", str(folder)]
        result = CliRunner().invoke(app, [*args, "--config", str(folder / "timeaudit.toml")])
        assert result.exit_code == 0, result.output
        return result.output

    stored = run("audit")
    assert run("customers").startswith("Customers\n")
    assert not classified and not swept  # nor the weekly table computed again: it is stored too
    support = {p.email for p in metrics.load_people(load_settings(folder / "timeaudit.toml")) if p.team == "Support"}
    email_load = stored.split("Email load")[1].split("Internal threads")[0]
    shown = [line.split()[0] for line in email_load.splitlines() if "@" in line]
    assert shown and set(shown) <= support, "the team's email load alone"
    shutil.rmtree(folder / "derived" / "classified_events")
    assert run("audit") == stored and len(classified) == 1
    session.forget_analyses()
