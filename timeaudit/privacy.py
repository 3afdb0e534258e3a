"""Who may see what. Every figure the dashboard shows or exports passes through an ``Access``.

Roles come from the roster's ``role`` column:

- a **member** sees their own figures in full, and aggregates of teams and of the
  organisation;
- a **lead** sees the same plus, only with ``privacy.leads_see_individuals = true``, the
  per-person figures of the teams they lead (their own team and the roster's ``leads``);
- an **admin** sees what a member sees, and the configuration and data status pages;
- **local** is the operator of a laptop install without sign-in: whoever can read the data
  folder sees everything in it anyway, so nothing is hidden from them but small groups.

No group figure is shown or exported for fewer than ``privacy.min_group_size`` people, for
any role, and no sum or difference of shown figures isolates fewer: ``visible_groups`` is
the one gate that decides which groups figures are shown for (teams under the minimum are
pooled, with the next smallest team where the pool is still too small), and ``gate`` puts
every team-grouped frame through it. The dashboard builds one ``Access`` per run from the
signed-in address (never from widget state or the URL) and ``dashboard.data`` applies it to
every query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Person

LOCAL = "local"
VIEWER_ENV = "TIMEAUDIT_VIEWER"  # `timeaudit dashboard --as EMAIL`: see the dashboard as that person, without sign-in
HIDDEN = "a colleague"
POOL = "Other teams ({count})"
EVERYONE = "Everyone"
RECORD_IDS = ("id", "message_id", "thread_id")  # they embed a holder's address or a mailbox's name


class AccessDenied(UserError):
    """The viewer asked for figures their role does not show."""


class NotOnRoster(AccessDenied):
    """A signed-in address that the roster does not list."""


@dataclass(frozen=True)
class Access:
    email: str  # the viewer; "" in local mode
    role: str  # member | lead | admin | local
    teams: dict[str, str] = field(default_factory=dict)  # every person's team
    teams_led: frozenset[str] = frozenset()
    min_group_size: int = 5
    leads_see_individuals: bool = False

    # -- what the viewer may see ----------------------------------------------------------
    @property
    def local(self) -> bool:
        return self.role == LOCAL

    @property
    def may_configure(self) -> bool:
        """The rules and data pages: admins, and the operator of a local install."""
        return self.role in (LOCAL, "admin")

    @property
    def individuals(self) -> frozenset[str] | None:
        """The people whose own figures the viewer may see; None means everyone."""
        if self.local:
            return None
        seen = {self.email}
        if self.role == "lead" and self.leads_see_individuals:
            seen |= {p for p, team in self.teams.items() if team in self.teams_led}
        return frozenset(seen)

    def may_see_person(self, person: str) -> bool:
        individuals = self.individuals
        return individuals is None or person.lower() in individuals

    def group_size(self, team: str | None) -> int:
        return len(self.teams) if team is None else sum(1 for t in self.teams.values() if t == team)

    def may_see_group(self, team: str | None) -> bool:
        """The organisation when it has at least the minimum, and the teams the gate shows on
        their own (``visible_groups``); anything to a viewer who may see everyone anyway. A
        viewer who may see a pooled team's members is still not shown the team: the pool
        minus that team would give the others away."""
        if self.individuals is None:
            return True
        groups = self.groups()
        return groups.complete if team is None else team in groups.teams

    # -- enforcement ------------------------------------------------------------------------
    def require_person(self, person: str) -> None:
        if not self.may_see_person(person):
            raise AccessDenied(f"{self.email} may not see {person}'s own figures; only their own")

    def require_group(self, team: str | None) -> None:
        if self.may_see_group(team):
            return
        size, minimum = self.group_size(team), self.min_group_size
        if team and size >= minimum:
            raise AccessDenied(
                f"team {team} is counted only in {self.groups().pool}: a smaller team is pooled with it, "
                "and the pool minus this team would show the smaller team's hours"
            )
        group = f"team {team}" if team else "the organisation"
        raise AccessDenied(
            f"{group} has {size} people, fewer than {minimum}; "
            "group figures are shown only for larger groups, so nobody's own hours can be read from them"
        )

    def people_rows(self, frame: pd.DataFrame, column: str = "person") -> pd.DataFrame:
        """Only the rows of people the viewer may see individually."""
        individuals = self.individuals
        if individuals is None or column not in frame.columns:
            return frame
        return frame[frame[column].str.lower().isin(individuals)]

    def masked(self, frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
        """The frame with people the viewer may not see individually replaced by "a colleague"."""
        individuals = self.individuals
        present = [c for c in columns if c in frame.columns]
        if individuals is None or not present or frame.empty:
            return frame
        frame = frame.copy()
        for column in present:
            values = frame[column].astype("string")
            frame[column] = values.where(values.str.lower().isin(individuals) | values.isna(), HIDDEN)
        return frame

    @property
    def sees_record_ids(self) -> bool:
        """Record ids (which embed holders' addresses and mailbox names): admins and local mode."""
        return self.may_configure

    def without_record_ids(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.sees_record_ids:
            return frame
        return frame.drop(columns=[c for c in RECORD_IDS if c in frame.columns])

    def groups(self) -> Groups:
        """The groups figures are shown for, the same for every viewer (see ``visible_groups``)."""
        return visible_groups(self.teams, self.min_group_size)

    def describe(self) -> str:
        if self.local:
            return "Local mode: no sign-in, so this install shows everything in its data folder."
        led = f" of {', '.join(sorted(self.teams_led))}" if self.role == "lead" else ""
        return f"Signed in as {self.email} ({self.role}{led})."


def local_access(settings: Settings, teams: dict[str, str]) -> Access:
    return Access("", LOCAL, teams, min_group_size=settings.privacy.min_group_size)


def access_for(email: str, settings: Settings, people: Sequence[Person], teams: dict[str, str]) -> Access:
    """The access of a signed-in address, looked up in the roster."""
    address = email.strip().lower()
    person = next((p for p in people if p.email == address), None)
    if person is None:
        raise NotOnRoster(
            f"{address or 'this account'} is not on the roster of this timeaudit; ask its administrator "
            "to add you (or sign in with your work address)"
        )
    led = frozenset([person.team, *person.leads]) if person.role == "lead" else frozenset()
    return Access(
        address,
        person.role,
        teams,
        led,
        settings.privacy.min_group_size,
        settings.privacy.leads_see_individuals,
    )


# -- the gate: which groups figures are shown for ----------------------------------------------
@dataclass(frozen=True)
class Groups:
    """A partition of the people into the groups figures may be shown for.

    Every group has at least ``min_group_size`` people, and the groups cover everyone, so the
    organisation's total minus any shown groups is a sum of other shown groups: no sum or
    difference of figures isolates fewer than the minimum. The one exception is an
    organisation smaller than the minimum: its single group, ``Everyone``, is below it
    (``complete`` is False), and only a viewer who may see every member may see it.
    """

    of: dict[str, str]  # person -> the group they are counted in
    sizes: dict[str, int]  # group -> people
    pooled: dict[str, int] = field(default_factory=dict)  # team -> people, for teams not shown on their own
    pool: str = ""  # the pool's label, "" without one
    min_group_size: int = 5

    @property
    def complete(self) -> bool:
        return all(n >= self.min_group_size for n in self.sizes.values())

    @property
    def teams(self) -> list[str]:
        """The teams shown on their own: what team pickers offer and ``--team`` accepts."""
        return sorted(g for g in self.sizes if g not in (self.pool, EVERYONE))


def _team_sizes(teams: Mapping[str, str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for team in teams.values():
        sizes[team] = sizes.get(team, 0) + 1
    return sizes


def visible_groups(teams: Mapping[str, str], min_group_size: int) -> Groups:
    """Complementary suppression over the teams (person -> team, from the roster): teams under
    the minimum are pooled into one "Other teams (n)" group, and while that pool is still
    under the minimum the next smallest team joins it. Teams are sized by the roster, not
    week by week, so the groups stay the same across weeks (a changing pool could itself be
    differenced)."""
    sizes = _team_sizes(teams)
    everyone = {p: EVERYONE for p in teams}
    if sum(sizes.values()) < min_group_size:  # no team is shown on its own
        return Groups(everyone, {EVERYONE: len(teams)} if teams else {}, sizes, EVERYONE, min_group_size)
    by_size = sorted(sizes, key=lambda t: (sizes[t], t))
    pooled = [t for t in by_size if sizes[t] < min_group_size]
    rest = [t for t in by_size if sizes[t] >= min_group_size]
    while pooled and rest and sum(sizes[t] for t in pooled) < min_group_size:
        pooled.append(rest.pop(0))
    pooled_sizes = {t: sizes[t] for t in pooled}
    if not rest and pooled:  # everyone is in the pool: the pool is the organisation
        return Groups(everyone, {EVERYONE: len(teams)}, pooled_sizes, EVERYONE, min_group_size)
    pool = POOL.format(count=len(pooled)) if pooled else ""
    label = {t: (pool if t in pooled_sizes else t) for t in sizes}
    shown: dict[str, int] = {}
    for team, n in sizes.items():
        shown[label[team]] = shown.get(label[team], 0) + n
    return Groups({p: label[t] for p, t in teams.items()}, shown, pooled_sizes, pool, min_group_size)


def gate(frame: pd.DataFrame, groups: Groups, person: str = "person", team: str = "team") -> pd.DataFrame:
    """The per-person rows of ``frame`` with ``team`` set to the group each person is counted
    in: what every team-grouped figure is summed from. People outside the groups (not among
    the people the groups were made from) are left out."""
    shown = frame[person].map(groups.of) if len(frame) else pd.Series(index=frame.index, dtype="object")
    return frame.assign(**{team: shown})[shown.notna()]
