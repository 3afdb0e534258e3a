"""`timeaudit forget` and `export-mine`: remove a person from the lake, or give them all it
holds about them (``timeaudit.lake.personal_data``)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, err, open_workspace, out, user_errors


@user_errors
def forget(
    person: Annotated[str, typer.Option(help="The person's email address, as in their calendar and mailbox.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a person's calendar and email records and sync cursors from the lake, and their
    address from everyone else's records (it becomes forgotten@<their domain>).

    Only the files that mention them are rewritten; the old files are removed at once, so run
    it while no sync is running.
    The roster is yours to edit; a later sync of their account would bring the records back.
    """
    from timeaudit.lake.personal_data import checked_address, forget_person, user_files_naming

    lake, settings = open_workspace(data, config)
    lake.check_schema()
    email = checked_address(person)
    if not yes and not typer.confirm(f"Remove every record of {email} from {lake.lake_dir}?"):
        raise typer.Exit(1)
    done = forget_person(lake, email)
    events, messages = done.tables["events"], done.tables["messages"]
    say = functools.partial(out.print, highlight=False, soft_wrap=True)
    say(f"Removed {events.removed:,} calendar events and {messages.removed:,} messages of {email}.")
    say(f"In everyone else's records their address is now {done.replacement}:")
    for table, t in done.tables.items():
        say(
            f"  {table}: {t.removed:,} records of their own removed, {t.scrubbed:,} records of others scrubbed "
            f"({t.rewritten} of {t.files} files rewritten)"
        )
    theirs = f"theirs removed for {', '.join(done.cursors_removed)}" if done.cursors_removed else "none of theirs held"
    say(f"  sync cursors: {theirs}; {done.cursors_scrubbed} of other accounts naming them scrubbed")
    if done.derived_removed:
        say(
            f"  derived tables removed, all computed with their records: {', '.join(done.derived_removed)}; "
            "recompute them with `timeaudit metrics` once the roster no longer lists them"
        )
    try:
        for path, where in user_files_naming(settings, email):
            say(f"[yellow]{path} still names them ({where}):[/yellow] edit it yourself; timeaudit never does.")
    except OSError as e:
        err.print(f"[yellow]Note:[/yellow] {e.filename}: unreadable ({e.strerror}); remove {email} from it yourself.")


@user_errors
def export_mine(
    person: Annotated[str, typer.Option(help="The person's email address, as in their calendar and mailbox.")],
    output: Annotated[
        Path | None, typer.Option(help="The .zip to write. (default: timeaudit-<local part>.zip here)")
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Give a person everything timeaudit holds about them, as one .zip.

    Their own calendar and email records, every colleague's record that names them, their
    roster row, the rows of stored derived tables that name them and their sync cursors
    (tokens hidden), with a README saying what each file is.
    """
    from timeaudit.lake.personal_data import checked_address
    from timeaudit.lake.personal_data import export_mine as build
    from timeaudit.outputs.export import write_atomically

    lake, settings = open_workspace(data, config)
    email = checked_address(person)
    payload, counts = build(lake, settings, email)
    target = output or Path(f"timeaudit-{re.sub(r'[^A-Za-z0-9._-]', '_', email.split('@')[0])}.zip")
    write_atomically(target, payload)
    derived = sum(n for name, n in counts.items() if name.startswith("derived/"))
    out.print(
        f"Wrote {target}: {counts['events.csv']:,} calendar events, {counts['messages.csv']:,} messages, "
        f"{derived:,} rows of derived tables "
        f"and {counts['roster.csv']} roster row{'s' if counts['roster.csv'] != 1 else ''} about {email}.",
        highlight=False,
        soft_wrap=True,
    )
