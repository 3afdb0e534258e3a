"""Email habits computed by hand on a small organisation: cover-yourself mail and reply-all storms.

Support has six people: Bea leads it and manages the others. Amy works in Singapore, so a mail
she sends on Sunday 8 March at 20:00 UTC is Monday 04:00 for her, in week 2026-W11. Sales has
five people and no manager on the roster. Storm thresholds are set low (2 replies to 4 people)
so a thread of a few messages is one; the defaults are checked apart.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from streamlit.testing.v1 import AppTest

from connectors.demo.org import STORM_REPLIES, STORM_TEAMS
from timeaudit.analysis import audit
from timeaudit.analysis.metrics import open_analysis
from timeaudit.core.config import Rules, load_settings, parse_settings
from timeaudit.core.model import Person
from timeaudit.core.roster import read_roster, write_roster
from timeaudit.lake.store import Lake
from timeaudit.privacy import visible_groups

from conftest import ROOT
from records import message, utc

ORG = "northwind.com"
BEA, AMY, CAL, DAN, EVE, FAY = (f"{n}@{ORG}" for n in ("bea", "amy", "cal", "dan", "eve", "fay"))
SALES = [f"s{i}@{ORG}" for i in range(5)]
READ_MIN, SENT_MIN = 87.2 / 60, 5.0
W10, W11 = "2026-W10", "2026-W11"


def sent_and_copies(sender, to, cc, ts, mid, *, reply_to="", thread="", unread=(), **kwargs):
    """A message as the lake holds it: the sender's sent copy and each recipient's copy."""
    common = dict(sender=sender, to=to, cc=cc, message_id=mid, in_reply_to=reply_to, thread_id=thread or mid)
    out = [message(sender, ts, id=f"{mid}:{sender}", direction="sent", self_in="from", **common, **kwargs)]
    for r in dict.fromkeys([*to, *cc]):
        if r.endswith(ORG) and r.lower() != sender:
            side = "to" if r in to else "cc"
            out.append(message(r.lower(), ts, id=f"{mid}:{r}", self_in=side, unread=r in unread, **common, **kwargs))
    return out


def records() -> list:
    tue = utc(2026, 3, 3, 10)
    m = []
    # Cover-yourself mail.
    m += sent_and_copies(AMY, [CAL], [BEA], tue, "c1")  # yes
    m += sent_and_copies(AMY, [BEA], [CAL], tue, "c2")  # no: Bea is on To
    m += sent_and_copies(AMY, [CAL], ["BEA@northwind.com"], tue, "c3")  # yes, whatever the case
    m += sent_and_copies(AMY, ["bob@acme.com"], [BEA], tue, "c4")  # no: customer mail
    m += sent_and_copies(AMY, [CAL], [BEA], utc(2026, 3, 8, 20), "c5")  # yes, in Amy's W11
    m += sent_and_copies(CAL, [DAN], [BEA, AMY], tue, "c6")  # yes
    m += sent_and_copies(BEA, [DAN], [CAL], tue, "c7")  # no: Bea has no manager
    m += sent_and_copies(SALES[0], [SALES[1]], [SALES[2]], tue, "c8")  # no manager on the roster
    m += sent_and_copies(SALES[0], [SALES[1]], [], utc(2026, 3, 11, 9), "c9")  # the data reaches W11
    # A storm (thread t1): two replies to four people, then a reply to one.
    wed = utc(2026, 3, 4, 9)
    m += sent_and_copies(AMY, [CAL, DAN, EVE, FAY], [], wed, "s0", thread="t1")
    m += sent_and_copies(CAL, [AMY, DAN, EVE, FAY], [], wed, "r1", reply_to="s0", thread="t1")
    m += sent_and_copies(DAN, [AMY], [CAL, EVE, FAY], wed, "r2", reply_to="r1", thread="t1", unread=[FAY])
    m += sent_and_copies(EVE, [AMY], [], wed, "r3", reply_to="r2", thread="t1")
    # Not a storm (thread t2): one large reply only.
    m += sent_and_copies(SALES[0], SALES[1:], [], wed, "u0", thread="t2")
    m += sent_and_copies(SALES[1], [SALES[0], *SALES[2:]], [], wed, "u1", reply_to="u0", thread="t2")
    return m


@pytest.fixture
def analysis(tmp_path):
    people = [Person(BEA, "Support", role="lead")]
    people += [Person(p, "Support", manager=BEA) for p in (AMY, CAL, DAN, EVE, FAY)]
    people[1].timezone = "Asia/Singapore"
    people += [Person(p, "Sales") for p in SALES]
    write_roster(tmp_path / "people.csv", people)
    settings = parse_settings(
        {
            "roster": str(tmp_path / "people.csv"),
            "organisation": {"domains": [ORG], "timezone": "UTC"},
            "customers": [{"name": "Acme", "domains": ["acme.com"]}],
            "rules": {"storm_min_replies": 2, "storm_min_recipients": 4},
        }
    )
    lake = Lake(tmp_path / "data")
    lake.write_batch("messages", "test", records())
    return open_analysis(lake, settings)


def test_cover_yourself_mail_per_person_week(analysis):
    cover = audit.cover_mail(analysis)
    got = {(r.person, r.week): (r.manager, r.cover_mails, r.manager_hours) for r in cover.itertuples()}
    assert got == {
        (AMY, W10): (BEA, 2, pytest.approx(2 * READ_MIN / 60)),
        (AMY, W11): (BEA, 1, pytest.approx(READ_MIN / 60)),
        (CAL, W10): (BEA, 1, pytest.approx(READ_MIN / 60)),
    }
    assert set(cover["team"]) == {"Support"}


def test_cover_yourself_mail_per_team_only_through_the_gate(analysis):
    cover = audit.cover_mail(analysis)
    teams = {p.email: p.team for p in analysis.people}
    by_team = audit.cover_mail_by_team(cover, visible_groups(teams, 5))
    assert list(by_team["team"]) == ["Support", "Support"]
    assert list(by_team["cover_mails"]) == [3, 1]
    assert by_team["manager_hours"].tolist() == pytest.approx([3 * READ_MIN / 60, READ_MIN / 60])
    # With a minimum of 7 no team is shown alone: both are pooled as one group.
    pooled = audit.cover_mail_by_team(cover, visible_groups(teams, 7))
    assert list(pooled["team"]) == ["Everyone", "Everyone"]
    assert list(pooled["cover_mails"]) == [3, 1]
    # An organisation under the minimum shows nothing.
    assert audit.cover_mail_by_team(cover, visible_groups(teams, 12)).empty


def test_reply_all_storm_by_hand(analysis):
    scope = audit.open_scope(analysis, [W10], now=datetime(2026, 3, 9, tzinfo=UTC))
    storms = audit.reply_storms(analysis, scope)
    assert list(storms["thread"]) == ["t1"]
    t1 = storms.iloc[0]
    assert (t1["messages"], t1["large_replies"], t1["largest_list"], t1["people"]) == (4, 2, 4, 5)
    # Four sent copies; 4 + 4 + 4 + 1 received copies, Fay's copy of r2 unread.
    assert t1["people_minutes"] == pytest.approx(4 * SENT_MIN + 12 * READ_MIN)
    # r1 answers Amy: Dan, Eve and Fay need not have read it; r2 answers Cal: Amy and Eve
    # (Fay never read hers).
    assert t1["gives_back_minutes"] == pytest.approx(5 * READ_MIN)
    assert t1["hours_back_per_week"] == pytest.approx(5 * READ_MIN / 60)
    # Only Support's copies: the same thread, as only Support holds it.
    team_scope = audit.open_scope(analysis, [W10], [p.email for p in analysis.people if p.team == "Sales"])
    assert audit.reply_storms(analysis, team_scope).empty


def test_suggestions_hold_both_habits_with_hours_back(analysis):
    scope = audit.open_scope(analysis, [W10, W11], now=datetime(2026, 3, 16, tzinfo=UTC))
    series = audit.meeting_series(analysis, scope)
    cover = audit.cover_mail_in(analysis, scope)
    storms = audit.reply_storms(analysis, scope)
    table = audit.suggestions(analysis, scope, series, cover, storms)
    by_kind = table.set_index("kind")
    assert by_kind.loc["cover-yourself mail", "hours_back_per_week"] == pytest.approx(4 * READ_MIN / 60 / 2)
    assert by_kind.loc["cover-yourself mail", "what"] == "4 emails copying the sender's manager"
    assert by_kind.loc["reply-all storm", "hours_back_per_week"] == pytest.approx(5 * READ_MIN / 60 / 2)
    assert by_kind.loc["reply-all storm", "what"] == (storms.iloc[0]["subject_tags"] or "(no tags)")
    assert list(table["hours_back_per_week"]) == sorted(table["hours_back_per_week"], reverse=True)


def test_storm_defaults_are_the_documented_ones():
    rules = Rules()
    assert (rules.storm_min_replies, rules.storm_min_recipients) == (5, 10)


# -- on the demo organisation's pages ---------------------------------------------------------
def test_pages_show_the_planted_storm_and_habit(demo_dir, monkeypatch):
    people = read_roster(demo_dir / "people.csv")
    habit = next(p for p in people if p.team == "Support" and p.manager)
    storm_people = sum(1 for p in people if p.team in STORM_TEAMS)
    monkeypatch.setenv("TIMEAUDIT_DATA", str(demo_dir))
    monkeypatch.delenv("TIMEAUDIT_CONFIG", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180).run()
    at.switch_page("views/wasters.py").run()
    assert not at.exception
    frames = {tuple(f.value.columns): f.value for f in at.dataframe}
    storms = next(v for k, v in frames.items() if "Replies to many" in k)
    top = storms.iloc[0]
    assert top["Thread (subject tags)"] == "team, offsite, planning"
    assert (top["Replies to many"], top["Largest list"], top["People"]) == (
        STORM_REPLIES,
        storm_people - 1,
        storm_people,
    )
    threads = next(v for k, v in frames.items() if "Cc copies" in k)
    assert threads.iloc[0]["Thread (subject tags)"] == "team, offsite, planning"  # the costliest thread too
    suggested = next(v for k, v in frames.items() if "About" in k)
    about = suggested.set_index("About")
    assert {"meeting", "cover-yourself mail", "reply-all storm"} <= set(about.index)
    assert about.loc["reply-all storm", "Hours back / week"] == pytest.approx(top["Hours back / week"], abs=0.01)
    assert about.loc["cover-yourself mail", "Hours back / week"] > 0
    cover = next(v for k, v in frames.items() if "Emails copying the manager" in k).set_index("Team")
    assert cover["Emails copying the manager"].idxmax() == "Support"  # where the habit is planted
    settings = load_settings(demo_dir / "timeaudit.toml")
    minutes = settings.rules.email_minutes_per_read
    assert cover.loc["Support", "Managers' hours"] == pytest.approx(
        cover.loc["Support", "Emails copying the manager"] * minutes / 60, abs=0.01
    )

    at.switch_page("views/my_week.py").run()
    at.selectbox(key="person").set_value(habit.email).run()
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Emails copying your manager"]) > 0
    at.switch_page("views/team.py").run()
    at.selectbox(key="team").set_value("Support").run()
    shown = {m.label: m.value for m in at.metric}
    assert int(shown["Emails copying the sender's manager"]) >= 1
