"""The demo organisation: deterministic, shaped like a real company, and it plants what it says."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date

import pytest

from connectors.demo.org import NEGLECT_WEEKS, NEGLECTED, STORM_REPLIES, build_org, cover_sender
from connectors.demo.records import iter_events, iter_messages, write_org_files
from timeaudit.core.config import load_settings, parse_settings
from timeaudit.core.roster import load_people

END = date(2026, 11, 23)


@pytest.fixture(scope="module")
def org():
    return build_org(people=40, weeks=8, seed=7, end=END)


@pytest.fixture(scope="module")
def events(org):
    return list(iter_events(org))


@pytest.fixture(scope="module")
def messages(org):
    return list(iter_messages(org))


def test_same_seed_same_records_other_seed_other_records(org, events):
    again = build_org(people=40, weeks=8, seed=7, end=END)
    assert [p.email for p in again.people] == [p.email for p in org.people]
    assert list(iter_events(again))[:500] == events[:500]
    other = build_org(people=40, weeks=8, seed=8, end=END)
    assert list(iter_events(other))[:500] != events[:500]


def test_shape_of_the_organisation(org):
    assert len(org.people) == 40
    assert len({p.team for p in org.people}) == 5
    assert len({p.timezone for p in org.people}) >= 3
    assert len(org.customers) == 12 and len({d for c in org.customers for d in c.domains}) >= 12
    assert org.start == date(2026, 9, 28) and org.end == END
    roles = Counter(p.role for p in org.people)
    assert roles["lead"] >= 4 and roles["admin"] == 1


def test_records_are_utc_and_hold_no_titles(events, messages):
    assert all(e.start.tzinfo == UTC and e.end > e.start for e in events)
    assert all(e.title is None for e in events) and any(e.title_tags for e in events)
    assert all(m.ts.tzinfo == UTC and m.subject is None for m in messages)
    keys = [(e.account, e.id) for e in events]
    assert len(keys) == len(set(keys))  # primary key is unique


def test_every_planted_feature_is_there(org, events, messages):
    assert any(e.self_response == "declined" for e in events)
    assert any(e.status == "cancelled" for e in events)
    assert any(e.self_response in ("tentative", "needsAction") for e in events)
    assert any(e.all_day and e.event_type == "default" for e in events)
    assert any(e.event_type == "outOfOffice" for e in events)
    assert any(e.event_type == "focusTime" for e in events)
    assert any(e.transparency == "transparent" for e in events)
    assert any("committee" in e.title_tags for e in events)
    assert any(m.bulk for m in messages) and any(m.auto for m in messages)
    assert any(m.self_in == "cc" for m in messages)
    replied = {m.in_reply_to for m in messages if m.in_reply_to}
    customer_domains = {d for c in org.customers for d in c.domains}
    from_customers = [m for m in messages if m.sender.split("@")[1] in customer_domains]
    assert any(m.message_id not in replied for m in from_customers)  # some never answered
    assert any(m.message_id in replied for m in from_customers)


def test_double_bookings_exist(events):
    by_person: dict[str, list] = {}
    for e in events:
        if e.status != "cancelled" and not e.all_day and e.transparency == "opaque":
            by_person.setdefault(e.account, []).append((e.start, e.end))
    overlaps = 0
    for spans in by_person.values():
        spans.sort()
        overlaps += sum(1 for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1])
    assert overlaps > 10


def test_neglected_customers_go_quiet(org, events, messages):
    cutoff = org.start.toordinal() + 7 * (org.weeks - NEGLECT_WEEKS)
    domains = {d for c in org.customers if c.name in NEGLECTED for d in c.domains}
    late_meetings = [
        e
        for e in events
        if e.start.date().toordinal() >= cutoff and any(a.email.split("@")[1] in domains for a in e.attendees)
    ]
    late_mail = [
        m
        for m in messages
        if m.ts.date().toordinal() >= cutoff
        and (m.sender.split("@")[1] in domains or any(t.split("@")[1] in domains for t in m.to))
    ]
    assert late_meetings == [] and late_mail == []


def test_the_cover_yourself_habit_and_the_reply_all_storm_are_planted(org, messages):
    habit = cover_sender(org)
    internal = [
        m
        for m in messages
        if m.account == habit.email and m.direction == "sent" and all(a.endswith("northwind-demo.com") for a in m.to)
    ]
    assert internal and all(habit.manager in m.cc and habit.manager not in m.to for m in internal)
    others = [p for p in org.people if p.manager and p.email != habit.email]
    copied = Counter(
        m.account
        for m in messages
        if m.direction == "sent" and any(p.manager in m.cc for p in others if p.email == m.account)
    )
    assert len(internal) > 3 * max(copied.values())  # nobody else comes close
    replies: dict[str, set[str]] = {}
    for m in messages:
        if m.in_reply_to and len(set(m.to + m.cc) - {m.sender}) >= 10:
            replies.setdefault(m.thread_id, set()).add(m.message_id)
    storms = [t for t, ids in replies.items() if len(ids) >= 5]
    assert len(storms) == 1 and len(replies[storms[0]]) == STORM_REPLIES


def test_org_files_load(org, tmp_path):
    parse_settings(org.settings)
    path = write_org_files(org, tmp_path)
    settings = load_settings(path)
    assert settings.organisation.name == "Northwind Demo"
    assert len(load_people(settings)) == 40
