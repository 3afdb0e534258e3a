"""`timeaudit digest`: the weekly digest, built for every recipient, then sent (or written)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, err, open_workspace, user_errors
from timeaudit.core.errors import UserError

STYLE = {"sent": "green", "written": "green", "already sent": "dim", "withheld": "yellow", "failed": "red"}


@user_errors
def digest(
    week: Annotated[
        str, typer.Option(help="ISO week such as 2026-W47, or 'last' for the last complete week.")
    ] = "last",
    to: Annotated[
        str,
        typer.Option(
            help="leads: each team lead (and the teams' chat channels); people: those who opted in "
            "(digest.people_opt_in); all: both."
        ),
    ] = "leads",
    dry_run: Annotated[
        Path | None,
        typer.Option(
            "--dry-run", help="Write each message into this folder (.eml, .json for chat) instead of sending."
        ),
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Send the weekly digest: the week against last week, the 4-week average and the goals.

    One message per recipient: headline figures, goals on or off track, the top three time
    wasters with what to do and the hours it gives back, neglected customers and customer
    emails waiting, charts and a link to the dashboard. Every message is built before any is
    sent. Mail goes through [digest.smtp], chat through [[digest.channels]] (timeaudit.toml).
    A recipient already sent this week's digest is skipped, so running it twice sends nothing
    new. Exits 1 when any delivery failed (the others are still sent). Schedule it, e.g.
    every Monday at 07:00 with cron: 0 7 * * 1  timeaudit digest --week last (docs/digest.md).
    """
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.cli.report import resolve_week
    from timeaudit.outputs.delivery import SentLog, deliver, write_dry_run
    from timeaudit.outputs.derived import weekly_metrics
    from timeaudit.outputs.digest import AUDIENCES, build_digests

    if to not in AUDIENCES:
        raise UserError(f"--to {to}: unknown; use one of {', '.join(AUDIENCES)}")
    lake, settings = open_workspace(data, config)
    analysis = open_analysis(lake, settings)
    week = resolve_week(week, sorted(set(weekly_metrics(lake, settings, analysis, stored_first=True)["week"])))
    log = None if dry_run else SentLog(lake.state_dir)
    with log.hold() if log else contextlib.nullcontext():
        with err.status(f"Building the digests for {week}…") as status:
            digests = build_digests(
                lake,
                settings,
                week,
                to,
                progress=lambda step: status.update(f"Building the digests: {step}"),
                analysis=analysis,
                already_sent=(lambda r: log.has(week, r.key)) if log else None,
            )
        if not digests:
            err.print(f"Nobody to send to for --to {to}: no leads on the roster, no channels and nobody opted in.")
            return
        if log is None:
            for outcome in write_dry_run(digests, dry_run):
                show(outcome)
            return
        outcomes = deliver(digests, settings, log, report=show)
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in STYLE}
    err.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" ({week}).")
    if counts["failed"]:
        raise typer.Exit(1)


def show(outcome) -> None:
    """One line per recipient: sent, already sent, withheld, written or failed, and why."""
    detail = f": {outcome.detail}" if outcome.detail else ""
    err.print(
        f"[{STYLE[outcome.status]}]{outcome.status}[/] {outcome.via} {outcome.recipient}{detail}",
        highlight=False,
        soft_wrap=True,
    )
