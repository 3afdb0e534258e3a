"""What every `timeaudit` command shares: the consoles, the --data/--config options, the
way a user error becomes one line and exit code 2, and the progress bar for record counts.

The command modules (``timeaudit.cli.report``, ``.google``, ...) import from here, never from
``timeaudit.cli.app``, which imports them to register their commands.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from timeaudit.core.config import CONFIG_ENV, Settings, find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.store import DATA_ENV, Lake, default_data_dir

out = Console()
err = Console(stderr=True)

DataOption = Annotated[
    Path | None,
    typer.Option("--data", envvar=DATA_ENV, help="Data folder holding the lake and sync state. (default: ./data)"),
]
RefreshOption = Annotated[
    bool,
    typer.Option(
        "--refresh/--no-refresh",
        help="Afterwards bring the stored metrics (<data>/derived) up to date, recomputing only the "
        "person-weeks the new records touch.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=CONFIG_ENV,
        help="Settings file. (default: ./timeaudit.toml, else <data>/timeaudit.toml, else built-in defaults)",
    ),
]


def user_errors(command):
    """Print a UserError as one line on stderr and exit with code 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def open_workspace(data: Path | None, config: Path | None) -> tuple[Lake, Settings]:
    data_dir = data or default_data_dir()
    settings = load_settings(find_config(config, data_dir))
    return Lake(data_dir), settings


def refresh_derived_tables(lake: Lake, settings: Settings) -> None:
    """The end of a sync or an import: the stored metrics brought up to date, with a line
    saying what is being done while it runs and one saying what was done."""
    from timeaudit.outputs.refresh import refresh_derived

    with err.status("Derived tables: checking…") as status:
        done = refresh_derived(
            lake, settings, datetime.now(UTC), lambda what: status.update(f"Derived tables: {what}…")
        )
    out.print(done.line(), highlight=False)


def record_progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
