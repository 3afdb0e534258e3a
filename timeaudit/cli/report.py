"""`timeaudit report`, `audit` and `customers`: the weekly summary of a person, a team or the
organisation, and the time wasters and customers of a period, from one analysis of the lake."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, err, open_workspace, user_errors
from timeaudit.core.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pandas import DataFrame

    from timeaudit.analysis.audit import Scope
    from timeaudit.analysis.metrics import Analysis

WEEK_PATTERN = re.compile(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")


def resolve_week(week: str, weeks: list[str]) -> str:
    from timeaudit.analysis.metrics import last_complete_week

    if week == "last":
        found = last_complete_week(weeks)
        if not found:
            raise UserError("--week last: the lake holds no data yet; run `timeaudit demo` or a sync first")
        return found
    if not WEEK_PATTERN.match(week):
        raise UserError(f"--week {week}: not an ISO week; use e.g. 2026-W47 or 'last'")
    return week


@user_errors
def report(
    week: Annotated[
        str, typer.Option(help="ISO week such as 2026-W47, or 'last' for the last complete week.")
    ] = "last",
    weeks: Annotated[int, typer.Option(min=1, max=104, help="How many weeks the trend covers, ending at --week.")] = 12,
    person: Annotated[str | None, typer.Option(help="One person's summary (email address).")] = None,
    team: Annotated[str | None, typer.Option(help="One team's summary (team name from the roster).")] = None,
    org: Annotated[bool, typer.Option("--org", help="The whole organisation, one row per team (the default).")] = False,
    format: Annotated[
        str | None,
        typer.Option("--format", help="csv, xlsx, md, html or pdf. (default: from --output's suffix, else csv)"),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="File to write. (default: standard output)")] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the weekly summary of a person, a team or the organisation.

    Headline figures with the change against the previous four weeks, the weekly split by
    category, the week's figures and a definition of each. CSV holds the metric columns of
    docs/metrics.md. Schedule it, e.g. every Monday at 07:00 with cron:
    0 7 * * 1  timeaudit report --week last --team Support --format pdf --output support.pdf
    """
    from timeaudit.outputs.derived import weekly_metrics
    from timeaudit.outputs.export import FORMATS, render, write_atomically
    from timeaudit.outputs.summary import build_summary

    if sum(map(bool, (person, team, org))) > 1:
        raise UserError("--person, --team and --org: choose one")
    fmt = format or (output.suffix.lstrip(".").lower() if output and output.suffix else "csv")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(FORMATS)}")
    lake, settings = open_workspace(data, config)
    # The stored weekly table while current, else one shared analysis for it and the audit.
    metrics = weekly_metrics(lake, settings)
    week = resolve_week(week, sorted(set(metrics["week"])))
    summary = build_summary(lake, settings, week, weeks=weeks, person=person, team=team, metrics=metrics)
    payload = render(summary, fmt)
    if output:
        write_atomically(output, payload)
        err.print(f"Wrote {output} ({summary.subject}, {week}, {fmt}).")
    else:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()


def _audit_text(
    data,
    config,
    week: str,
    weeks: int,
    team: str | None,
    text: Callable[[Analysis, Scope, DataFrame, DataFrame | None], str],
) -> str:
    """``text(analysis, scope, weekly, every_cover)`` for the period and team asked for, on the
    records as `timeaudit metrics` stored them classified while they are current (else
    classified now), with the stored weekly table and cover-yourself mail (None: not stored)."""
    from timeaudit.analysis import audit
    from timeaudit.core.weeks import weeks_ending
    from timeaudit.outputs.derived import on_stored_classification, stored_cover_mail, weekly_metrics
    from timeaudit.outputs.summary import refuse_hidden_team
    from timeaudit.privacy import visible_groups

    lake, settings = open_workspace(data, config)
    weekly = weekly_metrics(lake, settings)
    every_cover = stored_cover_mail(lake, settings)
    known = sorted(set(weekly["week"]))
    if not known:
        raise UserError("the lake holds no data yet; run `timeaudit demo` or a sync first")
    period = [w for w in weeks_ending(resolve_week(week, known), weeks) if w >= known[0]]

    def write(analysis: Analysis) -> str:
        people = None
        if team:
            people = [p.email for p in analysis.people if p.team == team]
            if not people:
                teams = ", ".join(sorted({p.team for p in analysis.people}))
                raise UserError(f"--team {team}: no such team; teams: {teams}")
            groups = visible_groups({p.email: p.team for p in analysis.people}, settings.privacy.min_group_size)
            refuse_hidden_team(team, len(people), groups)
        with audit.scoped(analysis, period, people) as scope:
            return text(analysis, scope, weekly, every_cover)

    return on_stored_classification(lake, settings, None, write)


AuditWeek = Annotated[str, typer.Option(help="Last week of the period: ISO week such as 2026-W47, or 'last'.")]
AuditWeeks = Annotated[int, typer.Option(min=1, max=104, help="How many weeks the period covers.")]
AuditTeam = Annotated[str | None, typer.Option(help="Only this team (at least the minimum group size).")]
AuditMarkdown = Annotated[bool, typer.Option("--markdown", help="Markdown instead of plain text.")]


def _period_text(text: str, help_text: str, stored: bool = False):
    """A command that prints one text of ``timeaudit.outputs.audit_report`` (``text``: its
    function's name; ``stored``: it takes the stored weekly table and cover-yourself mail) for
    the period and team the options choose; ``help_text``: its help."""

    def command(
        week: AuditWeek = "last",
        weeks: AuditWeeks = 4,
        team: AuditTeam = None,
        markdown: AuditMarkdown = False,
        data: DataOption = None,
        config: ConfigOption = None,
    ) -> None:
        from timeaudit.outputs import audit_report

        write = getattr(audit_report, text)

        def render(a, scope, weekly, every_cover) -> str:
            figures = {"weekly": weekly, "every_cover": every_cover} if stored else {}
            return write(a, scope, markdown, **figures)

        sys.stdout.write(_audit_text(data, config, week, weeks, team, render))

    command.__doc__ = help_text
    return user_errors(command)


audit_command = _period_text(
    "wasters_text",
    """The time wasters: meetings and series ranked by person-hours with suggestions, admin
    by kind, email load and the internal threads that cost most.""",
    stored=True,
)
customers = _period_text(
    "customers_text",
    """The customers: hours and last contact, the neglected ones, reply times and the
    customer emails still waiting for an answer.""",
)
