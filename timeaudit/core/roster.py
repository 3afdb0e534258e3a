"""The roster: who the people are, their team, role, time zone and working hours."""

from __future__ import annotations

import csv
from pathlib import Path

from timeaudit.core.config import Settings, check_timezone, parse_working_hours
from timeaudit.core.errors import RosterError
from timeaudit.core.model import Person

ROSTER_COLUMNS = ["email", "name", "team", "manager", "role", "timezone", "working_hours", "hourly_cost", "leads"]
ROLES = {"member", "lead", "admin"}


def _person_from_row(row: dict[str, str], where: str) -> Person:
    email = (row.get("email") or "").strip().lower()
    team = (row.get("team") or "").strip()
    if "@" not in email:
        raise RosterError(f"{where}: 'email' is missing or not an address; every row needs one")
    if not team:
        raise RosterError(f"{where}: 'team' is empty for {email}; give every person a team")
    role = (row.get("role") or "member").strip().lower() or "member"
    if role not in ROLES:
        raise RosterError(f"{where}: role '{role}' is unknown; use member, lead or admin")
    tz = (row.get("timezone") or "").strip()
    hours = (row.get("working_hours") or "").strip()
    cost = (row.get("hourly_cost") or "").strip()
    try:
        if tz:
            check_timezone(tz)
        if hours:
            parse_working_hours(hours)
        hourly_cost = float(cost) if cost else None
    except ValueError as e:
        raise RosterError(f"{where}: {e}; fix that cell") from None
    return Person(
        email=email,
        team=team,
        name=(row.get("name") or "").strip(),
        manager=(row.get("manager") or "").strip().lower(),
        role=role,
        timezone=tz,
        working_hours=hours,
        hourly_cost=hourly_cost,
        leads=[t.strip() for t in (row.get("leads") or "").split(";") if t.strip()],
    )


def read_roster(path: Path) -> list[Person]:
    if not path.is_file():
        raise RosterError(f"{path}: roster file not found; fix 'roster' in the config or create the CSV")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"email", "team"} - set(reader.fieldnames or [])
        if missing:
            raise RosterError(
                f"{path}: the header lacks {', '.join(sorted(missing))}; the first row must name the columns"
            )
        people = [_person_from_row(row, f"{path}:{i}") for i, row in enumerate(reader, start=2)]
    seen: set[str] = set()
    for p in people:
        if p.email in seen:
            raise RosterError(f"{path}: {p.email} appears twice; keep one row per person")
        seen.add(p.email)
    return people


def write_roster(path: Path, people: list[Person]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ROSTER_COLUMNS)
        for p in people:
            w.writerow(
                [
                    p.email,
                    p.name,
                    p.team,
                    p.manager,
                    p.role,
                    p.timezone,
                    p.working_hours,
                    "" if p.hourly_cost is None else p.hourly_cost,
                    ";".join(p.leads),
                ]
            )


def load_people(settings: Settings) -> list[Person]:
    """The configured roster, or [] in single-user local mode (no roster set)."""
    path = settings.roster_path()
    return read_roster(path) if path else []
