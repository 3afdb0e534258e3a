"""Chat figures computed by hand on a small week: chat hours (sent, read, customer part),
interruptions of focus with the refocus time they cost, and customer chat waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from timeaudit.analysis.audit import open_scope
from timeaudit.analysis.chat import chat_weekly, customer_chat_waiting, team_chat_weekly
from timeaudit.analysis.metrics import open_analysis
from timeaudit.core.config import parse_settings
from timeaudit.core.model import Attendee, Chat, Event
from timeaudit.lake.store import Lake

ANN, BOB, CAT, GUS = "ann@northwind.test", "bob@northwind.test", "cat@northwind.test", "gus@globex.test"
MONDAY = datetime(2026, 11, 2, tzinfo=UTC)  # 2026-W45


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def chat(n: int, when: datetime, sender: str, conversation: str, shared: tuple[str, ...] = (), bot: bool = False):
    return Chat(
        source="slack",
        account="slack:T0HOME",
        id=f"{conversation}/{n}",
        ts=when,
        updated=when,
        conversation=conversation,
        conversation_kind="public",
        shared_domains=list(shared),
        sender=sender,
        bot=bot,
    )


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path / "data")
    meeting = Event(
        source="test",
        account=ANN,
        id="m1",
        start=at(9),
        end=at(10),
        updated=at(0),
        organizer=ANN,
        attendees=[Attendee(ANN, "accepted"), Attendee(BOB, "accepted")],
    )
    lake.write_batch("events", "test", [meeting])
    g = ("globex.test",)
    lake.write_batch(
        "chat",
        "slack",
        [
            chat(1, at(10, 30), BOB, "C1"),  # in Ann's focus gap (10:00-17:00)
            chat(2, at(10, 32), ANN, "C1"),  # a reflex reply: an interruption, 23 min lost
            chat(3, at(11, 0), CAT, "C1"),
            chat(4, at(11, 20), ANN, "C1"),  # 20 min later: no reflex
            chat(5, at(12, 0), "bot:B1", "C1", bot=True),  # read, like any message of others
            chat(6, at(16, 50), GUS, "C2", g),  # the customer, in a shared channel
            chat(7, at(16, 52), ANN, "C2", g),  # reflex again: 8 min of the block were left
            chat(8, at(16, 55), GUS, "C2", g),  # waiting: no one answered
            chat(9, at(13, 0), BOB, "D1"),  # Ann takes no part: not hers to read
            chat(10, at(13, 1), CAT, "D1"),
        ],
    )
    return lake


SETTINGS = {
    "organisation": {"domains": ["northwind.test"], "timezone": "UTC", "working_hours": "09:00-17:00"},
    "customers": [{"name": "Globex", "domains": ["globex.test"]}],
}


def test_chat_hours_interruptions_and_refocus_by_hand(lake):
    settings = parse_settings(SETTINGS)
    a = open_analysis(lake, settings)
    weekly = chat_weekly(a)
    row = weekly[(weekly["person"] == ANN) & (weekly["week"] == "2026-W45")].iloc[0]
    # Sent 3 (0.5 min each); read bob, cat and the bot in C1 and gus twice in C2 (0.1 min each).
    assert (row["chats_sent"], row["chats_read"]) == (3, 5)
    assert row["chat_hours"] == pytest.approx((3 * 0.5 + 5 * 0.1) / 60)
    assert row["customer_chat_hours"] == pytest.approx((1 * 0.5 + 2 * 0.1) / 60)
    assert row["internal_chat_hours"] == pytest.approx((2 * 0.5 + 3 * 0.1) / 60)
    assert row["interruptions"] == 2
    assert row["refocus_hours"] == pytest.approx((23 + 8) / 60)
    # Every person-week has a row; quiet ones are zeros.
    assert len(weekly) == weekly["week"].nunique() * weekly["person"].nunique()


def test_the_constants_come_from_the_settings(lake):
    settings = parse_settings(
        SETTINGS
        | {"rules": {"chat_minutes_per_sent": 1.0, "chat_minutes_per_read": 0.0, "interruption_reply_minutes": 1.0}}
    )
    row = chat_weekly(open_analysis(lake, settings)).query("week == '2026-W45'").iloc[0]
    assert row["chat_hours"] == pytest.approx(3 / 60)
    assert row["interruptions"] == 0 and row["refocus_hours"] == 0


def test_a_reply_inside_a_meeting_is_no_interruption_of_focus(lake):
    lake.write_batch("chat", "slack", [chat(11, at(9, 10), BOB, "C1"), chat(12, at(9, 11), ANN, "C1")])
    row = chat_weekly(open_analysis(lake, parse_settings(SETTINGS))).query("week == '2026-W45'").iloc[0]
    assert row["interruptions"] == 2


def test_team_chat_passes_the_privacy_gate(lake):
    settings = parse_settings(SETTINGS)
    weekly = chat_weekly(open_analysis(lake, settings))
    assert team_chat_weekly(weekly, 5).empty  # one person: under the minimum group
    team = team_chat_weekly(weekly, 1)
    assert team["chat_hours"].sum() == pytest.approx(weekly["chat_hours"].sum())


def test_customer_chat_waiting_with_its_working_hours_age(lake):
    settings = parse_settings(SETTINGS)
    a = open_analysis(lake, settings)
    scope = open_scope(a, ["2026-W45"], now=at(10, day=1))  # Tuesday 10:00
    waiting = customer_chat_waiting(a, scope)
    assert len(waiting) == 1
    row = waiting.iloc[0]
    assert (row["customer"], row["sender"], row["conversation"], row["messages"]) == ("Globex", GUS, "C2", 1)
    assert row["working_hours"] == pytest.approx(5 / 60 + 1)  # Mon 16:55-17:00 and Tue 09:00-10:00
    # Ann answers: nothing waits.
    lake.write_batch("chat", "slack", [chat(13, at(9, 30, day=1), ANN, "C2", ("globex.test",))])
    a = open_analysis(lake, settings)
    assert customer_chat_waiting(a, open_scope(a, ["2026-W45"], now=at(10, day=1))).empty


def test_customer_chat_in_threads_waits_until_answered_where_it_was_asked(lake):
    """A customer message in a thread (its parent or a reply) is answered by a later team
    message in that thread alone; one outside threads by a later team message outside threads
    (a thread's parent counts there), never by a reply inside some thread. A waiting parent is
    counted with the conversation's top level."""
    from dataclasses import replace

    g = ("globex.test",)
    in_thread = lambda n, when, sender, thread: replace(chat(n, when, sender, "C3", g), thread=thread)  # noqa: E731
    lake.write_batch(
        "chat",
        "slack",
        [
            in_thread(20, at(11), GUS, "C3/20"),  # a thread's parent, by the customer: answered below
            in_thread(21, at(11, 5), ANN, "C3/20"),  # ... in its thread
            in_thread(22, at(12), GUS, "C3/22"),  # another thread's parent, never answered in it: waits
            chat(23, at(12, 5), BOB, "C3", g),  # a top-level team message: answers no thread
            chat(24, at(13), GUS, "C3", g),  # top level, answered only inside a thread below: waits
            in_thread(25, at(13, 5), ANN, "C3/20"),
            in_thread(26, at(14), GUS, "C3/20"),  # a reply in thread 20 after the team's last one there: waits
            in_thread(27, at(14, 30), BOB, "C3/27"),  # the team starts a new thread: its parent is top level
            chat(28, at(15), GUS, "C3", g),  # answered by nothing later: waits
        ],
    )
    settings = parse_settings(SETTINGS)
    a = open_analysis(lake, settings)
    waiting = customer_chat_waiting(a, open_scope(a, ["2026-W45"], now=at(10, day=1)))
    c3 = waiting[waiting["conversation"] == "C3"].sort_values("waiting_since")
    assert list(zip(c3["thread"], c3["waiting_since"], c3["messages"], strict=True)) == [
        ("", at(12), 3),  # 22, 24 and 28
        ("C3/20", at(14), 1),
    ]
