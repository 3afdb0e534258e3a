"""`timeaudit doctor`: what data, settings and sources there are, and what is wrong."""

from __future__ import annotations

from pathlib import Path

from timeaudit.core.config import Settings, find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import TABLES
from timeaudit.core.roster import load_people
from timeaudit.lake.store import Lake, holdings, looser_than_private, permission_bits

Finding = tuple[str, str]  # (ok | info | warn | error, text)


def diagnose(data_dir: Path, config: Path | None) -> list[Finding]:
    try:
        settings = load_settings(find_config(config, data_dir))
    except UserError:
        settings = None  # data_findings reports it
    return [*data_findings(data_dir, config), *privacy_findings(data_dir), *secret_findings(settings)]


def privacy_findings(data_dir: Path) -> list[Finding]:
    """The data folder holds personal data: anything in it others may read is reported."""
    loose = looser_than_private(data_dir)
    if not loose:
        return [("ok", f"{data_dir}: readable by you only")] if data_dir.exists() else []
    shown = ", ".join(f"{p} ({permission_bits(p):o})" for p in loose[:5])
    more = f" and {len(loose) - 5} more" if len(loose) > 5 else ""
    return [
        (
            "warn",
            f"{data_dir}: {len(loose)} files or folders others may read: {shown}{more}; "
            f"make them yours only: chmod -R go-rwx {data_dir}",
        )
    ]


def data_findings(data_dir: Path, config: Path | None) -> list[Finding]:
    findings: list[Finding] = []
    path = find_config(config, data_dir)
    try:
        settings = load_settings(path)
    except UserError as e:
        return [("error", str(e))]
    findings.append(("ok", f"settings: {path}" if path else "settings: none found, using the built-in defaults"))
    org = settings.organisation
    findings.append(
        (
            "info",
            f"organisation '{org.name}', domains {', '.join(org.domains) or '(none)'}, "
            f"time zone {org.timezone}, hours {org.working_hours}",
        )
    )
    if not org.domains:
        findings.append(("warn", "no [organisation] domains: your own domain is taken from the roster's addresses"))
    findings.append(
        (
            "info" if settings.customers else "warn",
            f"{len(settings.customers)} customers configured"
            if settings.customers
            else "no [[customers]]: nothing can count as customer time; add them to the settings",
        )
    )
    people = []
    try:
        people = load_people(settings)
        findings.append(
            (
                "ok",
                f"roster: {len(people)} people in {len({p.team for p in people})} teams"
                if people
                else "roster: none; single-user mode (everyone in the data sees everything)",
            )
        )
    except UserError as e:
        findings.append(("error", str(e)))

    lake = Lake(data_dir)
    try:
        lake.check_schema()
    except UserError as e:
        return [*findings, ("error", str(e))]
    if not any(lake.files(t) for t in TABLES):
        findings.append(("warn", f"{lake.lake_dir}: no data yet; run `timeaudit demo` or a sync"))
        return findings
    con = lake.connect()
    accounts: set[str] = set()
    held = holdings(con)
    for table in TABLES:
        files = lake.files(table)
        findings.append(("ok", f"{table}: Delta table, {len(files)} files"))
        for _, source, n, n_accounts, lo, hi, _ in (h for h in held if h[0] == table):
            findings.append(
                ("info", f"  {source}: {n:,} records, {n_accounts} accounts, {lo:%Y-%m-%d} to {hi:%Y-%m-%d}")
            )
        if table != "chat":  # chat is held per workspace, not per person
            accounts |= {a for (a,) in con.execute(f"SELECT DISTINCT account FROM {table}").fetchall()}
        if len(files) > 200:
            findings.append(("warn", f"{table}: {len(files)} small files; run `timeaudit compact`"))
    if people:
        known = {p.email for p in people}
        strangers = sorted(accounts - known)
        if strangers:
            findings.append(
                (
                    "warn",
                    f"{len(strangers)} accounts in the data are not on the roster and are left "
                    f"out of the figures: {', '.join(strangers[:5])}",
                )
            )
        silent = sorted(known - accounts)
        if silent:
            findings.append(("warn", f"{len(silent)} people on the roster have no data yet: {', '.join(silent[:5])}"))
    cursors = (
        sorted(p.relative_to(lake.state_dir) for p in lake.state_dir.glob("*/*.json"))
        if lake.state_dir.exists()
        else []
    )
    findings.append(("info", f"sync cursors: {len(cursors)}"))
    return findings


def secret_findings(settings: Settings | None = None) -> list[Finding]:
    """Secret files others can read: the dashboard refuses to start until they are fixed (and
    an IMAP or CalDAV sync with a password file others can read refuses to run)."""
    from timeaudit.lake.secret_files import secret_file_problems, secret_files

    problems = secret_file_problems(settings=settings)
    if problems:
        return [("error", text) for text in problems]
    held = sum(path.is_file() for path, _ in secret_files(settings=settings))
    return [("ok", f"secret files: {held}, readable by you only" if held else "secret files: none found")]
