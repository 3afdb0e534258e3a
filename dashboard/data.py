"""Every query the dashboard makes, cached until the lake changes, and filtered by ``access()``.

Pages get data only from here. Each public function checks the viewer's ``Access``
(timeaudit.privacy): per-person figures only of people the viewer may see, group figures only
for groups of at least ``privacy.min_group_size``. The viewer comes from the sign-in
(``st.user``), never from widgets or the URL.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pandas as pd
import plotly.io as pio
import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from timeaudit.analysis.metrics import Analysis, event_reasons, last_complete_week, team_weekly, top_meetings
from timeaudit.analysis.page_audit import DEFAULT_WEEKS, default_weeks, page_audit
from timeaudit.analysis.page_audit import audit_weeks as page_audit_weeks
from timeaudit.core.config import CONFIG_ENV, Settings, find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Person
from timeaudit.core.roster import load_people
from timeaudit.core.sign_in import require_roster, verified_address
from timeaudit.lake.store import Lake, default_data_dir
from timeaudit.outputs.derived import (
    on_stored_classification,
    stored_cover_mail,
    stored_page_audit,
    stored_table,
    weekly_metrics,
)
from timeaudit.outputs.figures import weekly_split_figure  # noqa: F401 - sets plotly's template
from timeaudit.privacy import VIEWER_ENV, Access, access_for, gate, local_access

_log = logging.getLogger(__name__)

MASKED = {
    "fragmentation": ["person"],
    "occurrences": ["person"],
    "replies": ["person", "replier"],
    "waiting": ["held_by"],
    "cover": ["manager"],
}
SUMMARY_MASKED = ["Held by"]
T = TypeVar("T")


def workspace() -> tuple[Lake, Settings]:
    """The lake and the settings, both shared by every page run and session: read only.

    A page run asks for them a dozen times; opening the lake's tables anew each time (their
    logs read again) and parsing the settings file again cost a fifth of a second per run."""
    data_dir = default_data_dir()
    config = find_config(os.environ.get(CONFIG_ENV) or None, data_dir)
    return _lake(data_dir), _settings(config, _file_stamp(config))


@functools.cache
def _lake(data_dir: Path) -> Lake:
    return Lake(data_dir)  # keeps each thread's open tables, brought up to date on every use


@functools.lru_cache(maxsize=8)
def _settings(config: Path | None, stamp: tuple | None) -> Settings:
    return load_settings(config)


def _file_stamp(path: Path | None) -> tuple | None:
    """What changes when the file is edited or replaced; None when there is no such file."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _on_analysis(work: Callable[[Analysis], T]) -> T:
    """``work(analysis)`` under the analysis's lock, on the lake's current version classified
    once for every page, session and warm-up (``timeaudit.analysis.session``): read as
    `timeaudit metrics` stored it while that is current (0.4 s to open at 1,000 people, against
    6 s to classify on both cores, which slowed the browser drawing the page's first chart),
    else classified. ``work`` may nest ``audit.scoped`` (the lock is re-entrant) but must not
    call a cached function of this module: it would wait for whoever is computing that entry,
    who may be waiting for the lock. Figures from it are everyone's: mask them per viewer."""
    lake, s = workspace()

    def locked(a: Analysis) -> T:
        with a.lock:
            return work(a)

    return on_stored_classification(lake, s, None, locked)


def lake_version() -> tuple:
    """The lake's table versions and the settings file's stamp: what every cached figure is
    keyed by. Within ``one_version()``, the one taken when it began."""
    pinned = getattr(_run, "version", None)
    if pinned is not None:
        return pinned
    lake, settings = workspace()
    config = Path(settings.path) if settings.path else None
    return lake.version(), _file_stamp(config)


_run = threading.local()


@contextmanager
def one_version() -> Iterator[None]:
    """Every figure of a page run from one version of the lake and the settings, even if a sync
    lands meanwhile; and the version asked once, not a dozen times (each ask reads the logs of
    three tables: 10-60 ms while the server is busy)."""
    _run.version = lake_version()
    try:
        yield
    finally:
        _run.version = None


@st.cache_resource(show_spinner="Bringing the figures up to date with the data…", max_entries=2)
def _weekly(version: tuple) -> pd.DataFrame:
    """Every person-week, shared by all sessions as it is: read only, never modified (pandas'
    copy-on-write keeps the frames made from it apart). Not ``st.cache_data``, which hands
    each call a fresh copy, unpickled every time. Read from the stored derived tables while
    they match the lake (``timeaudit metrics``, or a sync's refresh), else computed."""
    lake, settings = workspace()
    return _made(WEEKLY, version, weekly_metrics(lake, settings))


# What lets a page show the figures it has while newer ones are computed: per figure (the
# weekly table, an audit of some weeks and team) and settings file (a change of settings is
# never shown on older figures), the last one made and its lake version; the figures being
# made in the background for a newer version, and since when.
_lock = threading.Lock()
_latest: dict[tuple, tuple[tuple, object]] = {}
_refreshing: dict[tuple, float] = {}
_failed: set[tuple] = set()  # figures whose making in the background failed, per lake version
REFRESH_THREAD = "timeaudit-refresh"
LATEST_KEPT = 8  # figures kept for showing while newer ones are made (an audit can be 100 MB)
WEEKLY = ("weekly",)
COVER = ("cover mail",)
BEFORE_SYNC = ("stored before the latest sync",)  # the version of what ``_newest`` found behind


def _made(what: tuple, version: tuple, value: T) -> T:
    """Record ``value`` as the newest ``what`` made; called by the cached function making it."""
    with _lock:
        _latest.pop((what, version[1:]), None)
        _latest[(what, version[1:])] = (version, value)
        for key in [k for k in _latest if k[0] != WEEKLY][: max(0, len(_latest) - LATEST_KEPT)]:
            del _latest[key]  # the oldest audits; the weekly table every page shows stays
        _refreshing.pop((what, version), None)
        _failed.discard((what, version))
    return value


def _newest(what: tuple, make: Callable[[tuple], T], before: Callable[[], T | None] | None = None) -> tuple[tuple, T]:
    """(version, ``what``) to show now: ``make(version)`` for the lake's version, or, while the
    lake has moved on since the last ``what`` was made with the same settings, that one, with
    the new one made in the background (``refreshing``) instead of making the page wait.
    ``before()``: what `timeaudit metrics` stored for the lake before the latest sync (which
    leaves it behind), shown likewise when nothing newer was made in this process."""
    version = lake_version()
    if before is not None and (what, version[1:]) not in _latest and (what, version) not in _failed:
        found = before()  # read outside the lock: files
        if found is not None:
            with _lock:
                _latest.setdefault((what, version[1:]), (BEFORE_SYNC, found))
    with _lock:
        latest = _latest.get((what, version[1:]))
        stale = latest is not None and latest[0] != version
        if stale and (what, version) not in _refreshing:
            _refreshing[(what, version)] = time.monotonic()
            args = (what, version, make)
            threading.Thread(target=_refresh, args=args, name=REFRESH_THREAD, daemon=True).start()
    return latest if stale else (version, make(version))


def _refresh(what: tuple, version: tuple, make: Callable[[tuple], object]) -> None:
    try:
        make(version)
    except Exception as e:  # noqa: BLE001 - the next page run computes it and shows the problem
        _log.warning("timeaudit: refreshing the figures failed (%s: %s)", type(e).__name__, e)
        with _lock:
            _latest.pop((what, version[1:]), None)
            _refreshing.pop((what, version), None)
            _failed.add((what, version))  # shown by the next page, which makes it itself


def refreshing(*what: tuple) -> float | None:
    """Seconds since any of ``what`` of newer data began to be made, while pages show older
    ones; by default the figures most pages show, the weekly table and the cover-yourself mail."""
    version = lake_version()
    with _lock:
        started = [_refreshing[(w, version)] for w in what or (WEEKLY, COVER) if (w, version) in _refreshing]
    return time.monotonic() - min(started) if started else None


def _current() -> tuple[tuple, pd.DataFrame]:
    """(version, weekly table) to show now (``_newest``)."""
    return _newest(WEEKLY, _weekly)


def _all_weekly() -> pd.DataFrame:
    return _current()[1]


@st.cache_resource(show_spinner=False, max_entries=2)
def _people(version: tuple) -> tuple[Person, ...]:
    """The roster, shared read only by every page run (``st.cache_data`` would unpickle a copy
    of it for each of the several calls a run makes)."""
    return tuple(load_people(workspace()[1]))


@st.cache_resource(show_spinner=False, max_entries=2)
def _teams(version: tuple, _full: pd.DataFrame) -> dict[str, str]:
    """Every person's team: the roster's, and the data's for accounts without a roster. Shared
    read only, like ``_people``."""
    teams = {}
    if not _full.empty:
        latest = _full[["person", "team"]].drop_duplicates("person", keep="last")
        teams = dict(zip(latest["person"], latest["team"], strict=True))
    teams.update({p.email: p.team for p in _people(version)})
    return teams


class SignInNeeded(Exception):
    """Sign-in is configured and nobody is signed in yet."""


def sign_in_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return False


def access() -> Access:
    """The viewer's access, from the sign-in (or local mode without one). With sign-in
    configured there is no local mode: ``SignInRefused`` says why the identity is not let in."""
    settings = workspace()[1]
    version, full = _current()
    people, teams = _people(version), _teams(version, full)
    if sign_in_configured():
        if not st.user.is_logged_in:
            raise SignInNeeded()
        email = verified_address(st.user.to_dict())
        require_roster(people)
        return access_for(email, settings, people, teams)
    email = os.environ.get(VIEWER_ENV, "")
    if not people or not email:
        return local_access(settings, teams)
    return access_for(email, settings, people, teams)


def weekly() -> pd.DataFrame:
    """Per-person weekly rows of the people the viewer may see individually."""
    return access().people_rows(_all_weekly())


def group_weekly(team: str | None) -> pd.DataFrame:
    """A team's (or everyone's) weekly rows for sums over the group, without who is who; the
    ``team`` column names the group each row is counted in (``timeaudit.privacy.gate``)."""
    viewer = access()
    viewer.require_group(team)
    rows = gate(_all_weekly(), viewer.groups())
    rows = rows if team is None else rows[rows["team"] == team]
    return rows.drop(columns=["person", "name"])


def shown_teams() -> list[str]:
    """The teams whose figures are shown on their own (what team pickers offer)."""
    return access().groups().teams


def all_weeks() -> list[str]:
    return sorted(_all_weekly()["week"].unique())


def settings() -> Settings:
    return workspace()[1]


@st.cache_resource(show_spinner=False, max_entries=4)
def _teams_weekly(version: tuple, min_group: int, _full: pd.DataFrame) -> pd.DataFrame:
    """Shared read only, as ``_weekly``."""
    return team_weekly(_full, min_group)


def teams() -> pd.DataFrame:
    """Team rollups through the privacy gate: teams under ``privacy.min_group_size`` are counted
    only in the pooled group (named in attrs)."""
    version, full = _current()
    return _teams_weekly(version, settings().privacy.min_group_size, full)


@st.cache_resource(show_spinner="Counting the chat…", max_entries=2)
def _chat(version: tuple) -> pd.DataFrame:
    """Every person-week's chat figures (timeaudit.analysis.chat), read only and from the stored
    derived tables while they are current, like ``_weekly``."""
    from timeaudit.analysis.chat import chat_weekly, typed_chat

    lake, s = workspace()
    stored = stored_table(lake, s, "chat_weekly", ["week", "person"])
    if stored is not None:
        return typed_chat(stored)
    return _on_analysis(chat_weekly)


def chat() -> pd.DataFrame:
    """Per-person weekly chat rows of the people the viewer may see individually."""
    return access().people_rows(_chat(lake_version()))


@st.cache_data(show_spinner=False, max_entries=4)
def _teams_chat(version: tuple, min_group: int) -> pd.DataFrame:
    from timeaudit.analysis.chat import team_chat_weekly

    return team_chat_weekly(_chat(version), min_group)


def teams_chat() -> pd.DataFrame:
    """Team chat figures through the privacy gate, like ``teams``."""
    return _teams_chat(lake_version(), settings().privacy.min_group_size)


def default_week(weeks: list[str]) -> str | None:
    return last_complete_week(weeks)


@st.cache_data(show_spinner=False)
def _meetings(version: tuple, person: str, weeks: tuple[str, ...]) -> pd.DataFrame:
    lake, s = workspace()
    return _on_analysis(lambda a: top_meetings(lake, s, person, list(weeks), analysis=a))


def meetings(person: str, weeks: list[str]) -> pd.DataFrame:
    access().require_person(person)
    return _meetings(lake_version(), person, tuple(weeks))


@st.cache_data(show_spinner=False)
def _reasons(version: tuple, person: str, week: str) -> pd.DataFrame:
    lake, s = workspace()
    return _on_analysis(lambda a: event_reasons(lake, s, person, week, analysis=a))


def reasons(person: str, week: str) -> pd.DataFrame:
    access().require_person(person)
    return _reasons(lake_version(), person, week)


@st.cache_resource(show_spinner="Finding email habits…", max_entries=2)
def _cover_mail(version: tuple) -> pd.DataFrame:
    """Cover-yourself mail of every person-week, shared read-only like ``_weekly``: stored by
    `timeaudit metrics` while current, else computed."""
    from timeaudit.analysis.audit import cover_mail

    lake, s = workspace()
    stored = stored_cover_mail(lake, s)
    return _made(COVER, version, stored if stored is not None else _on_analysis(cover_mail))


def _every_cover_mail() -> pd.DataFrame:
    """``_cover_mail`` to show now (``_newest``)."""
    lake, s = workspace()
    return _newest(COVER, _cover_mail, lambda: stored_cover_mail(lake, s, behind=True))[1]


def cover_mail_of(person: str) -> pd.DataFrame:
    """One person's cover-yourself mail per week; their manager named only to a viewer who may
    see the manager individually."""
    viewer = access()
    viewer.require_person(person)
    full = _every_cover_mail()
    return viewer.masked(full[full["person"] == person], ["manager"])


def team_cover_mail(team: str | None) -> pd.DataFrame:
    """Cover-yourself mail and managers' reading hours per week of a shown group (or of every
    shown group), through the gate."""
    from timeaudit.analysis.audit import cover_mail_by_team

    viewer = access()
    viewer.require_group(team)
    rows = cover_mail_by_team(_every_cover_mail(), viewer.groups())
    return rows if team is None else rows[rows["team"] == team]


def load_or_explain() -> pd.DataFrame | None:
    """The weekly table, or None after telling the user what is missing."""
    try:
        frame = weekly()
    except UserError as e:
        st.error(str(e))
        return None
    if frame.empty:
        st.info("No data yet. Run `timeaudit demo` for a demo organisation, or sync or import your calendar.")
        return None
    return frame


@st.cache_data(show_spinner="Preparing the summary…")
def _summary(version: tuple, week: str, person: str | None, team: str | None):
    from timeaudit.outputs.summary import build_summary

    lake, s = workspace()
    metrics = _all_weekly()  # before the lock: see ``_on_analysis``
    return _on_analysis(lambda a: build_summary(lake, s, week, person=person, team=team, metrics=metrics, analysis=a))


def summary(week: str, person: str | None = None, team: str | None = None):
    """The weekly summary of a person or a team (what the export formats hold), with the
    people the viewer may not see individually as "a colleague", as on the screen."""
    viewer = access()
    if person:
        viewer.require_person(person)
    else:
        viewer.require_group(team)
    full = _summary(lake_version(), week, person, team)
    return replace(full, waiting=viewer.masked(full.waiting, SUMMARY_MASKED))


@st.cache_resource(show_spinner="Ranking the meetings…", max_entries=8)
def _audit(version: tuple, weeks: tuple[str, ...], team: str | None) -> dict[str, pd.DataFrame]:
    """Everyone's audit of ``weeks``: the one `timeaudit metrics` stored while it is current
    and of these weeks (the pages' default period), else computed on the shared analysis.
    Shared read only, like ``_weekly``: unpickling a copy for every page run cost the Customers
    page 0.4 s a run at 1,000 people."""
    return _made(_audit_what(weeks, team), version, _audit_of(version, weeks, team))


def _audit_what(weeks: tuple[str, ...], team: str | None) -> tuple:
    return ("audit", weeks, team)


def _audit_now(weeks: tuple[str, ...], team: str | None) -> dict[str, pd.DataFrame]:
    """``_audit`` to show now (``_newest``); after a sync, the default period's stored audit."""
    lake, s = workspace()
    before = (lambda: stored_page_audit(lake, s, list(weeks), behind=True)) if team is None else None
    return _newest(_audit_what(weeks, team), lambda version: _audit(version, weeks, team), before)[1]


def _audit_of(version: tuple, weeks: tuple[str, ...], team: str | None) -> dict[str, pd.DataFrame]:
    from timeaudit.analysis import audit

    lake, s = workspace()
    if team is None:
        stored = stored_page_audit(lake, s, list(weeks))
        if stored is not None:
            return stored
    every_cover = _cover_mail(version)  # before the lock: see ``_on_analysis``

    def of_the_team(a: Analysis) -> dict[str, pd.DataFrame]:
        people = [p.email for p in a.people if team is None or p.team == team]
        with audit.scoped(a, list(weeks), people) as scope:
            return page_audit(a, scope, team, every_cover)

    return _on_analysis(of_the_team)


DEFAULT_AUDIT_WEEKS = DEFAULT_WEEKS  # the period the audit pages open on


def audit_refreshing(weeks: list[str], team: str | None = None) -> float | None:
    """``refreshing`` of the audit of these weeks and team."""
    return refreshing(_audit_what(tuple(sorted(weeks)), team))


def audit_weeks(last: str | None, count: int) -> list[str]:
    """The ``count`` weeks ending with ``last`` that the data covers."""
    return page_audit_weeks(last, count, all_weeks()[0]) if last else []


def warm_up_weekly() -> None:
    """What the first visitors of every page need: the weekly table (read from the stored
    derived tables when they are current), the team figures, and plotly's template (loaded
    once, not by the first chart). The server runs this as it starts (dashboard/server.py),
    then ``warm_up_audit``; the caches are the pages' own, so nothing is computed twice.
    Any problem is left for a page to show."""
    started = time.monotonic()
    try:
        version, full = _current()
        _teams_weekly(version, settings().privacy.min_group_size, full)
        _teams(version, full)
        pio.templates[pio.templates.default]
        print(f"  The weekly figures are ready ({time.monotonic() - started:.1f} s).", flush=True)
    except Exception as e:  # noqa: BLE001 - the pages report it to whoever opens them
        _log.warning("timeaudit: not warmed up (%s: %s); the pages will compute on first view", type(e).__name__, e)


def warm_up_audit() -> None:
    """The audit of the default period for everyone (the Time wasters and Customers pages) and
    the cover-yourself mail (My week, Team): read from the stored derived tables when they are
    current (nothing is classified), else computed on the one shared analysis that My week's
    reasons, the chat figures and the summaries' downloads read too (``_on_analysis``)."""
    started = time.monotonic()
    try:
        full = _all_weekly()
        weeks = default_weeks(all_weeks()) if not full.empty else []
        if weeks:
            _audit_now(tuple(sorted(weeks)), None)
        _every_cover_mail()
        print(f"  Every page's figures are ready ({time.monotonic() - started:.1f} s).", flush=True)
    except Exception as e:  # noqa: BLE001 - the pages report it to whoever opens them
        _log.warning("timeaudit: audit not warmed up (%s: %s); its pages compute it", type(e).__name__, e)


def audit_tables(weeks: list[str], team: str | None = None) -> dict[str, pd.DataFrame]:
    """The audit's tables for a period and, optionally, one team; people the viewer may not
    see individually appear as "a colleague", and per-person figures only for those they may."""
    viewer = access()
    viewer.require_group(team)
    tables = dict(_audit_now(tuple(sorted(weeks)), team))
    for name, columns in MASKED.items():
        tables[name] = viewer.masked(tables[name], columns)
    tables["latency_people"] = viewer.people_rows(tables["latency_people"])
    tables["cover"] = viewer.people_rows(tables["cover"])
    if not viewer.sees_record_ids:  # a thread id can embed a holder's address
        tables["storms"] = tables["storms"].drop(columns=["thread"])
    tables["replies"] = viewer.without_record_ids(tables["replies"])
    return tables
