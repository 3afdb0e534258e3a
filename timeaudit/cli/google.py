"""`timeaudit auth google`: a thin command over ``connectors.google.auth``.

``timeaudit.cli`` registers ``auth_app`` as `auth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import err, out, user_errors
from timeaudit.core.errors import UserError

auth_app = typer.Typer(
    help="Connect timeaudit to your calendar and mail. Tokens are kept in your user config folder "
    "(mode 0600), never in the --data folder or the --config file.",
    no_args_is_help=True,
)


@auth_app.command("google")
@user_errors
def auth_google(
    client_secrets: Annotated[
        Path | None,
        typer.Option(
            "--client-secrets",
            help="OAuth client JSON (type 'Desktop app') for syncing your own calendar; see docs/google.md.",
        ),
    ] = None,
    service_account: Annotated[
        Path | None,
        typer.Option(
            "--service-account",
            help="Service-account JSON key with domain-wide delegation, for syncing every roster member.",
        ),
    ] = None,
    no_browser: Annotated[
        bool,
        typer.Option(
            "--no-browser", help="Print the sign-in URL and read back the address instead of opening a browser."
        ),
    ] = False,
) -> None:
    """Authorise timeaudit to read Google Calendar and Gmail metadata (scopes calendar.readonly, gmail.metadata).

    With --client-secrets you sign in as yourself in a browser; with --service-account an
    administrator's delegated service account reads each roster member's calendar and mail
    headers (never bodies). Either
    replaces the credentials saved before.
    """
    from connectors.google import auth

    if bool(client_secrets) == bool(service_account):
        raise UserError("give exactly one of --client-secrets FILE (yourself) or --service-account KEY (the roster)")
    try:
        if service_account:
            identity = auth.save_service_account(service_account)
            out.print(f"Service account {identity.email} saved to {identity.path} (readable by you only).")
            out.print(
                "In the Google Admin console (Security > Access and data control > API controls > Domain-wide "
                f"delegation) allow client ID {_client_id(identity.path)} the scopes "
                f"{auth.CALENDAR_READONLY},{auth.GMAIL_METADATA} (or only the one of the source you sync); "
                "then run `timeaudit sync google-calendar` or `timeaudit sync gmail` with a roster."
            )
            return
        credentials = auth.authorize_installed_app(
            client_secrets,
            open_browser=not no_browser,
            read_redirect=lambda prompt: typer.prompt(prompt.rstrip(": "), err=True),
            announce=lambda text: err.print(text, highlight=False, soft_wrap=True),
        )
        account = _account_of(credentials)
        path = auth.save_user(credentials, account)
    except auth.AuthError as e:
        raise UserError(str(e)) from None
    out.print(f"Authorised {account}; token saved to {path} (readable by you only).")
    out.print("Next: `timeaudit sync google-calendar` and `timeaudit sync gmail`.")


def _client_id(key_path: Path) -> str:
    import json

    return str(json.loads(key_path.read_text(encoding="utf-8")).get("client_id", "(see the key file)"))


def _account_of(credentials) -> str:
    """The signed-in person's address: the id of their primary calendar (one request)."""
    from googleapiclient.errors import HttpError

    from connectors.google.auth import AuthError
    from connectors.google.calendar import primary_address
    from connectors.google.http import build_service, http_error_details

    try:
        return primary_address(build_service("calendar", "v3", credentials).service)
    except HttpError as e:
        status, reason, message = http_error_details(e)
        raise AuthError(
            f"signed in, but reading your primary calendar failed ({status} {reason}: {message}); "
            "check the Calendar API is enabled for the OAuth client's project"
        ) from None
