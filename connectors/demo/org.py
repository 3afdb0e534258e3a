"""A deterministic synthetic organisation: the demo, the tests' realistic data, the benchmarks.

Northwind Demo sells logistics software to 12 customer companies. Five teams tell five
stories, so the charts have something to say:

- **Support** (London, Singapore) spends most of its week with customers, until a new weekly
  "process working group" starts half-way through the period and eats into it.
- **Sales** (New York) meets customers often and writes a lot of customer email.
- **Operations** (Berlin) is buried in admin: budgets, timesheets, policy reviews, reports,
  and sits on the policy review board.
- **Engineering** (London) holds stand-ups and focus blocks and rarely sees a customer.
- **Finance** (New York) lives in budgets, forms and the board.

What is planted (docs/demo.md lists it with the numbers):

- the **steering committee**: weekly, 90 minutes, every team lead plus others, no agenda,
  the biggest internal waster by person-hours;
- the **policy review board**: fortnightly, 60 minutes, Operations and Finance;
- weekly team meetings, daily stand-ups (Support, Engineering), fortnightly 1:1s;
- admin blocks, focus-time blocks, lunch shown as free, declined, cancelled, tentative and
  unanswered invitations, all-day events, out-of-office days and double bookings;
- cc-heavy internal threads, newsletters and notifications, automatic replies;
- customer emails answered after varied delays, and some never answered;
- two **neglected customers** (Harbor Foods, Orion Mining): no contact in the last six weeks;
- a **cover-yourself habit**: one Support member (``cover_sender``) copies their manager on
  every internal email they send, without addressing them;
- a **reply-all storm**: two weeks before the end, the Operations lead's "team offsite
  planning" email to Operations and Engineering draws ``STORM_REPLIES`` replies to everyone.
- a **chat-heavy Support team** (Slack): busy team channels answered by reflex, focus
  interrupted, and Slack Connect channels with customers, some messages left waiting.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from timeaudit.core.model import Customer, Person

ORG_DOMAIN = "northwind-demo.com"
ORG_NAME = "Northwind Demo"

# name, domains, tier
CUSTOMERS = [
    ("Acme Logistics", ["acmelogistics.com"], "gold"),
    ("Bluewater Shipping", ["bluewatershipping.com"], "gold"),
    ("Cedar Retail", ["cedarretail.com", "cedar-retail.co.uk"], "gold"),
    ("Harbor Foods", ["harborfoods.com"], "gold"),
    ("Delta Pharma", ["deltapharma.com"], "silver"),
    ("Evergreen Energy", ["evergreenenergy.com"], "silver"),
    ("Falcon Motors", ["falconmotors.com"], "silver"),
    ("Orion Mining", ["orionmining.com"], "silver"),
    ("Granite Insurance", ["graniteinsurance.com"], "bronze"),
    ("Helix Labs", ["helixlabs.io"], "bronze"),
    ("Ion Telecom", ["iontelecom.net"], "bronze"),
    ("Juniper Travel", ["junipertravel.com"], "bronze"),
]
NEGLECTED = ("Harbor Foods", "Orion Mining")
NEGLECT_WEEKS = 6
STORM_SUBJECT = "Team offsite planning"
STORM_TEAMS = ("Operations", "Engineering")
STORM_REPLIES = 7
STORM_WEEKS_BEFORE_END = 2


@dataclass(frozen=True)
class TeamProfile:
    name: str
    share: float  # of the organisation's people
    timezones: tuple[str, ...]
    customer_meetings: float  # per person per week
    admin_blocks: float
    focus_blocks: float
    customer_emails: float  # received from customers per person per week
    internal_sends: float  # internal emails sent per person per week
    hourly_cost: float
    standup: bool = False
    chat_threads: float = 0.5  # internal chat threads started per person per working day
    reflex_share: float = 0.3  # of chat replies sent within a few minutes
    customer_chats: float = 0.0  # customer messages in Slack Connect channels per person per week


TEAMS = [
    TeamProfile(
        "Support",
        0.25,
        ("Europe/London", "Asia/Singapore"),
        7,
        1,
        0.5,
        12,
        10,
        55,
        standup=True,
        chat_threads=2.5,
        reflex_share=0.8,
        customer_chats=10,
    ),
    TeamProfile("Sales", 0.20, ("America/New_York",), 6, 1, 0.5, 9, 12, 80, chat_threads=1, customer_chats=4),
    TeamProfile("Operations", 0.20, ("Europe/Berlin",), 0.7, 8, 0.5, 1, 14, 60),
    TeamProfile("Engineering", 0.20, ("Europe/London",), 0.5, 1, 3, 0.5, 8, 85, standup=True),
    TeamProfile("Finance", 0.15, ("America/New_York",), 0.2, 6, 1, 0.3, 12, 70),
]
FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Mei",
    "Nils",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wen",
    "Xavi",
    "Yara",
    "Zane",
]
LAST_NAMES = ["Adams", "Berg", "Chen", "Diaz", "Evans", "Fischer", "Gupta", "Hale", "Ito", "Jones", "Khan", "Lopez"]
ADMIN_TITLES = [
    "Budget forecast",
    "Timesheets",
    "Policy review prep",
    "Monthly report",
    "Expense forms",
    "Compliance checklist",
    "CRM records clean-up",
    "Procurement approval",
    "KPI reporting",
]
CUSTOMER_TITLES = ["{c} weekly call", "{c} QBR", "{c} escalation", "{c} onboarding", "{c} site visit", "{c} renewal"]


@dataclass
class DemoOrg:
    """Everything the generator decided; the same arguments give the same organisation."""

    people: list[Person]
    customers: list[Customer]
    settings: dict
    start: date  # Monday of the first week
    weeks: int
    seed: int
    contacts: dict[str, list[str]] = field(default_factory=dict)  # customer -> its people's addresses
    accounts: dict[str, list[str]] = field(default_factory=dict)  # person -> customers they look after

    @property
    def end(self) -> date:
        return self.start + timedelta(weeks=self.weeks)

    def team(self, name: str) -> list[Person]:
        return [p for p in self.people if p.team == name]

    def profile(self, person: Person) -> TeamProfile:
        return next(t for t in TEAMS if t.name == person.team)


def _team_sizes(total: int) -> list[int]:
    sizes = [max(2, round(total * t.share)) for t in TEAMS]
    sizes[0] += total - sum(sizes)
    return sizes


def build_people(total: int, rng: random.Random) -> list[Person]:
    people: list[Person] = []
    used: set[str] = set()
    for profile, size in zip(TEAMS, _team_sizes(total), strict=True):
        lead = ""
        for i in range(size):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}".lower() + f"@{ORG_DOMAIN}"
            n = 2
            while email in used:
                email = f"{first}.{last}{n}".lower() + f"@{ORG_DOMAIN}"
                n += 1
            used.add(email)
            hours = rng.choice(["", "", "", "08:00-16:00", "10:00-18:00"])
            person = Person(
                email=email,
                team=profile.name,
                name=f"{first} {last}",
                manager=lead,
                role="lead" if i == 0 else "member",
                timezone=profile.timezones[i % len(profile.timezones)],
                working_hours=hours,
                hourly_cost=profile.hourly_cost,
            )
            lead = lead or email
            people.append(person)
    next(p for p in people if p.team == "Operations").role = "admin"
    return people


def build_org(*, people: int = 40, weeks: int = 26, seed: int = 7, end: date | None = None) -> DemoOrg:
    """The organisation for ``people`` people over the ``weeks`` complete weeks before
    ``end`` (a Monday; default: this week's Monday)."""
    rng = random.Random(seed)
    today = end or datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    staff = build_people(people, rng)
    facing = [p for p in staff if p.team in ("Support", "Sales")]
    customers, contacts, accounts = [], {}, {p.email: [] for p in staff}
    for i, (name, domains, tier) in enumerate(CUSTOMERS):
        owner = facing[i % len(facing)]
        customers.append(Customer(name=name, domains=domains, tier=tier, owner=owner.email))
        first = name.split()[0].lower()
        contacts[name] = [f"{n}@{domains[0]}" for n in (first + ".buyer", "ops", "it.lead")]
    for i, p in enumerate(facing):
        accounts[p.email] = [CUSTOMERS[(i + k) % len(CUSTOMERS)][0] for k in range(4)]
    for p in staff:
        if not accounts[p.email]:
            accounts[p.email] = [CUSTOMERS[rng.randrange(len(CUSTOMERS))][0]]
    settings = {
        "roster": "people.csv",
        "organisation": {
            "name": ORG_NAME,
            "domains": [ORG_DOMAIN],
            "timezone": "Europe/London",
            "working_hours": "09:00-17:00",
            "working_days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
        },
        "customers": [{"name": c.name, "domains": c.domains, "tier": c.tier, "owner": c.owner} for c in customers],
    }
    return DemoOrg(staff, customers, settings, monday - timedelta(weeks=weeks), weeks, seed, contacts, accounts)


def local_time(day: date, hour: float, tz: str) -> datetime:
    """A local wall-clock time on ``day`` as an aware UTC datetime."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return (midnight + timedelta(minutes=round(hour * 60))).astimezone(UTC)


def weeks_of(org: DemoOrg) -> Iterator[tuple[int, date]]:
    for w in range(org.weeks):
        yield w, org.start + timedelta(weeks=w)


def active_customers(org: DemoOrg, person: Person, week: int) -> list[str]:
    """The customers a person deals with in a week: the neglected ones go quiet at the end."""
    names = org.accounts[person.email]
    if week >= org.weeks - NEGLECT_WEEKS - 1:  # a week early: late replies stay outside the window
        names = [n for n in names if n not in NEGLECTED] or [CUSTOMERS[0][0]]
    return names


def cover_sender(org: DemoOrg) -> Person | None:
    """The Support member who copies their manager on every internal email (the first after the
    lead); none in a demo too small to have one."""
    return next((p for p in org.team("Support") if p.manager), None)
