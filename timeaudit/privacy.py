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
any role. The dashboard builds one ``Access`` per run from the signed-in address (never
from widget state or the URL) and ``dashboard.data`` applies it to every query.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Person

LOCAL = "local"
VIEWER_ENV = "TIMEAUDIT_VIEWER"  # `timeaudit dashboard --as EMAIL`: see the dashboard as that person, without sign-in
HIDDEN = "a colleague"


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
        """Groups of at least the minimum size; smaller ones only when the viewer may see each
        member anyway (a one-person local install, a lead allowed to see their team)."""
        if self.group_size(team) >= self.min_group_size:
            return True
        individuals = self.individuals
        members = self.teams if team is None else {p for p, t in self.teams.items() if t == team}
        return individuals is None or set(members) <= individuals

    # -- enforcement ------------------------------------------------------------------------
    def require_person(self, person: str) -> None:
        if not self.may_see_person(person):
            raise AccessDenied(f"{self.email} may not see {person}'s own figures; only their own")

    def require_group(self, team: str | None) -> None:
        if not self.may_see_group(team):
            group = f"team {team}" if team else "the organisation"
            raise AccessDenied(
                f"{group} has {self.group_size(team)} people, fewer than {self.min_group_size}; "
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

    def describe(self) -> str:
        if self.local:
            return "Local mode: no sign-in, so this install shows everything in its data folder."
        led = f" of {', '.join(sorted(self.teams_led))}" if self.role == "lead" else ""
        return f"Signed in as {self.email} ({self.role}{led})."


def local_access(settings: Settings, teams: dict[str, str]) -> Access:
    return Access("", LOCAL, teams, min_group_size=settings.privacy.min_group_size)


def access_for(email: str, settings: Settings, people: list[Person], teams: dict[str, str]) -> Access:
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
