"""Weekly metrics per person and team, computed by DuckDB over the lake.

The definitions live in ``sql/weekly.sql`` (and are documented in docs/metrics.md); this
module prepares their inputs: the people, and each person's local days and working hours
as UTC instants, so the SQL needs no time-zone arithmetic and runs on Spark too.

``prepare`` is shared by both engines: it only calls ``con.register(name, frame)`` and
``con.execute(sql)`` (``.fetchall()`` on the result), which a DuckDB connection has and
``timeaudit.outputs.spark.SparkConnection`` imitates, so the Spark run registers the same tables
from the same Python code and runs the same SQL files.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from timeaudit.analysis.classify import records_of, register_classified, register_rules
from timeaudit.analysis.sql import read_sql
from timeaudit.core.config import DAY_NAMES, Settings, parse_working_hours
from timeaudit.core.model import Person
from timeaudit.core.roster import load_people
from timeaudit.core.weeks import week_label, week_labels
from timeaudit.lake.store import Lake
from timeaudit.privacy import gate, visible_groups

NO_TEAM = "(no team)"
# How far back metrics reach from the newest data: bounds the work a stray old event causes.
MAX_WEEKS = 104

# One colour per category, everywhere (dashboard, exports).
CATEGORY_COLOURS: dict[str, str] = {
    "Customer meetings": "#1b9e77",
    "Customer email": "#66c2a5",
    "Internal meetings": "#d95f02",
    "Admin": "#7570b3",
    "Internal email": "#e7298a",
    "Focus": "#1f78b4",
    "Fragmented": "#a6cee3",
}
CATEGORY_COLUMNS: dict[str, str] = {
    "Customer meetings": "customer_meeting_hours",
    "Customer email": "customer_email_hours",
    "Internal meetings": "internal_meeting_hours",
    "Admin": "admin_hours",
    "Internal email": "non_customer_email_hours",
    "Focus": "focus_hours",
    "Fragmented": "fragmented_hours",
}
HOUR_COLUMNS = [
    "capacity_hours",
    "customer_meeting_hours",
    "internal_meeting_hours",
    "admin_hours",
    "focus_hours",
    "fragmented_hours",
    "email_hours",
    "customer_email_hours",
    "internal_email_hours",
    "cc_only_email_hours",
    "bulk_email_hours",
    "double_booked_hours",
    "after_hours_hours",
    "after_hours_email_hours",
    "tentative_hours",
    "out_of_office_hours",
]
COUNT_COLUMNS = ["emails_sent", "emails_received"]


@dataclass(frozen=True)
class Analysis:
    """An open DuckDB connection with the lake, the rules and the people's days registered.
    Shared by several threads (``timeaudit.analysis.session``), it is used under ``lock``;
    ``memo`` keeps what is computed on it once (the weekly table)."""

    con: duckdb.DuckDBPyConnection
    people: list[Person]
    settings: Settings
    partial: bool = False  # only some accounts' records classified (``open_analysis(only=...)``)
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)
    memo: dict = field(default_factory=dict, compare=False, repr=False)


def people_or_accounts(con, people: list[Person], shared: frozenset[str] = frozenset()) -> list[Person]:
    """The roster, or in single-user local mode every account found in the lake but the shared
    mailboxes (``shared``), which are a team's, not a person's."""
    if people:
        return people
    rows = con.execute(read_sql("accounts.sql")).fetchall()
    return [Person(email=a, team=NO_TEAM) for (a,) in rows if a not in shared]


def data_range(con) -> tuple[date, date] | None:
    """First and last calendar day (UTC) to count, at most MAX_WEEKS apart. Calendars set the
    start when there are any: a mailbox's first message can arrive hours before its owner's
    first working week begins."""
    ev_lo, ev_hi, ms_lo, ms_hi = con.execute(read_sql("data_range.sql")).fetchall()[0]
    lo = ev_lo or ms_lo
    his = [d for d in (ev_hi, ms_hi) if d is not None]
    if lo is None or not his:
        return None
    first, last = lo, max(his)
    return max(first, last - timedelta(weeks=MAX_WEEKS)), last


UTC_US = pa.timestamp("us", tz="UTC")
# The local days of one (time zone, working hours) pair, which the people using it share;
# sql/person_days.sql joins them with the people.
ZONE_DAYS_SCHEMA = pa.schema(
    [
        ("zone", pa.int32()),
        ("tz", pa.string()),
        ("day", pa.date32()),
        ("week", pa.string()),
        ("week_start", pa.date32()),
        ("day_start", UTC_US),
        ("day_end", UTC_US),
        ("work_start", UTC_US),
        ("work_end", UTC_US),
    ]
)
PERSON_ZONES_SCHEMA = pa.schema([("person", pa.string()), ("pid", pa.int32()), ("zone", pa.int32())])


def zone_days(people: list[Person], settings: Settings, first: date, last: date) -> tuple[pa.Table, pa.Table]:
    """(zone_days, person_zones): for each (time zone, working hours) the people use, one row
    per local day from the Monday before ``first`` to the Sunday after ``last`` with the day's
    bounds and working hours as UTC instants and its ISO week; and which zone each person is
    in, with a number for each person (``pid``: the SQL sorts and joins on it, not on addresses).
    Days are computed once per zone, not per person, so ten thousand people cost no more here
    than ten."""
    org = settings.organisation
    start = first - timedelta(days=first.weekday() + 1)  # a day early: covers zones ahead of UTC
    end = last + timedelta(days=7 - last.weekday())
    dates = pd.date_range(start, end, freq="D")
    working = {DAY_NAMES.index(d) for d in org.working_days}
    zones: dict[tuple[str, str], int] = {}
    members = []
    for p in people:
        key = (p.timezone or org.timezone, p.working_hours or org.working_hours)
        members.append((p.email, len(members), zones.setdefault(key, len(zones))))
    first_week = first - timedelta(days=first.weekday())
    frames = []
    for (tz, hours), zone in zones.items():
        begin, finish = parse_working_hours(hours)
        day_start = _local_to_utc(dates, tz)
        day_end = _local_to_utc(dates + pd.Timedelta(days=1), tz)
        is_working = dates.day_of_week.isin(list(working))
        work_start = _local_to_utc(dates + _offset(begin), tz).where(is_working, day_start)
        work_end = _local_to_utc(dates + _offset(finish), tz).where(is_working, day_start)
        days = pd.DataFrame(
            {
                "zone": zone,
                "tz": tz,
                "day": dates.date,
                "week": week_labels(dates),
                "week_start": (dates - pd.to_timedelta(dates.day_of_week, unit="D")).date,
                "day_start": day_start,
                "day_end": day_end,
                "work_start": work_start,
                "work_end": work_end,
            }
        )
        # Keep only whole weeks that touch the data range.
        frames.append(days[(days["week_start"] >= first_week) & (days["week_start"] <= last)])
    tables = [pa.Table.from_pandas(f, schema=ZONE_DAYS_SCHEMA, preserve_index=False) for f in frames]
    days_table = pa.concat_tables(tables) if tables else ZONE_DAYS_SCHEMA.empty_table()
    people_table = pa.Table.from_pylist(
        [{"person": e, "pid": n, "zone": z} for e, n, z in members], schema=PERSON_ZONES_SCHEMA
    )
    return days_table, people_table


def _offset(t) -> pd.Timedelta:
    return pd.Timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _local_to_utc(local: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    # A local time that does not exist (spring forward) moves to the first valid instant; an
    # ambiguous one (fall back) takes the first occurrence.
    return local.tz_localize(tz, nonexistent="shift_forward", ambiguous=True).tz_convert("UTC")


def open_analysis(
    lake: Lake,
    settings: Settings,
    attempts: int = 3,
    *,
    only: Collection[str] | None = None,
    sent_by_anyone: bool = False,
    classified: dict[str, str] | None = None,
) -> Analysis:
    """Classify the lake's records for these settings (only the records of the accounts in
    ``only`` when given, and with ``sent_by_anyone`` every account's sent messages too; the
    people and their days are everyone's all the same). ``classified``: where the records of
    this lake version and these settings are stored classified (``classify.register_classified``),
    read instead of classifying them again. A data file that `timeaudit forget` vacuums between
    listing and reading makes the read fail; a new snapshot then succeeds."""
    for attempt in range(attempts):
        try:
            con = lake.connect(only)
            people = prepare(con, settings, only, sent_by_anyone, classified)
            return Analysis(con, people, settings, only is not None)
        except (duckdb.IOException, FileNotFoundError):  # DuckDB's read, or the store's look at a file
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def prepare(
    con,
    settings: Settings,
    only: Collection[str] | None = None,
    sent_by_anyone: bool = False,
    classified: dict[str, str] | None = None,
) -> list[Person]:
    """Register the rules, the people and their days on ``con`` (which already has the lake's
    ``events`` and ``messages``) and classify every record (of the accounts in ``only``, when
    given: the people, the weeks and the rules stay those of the whole lake), or read them
    classified from ``classified`` (see ``open_analysis``). Returns the people."""
    shared = frozenset(m.address for m in settings.shared_mailboxes)
    people = people_or_accounts(con, load_people(settings), shared)
    span = data_range(con)
    if only is not None:
        restrict_records(con, only, sent_by_anyone, materialize=classified is None)
    if classified is None:
        register_rules(con, settings, people)
    else:
        register_classified(con, settings, people, classified, only, sent_by_anyone)
    if span and people:
        days, zones = zone_days(people, settings, *span)
    else:
        days, zones = ZONE_DAYS_SCHEMA.empty_table(), PERSON_ZONES_SCHEMA.empty_table()
    con.register("zone_days", days)
    con.register("person_zones", zones)
    con.execute(read_sql("person_days.sql"))
    return people


def restrict_records(con, accounts: Collection[str], sent_by_anyone: bool = False, materialize: bool = True) -> None:
    """Make ``events`` and ``messages`` on ``con`` hold only the records of ``accounts``: a
    person's figures depend on their own records alone (the rules, the people and the weeks
    aside), so recomputing a few people's weeks needs only theirs. The audit of a few people
    also needs everyone's sent messages (``sent_by_anyone``): a colleague's reply answers a
    customer too (sql/customer_replies.sql). ``materialize``: read a few people's records once
    into memory, for the classification to read several times."""
    for table in ("events", "messages"):
        everyone = sent_by_anyone and table == "messages"
        con.execute(f"ALTER VIEW {table} RENAME TO all_{table}")
        theirs = f"{table}_of_accounts" if not everyone and _has_view(con, f"{table}_of_accounts") else f"all_{table}"
        # A few people's records are read once, for the party lists, the classification and the
        # day sweep; everyone's sent messages stay a view, each reader taking the columns it needs.
        kind = "TEMP TABLE" if materialize and not everyone else "VIEW"
        con.execute(f"CREATE {kind} {table} AS SELECT * FROM {theirs} WHERE {records_of(accounts, everyone)}")


def _has_view(con, name: str) -> bool:
    found = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = $name", {"name": name})
    return bool(found.fetchall()[0][0])


def ensure_daily(a: Analysis) -> None:
    """Compute the person-day table once per analysis (every weekly figure sums it)."""
    with a.lock:
        _ensure_daily(a)


def _ensure_daily(a: Analysis) -> None:
    if not a.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'daily_metrics' AND temporary"
    ).fetchall()[0][0]:
        a.con.execute("CREATE TEMP TABLE daily_metrics AS " + read_sql("daily.sql"))


def compute_weekly(a: Analysis) -> pd.DataFrame:
    """One row per person-week of the analysis; see docs/metrics.md for every column. Computed
    once per analysis; each caller gets its own copy."""
    if a.partial:
        raise ValueError("this analysis classified only some people's records: no weekly table of everyone")
    with a.lock:
        if "weekly" not in a.memo:
            ensure_daily(a)
            a.memo["weekly"] = typed_weekly(a.con.execute(read_sql("weekly.sql")).df())
        return a.memo["weekly"].copy()


def typed_weekly(df: pd.DataFrame) -> pd.DataFrame:
    """The weekly table with dates as dates and counts as integers, however it was read."""
    df["week_start"] = pd.to_datetime(df["week_start"]).dt.date
    for col in COUNT_COLUMNS:
        df[col] = df[col].astype(int)
    return df


def customer_share(frame: pd.DataFrame) -> pd.Series:
    """customer / (customer + internal meetings + admin + all non-customer email)."""
    customer = frame["customer_meeting_hours"] + frame["customer_email_hours"]
    total = (
        frame["customer_meeting_hours"] + frame["internal_meeting_hours"] + frame["admin_hours"] + frame["email_hours"]
    )
    return (customer / total.where(total > 0)).astype(float)


def team_weekly(person_weeks: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Sums per shown group and week, through the privacy gate (``timeaudit.privacy``): teams
    under ``min_group_size`` people are summed in one pooled group, never on their own.
    ``.attrs["hidden_teams"]`` names the teams not shown on their own (team -> people),
    ``.attrs["shown_teams"]`` the teams that are, ``.attrs["pool"]`` the pooled group's label."""
    groups = visible_groups(teams_of(person_weeks), min_group_size)
    shown = gate(person_weeks, groups) if groups.complete else person_weeks.iloc[0:0]
    columns = HOUR_COLUMNS + COUNT_COLUMNS + ["non_customer_email_hours"]
    out = (
        shown.groupby(["week", "week_start", "team"], as_index=False)
        .agg(**{c: (c, "sum") for c in columns}, people=("person", "nunique"))
        .sort_values(["week", "team"])
        .reset_index(drop=True)
    )
    out["customer_share"] = customer_share(out)
    out.attrs["hidden_teams"] = groups.pooled
    out.attrs["shown_teams"] = groups.teams
    out.attrs["pool"] = groups.pool if groups.complete else ""
    return out


def teams_of(person_rows: pd.DataFrame) -> dict[str, str]:
    """person -> team, from per-person rows."""
    pairs = person_rows[["person", "team"]].drop_duplicates("person")
    return dict(zip(pairs["person"], pairs["team"], strict=True))


def top_meetings(
    lake: Lake,
    settings: Settings,
    person: str,
    weeks: list[str],
    limit: int = 5,
    analysis: Analysis | None = None,
) -> pd.DataFrame:
    """A person's most expensive internal meetings (internal and admin) in ``weeks``,
    by person-hours, with their reason and waste flags."""
    a = analysis or open_analysis(lake, settings)
    a.con.execute(read_sql("meetings.sql"))
    return a.con.execute(
        """SELECT week, start_local, title, minutes, attendee_count, person_hours, reason, flags
           FROM person_meetings
           WHERE person = $person AND list_contains($weeks, week) AND category IN ('internal', 'admin') AND others > 0
           ORDER BY person_hours DESC, start, id LIMIT $limit""",
        {"person": person, "weeks": weeks, "limit": limit},
    ).df()


def event_reasons(
    lake: Lake, settings: Settings, person: str, week: str, analysis: Analysis | None = None
) -> pd.DataFrame:
    """Every event of one person-week with its category and the reason for it."""
    a = analysis or open_analysis(lake, settings)
    a.con.execute(read_sql("meetings.sql"))
    return a.con.execute(
        """SELECT start_local, minutes, title, category, reason
           FROM person_meetings WHERE person = $person AND week = $week ORDER BY start, id""",
        {"person": person, "week": week},
    ).df()


def last_complete_week(weeks: list[str], today: date | None = None) -> str | None:
    """The newest ISO week in ``weeks`` that ended before today."""
    today = today or datetime.now().date()
    limit = week_label(today - timedelta(days=7))
    done = sorted(w for w in weeks if w <= limit)
    return done[-1] if done else (max(weeks) if weeks else None)
