"""`timeaudit auth imap`: sign in for an ``[[imap]]`` account's XOAUTH2 token file, with the
Google installed-app flow (``connectors.google.auth``) or Microsoft's device code
(``connectors.microsoft.auth``). ``timeaudit.cli.app`` adds it to ``auth_app``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, err, out, user_errors
from timeaudit.core.config import find_config, load_settings
from timeaudit.core.errors import UserError
from timeaudit.core.private_files import write_private
from timeaudit.lake.store import default_data_dir


@user_errors
def auth_imap(
    account: Annotated[str, typer.Argument(help="The imap account of the settings (its address) to sign in for.")],
    google: Annotated[
        Path | None,
        typer.Option("--google", help="OAuth client JSON (type 'Desktop app') of your Google Cloud project: Gmail."),
    ] = None,
    microsoft: Annotated[
        str | None,
        typer.Option("--microsoft", help="Application (client) ID of your Entra ID app: Outlook / Microsoft 365."),
    ] = None,
    tenant: Annotated[
        str, typer.Option("--tenant", help="With --microsoft: Directory (tenant) ID or domain.")
    ] = "organizations",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="With --google: print the sign-in URL instead of opening a browser.")
    ] = False,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Sign in to Gmail or Outlook for IMAP (XOAUTH2) and save the account's token_file (mode 0600).

    The account must have auth = "xoauth2" and a token_file in the settings. Gmail's IMAP needs
    the full mail scope https://mail.google.com/ and Outlook's IMAP.AccessAsUser.All, more than
    `timeaudit auth google` and `auth microsoft` ask for: where the Gmail or Graph API is
    allowed, their syncs read the same metadata with less access. Later syncs renew the token.
    """
    settings = load_settings(find_config(config, data or default_data_dir()))
    wanted = account.strip().lower()
    entry = next((a for a in settings.imap if a.account == wanted), None)
    if entry is None:
        raise UserError(
            f"no [[imap]] account '{wanted}' in the settings; add it with auth = \"xoauth2\" and token_file"
        )
    path = entry.file(entry.token_file, settings.path)
    if entry.auth != "xoauth2" or path is None:
        raise UserError(f'imap account {wanted}: set auth = "xoauth2" and token_file = "..." first, then sign in')
    if bool(google) == bool(microsoft):
        raise UserError("give exactly one of --google CLIENT_JSON (Gmail) or --microsoft CLIENT_ID (Outlook)")
    announce = lambda text: err.print(text, highlight=False, soft_wrap=True)  # noqa: E731
    if google:
        from connectors.google import auth as google_auth

        try:
            credentials = google_auth.authorize_installed_app(
                google,
                scopes=[google_auth.GMAIL_IMAP],
                open_browser=not no_browser,
                read_redirect=lambda prompt: typer.prompt(prompt.rstrip(": "), err=True),
                announce=announce,
            )
        except google_auth.AuthError as e:
            raise UserError(str(e).replace("`timeaudit auth google`", "`timeaudit auth imap`")) from None
        info = google_auth.token_info(credentials)
    else:
        from connectors.microsoft import auth as microsoft_auth

        try:
            info = microsoft_auth.imap_token_info(microsoft, tenant, announce=announce)
        except microsoft_auth.AuthError as e:
            raise UserError(
                str(e).replace("`timeaudit auth microsoft` --device-code", "`timeaudit auth imap`")
            ) from None
    info["account"] = wanted
    write_private(path, json.dumps(info, indent=1))
    out.print(f"Signed in for {wanted}; IMAP token saved to {path} (readable by you only).")
    out.print("Next: `timeaudit sync imap`.")
