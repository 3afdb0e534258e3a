"""`timeaudit demo`: a generated organisation written into the lake through the demo source,
with its settings and roster beside it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, out, record_progress, user_errors
from timeaudit.core.errors import UserError
from timeaudit.lake.store import Lake, default_data_dir

NOUNS = {"events": "calendar events", "messages": "email messages", "chat": "chat messages"}


@user_errors
def demo(
    people: Annotated[int, typer.Option(min=5, help="How many people the organisation has.")] = 40,
    weeks: Annotated[int, typer.Option(min=1, max=156, help="How many complete weeks of history.")] = 26,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same organisation.")] = 7,
    end: Annotated[
        str | None, typer.Option(help="Monday after the last week, YYYY-MM-DD. (default: this week's Monday)")
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Generate the demo organisation into the data folder (lake, timeaudit.toml, people.csv).

    Replaces any earlier demo data; data from other sources is left alone.
    """
    from connectors.demo.org import build_org
    from connectors.demo.records import write_org_files
    from connectors.demo.source import demo_sources
    from timeaudit.lake.sync import run_source

    data_dir = data or default_data_dir()
    try:
        end_day = date.fromisoformat(end) if end else None
    except ValueError:
        raise UserError(f"--end {end}: not a date; use YYYY-MM-DD, e.g. 2026-11-23") from None
    org = build_org(people=people, weeks=weeks, seed=seed, end=end_day)
    lake = Lake(data_dir)
    lake.check_schema()
    counts = {}
    with record_progress() as bar:
        for source in demo_sources(org):
            task = bar.add_task(NOUNS[source.table], total=None)
            [result] = run_source(lake, source, lambda n, task=task: bar.advance(task, n))
            counts[source.table] = result.rows
            bar.update(task, total=result.rows, completed=result.rows)
    n_events, n_messages = counts["events"], counts["messages"]
    config_path = write_org_files(org, data_dir)
    out.print(
        f"Demo organisation: {len(org.people)} people, {len(org.customers)} customers, {org.weeks} weeks "
        f"from {org.start}: {n_events:,} calendar events, {n_messages:,} messages and {counts['chat']:,} chat "
        f"messages in {lake.lake_dir}."
    )
    out.print(f"Settings and roster written to {config_path} and {config_path.parent / 'people.csv'}.")
    if config and Path(config).resolve() != config_path.resolve():
        out.print(f"[yellow]Note:[/yellow] --config {config} is in force, not the demo's settings.")
