"""Every query the dashboard makes, cached until the lake changes."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from timeaudit.config import CONFIG_ENV, Settings, find_config, load_settings
from timeaudit.errors import UserError
from timeaudit.metrics import (
    event_reasons,
    last_complete_week,
    open_analysis,
    team_weekly,
    top_meetings,
    weekly_metrics,
)
from timeaudit.store import Lake, default_data_dir


def workspace() -> tuple[Lake, Settings]:
    data_dir = default_data_dir()
    settings = load_settings(find_config(os.environ.get(CONFIG_ENV) or None, data_dir))
    return Lake(data_dir), settings


def lake_version() -> tuple:
    lake, settings = workspace()
    config = Path(settings.path) if settings.path else None
    return lake.version(), (config.stat().st_mtime_ns if config and config.exists() else 0)


@st.cache_data(show_spinner="Counting the hours…")
def _weekly(version: tuple) -> pd.DataFrame:
    lake, settings = workspace()
    return weekly_metrics(lake, settings)


def weekly() -> pd.DataFrame:
    return _weekly(lake_version())


def settings() -> Settings:
    return workspace()[1]


def teams(min_group_size: int) -> pd.DataFrame:
    return team_weekly(weekly(), min_group_size)


def default_week(weeks: list[str]) -> str | None:
    return last_complete_week(weeks)


@st.cache_data(show_spinner=False)
def _meetings(version: tuple, person: str, weeks: tuple[str, ...]) -> pd.DataFrame:
    lake, s = workspace()
    return top_meetings(lake, s, person, list(weeks))


def meetings(person: str, weeks: list[str]) -> pd.DataFrame:
    return _meetings(lake_version(), person, tuple(weeks))


@st.cache_data(show_spinner=False)
def _reasons(version: tuple, person: str, week: str) -> pd.DataFrame:
    lake, s = workspace()
    return event_reasons(lake, s, person, week, analysis=open_analysis(lake, s))


def reasons(person: str, week: str) -> pd.DataFrame:
    return _reasons(lake_version(), person, week)


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
    from timeaudit.summary import build_summary

    lake, s = workspace()
    return build_summary(lake, s, week, person=person, team=team, metrics=weekly())


def summary(week: str, person: str | None = None, team: str | None = None):
    """The weekly summary of a person or a team (what the export formats hold)."""
    return _summary(lake_version(), week, person, team)


@st.cache_data(show_spinner="Ranking the meetings…")
def _audit(version: tuple, weeks: tuple[str, ...], team: str | None) -> dict[str, pd.DataFrame]:
    from timeaudit import audit

    lake, s = workspace()
    a = open_analysis(lake, s)
    people = [p.email for p in a.people if team is None or p.team == team]
    scope = audit.open_scope(a, list(weeks), people)
    replies = audit.customer_replies(a, scope)
    contacts = audit.customer_contacts(a, scope)
    return {
        "series": audit.meeting_series(a, scope),
        "admin": audit.admin_by_kind(a, scope),
        "threads": audit.costly_threads(a, scope),
        "fragmentation": audit.fragmentation(a, scope),
        "contacts": contacts,
        "neglected": audit.neglected_customers(a, contacts),
        "replies": replies,
        "waiting": audit.waiting_threads(replies),
        "latency": audit.reply_latency(replies, by="team"),
        "latency_people": audit.reply_latency(replies, by="person"),
        "occurrences": a.con.execute(
            "SELECT series_key, person, week, start_local, minutes, category, reason FROM person_meetings "
            "JOIN audit_weeks USING (week) JOIN audit_people USING (person) "
            "WHERE category IN ('internal', 'admin', 'tentative') AND others > 0"
        ).df(),
    }


def audit_tables(weeks: list[str], team: str | None = None) -> dict[str, pd.DataFrame]:
    """The audit's tables for a period and, optionally, one team."""
    return _audit(lake_version(), tuple(sorted(weeks)), team)
