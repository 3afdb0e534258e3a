"""One test per classification rule, on small hand-built records: category and reason."""

from __future__ import annotations

import pytest

from timeaudit.analysis.classify import register_rules
from timeaudit.core.config import parse_settings
from timeaudit.core.model import Person
from timeaudit.lake.store import Lake

from records import event, message, utc

ME = "me@northwind.com"
COLLEAGUE = "ann@northwind.com"
CUSTOMER = "bob@acme.com"
STRANGER = "zed@elsewhere.org"
SETTINGS = {
    "organisation": {"domains": ["northwind.com"]},
    "customers": [{"name": "Acme", "domains": ["acme.com"], "tier": "gold"}],
}
T0, T1 = utc(2026, 11, 17, 10), utc(2026, 11, 17, 11)


def classify(tmp_path, table: str, record, settings: dict = SETTINGS) -> tuple[str, str, float]:
    lake = Lake(tmp_path)
    lake.write_batch(table, "test", [record])
    con = lake.connect()
    register_rules(con, parse_settings(settings), [Person(ME, "Support")])
    view = "classified_events" if table == "events" else "classified_messages"
    extra = "minutes" if table == "messages" else "0.0"
    return con.execute(f"SELECT category, reason, {extra} FROM {view}").fetchall()[0]


EVENT_RULES = [
    ("cancelled", dict(status="cancelled", with_=[COLLEAGUE]), "excluded", "cancelled"),
    ("declined", dict(self_response="declined", with_=[COLLEAGUE], organizer=COLLEAGUE), "excluded", "you declined"),
    ("out_of_office", dict(event_type="outOfOffice"), "out_of_office", "out of office"),
    ("all_day", dict(all_day=True, with_=[COLLEAGUE]), "excluded", "all-day"),
    ("working_location", dict(event_type="workingLocation"), "excluded", "working-location"),
    ("shown_as_free", dict(transparency="transparent", with_=[COLLEAGUE]), "excluded", "shown as free"),
    ("longer_than_limit", dict(end=utc(2026, 11, 17, 19), with_=[COLLEAGUE]), "excluded", "longer than 8.0 hours"),
    ("tentative", dict(self_response="tentative", with_=[COLLEAGUE], organizer=COLLEAGUE), "tentative", "maybe"),
    (
        "not_answered",
        dict(self_response="needsAction", with_=[COLLEAGUE], organizer=COLLEAGUE),
        "tentative",
        "not answered",
    ),
    ("customer_attendee", dict(with_=[COLLEAGUE, CUSTOMER]), "customer", "attendee bob@acme.com is customer Acme"),
    ("customer_organizer", dict(with_=[COLLEAGUE], organizer=CUSTOMER), "customer", "bob@acme.com is customer Acme"),
    ("customer_beats_admin", dict(with_=[CUSTOMER], title_tags=["budget"]), "customer", "customer Acme"),
    ("focus_time", dict(event_type="focusTime"), "focus", "focus time block"),
    (
        "admin_keyword",
        dict(with_=[COLLEAGUE], title_tags=["budget", "review"]),
        "admin",
        "title mentions 'budget' (budgets)",
    ),
    ("admin_solo_block", dict(title_tags=["timesheet"]), "admin", "'timesheet' (records)"),
    (
        "internal_meeting",
        dict(with_=[COLLEAGUE, "cy@northwind.com"]),
        "internal",
        "internal meeting with 2 other people",
    ),
    ("external_not_customer_by_default", dict(with_=[STRANGER]), "internal", "internal meeting with 1 other person"),
    ("solo_block", dict(), "focus", "solo block with no other attendees"),
]


@pytest.mark.parametrize(("case", "fields", "category", "reason"), EVENT_RULES, ids=[r[0] for r in EVENT_RULES])
def test_event_rule(tmp_path, case, fields, category, reason):
    fields = dict(fields)
    end = fields.pop("end", T1)
    got_category, got_reason, _ = classify(tmp_path, "events", event(ME, T0, end, **fields))
    assert got_category == category
    assert reason in got_reason


def test_external_counts_as_customer_when_set(tmp_path):
    settings = {**SETTINGS, "rules": {"external_is_customer": True}}
    category, reason, _ = classify(tmp_path, "events", event(ME, T0, T1, with_=[STRANGER]), settings)
    assert category == "customer"
    assert reason == "attendee zed@elsewhere.org is external (external counts as customer)"


READ = 87.2 / 60
MESSAGE_RULES = [
    ("automatic", dict(auto=True, sender=COLLEAGUE, to=[ME]), "automatic", "automatic reply", 0.0),
    ("bulk", dict(bulk=True, sender="news@vendor.com", to=[ME]), "bulk", "bulk mail", READ),
    ("customer_received", dict(sender=CUSTOMER, to=[ME]), "customer", "with bob@acme.com, customer Acme", READ),
    (
        "customer_sent",
        dict(direction="sent", self_in="from", sender=ME, to=[CUSTOMER]),
        "customer",
        "to bob@acme.com, customer Acme",
        5.0,
    ),
    ("cc_only", dict(sender=COLLEAGUE, to=["cy@northwind.com"], cc=[ME], self_in="cc"), "cc_only", "only on cc", READ),
    ("internal", dict(sender=COLLEAGUE, to=[ME]), "internal", "internal email", READ),
    ("unread_costs_nothing", dict(sender=COLLEAGUE, to=[ME], unread=True), "internal", "internal email", 0.0),
]


@pytest.mark.parametrize(
    ("case", "fields", "category", "reason", "minutes"), MESSAGE_RULES, ids=[r[0] for r in MESSAGE_RULES]
)
def test_message_rule(tmp_path, case, fields, category, reason, minutes):
    got_category, got_reason, got_minutes = classify(tmp_path, "messages", message(ME, T0, **fields))
    assert got_category == category
    assert reason in got_reason
    assert got_minutes == pytest.approx(minutes)


def test_email_minutes_come_from_settings(tmp_path):
    settings = {**SETTINGS, "rules": {"email_minutes_per_sent": 3, "email_minutes_per_read": 0.5}}
    record = message(ME, T0, direction="sent", self_in="from", sender=ME, to=[COLLEAGUE])
    assert classify(tmp_path, "messages", record, settings)[2] == pytest.approx(3.0)
