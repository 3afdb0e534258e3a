"""The privacy gate under attack: every table, chart and download of every page, for every
role, on an organisation with a 4-person team (`timeaudit demo --people 24`: Finance has 4
people, every other team 5).

What is checked, for each role over everything it can see: no group label names a team of
fewer than ``min_group_size`` people, and the organisation minus every team shown on its
own leaves nobody or at least the minimum (so neither the org total minus a shown subset
nor any pooled group isolates a small team). Also: summary downloads name colleagues as the
screen does, and record ids (which embed addresses) reach admins only.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field

import openpyxl
import pandas as pd
import pytest
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest
from test_access import APP, AUTH

from timeaudit.privacy import EVERYONE, HIDDEN, RECORD_IDS, visible_groups

MINIMUM = 5
POOL_LABEL = re.compile(r"^Other teams \(\d+\)$")
PAGES = ["views/my_week.py", "views/team.py", "views/wasters.py", "views/customers.py"]
ADMIN_PAGES = ["views/rules.py", "views/data.py"]
PREPARE = {
    "views/my_week.py": "person-summary-prepare",
    "views/team.py": "team-summary-prepare",
    "views/wasters.py": "wasters-summary-prepare",
    "views/customers.py": "customers-summary-prepare",
}
PICKERS = {"views/team.py": "team", "views/wasters.py": "wasters-team", "views/customers.py": "customers-team"}
TEAM_TABS = ["Hours by category", "Customer share by team", "Customer share over time"]
READABLE = (".csv", ".xlsx")  # the other formats hold the same content (timeaudit.outputs.export)


@pytest.fixture(scope="module")
def small_team_demo(tmp_path_factory):
    """The issue's reproduction: 24 people, so Finance has 4."""
    folder = tmp_path_factory.mktemp("demo24")
    subprocess.run(
        [sys.executable, "-m", "timeaudit.cli", "demo", "--data", str(folder), "--people", "24", "--weeks", "10"]
        + ["--end", "2025-12-01"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return folder


def people(folder) -> list[dict]:
    with (folder / "people.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def team_sizes(folder) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for row in people(folder):
        sizes[row["team"]] = sizes.get(row["team"], 0) + 1
    return sizes


def first(folder, role: str, team: str) -> str:
    return next(r["email"] for r in people(folder) if r["role"] == role and r["team"] == team)


@pytest.fixture
def configure(small_team_demo, tmp_path, monkeypatch):
    """Point the dashboard at the demo, with ``extra`` privacy settings."""

    def write(extra: str = "") -> None:
        text = (small_team_demo / "timeaudit.toml").read_text()
        text = text.replace('roster = "people.csv"', f'roster = "{small_team_demo / "people.csv"}"')
        path = tmp_path / "timeaudit.toml"
        path.write_text(text + (f"\n[privacy]\n{extra}\n" if extra else ""))
        monkeypatch.setenv("TIMEAUDIT_CONFIG", str(path))

    monkeypatch.setenv("TIMEAUDIT_DATA", str(small_team_demo))
    st.cache_data.clear()
    st.cache_resource.clear()
    write()
    return write


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """Every CSV and Excel file the pages' download buttons would hand out, by file name."""
    made: dict[str, bytes] = {}
    original = DeltaGenerator.download_button

    def recording(self, label, data, file_name=None, *args, **kwargs):
        if file_name and file_name.endswith(READABLE):
            made[file_name] = data() if callable(data) else data
        return original(self, label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    monkeypatch.setattr(st, "download_button", lambda *a, **k: recording(st._main, *a, **k))
    return made


def signed_in(claims: dict | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, **claims} if claims is not None else {"is_logged_in": False}
    return at.run()


# -- what a role sees ----------------------------------------------------------------------------
@dataclass
class Seen:
    """Every group label a role was shown with figures, and where."""

    own: set[str]  # addresses and names of the people the viewer may see individually
    labels: dict[str, set[str]] = field(default_factory=dict)  # label -> where it was shown

    def add(self, where: str, labels) -> None:
        for label in labels:
            self.labels.setdefault(str(label), set()).add(where)

    def frame(self, where: str, frame: pd.DataFrame) -> None:
        """Team labels in a table; rows of people the viewer may see individually are their own figures."""
        column = next((c for c in ("team", "Team") if c in frame.columns), None)
        if column is None or frame.empty:
            return
        rows = frame
        for who in ("person", "Person", "name", "Name"):
            if who in rows.columns:
                rows = rows[~rows[who].astype(str).str.lower().isin(self.own)]
        self.add(where, rows[column].dropna())

    def chart(self, where: str, spec: dict) -> None:
        for trace in spec.get("data", []):
            name = str(trace.get("name", ""))
            self.add(where, [re.sub(r" (median|90th pct)$", "", name)] if name else [])
            self.add(where, [x for x in trace.get("x", []) if isinstance(x, str)])


def page_contents(at: AppTest, seen: Seen, page: str) -> None:
    for i, frame in enumerate(at.dataframe):
        seen.frame(f"{page} table {i}", frame.value)
    for i, table in enumerate(at.table):
        seen.frame(f"{page} static table {i}", table.value)
    for i, element in enumerate(at.get("plotly_chart")):
        seen.chart(f"{page} chart {i}", json.loads(element.proto.spec))


def download_contents(made: dict[str, bytes], seen: Seen) -> None:
    for name, payload in made.items():
        if name.endswith(".csv"):
            seen.frame(name, pd.read_csv(io.BytesIO(payload)))
        else:
            book = openpyxl.load_workbook(io.BytesIO(payload), read_only=True)
            for sheet in book.worksheets:
                rows = list(sheet.iter_rows(values_only=True))
                if rows:
                    seen.frame(f"{name} {sheet.title}", pd.DataFrame(rows[1:], columns=rows[0]))


def visit_everything(at: AppTest, pages: list[str], seen: Seen, made: dict[str, bytes]) -> None:
    """Every page for every team its picker offers, every chart tab of the Team page, every
    summary download prepared."""
    for page in pages:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        picker = PICKERS.get(page)
        offered = [s.options for s in at.selectbox if s.key == picker]
        for choice in offered[0] if offered else [None]:
            if choice is not None:
                at.selectbox(key=picker).set_value(choice).run()
            visit_page(at, page, f"{page} {choice or ''}".strip(), seen)
    download_contents(made, seen)


def visit_page(at: AppTest, page: str, where: str, seen: Seen) -> None:
    tabs = TEAM_TABS if page == "views/team.py" and at.get("tabs") else [None]
    for tab in tabs:
        if tab:
            at.session_state["team-chart"] = tab
            at.run()
        page_contents(at, seen, f"{where} [{tab}]" if tab else where)
    if page in PREPARE and any(b.key == PREPARE[page] for b in at.button):
        at.button(key=PREPARE[page]).click().run()
        assert not at.exception, (where, at.exception)
        page_contents(at, seen, where)


def assert_no_group_isolates_a_small_team(seen: Seen, sizes: dict[str, int]) -> None:
    org = sum(sizes.values())
    groups = {label: where for label, where in seen.labels.items() if label in sizes or POOL_LABEL.match(label)}
    small = {label: sorted(where) for label, where in groups.items() if label in sizes and sizes[label] < MINIMUM}
    assert not small, f"teams under the minimum shown with figures: {small}"
    shown = [label for label in groups if label in sizes]
    residual = org - sum(sizes[t] for t in shown)
    assert residual == 0 or residual >= MINIMUM, (
        f"the organisation minus the teams shown ({sorted(shown)}) is {residual} people: "
        f"org total minus those teams gives them away"
    )


ROLES = {
    "member of the small team": ("member", "Finance", ""),
    "lead of the small team": ("lead", "Finance", ""),
    "lead of the small team who sees individuals": ("lead", "Finance", "leads_see_individuals = true"),
    "lead of a pooled team who sees individuals": ("lead", "Engineering", "leads_see_individuals = true"),
    "admin": ("admin", "Operations", ""),
    "stranger": ("stranger", "", ""),
    "identity without an email": ("no email", "", ""),
}


def claims_of(folder, kind: str, team: str) -> dict:
    if kind == "stranger":
        return {"email": "stranger@elsewhere.example"}
    if kind == "no email":
        return {"name": "No Email", "sub": "1234"}
    return {"email": first(folder, kind, team)}


def assert_only_a_refusal(at: AppTest) -> None:
    """A page that says why, and no figure of any kind."""
    assert not at.exception
    assert at.error or at.warning or at.info, "a refusal that says why"
    assert not at.dataframe and not at.table and not at.get("plotly_chart") and not at.metric
    assert not at.get("download_button") and not at.selectbox


@pytest.mark.parametrize("role", list(ROLES))
def test_no_table_chart_or_download_isolates_a_small_team(role, small_team_demo, configure, downloads):
    kind, team, extra = ROLES[role]
    configure(extra)
    at = signed_in(claims_of(small_team_demo, kind, team))
    if kind in ("stranger", "no email"):
        assert_only_a_refusal(at)
        return
    email = first(small_team_demo, kind, team)
    roster = people(small_team_demo)
    own = {email}
    if extra and kind == "lead":
        own |= {r["email"] for r in roster if r["team"] == team}
    seen = Seen(own | {r["name"].lower() for r in roster if r["email"] in own})
    assert not at.exception
    visit_everything(at, PAGES + (ADMIN_PAGES if kind == "admin" else []), seen, downloads)
    assert seen.labels, "nothing was looked at"
    assert {n for n in downloads if n.startswith("timeaudit-Northwind")}, "the organisation's summary"
    assert_no_group_isolates_a_small_team(seen, team_sizes(small_team_demo))
    assert any(POOL_LABEL.match(label) for label in seen.labels)  # the small team is counted, in a pool


# -- names and ids -------------------------------------------------------------------------------
def test_summary_downloads_name_colleagues_as_the_screen_does(small_team_demo, configure, downloads):
    member = first(small_team_demo, "member", "Support")
    at = signed_in({"email": member})
    at.switch_page("views/customers.py").run()
    at.button(key="customers-summary-prepare").click().run()
    assert not at.exception
    workbook = next(payload for name, payload in downloads.items() if name.endswith(".xlsx"))
    sheet = openpyxl.load_workbook(io.BytesIO(workbook), read_only=True)["Waiting for an answer"]
    rows = list(sheet.iter_rows(values_only=True))
    held = {row[rows[0].index("Held by")] for row in rows[1:]}
    assert held, "the demo has customer emails waiting"
    assert held <= {member, HIDDEN}, held


@pytest.mark.parametrize("kind", ["member", "admin"])
def test_record_ids_reach_admins_only(kind, small_team_demo, configure):
    at = signed_in({"email": first(small_team_demo, kind, "Operations")})
    at.switch_page("views/customers.py").run()
    picker = at.selectbox(key="customer-emails")
    at = picker.select(picker.options[0]).run()
    assert not at.exception
    replies = next(f.value for f in at.dataframe if "received_at" in f.value.columns)
    ids = set(RECORD_IDS) & set(replies.columns)
    assert ids == (set(RECORD_IDS) if kind == "admin" else set())


# -- the gate itself -----------------------------------------------------------------------------
def test_small_teams_are_pooled_with_the_next_smallest_until_the_pool_is_large_enough(small_team_demo):
    teams = {r["email"]: r["team"] for r in people(small_team_demo)}
    groups = visible_groups(teams, MINIMUM)
    assert groups.pooled == {"Finance": 4, "Engineering": 5}  # 4 alone is too few; Engineering is next by name
    assert groups.sizes == {"Operations": 5, "Sales": 5, "Support": 5, "Other teams (2)": 9}
    assert groups.teams == ["Operations", "Sales", "Support"]
    assert set(groups.of) == set(teams) and groups.complete


@pytest.mark.parametrize(
    "sizes",
    [[4, 5, 5, 5, 5], [1, 1, 1, 20], [3, 3, 9], [2, 9, 6], [4, 4], [5], [30], [1, 2, 3, 4, 5, 6], [6, 6, 6]],
)
def test_every_group_and_every_difference_from_the_total_has_at_least_the_minimum(sizes):
    teams = {f"p{t}-{i}@x": f"T{t}" for t, n in enumerate(sizes) for i in range(n)}
    groups = visible_groups(teams, MINIMUM)
    assert groups.complete
    assert all(n >= MINIMUM for n in groups.sizes.values())
    assert sum(groups.sizes.values()) == sum(sizes)  # the groups add up to the organisation
    shown = [f"T{t}" for t, n in enumerate(sizes) if f"T{t}" in groups.teams]
    assert all(sizes[int(t[1:])] >= MINIMUM for t in shown)
    residual = sum(sizes) - sum(sizes[int(t[1:])] for t in shown)
    assert residual == 0 or residual >= MINIMUM


def test_an_organisation_under_the_minimum_is_one_group_only_its_members_see():
    groups = visible_groups({"a@x": "A", "b@x": "B"}, MINIMUM)
    assert groups.sizes == {EVERYONE: 2} and not groups.complete and groups.teams == []


def test_the_cli_refuses_a_pooled_team_and_the_org_report_counts_the_pool(small_team_demo):
    def timeaudit(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "timeaudit.cli", *args, "--data", str(small_team_demo)]
        return subprocess.run(command, capture_output=True, text=True, timeout=180)

    for command in (["report", "--week", "last"], ["audit"], ["customers"]):
        refused = timeaudit(*command, "--team", "Engineering")  # 5 people, pooled with Finance's 4
        assert refused.returncode == 2 and "Other teams (2)" in refused.stderr, refused.stderr
    org = timeaudit("report", "--week", "last", "--org", "--format", "csv")
    assert org.returncode == 0, org.stderr
    rows = pd.read_csv(io.StringIO(org.stdout))
    assert set(rows["team"]) == {"Operations", "Sales", "Support", "Other teams (2)"}


def test_the_groups_are_the_same_in_every_week(small_team_demo):
    """Stable pooling: the same groups with the same people in every week, so one week's
    group total minus another's never follows one person in or out of a group."""
    from timeaudit.analysis.metrics import team_weekly
    from timeaudit.core.config import load_settings
    from timeaudit.lake.store import Lake
    from timeaudit.outputs.derived import weekly_metrics

    weekly = weekly_metrics(Lake(small_team_demo), load_settings(small_team_demo / "timeaudit.toml"))
    teams = team_weekly(weekly, MINIMUM)
    per_week = {week: dict(zip(rows["team"], rows["people"], strict=True)) for week, rows in teams.groupby("week")}
    assert len(per_week) >= 10
    assert all(groups == per_week[min(per_week)] for groups in per_week.values())
    assert per_week[min(per_week)] == {"Operations": 5, "Sales": 5, "Support": 5, "Other teams (2)": 9}
