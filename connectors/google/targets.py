"""Whom a Google sync reads and as whom: the saved identity, the accounts it reaches (the
signed-in person, or every roster member through a service account) and the one-line errors
that end a run when Google refuses those credentials or their token endpoint cannot be reached.
"""

from __future__ import annotations

from collections.abc import Callable

from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.google import auth
from connectors.google.http import ApiError, TokenEndpointUnreachable, TokenGate, http_error_details
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.roster import load_people

Whose = Callable[[object, TokenGate], str]  # credentials -> the address they belong to (one request)


class GoogleAuthError(UserError):
    """The saved Google credentials are missing or were refused."""


def load_google_identity(identity: auth.Identity | None = None) -> auth.Identity:
    """The identity given, else the saved one; a clear error when there is none or it is unusable."""
    try:
        identity = identity or auth.load_identity()
    except auth.AuthError as e:
        raise GoogleAuthError(str(e)) from None
    if identity is None:
        raise GoogleAuthError(
            f"no Google credentials in {auth.token_dir()}; run `timeaudit auth google --client-secrets "
            "client_secret.json` (or --service-account key.json) first"
        )
    return identity


def targets(
    identity: auth.Identity,
    settings: Settings,
    scopes: list[str],
    *,
    whose: Whose | None = None,
    gate: TokenGate | None = None,
) -> dict[str, object]:
    """account -> credentials to sync: the signed-in person, or every roster member through the
    service account (and, for Gmail, every ``[[shared_mailboxes]]`` address: a delegated
    mailbox is a Workspace user of its own), asking only for ``scopes`` (each source its own,
    so delegating one is enough). A token saved without its ``account`` (an older version's) is asked ``whose`` it
    is once, and saved again with it."""
    if isinstance(identity, auth.UserIdentity):
        if not identity.account:
            if whose is None:
                raise GoogleAuthError(f"{identity.path}: the token does not say whose it is; {auth.REAUTH}")
            _identify(identity, whose, gate or TokenGate())
        return {identity.account: identity.credentials}
    people = load_people(settings)
    if not people:
        where = settings.path or "timeaudit.toml"
        raise UserError(
            f"{where}: 'roster' is empty; a service account syncs the roster's people, so set roster = \"people.csv\""
        )
    accounts = [p.email for p in people]
    if auth.GMAIL_METADATA in scopes:
        accounts += [m.address for m in settings.shared_mailboxes if m.address not in accounts]
    return {account: identity.for_user(account, scopes) for account in accounts}


def _identify(identity: auth.UserIdentity, whose: Whose, gate: TokenGate) -> None:
    """Ask the API whose the saved token is, and write the token file back with that ``account``."""
    try:
        account = whose(identity.credentials, gate).strip().lower()
    except TokenEndpointUnreachable as e:
        raise unreachable_error(identity, e) from None
    except (HttpError, RefreshError, TransportError, ApiError) as e:
        if auth.refused(e):
            raise refusal_error(identity, "you", e) from None
        raise GoogleAuthError(
            f"{identity.path}: the token does not say whose it is and asking Google failed "
            f"({describe_failure(e, 'you')}); {auth.REAUTH}"
        ) from None
    if not account:
        raise GoogleAuthError(f"{identity.path}: the token does not say whose it is; {auth.REAUTH}")
    identity.account = account
    auth.save_user(identity.credentials, account, identity.path.parent)


def describe_failure(e: Exception, account: str) -> str:
    """One line for a failure that is not the source's own business (tokens, Google down)."""
    if isinstance(e, HttpError):
        status, reason, message = http_error_details(e)
        return f"{status} {reason}: {message}".strip()
    if isinstance(e, RefreshError | TransportError):
        return f"Google refused a token for {account} ({auth.describe_refusal(e)})"
    return str(e)


def unreachable_error(identity: auth.Identity, e: TokenEndpointUnreachable) -> GoogleAuthError:
    """The one line that ends a run whose token endpoint cannot be reached."""
    return GoogleAuthError(
        f"{identity.path}: the token endpoint {e.host} (its token_uri) did not answer ({e.cause}); "
        f"check that this machine can reach {e.host} (network, proxy, firewall), then sync again"
    )


def refusal_error(identity: auth.Identity, account: str, cause: BaseException) -> GoogleAuthError | None:
    """The error that ends the run when Google refused ``account``'s credentials, or None when only
    that person is refused (a service account not delegated for them) and the others go on."""
    if isinstance(identity, auth.UserIdentity):
        return GoogleAuthError(
            f"{identity.path}: Google refused the saved token for {account} "
            f"({auth.describe_refusal(cause)}); {auth.REAUTH}"
        )
    if _key_refused(cause):
        return GoogleAuthError(
            f"{identity.path}: Google refused the service-account key "
            f"({auth.describe_refusal(cause)}); create a new key and re-run "
            "`timeaudit auth google --service-account KEY`"
        )
    return None


def _key_refused(e: BaseException) -> bool:
    """A refusal of the service account itself (bad or deleted key), not of one delegated user."""
    text = auth.describe_refusal(e)
    return text.startswith("invalid_client") or "JWT" in text
