"""`timeaudit auth microsoft`: a thin command over ``connectors.microsoft.auth``.

``timeaudit.cli.app`` adds it to ``auth_app`` (`timeaudit auth`), beside `auth google`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import err, out, user_errors
from timeaudit.core.errors import UserError


@user_errors
def auth_microsoft(
    device_code: Annotated[
        bool,
        typer.Option("--device-code", help="Sign in as yourself with a code shown here, on any browser."),
    ] = False,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="The Entra ID app registration's Application (client) ID.")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Directory (tenant) ID or domain. (default with --device-code: organizations)"),
    ] = None,
    client_secret_file: Annotated[
        Path | None,
        typer.Option("--client-secret-file", help="File holding the app's client secret value, for the whole roster."),
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option("--certificate", help="PEM file with the app's certificate private key, instead of a secret."),
    ] = None,
    thumbprint: Annotated[
        str, typer.Option("--thumbprint", help="The certificate's SHA-1 thumbprint as Entra ID shows it.")
    ] = "",
) -> None:
    """Authorise timeaudit to read Outlook calendars and mail metadata in Microsoft 365 (never bodies).

    With --device-code you sign in as yourself (delegated Calendars.Read, Mail.ReadBasic,
    offline_access); with --client-secret-file (or --certificate) an administrator's app reads
    every roster member's and shared mailbox (application Calendars.Read, Mail.ReadBasic.All).
    Either replaces the Microsoft credentials saved before.
    """
    from connectors.microsoft import auth
    from connectors.microsoft.graph import endpoint

    if not client_id:
        raise UserError("give --client-id: the Application (client) ID of the app registered in Entra ID (see README)")
    app_credential = client_secret_file or certificate
    if device_code == bool(app_credential) or (client_secret_file and certificate):
        raise UserError(
            "give exactly one of --device-code (yourself) or --client-secret-file FILE / --certificate PEM (the roster)"
        )
    try:
        if device_code:
            identity = auth.sign_in_device_code(
                client_id,
                tenant or "organizations",
                resource=endpoint(),
                announce=lambda text: err.print(text, highlight=False, soft_wrap=True),
            )
            out.print(f"Authorised {identity.account}; token cache saved to {identity.folder} (readable by you only).")
            out.print("Next: `timeaudit sync microsoft`.")
            return
        if not tenant:
            raise UserError("give --tenant: the Directory (tenant) ID or domain the app is registered in")
        identity = auth.save_application(
            client_id,
            tenant,
            secret_file=client_secret_file,
            certificate=certificate,
            thumbprint=thumbprint,
            resource=endpoint(),
        )
    except auth.AuthError as e:
        raise UserError(str(e)) from None
    out.print(f"App {client_id} of tenant {tenant} saved to {identity.folder} (readable by you only).")
    out.print(
        "It needs the application permissions Calendars.Read and Mail.ReadBasic.All with admin consent; "
        "then run `timeaudit sync microsoft` with a roster."
    )
