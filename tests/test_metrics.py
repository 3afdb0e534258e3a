"""A hand-computed week, asserted to the minute.

Two people in two time zones. Laura works in London, 09:00-17:00; week 2026-W43 ends with
the change from summer to winter time (Sunday 25 October), so her working hours are
08:00-16:00 UTC on Monday to Friday. Ned works in New York, 09:00-17:00; in W43 that is
13:00-21:00 UTC, and in W45 (after the US change on 1 November) 14:00-22:00 UTC.
"""

from __future__ import annotations

import pandas as pd
import pytest

from timeaudit.analysis.metrics import team_weekly
from timeaudit.core.config import parse_settings
from timeaudit.core.model import Person
from timeaudit.core.roster import write_roster
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import weekly_metrics

from records import event, message, utc

LAURA, NED = "laura@northwind.com", "ned@northwind.com"
ANN, BOB = "ann@northwind.com", "bob@acme.com"
READ_H, SENT_H = 87.2 / 3600, 5 / 60


def laura_week() -> tuple[list, list]:
    e = []
    # Monday 19 Oct: customer 09:00-10:00 BST overlaps an internal meeting 09:30-10:30 BST.
    e.append(event(LAURA, utc(2026, 10, 19, 8), utc(2026, 10, 19, 9), with_=[BOB]))
    e.append(event(LAURA, utc(2026, 10, 19, 8, 30), utc(2026, 10, 19, 9, 30), with_=[ANN]))
    e.append(
        event(LAURA, utc(2026, 10, 19, 10), utc(2026, 10, 19, 11), with_=[ANN], organizer=ANN, self_response="declined")
    )
    # Tuesday: an all-day event (not counted) and a budget meeting 13:00-14:00 BST.
    e.append(event(LAURA, utc(2026, 10, 19, 23), utc(2026, 10, 20, 23), all_day=True, with_=[ANN]))
    e.append(event(LAURA, utc(2026, 10, 20, 12), utc(2026, 10, 20, 13), with_=[ANN], title_tags=["budget"]))
    # Wednesday: out of office all day (local midnight to midnight).
    e.append(event(LAURA, utc(2026, 10, 20, 23), utc(2026, 10, 21, 23), event_type="outOfOffice"))
    # Thursday: a tentative invite 10:00-11:00 BST (does not block focus); meetings 11:30-12:00 and 15:00-16:30.
    e.append(
        event(LAURA, utc(2026, 10, 22, 9), utc(2026, 10, 22, 10), with_=[ANN], organizer=ANN, self_response="tentative")
    )
    e.append(event(LAURA, utc(2026, 10, 22, 10, 30), utc(2026, 10, 22, 11), with_=[ANN]))
    e.append(event(LAURA, utc(2026, 10, 22, 14), utc(2026, 10, 22, 15, 30), with_=[ANN]))
    # Friday: focus time 09:00-11:00, meeting 11:00-12:00, customer 13:00-14:00, a cancelled 14:00-15:00.
    e.append(event(LAURA, utc(2026, 10, 23, 8), utc(2026, 10, 23, 10), event_type="focusTime"))
    e.append(event(LAURA, utc(2026, 10, 23, 10), utc(2026, 10, 23, 11), with_=[ANN]))
    e.append(event(LAURA, utc(2026, 10, 23, 12), utc(2026, 10, 23, 13), with_=[BOB]))
    e.append(event(LAURA, utc(2026, 10, 23, 13), utc(2026, 10, 23, 14), with_=[ANN], status="cancelled"))
    # Sunday 25 Oct, after the clocks went back: 10:00-11:00 GMT is 10:00-11:00 UTC, after hours.
    e.append(event(LAURA, utc(2026, 10, 25, 10), utc(2026, 10, 25, 11), with_=[ANN]))
    m = [
        message(LAURA, utc(2026, 10, 19, 9), sender=ANN, to=[LAURA]),
        message(LAURA, utc(2026, 10, 19, 9, 5), sender=ANN, to=[LAURA]),
        message(LAURA, utc(2026, 10, 19, 9, 10), sender="news@vendor.com", to=[LAURA], bulk=True),
        message(LAURA, utc(2026, 10, 19, 9, 15), sender=ANN, to=[NED], cc=[LAURA], self_in="cc"),
        message(LAURA, utc(2026, 10, 19, 9, 20), sender=ANN, to=[LAURA], unread=True),
        message(LAURA, utc(2026, 10, 19, 9, 25), sender=ANN, to=[LAURA], auto=True),
        # Sent to a customer at 18:00 BST: after hours.
        message(LAURA, utc(2026, 10, 19, 17), direction="sent", self_in="from", sender=LAURA, to=[BOB]),
    ]
    return e, m


def ned_weeks() -> list:
    return [
        # Monday 19 Oct 09:00-10:00 EDT.
        event(NED, utc(2026, 10, 19, 13), utc(2026, 10, 19, 14), with_=[BOB]),
        # Monday 2 Nov 08:30-09:30 EST: half before his day starts.
        event(NED, utc(2026, 11, 2, 13, 30), utc(2026, 11, 2, 14, 30), with_=[BOB]),
    ]


@pytest.fixture
def weekly(tmp_path):
    write_roster(
        tmp_path / "people.csv",
        [
            Person(LAURA, "Support", timezone="Europe/London"),
            Person(NED, "Sales", timezone="America/New_York"),
        ],
    )
    settings = parse_settings(
        {
            "roster": str(tmp_path / "people.csv"),
            "organisation": {"domains": ["northwind.com"], "timezone": "UTC", "working_hours": "09:00-17:00"},
            "customers": [{"name": "Acme", "domains": ["acme.com"]}],
        }
    )
    lake = Lake(tmp_path / "data")
    events, messages = laura_week()
    lake.write_batch("events", "test", events + ned_weeks())
    lake.write_batch("messages", "test", messages)
    return weekly_metrics(lake, settings)


def row(weekly, person, week):
    found = weekly[(weekly["person"] == person) & (weekly["week"] == week)]
    assert len(found) == 1
    return found.iloc[0]


def test_hand_computed_week_across_summer_time_end(weekly):
    r = row(weekly, LAURA, "2026-W43")
    email = (4 * 87.2 + 300) / 3600
    expected = {
        "capacity_hours": 32.0,  # five 8-hour days less Wednesday out of office
        "out_of_office_hours": 8.0,
        "customer_meeting_hours": 2.0,  # Monday 1 h, Friday 1 h
        "internal_meeting_hours": 4.5,  # Mon 0.5 (after the customer half) + Thu 0.5 + 1.5 + Fri 1 + Sun 1
        "admin_hours": 1.0,
        "focus_hours": 24.0,  # gaps Mon 6.5, Tue 4 + 3, Thu 2.5 + 3, Fri 3, plus Friday's 2 h focus block
        "fragmented_hours": 1.5,  # Thu 16:30-17:00, Fri 12:00-13:00
        "double_booked_hours": 0.5,
        "tentative_hours": 1.0,
        "after_hours_hours": 1.0 + SENT_H,  # Sunday's meeting and the 18:00 email
        "email_hours": email,
        "customer_email_hours": SENT_H,
        "internal_email_hours": 2 * READ_H,
        "cc_only_email_hours": READ_H,
        "bulk_email_hours": READ_H,
        "emails_sent": 1,
        "emails_received": 5,  # the automatic reply is not email work
        "customer_share": (2 + SENT_H) / (2 + 4.5 + 1 + email),
    }
    for column, value in expected.items():
        assert r[column] == pytest.approx(value, abs=1 / 60 / 2), column  # to the minute (half a minute)


def test_working_time_adds_up(weekly):
    r = row(weekly, LAURA, "2026-W43")
    in_work_meetings = r["customer_meeting_hours"] + r["internal_meeting_hours"] - 1.0 + r["admin_hours"]
    assert in_work_meetings + r["focus_hours"] + r["fragmented_hours"] == pytest.approx(r["capacity_hours"])


def test_a_quiet_week_is_all_focus(weekly):
    r = row(weekly, LAURA, "2026-W44")  # 26 Oct - 1 Nov, GMT: nothing booked
    assert (r["capacity_hours"], r["focus_hours"], r["fragmented_hours"]) == (40.0, 40.0, 0.0)
    assert r["customer_share"] != r["customer_share"]  # NaN: nothing to share out


def test_second_time_zone_and_its_own_summer_time_end(weekly):
    before = row(weekly, NED, "2026-W43")
    assert before["customer_meeting_hours"] == pytest.approx(1.0)
    assert before["after_hours_hours"] == pytest.approx(0.0)  # 09:00-10:00 EDT
    after = row(weekly, NED, "2026-W45")
    assert after["customer_meeting_hours"] == pytest.approx(1.0)
    assert after["after_hours_hours"] == pytest.approx(0.5)  # 08:30-09:00 EST
    assert after["focus_hours"] == pytest.approx(39.5)
    assert after["capacity_hours"] == pytest.approx(40.0)


def test_every_person_week_is_present(weekly):
    assert sorted(set(weekly["week"])) == ["2026-W43", "2026-W44", "2026-W45"]
    assert len(weekly) == 6
    assert set(weekly["team"]) == {"Support", "Sales"}


def test_team_rollup_hides_small_groups(weekly):
    teams = team_weekly(weekly, min_group_size=1)
    support = teams[(teams["team"] == "Support") & (teams["week"] == "2026-W43")].iloc[0]
    assert support["people"] == 1
    assert support["customer_meeting_hours"] == pytest.approx(2.0)
    hidden = team_weekly(weekly, min_group_size=5)
    assert hidden.empty
    assert hidden.attrs["hidden_teams"] == {"Sales": 1, "Support": 1}


def test_the_python_column_lists_match_what_weekly_sql_gives(weekly):
    """HOUR_COLUMNS, COUNT_COLUMNS and CATEGORY_COLUMNS name columns weekly.sql really makes,
    and docs/metrics.md documents each of them."""
    from pathlib import Path

    from timeaudit.analysis.metrics import CATEGORY_COLUMNS, COUNT_COLUMNS, HOUR_COLUMNS

    named = {*HOUR_COLUMNS, *COUNT_COLUMNS, *CATEGORY_COLUMNS.values(), "customer_share"}
    assert named <= set(weekly.columns)
    documented = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert [c for c in sorted(named) if f"`{c}`" not in documented] == []


def test_customer_share_of_a_row_is_the_one_weekly_sql_gives(weekly):
    """metrics.customer_share (for sums of rows) and weekly.sql (per person-week) define it alike."""
    from timeaudit.analysis.metrics import customer_share

    pd.testing.assert_series_equal(customer_share(weekly), weekly["customer_share"], check_names=False, atol=1e-12)
