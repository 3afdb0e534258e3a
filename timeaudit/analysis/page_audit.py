"""The audit the Time wasters and Customers pages show: every table of one scope, in one go.

The dashboard computes it for the period and team a viewer picks; `timeaudit metrics` also
stores the one the pages open on (everyone, ``default_weeks``), so that they show it without
classifying the records (``timeaudit.outputs.derived.stored_page_audit``). The tables hold
everyone's figures: mask them per viewer.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from timeaudit.analysis import audit
from timeaudit.analysis.audit import Scope
from timeaudit.analysis.chat import customer_chat_waiting
from timeaudit.analysis.metrics import Analysis, last_complete_week
from timeaudit.core.weeks import weeks_ending

DEFAULT_WEEKS = 4


def audit_weeks(last: str | None, count: int, first: str) -> list[str]:
    """The ``count`` weeks ending with ``last`` that the data covers (it starts with ``first``)."""
    return [w for w in weeks_ending(last, count) if w >= first] if last else []


def default_weeks(weeks: list[str], today: date | None = None) -> list[str]:
    """The period the audit pages open on: ``DEFAULT_WEEKS`` weeks ending with the last
    complete week of ``weeks`` (every week with data)."""
    return audit_weeks(last_complete_week(weeks, today), DEFAULT_WEEKS, min(weeks)) if weeks else []


def page_audit(
    a: Analysis, scope: Scope, team: str | None, every_cover: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """Every table of the audit pages for ``scope`` (registered by ``audit.open_scope``) and
    ``team`` (None: everyone). ``every_cover`` is ``audit.cover_mail(a)`` when at hand."""
    replies = audit.customer_replies(a, scope)
    contacts = audit.customer_contacts(a, scope)
    series = audit.meeting_series(a, scope)
    storms = audit.reply_storms(a, scope)
    cover = audit.cover_mail_in(a, scope, every_cover)
    return {
        "series": series,
        "storms": storms,
        "cover": cover,
        "cover_teams": audit.cover_mail_by_team(cover, scope.groups),
        "suggestions": audit.suggestions(a, scope, series, cover, storms),
        "admin": audit.admin_by_kind(a, scope),
        "threads": audit.costly_threads(a, scope),
        "fragmentation": audit.fragmentation(a, scope),
        "contacts": contacts,
        "neglected": audit.neglected_customers(a, contacts),
        "replies": replies,
        "waiting": audit.waiting_threads(replies),
        "latency": audit.reply_latency(replies, by="team"),
        "latency_people": audit.reply_latency(replies, by="person"),
        "shared": audit.shared_mailbox_summary(audit.shared_mailbox_replies(a, scope, team)),
        "chat_waiting": customer_chat_waiting(a, scope),
        "occurrences": a.con.execute(
            "SELECT series_key, person, week, start_local, minutes, category, reason FROM person_meetings "
            "JOIN audit_weeks USING (week) JOIN audit_people USING (person) "
            "WHERE category IN ('internal', 'admin', 'tentative') AND others > 0 "
            "ORDER BY series_key, person, start_local, minutes, category, reason"
        ).df(),
    }
