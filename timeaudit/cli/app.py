"""The `timeaudit` command, assembled from one module per command group. Each command parses its
arguments, opens the lake, calls one library function and turns errors a user can fix into one
line and exit code 2 (``timeaudit.cli.common``)."""

from __future__ import annotations

import typer

from timeaudit.cli.dashboard import dashboard
from timeaudit.cli.demo import demo
from timeaudit.cli.digest import digest
from timeaudit.cli.google import auth_app
from timeaudit.cli.imap import auth_imap
from timeaudit.cli.imports import import_app
from timeaudit.cli.maintenance import compact, doctor, upgrade
from timeaudit.cli.metrics import metrics
from timeaudit.cli.microsoft import auth_microsoft
from timeaudit.cli.personal_data import export_mine, forget
from timeaudit.cli.report import audit_command, customers, report
from timeaudit.cli.sync import sync_app
from timeaudit.lake.store import keep_private

app = typer.Typer(
    help="timeaudit: where your working hours go — customers, meetings, admin, email and focus.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def private_files() -> None:
    keep_private()


app.command()(demo)
app.command()(dashboard)
app.command()(report)
app.command("audit")(audit_command)
app.command("customers")(customers)
app.command()(digest)
app.command()(forget)
app.command("export-mine")(export_mine)
app.command()(compact)
app.command()(doctor)
auth_app.command("microsoft")(auth_microsoft)
auth_app.command("imap")(auth_imap)
app.command()(upgrade)
app.add_typer(auth_app, name="auth")
app.add_typer(sync_app, name="sync")
app.command("metrics")(metrics)
app.add_typer(import_app, name="import")


if __name__ == "__main__":
    app()
