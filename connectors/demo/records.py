"""The demo organisation's calendar events and email metadata, as model records.

Over 400 lines on purpose: events and messages share one set of per-week random streams and one
title-to-tags hook (``tags``, which tests replace here to see every generated title).

Plain generators, deterministic for a given organisation: each week draws from its own
random stream, so events and messages can be generated apart and in any order.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

from connectors.demo.org import (
    ADMIN_TITLES,
    CUSTOMER_TITLES,
    ORG_DOMAIN,
    STORM_REPLIES,
    STORM_SUBJECT,
    STORM_TEAMS,
    STORM_WEEKS_BEFORE_END,
    DemoOrg,
    Person,
    active_customers,
    cover_sender,
    local_time,
    weeks_of,
)
from timeaudit.core.config import Rules, parse_settings
from timeaudit.core.model import Attendee, Event, Message
from timeaudit.core.roster import write_roster
from timeaudit.core.tags import tags_of, vocabulary

SOURCE = "demo"
PRIMARY_KEY = ("source", "account", "id")
CURSOR_FIELD = "updated"  # the demo is regenerated whole, so its cursor is never used
WORDS = vocabulary(Rules())
_TAGS: dict[str, list[str]] = {}


def tags(title: str) -> list[str]:
    if title not in _TAGS:
        _TAGS[title] = tags_of(title, WORDS)
    return _TAGS[title]


def _rng(org: DemoOrg, kind: str, week: int) -> random.Random:
    return random.Random(f"{org.seed}:{kind}:{week}")


class Meeting:
    """One occurrence, copied into each internal attendee's calendar."""

    def __init__(
        self,
        uid: str,
        title: str,
        start: datetime,
        minutes: int,
        organizer: str,
        people: list[str],
        guests: list[str] = (),
        series: str = "",
        agenda: bool = True,
        kind: str = "default",
    ):
        self.uid, self.title, self.start, self.minutes = uid, title, start, minutes
        self.organizer, self.people, self.guests, self.series = organizer, people, list(guests), series
        self.agenda, self.kind = agenda, kind
        self.responses: dict[str, str] = {}
        self.status = "confirmed"
        self.transparency = "opaque"
        self.all_day = False

    def copies(self) -> Iterator[Event]:
        end = self.start + timedelta(minutes=self.minutes)
        attendees = [Attendee(p, self.responses.get(p, "accepted")) for p in self.people]
        attendees += [Attendee(g, "accepted") for g in self.guests]
        if len(attendees) == 1:
            attendees = []
        for person in self.people:
            yield Event(
                source=SOURCE,
                account=person,
                id=self.uid,
                start=self.start,
                end=end,
                updated=self.start,
                ical_uid=self.series or self.uid,
                series_id=self.series,
                tz="UTC",
                all_day=self.all_day,
                status=self.status,
                self_response=self.responses.get(person, "accepted"),
                transparency=self.transparency,
                event_type=self.kind,
                organizer=self.organizer,
                attendees=attendees,
                has_agenda=self.agenda,
                has_conference=bool(self.guests) or len(self.people) > 2,
                title_tags=tags(self.title),
            )


def _weekday(monday: date, rng: random.Random) -> date:
    return monday + timedelta(days=rng.randrange(5))


def _slot(rng: random.Random) -> float:
    return rng.choice([9, 9.5, 10, 10.5, 11, 11.5, 13, 13.5, 14, 14.5, 15, 15.5, 16])


def _count(rng: random.Random, mean: float) -> int:
    whole = int(mean)
    return whole + (1 if rng.random() < mean - whole else 0)


def _invite_noise(m: Meeting, rng: random.Random, decline: float = 0.05, pending: float = 0.05) -> Meeting:
    for p in m.people:
        if p == m.organizer:
            continue
        r = rng.random()
        if r < decline:
            m.responses[p] = "declined"
        elif r < decline + pending:
            m.responses[p] = rng.choice(["tentative", "needsAction"])
    return m


def _without_agenda(
    key: str, title: str, start: datetime, minutes: int, people: list[str], organizer: str = ""
) -> Meeting:
    """A meeting of a planted series with no agenda (its series named after its title),
    organised by ``organizer``, else by the first of ``people``."""
    series = title.lower().replace(" ", "-")
    return Meeting(key, title, start, minutes, organizer or people[0], people, series=series, agenda=False)


def meetings_of_week(org: DemoOrg, w: int, monday: date) -> Iterator[Meeting]:
    rng = _rng(org, "events", w)
    leads = [p for p in org.people if p.role == "lead"]
    teams = {p.team for p in org.people}
    # Weekly team meeting, Monday 10:00 in the lead's zone.
    for team in sorted(teams):
        members = org.team(team)
        lead = members[0]
        m = Meeting(
            f"team-{team}-{w}",
            f"{team} weekly team meeting",
            local_time(monday, 10, lead.timezone),
            60,
            lead.email,
            [p.email for p in members],
            series=f"team-{team}".lower(),
            agenda=True,
        )
        yield _invite_noise(m, rng)
    # The steering committee: the planted waster. Thursday, 90 minutes, no agenda.
    by_team = [p for team in sorted(teams) for p in org.team(team)[1:3]]
    steering = sorted({p.email for p in leads + by_team})
    if len(steering) >= 2:
        when = local_time(monday + timedelta(days=3), 14, "Europe/London")
        m = _without_agenda(f"steering-{w}", "Steering committee", when, 90, steering, leads[0].email)
        yield _invite_noise(m, rng, decline=0.03, pending=0.1)
    # The policy review board, fortnightly.
    board = [p.email for p in org.people if p.team in ("Operations", "Finance")]
    if w % 2 == 0 and len(board) >= 2:
        when = local_time(monday + timedelta(days=2), 15, "Europe/Berlin")
        yield _invite_noise(_without_agenda(f"policy-board-{w}", "Policy review board", when, 60, board), rng)
    # Support's new working group from half-way: its customer share drops.
    support = [p.email for p in org.team("Support")]
    if w >= org.weeks // 2 and support:
        when = local_time(monday + timedelta(days=1), 11, "Europe/London")
        m = _without_agenda(f"process-wg-{w}", "Process working group", when, 90, support)
        yield _invite_noise(m, rng, pending=0.15)
    # Stand-ups for Support and Engineering.
    for team in ("Support", "Engineering"):
        members = org.team(team)
        if not members:
            continue
        for d in range(5):
            day = monday + timedelta(days=d)
            m = Meeting(
                f"standup-{team}-{w}-{d}",
                f"{team} standup",
                local_time(day, 9.5, members[0].timezone),
                15,
                members[0].email,
                [p.email for p in members],
                series=f"standup-{team}".lower(),
            )
            yield m
    # Fortnightly 1:1s with the manager.
    for p in org.people:
        if p.manager and (w + zlib.crc32(p.email.encode())) % 2 == 0:
            day = monday + timedelta(days=2 + (len(p.email) % 3))
            yield Meeting(
                f"1on1-{p.email}-{w}",
                "1:1",
                local_time(day, 16, p.timezone),
                30,
                p.manager,
                [p.manager, p.email],
                series=f"1on1-{p.email}",
            )
    yield from _personal_meetings(org, w, monday, rng)


def _personal_meetings(org: DemoOrg, w: int, monday: date, rng: random.Random) -> Iterator[Meeting]:
    for p in org.people:
        profile = org.profile(p)
        customers = active_customers(org, p, w)
        for i in range(_count(rng, profile.customer_meetings)):
            name = rng.choice(customers)
            guests = rng.sample(org.contacts[name], k=rng.choice([1, 1, 2]))
            colleague = rng.choice(org.people).email
            people = sorted({p.email, colleague}) if rng.random() < 0.3 else [p.email]
            title = rng.choice(CUSTOMER_TITLES).format(c=name.split()[0])
            minutes = rng.choice([30, 45, 60, 60, 90])
            yield Meeting(
                f"cust-{p.email}-{w}-{i}",
                title,
                local_time(_weekday(monday, rng), _slot(rng), p.timezone),
                minutes,
                p.email,
                people,
                guests=guests,
                agenda=rng.random() < 0.8,
            )
        for i in range(_count(rng, profile.admin_blocks)):
            title = rng.choice(ADMIN_TITLES)
            yield Meeting(
                f"admin-{p.email}-{w}-{i}",
                title,
                local_time(_weekday(monday, rng), _slot(rng), p.timezone),
                rng.choice([60, 60, 90, 120]),
                p.email,
                [p.email],
                agenda=False,
            )
        for i in range(_count(rng, profile.focus_blocks)):
            yield Meeting(
                f"focus-{p.email}-{w}-{i}",
                "Focus time",
                local_time(_weekday(monday, rng), rng.choice([9, 13.5]), p.timezone),
                120,
                p.email,
                [p.email],
                kind="focusTime",
            )
        if rng.random() < 0.6:  # lunch shown as free
            m = Meeting(
                f"lunch-{p.email}-{w}",
                "Lunch",
                local_time(_weekday(monday, rng), 12, p.timezone),
                60,
                p.email,
                [p.email],
            )
            m.transparency = "transparent"
            yield m
        if rng.random() < 0.08:  # a day out of office
            day = _weekday(monday, rng)
            m = Meeting(
                f"ooo-{p.email}-{w}",
                "Out of office",
                local_time(day, 0, p.timezone),
                24 * 60,
                p.email,
                [p.email],
                kind="outOfOffice",
            )
            m.all_day = True
            yield m
        if rng.random() < 0.05:  # an all-day event
            m = Meeting(
                f"allday-{p.email}-{w}",
                "Company offsite",
                local_time(_weekday(monday, rng), 0, p.timezone),
                24 * 60,
                p.email,
                sorted({p.email, org.people[0].email}),
            )
            m.all_day = True
            yield m
        if rng.random() < 0.15:  # an internal meeting that was cancelled
            other = rng.choice(org.people).email
            m = Meeting(
                f"cancel-{p.email}-{w}",
                "Project sync",
                local_time(_weekday(monday, rng), _slot(rng), p.timezone),
                60,
                p.email,
                sorted({p.email, other}),
            )
            m.status = "cancelled"
            yield m
        if rng.random() < 0.5:  # an ad-hoc internal review
            others = rng.sample(org.people, k=min(len(org.people), rng.choice([2, 3, 5])))
            people = sorted({p.email, *(o.email for o in others)})
            m = Meeting(
                f"review-{p.email}-{w}",
                rng.choice(["Project review", "Roadmap planning", "Incident review"]),
                local_time(_weekday(monday, rng), _slot(rng), p.timezone),
                rng.choice([30, 60]),
                p.email,
                people,
                agenda=rng.random() < 0.5,
            )
            yield _invite_noise(m, rng)


def iter_events(org: DemoOrg) -> Iterator[Event]:
    """Every calendar event of every person, week by week."""
    for w, monday in weeks_of(org):
        for meeting in meetings_of_week(org, w, monday):
            yield from meeting.copies()


# -- email ------------------------------------------------------------------------------------
def _message(
    account: str,
    mid: str,
    ts: datetime,
    sender: str,
    to: list[str],
    cc: list[str],
    thread: str,
    subject: str,
    *,
    sent: bool = False,
    bulk: bool = False,
    auto: bool = False,
    unread: bool = False,
    reply_to: str = "",
    labels: list[str] | None = None,
) -> Message:
    self_in = "from" if sent else ("to" if account in to else "cc" if account in cc else "bcc")
    base = ["SENT"] if sent else ["INBOX"]
    if unread:
        base.append("UNREAD")
    return Message(
        source=SOURCE,
        account=account,
        id=f"{mid}:{account.split('@')[0]}",
        ts=ts,
        updated=ts,
        thread_id=thread,
        direction="sent" if sent else "received",
        sender=sender,
        to=to,
        cc=cc,
        self_in=self_in,
        labels=base + (labels or []),
        unread=unread,
        bulk=bulk,
        auto=auto,
        message_id=f"{mid}@demo",  # stored without <>, as the mail connectors do
        in_reply_to=f"{reply_to}@demo" if reply_to else "",
        subject_tags=tags(subject),
    )


def _internal_thread(org: DemoOrg, p: Person, w: int, i: int, monday: date, rng: random.Random) -> Iterator[Message]:
    others = [o.email for o in org.people if o.email != p.email]
    to = rng.sample(others, k=min(len(others), rng.choice([1, 1, 2, 3])))
    cc_pool = [o for o in others if o not in to]
    cc = rng.sample(cc_pool, k=min(len(cc_pool), rng.choice([0, 0, 2, 4, 6])))
    ts = local_time(_weekday(monday, rng), rng.uniform(8.5, 18.5), p.timezone)
    subject = rng.choice(
        [
            "Project update",
            "Re: roadmap",
            "Budget question",
            "Status update",
            "FYI: policy",
            "Team planning",
            "Report draft",
        ]
    )
    mid = f"int-{w}-{p.email.split('@')[0]}-{i}"
    unread = {r: rng.random() < 0.15 for r in to + cc}  # drawn before the habit below, so no other draw moves
    if p == cover_sender(org):
        to, cc = _copying_the_manager(org, p, to, cc)
    yield _message(p.email, mid, ts, p.email, to, cc, mid, subject, sent=True)
    for r in to + cc:
        yield _message(r, mid, ts, p.email, to, cc, mid, subject, unread=unread.get(r, False))


def _copying_the_manager(org: DemoOrg, p: Person, to: list[str], cc: list[str]) -> tuple[list[str], list[str]]:
    """The planted cover-yourself habit: the manager moves to (or joins) Cc, never on To."""
    teammates = [o.email for o in org.team(p.team) if o.email not in (p.email, p.manager)]
    to = [a for a in to if a != p.manager] or teammates[:1]
    if not to:  # nobody else to address in a tiny demo team: the mail stays as it was
        return [p.manager], cc
    return to, [a for a in cc if a not in (p.manager, *to)] + [p.manager]


def _reply_all_storm(org: DemoOrg, w: int, monday: date) -> Iterator[Message]:
    """The planted reply-all storm: one email to two teams, and replies that all go to everyone."""
    rng = _rng(org, "storm", w)
    people = [p for p in org.people if p.team in STORM_TEAMS]
    starter = next((p for p in people if p.role == "lead"), None)
    if starter is None:  # a demo too small to have these teams
        return
    everyone = [p.email for p in people]
    ts = local_time(monday + timedelta(days=1), 10, starter.timezone)
    mid = f"storm-{w}"
    previous = starter.email
    others = [e for e in everyone if e != starter.email]
    senders = [starter.email] + rng.sample(others, min(STORM_REPLIES, len(others)))  # a small demo: fewer
    for n, sender in enumerate(senders):
        rid = mid if n == 0 else f"{mid}-re{n}"
        to = [previous] if n else [e for e in everyone if e != sender]
        cc = [] if n == 0 else [e for e in everyone if e not in (sender, previous)]
        subject = STORM_SUBJECT if n == 0 else "Re: " + STORM_SUBJECT
        reply_to = "" if n == 0 else (mid if n == 1 else f"{mid}-re{n - 1}")
        yield _message(sender, rid, ts, sender, to, cc, mid, subject, sent=True, reply_to=reply_to)
        for r in to + cc:
            yield _message(r, rid, ts, sender, to, cc, mid, subject, unread=rng.random() < 0.15, reply_to=reply_to)
        previous, ts = sender, ts + timedelta(minutes=rng.randint(20, 150))


def _customer_thread(org: DemoOrg, p: Person, w: int, i: int, monday: date, rng: random.Random) -> Iterator[Message]:
    name = rng.choice(active_customers(org, p, w))
    sender = rng.choice(org.contacts[name])
    ts = local_time(_weekday(monday, rng), rng.uniform(7, 19), p.timezone)
    mid = f"cust-{w}-{p.email.split('@')[0]}-{i}"
    subject = rng.choice(["Question about invoice", "Delivery delay", "Renewal", "Support request", "Escalation"])
    cc = [rng.choice([o.email for o in org.team(p.team)])] if rng.random() < 0.3 else []
    cc = [c for c in cc if c != p.email]
    yield from (_message(a, mid, ts, sender, [p.email], cc, mid, subject) for a in [p.email, *cc])
    roll = rng.random()
    if roll < 0.12 and w >= org.weeks - 2:  # recent ones still waiting for an answer
        return
    delay = rng.uniform(0.3, 6) if roll < 0.7 else rng.uniform(20, 80)
    reply_ts = ts + timedelta(hours=delay)
    if reply_ts >= local_time(org.end, 0, "UTC"):
        return
    rid = f"{mid}-re"
    yield _message(p.email, rid, reply_ts, p.email, [sender], cc, mid, "Re: " + subject, sent=True, reply_to=mid)
    yield from (_message(c, rid, reply_ts, p.email, [sender], cc, mid, "Re: " + subject, reply_to=mid) for c in cc)


def _bulk(p: Person, w: int, monday: date, rng: random.Random) -> Iterator[Message]:
    for i in range(rng.randint(15, 35)):
        ts = local_time(_weekday(monday, rng), rng.uniform(0, 23.9), p.timezone)
        sender = rng.choice(["news@industryweekly.com", "no-reply@saasvendor.com", "notifications@tracker.io"])
        label = "CATEGORY_PROMOTIONS" if "news" in sender else "CATEGORY_UPDATES"
        mid = f"bulk-{w}-{p.email.split('@')[0]}-{i}"
        yield _message(
            p.email,
            mid,
            ts,
            sender,
            [p.email],
            [],
            mid,
            "Newsletter",
            bulk=True,
            unread=rng.random() < 0.4,
            labels=[label],
        )
    for i in range(rng.randint(0, 3)):  # meeting responses and out-of-office replies
        ts = local_time(_weekday(monday, rng), rng.uniform(9, 17), p.timezone)
        mid = f"auto-{w}-{p.email.split('@')[0]}-{i}"
        yield _message(
            p.email, mid, ts, f"colleague{i}@{ORG_DOMAIN}", [p.email], [], mid, "Accepted: invitation", auto=True
        )


def iter_messages(org: DemoOrg) -> Iterator[Message]:
    """Every mailbox's message metadata, week by week (the sender's and each recipient's copy)."""
    for w, monday in weeks_of(org):
        rng = _rng(org, "messages", w)
        for p in org.people:
            profile = org.profile(p)
            for i in range(_count(rng, profile.internal_sends)):
                yield from _internal_thread(org, p, w, i, monday, rng)
            for i in range(_count(rng, profile.customer_emails)):
                yield from _customer_thread(org, p, w, i, monday, rng)
            yield from _bulk(p, w, monday, rng)
        if w == org.weeks - STORM_WEEKS_BEFORE_END:
            yield from _reply_all_storm(org, w, monday)


def write_org_files(org: DemoOrg, folder: Path) -> Path:
    """Write the organisation's settings and roster beside its lake; returns the settings file."""
    parse_settings(org.settings)
    folder.mkdir(parents=True, exist_ok=True)
    write_roster(folder / "people.csv", org.people)
    lines = [
        "# Written by `timeaudit demo`: the demo organisation's settings. Regenerated on every run.",
        f'roster = "{org.settings["roster"]}"',
        "",
        "[organisation]",
    ]
    for key, value in org.settings["organisation"].items():
        lines.append(f"{key} = {_toml(value)}")
    for c in org.settings["customers"]:
        lines += ["", "[[customers]]"] + [f"{k} = {_toml(v)}" for k, v in c.items()]
    path = folder / "timeaudit.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
