"""The `timeaudit` command. Each command parses its arguments, opens the store, calls one
library function and turns errors a user can fix into one line and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, err, open_workspace, out, record_progress, user_errors
from timeaudit.core.config import CONFIG_ENV
from timeaudit.core.errors import UserError
from timeaudit.core.sign_in import ALLOW_NETWORK_FLAG
from timeaudit.lake.store import DATA_ENV, Lake, default_data_dir, keep_private
from timeaudit.privacy import VIEWER_ENV

app = typer.Typer(
    help="timeaudit: where your working hours go — customers, meetings, admin, email and focus.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
NOUNS = {"events": "calendar events", "messages": "email messages"}
WEEK_PATTERN = re.compile(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")


@app.callback()
def private_files() -> None:
    keep_private()


@app.command()
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
        f"from {org.start}: {n_events:,} calendar events and {n_messages:,} messages in {lake.lake_dir}."
    )
    out.print(f"Settings and roster written to {config_path} and {config_path.parent / 'people.csv'}.")
    if config and Path(config).resolve() != config_path.resolve():
        out.print(f"[yellow]Note:[/yellow] --config {config} is in force, not the demo's settings.")


@app.command()
@user_errors
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; another than loopback needs sign-in (--secrets) or the flag below."),
    ] = "localhost",
    allow_anyone_on_the_network: Annotated[
        bool,
        typer.Option(
            ALLOW_NETWORK_FLAG,
            help="Serve without sign-in on a --host others can reach: everyone who reaches it sees everything.",
        ),
    ] = False,
    viewer: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Show the dashboard as this roster member sees it (their role), without sign-in. "
            "(default: everything)",
        ),
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option(
            help="Streamlit secrets file with an \\[auth] section for sign-in. "
            "(default: ./.streamlit/secrets.toml if it exists)"
        ),
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the dashboard (Streamlit) on http://localhost:8501 until you press Ctrl+C.

    With an \\[auth] section in the secrets file everyone signs in (OpenID Connect, e.g.
    Google Workspace or Microsoft Entra ID) and sees what their roster role allows; see
    docs/privacy.md. Refuses to start while a secrets file or a saved Google token is readable
    by other users, and on a --host others can reach without sign-in unless told
    --allow-anyone-on-the-network.
    """
    from timeaudit.core.sign_in import check_exposure
    from timeaudit.lake.secret_files import check_secret_files

    lake, settings = open_workspace(data, config)
    lake.check_schema()
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the dashboard package is not installed; reinstall timeaudit (pip install -e .)")
    # server.py: Streamlit's server for app.py, with the frontend's files answered from memory
    app_file = Path(next(iter(spec.submodule_search_locations))) / "server.py"
    env = dict(os.environ, **{DATA_ENV: str(lake.root.resolve())})
    if settings.path:
        env[CONFIG_ENV] = str(Path(settings.path).resolve())
    env.pop(VIEWER_ENV, None)
    if viewer:
        env[VIEWER_ENV] = viewer.strip().lower()
    secrets = secrets or (Path(".streamlit/secrets.toml") if Path(".streamlit/secrets.toml").is_file() else None)
    if secrets and not secrets.is_file():
        raise UserError(f"--secrets {secrets}: no such file")
    check_secret_files(*([secrets] if secrets else []))
    check_exposure(host, signs_in=bool(secrets) and has_auth_section(secrets), allowed=allow_anyone_on_the_network)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    out.print(f"timeaudit dashboard: http://{shown}:{port}  (data: {lake.root}; Ctrl+C stops it)")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # dashboard/static: the light plotly.js the charts load (dashboard/widgets.py chart)
        "--server.enableStaticServing",
        "true",
        # Served, not edited: no watching of the source files for changes, and no full garbage
        # collection after every page run (together about a quarter of a second of CPU per visit)
        "--server.fileWatcherType",
        "none",
        "--runner.postScriptGC",
        "false",
    ]
    if secrets:  # Streamlit runs in the project folder, so the user's secrets file is named to it
        command += ["--secrets.files", str(secrets.resolve())]
    raise typer.Exit(_run_until_stopped(command, env=env, cwd=app_file.parent.parent))


def has_auth_section(secrets: Path) -> bool:
    """Whether a Streamlit secrets file switches sign-in on (an ``[auth]`` section)."""
    import tomllib

    try:
        return "auth" in tomllib.loads(secrets.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"--secrets {secrets}: not a readable TOML file ({e}); fix it or leave --secrets out") from None


def _run_until_stopped(command: list[str], **popen) -> int:
    """Run ``command`` and wait for it, passing Ctrl+C, SIGTERM and SIGHUP on to it, so that
    stopping the CLI stops the server under it too. Its exit code: 0 when it ended on a signal
    passed on to it (Streamlit's server shuts down cleanly, then raises the signal again, as
    uvicorn does), 128 + signal when something else killed it."""
    started: list[subprocess.Popen] = []
    received: list[int] = []

    def forward(signum, _frame) -> None:
        received.append(signum)
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    stops = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {s: signal.signal(getattr(signal, s), forward) for s in stops}
    try:
        proc = subprocess.Popen(command, **popen)
        started.append(proc)
        if received:  # stopped while it was starting
            proc.send_signal(received[-1])
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(getattr(signal, s), handler)
    if code < 0 and -code in received:
        return 0
    return 128 - code if code < 0 else code


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


@app.command()
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
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.outputs.derived import weekly_metrics
    from timeaudit.outputs.export import FORMATS, render, write_atomically
    from timeaudit.outputs.summary import build_summary

    if sum(map(bool, (person, team, org))) > 1:
        raise UserError("--person, --team and --org: choose one")
    fmt = format or (output.suffix.lstrip(".").lower() if output and output.suffix else "csv")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(FORMATS)}")
    lake, settings = open_workspace(data, config)
    analysis = open_analysis(lake, settings)  # one analysis for the weekly table and the audit
    metrics = weekly_metrics(lake, settings, analysis, stored_first=True)
    week = resolve_week(week, sorted(set(metrics["week"])))
    summary = build_summary(
        lake, settings, week, weeks=weeks, person=person, team=team, metrics=metrics, analysis=analysis
    )
    payload = render(summary, fmt)
    if output:
        write_atomically(output, payload)
        err.print(f"Wrote {output} ({summary.subject}, {week}, {fmt}).")
    else:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()


def _audit_scope(data, config, week: str, weeks: int, team: str | None):
    from timeaudit.analysis import audit
    from timeaudit.analysis.metrics import open_analysis
    from timeaudit.core.weeks import weeks_ending
    from timeaudit.outputs.derived import weekly_metrics
    from timeaudit.outputs.summary import refuse_hidden_team
    from timeaudit.privacy import visible_groups

    lake, settings = open_workspace(data, config)
    analysis = open_analysis(lake, settings)
    known = sorted(set(weekly_metrics(lake, settings, analysis)["week"]))
    if not known:
        raise UserError("the lake holds no data yet; run `timeaudit demo` or a sync first")
    week = resolve_week(week, known)
    people = None
    if team:
        people = [p.email for p in analysis.people if p.team == team]
        if not people:
            raise UserError(
                f"--team {team}: no such team; teams: {', '.join(sorted({p.team for p in analysis.people}))}"
            )
        groups = visible_groups({p.email: p.team for p in analysis.people}, settings.privacy.min_group_size)
        refuse_hidden_team(team, len(people), groups)
    scope = audit.open_scope(analysis, [w for w in weeks_ending(week, weeks) if w >= known[0]], people)
    return analysis, scope


AuditWeek = Annotated[str, typer.Option(help="Last week of the period: ISO week such as 2026-W47, or 'last'.")]
AuditWeeks = Annotated[int, typer.Option(min=1, max=104, help="How many weeks the period covers.")]
AuditTeam = Annotated[str | None, typer.Option(help="Only this team (at least the minimum group size).")]
AuditMarkdown = Annotated[bool, typer.Option("--markdown", help="Markdown instead of plain text.")]


@app.command("audit")
@user_errors
def audit_command(
    week: AuditWeek = "last",
    weeks: AuditWeeks = 4,
    team: AuditTeam = None,
    markdown: AuditMarkdown = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """The time wasters: meetings and series ranked by person-hours with suggestions, admin
    by kind, email load and the internal threads that cost most."""
    from timeaudit.outputs.audit_report import wasters_text

    analysis, scope = _audit_scope(data, config, week, weeks, team)
    sys.stdout.write(wasters_text(analysis, scope, markdown))


@app.command()
@user_errors
def customers(
    week: AuditWeek = "last",
    weeks: AuditWeeks = 4,
    team: AuditTeam = None,
    markdown: AuditMarkdown = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """The customers: hours and last contact, the neglected ones, reply times and the
    customer emails still waiting for an answer."""
    from timeaudit.outputs.audit_report import customers_text

    analysis, scope = _audit_scope(data, config, week, weeks, team)
    sys.stdout.write(customers_text(analysis, scope, markdown))


@app.command()
@user_errors
def forget(
    person: Annotated[str, typer.Option(help="The person's email address, as in their calendar and mailbox.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a person's calendar and email records and sync cursors from the lake, and their
    address from everyone else's records (it becomes forgotten@<their domain>).

    Only the batch files that mention them are rewritten. Run it while no sync is running.
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
    if done.debris_removed:
        say(f"  leftovers of interrupted writes removed: {done.debris_removed}")
    for path in done.debris_left:
        err.print(f"[yellow]Note:[/yellow] {path} is being written right now; run forget again when it is done.")
    try:
        for path, where in user_files_naming(settings, email):
            say(f"[yellow]{path} still names them ({where}):[/yellow] edit it yourself; timeaudit never does.")
    except OSError as e:
        err.print(f"[yellow]Note:[/yellow] {e.filename}: unreadable ({e.strerror}); remove {email} from it yourself.")


@app.command("export-mine")
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


@app.command()
@user_errors
def compact(data: DataOption = None, config: ConfigOption = None) -> None:
    """Merge each source's small batch files into one, keeping only the latest versions, and
    bring files written by an older timeaudit up to date."""
    lake, _ = open_workspace(data, config)
    lake.check_schema()
    for table in ("events", "messages"):
        outdated = lake.outdated(table)
        before, after = lake.compact(table)
        out.print(f"{table}: {compaction_line(before, after, outdated)}")


def compaction_line(before: int, after: int, outdated: int) -> str:
    def files(n: int) -> str:
        return f"{n:,} file{'s' if n != 1 else ''}"

    if before > after:
        older = f" ({outdated:,} written by an older timeaudit)" if outdated else ""
        return f"{files(before)} merged into {after:,}{older}"
    if outdated:
        return f"{files(outdated)} brought up to date"
    return f"{files(before)}, nothing to do"


@app.command()
@user_errors
def doctor(data: DataOption = None, config: ConfigOption = None) -> None:
    """Show what data, settings and sources timeaudit finds, and what is wrong."""
    from timeaudit.lake.doctor import diagnose

    data_dir = data or default_data_dir()
    findings = diagnose(data_dir, config)
    problems = 0
    for level, text in findings:
        colour = {"ok": "green", "info": "cyan", "warn": "yellow", "error": "red"}[level]
        out.print(f"[{colour}]{level:>5}[/{colour}]  {text}", highlight=False, soft_wrap=True)
        problems += level == "error"
    if problems:
        raise typer.Exit(2)


from timeaudit.cli.google import auth_app  # noqa: E402
from timeaudit.cli.imports import import_app  # noqa: E402
from timeaudit.cli.metrics import metrics  # noqa: E402
from timeaudit.cli.sync import sync_app  # noqa: E402

app.add_typer(auth_app, name="auth")
app.add_typer(sync_app, name="sync")
app.command("metrics")(metrics)
app.add_typer(import_app, name="import")


if __name__ == "__main__":
    app()
