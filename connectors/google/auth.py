"""Google credentials: the installed-app OAuth flow for one person, a service account with
domain-wide delegation for a whole roster, and the token folder that holds either.

The token folder is the user's config folder (platformdirs), or ``$TIMEAUDIT_TOKEN_DIR``;
never the repository or the data folder. Files in it are written whole, then renamed, with
mode 0600 (the folder 0700). Exactly one identity is in force: saving one removes the other.

A saved user token keeps Google's ``authorized_user`` fields (refresh token, client id and
secret, ``token_uri``, scopes) plus the ``account`` it belongs to; refreshing uses that file's
own ``token_uri``, so a token minted by a stand-in refreshes against the stand-in.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from google.auth.exceptions import RefreshError, TransportError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as UserCredentials
from googleapiclient.errors import HttpError

from timeaudit.core.private_files import TOKEN_DIR_ENV as TOKEN_DIR_ENV  # the tests point it elsewhere
from timeaudit.core.private_files import token_dir, write_private

CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
# What `timeaudit auth google` asks a person to grant. A service account asks, per person, only
# for the scope of the source being synced, so delegating one source is enough for that source.
SCOPES = [CALENDAR_READONLY, GMAIL_METADATA]
GMAIL_IMAP = "https://mail.google.com/"  # the only scope Gmail's IMAP takes (`timeaudit auth imap --google`)

USER_TOKEN_FILE = "google-token.json"
SERVICE_ACCOUNT_FILE = "google-service-account.json"
REAUTH = "re-run `timeaudit auth google`"


class AuthError(Exception):
    """A credential problem the user fixes; the message says how."""


def _is_loopback_http(uri: str) -> bool:
    return uri.startswith("http://") and (urlsplit(uri).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _checked_token_uri(uri: str, path: Path) -> str:
    """A refresh sends the refresh token and client secret: only over https, or http on this machine."""
    if uri.startswith("https://") or _is_loopback_http(uri):
        return uri
    raise AuthError(f"{path}: token_uri {uri} is neither https nor this machine; {REAUTH}")


@contextlib.contextmanager
def _loopback_http_allowed(uri: str) -> Iterator[None]:
    """oauthlib insists on https; a token endpoint on this machine's loopback is safe over http."""
    if not _is_loopback_http(uri):
        yield
        return
    before = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = before


# -- identities ----------------------------------------------------------------------------
@dataclass
class UserIdentity:
    """One person's OAuth token: syncs that person's own calendars."""

    credentials: UserCredentials
    account: str
    path: Path

    def save_if_refreshed(self, token_before: str | None) -> None:
        """Keep a refreshed access token, so the next run does not refresh again."""
        if self.credentials.token and self.credentials.token != token_before:
            save_user(self.credentials, self.account, self.path.parent)


@dataclass
class ServiceAccountIdentity:
    """A service account with domain-wide delegation: acts as each roster member in turn."""

    credentials: service_account.Credentials
    path: Path

    @property
    def email(self) -> str:
        return self.credentials.service_account_email

    def for_user(self, email: str, scopes: list[str]) -> service_account.Credentials:
        return self.credentials.with_scopes(scopes).with_subject(email)


Identity = UserIdentity | ServiceAccountIdentity


def load_identity(folder: Path | None = None) -> Identity | None:
    """The saved identity, or None when `timeaudit auth google` has not been run."""
    folder = folder or token_dir()
    key_path, token_path = folder / SERVICE_ACCOUNT_FILE, folder / USER_TOKEN_FILE
    if key_path.is_file():
        try:
            info = json.loads(key_path.read_text(encoding="utf-8"))
            return ServiceAccountIdentity(service_account.Credentials.from_service_account_info(info), key_path)
        except (ValueError, KeyError) as e:
            raise AuthError(f"{key_path}: not a usable service-account key ({e}); {REAUTH}") from None
    if token_path.is_file():
        try:
            info = json.loads(token_path.read_text(encoding="utf-8"))
            credentials = UserCredentials.from_authorized_user_info(info)
            if info.get("token_uri"):
                # google-auth always puts Google's endpoint here; the file's own wins (a stand-in, a
                # proxy). The copy `with_token_uri` makes forgets the expiry: keep it.
                expiry = credentials.expiry
                credentials = credentials.with_token_uri(_checked_token_uri(info["token_uri"], token_path))
                credentials.expiry = expiry
        except (ValueError, KeyError) as e:
            raise AuthError(f"{token_path}: not a usable token file ({e}); {REAUTH}") from None
        return UserIdentity(credentials, str(info.get("account") or ""), token_path)
    return None


def save_user(credentials: UserCredentials, account: str, folder: Path | None = None) -> Path:
    folder = folder or token_dir()
    info = json.loads(credentials.to_json())
    info.update(type="authorized_user", account=account)
    path = folder / USER_TOKEN_FILE
    write_private(path, json.dumps(info, indent=1))
    (folder / SERVICE_ACCOUNT_FILE).unlink(missing_ok=True)
    return path


def save_service_account(key_file: Path, folder: Path | None = None) -> ServiceAccountIdentity:
    """Check a service-account key and keep a private copy of it in the token folder."""
    try:
        text = key_file.read_text(encoding="utf-8")
        info = json.loads(text)
    except FileNotFoundError:
        raise AuthError(f"{key_file}: file not found; give the JSON key downloaded for the service account") from None
    except (ValueError, UnicodeDecodeError):
        raise AuthError(f"{key_file}: not JSON; give the JSON key downloaded for the service account") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise AuthError(
            f"{key_file}: not a service-account key (its 'type' must be 'service_account'); "
            "create a JSON key under IAM & Admin > Service accounts > Keys"
        )
    try:
        credentials = service_account.Credentials.from_service_account_info(info)
    except (ValueError, KeyError) as e:
        raise AuthError(f"{key_file}: the key is incomplete or damaged ({e}); download a new JSON key") from None
    folder = folder or token_dir()
    path = folder / SERVICE_ACCOUNT_FILE
    write_private(path, text)
    (folder / USER_TOKEN_FILE).unlink(missing_ok=True)
    return ServiceAccountIdentity(credentials, path)


# -- the installed-app flow ------------------------------------------------------------------
def authorize_installed_app(
    client_secrets: Path,
    *,
    scopes: list[str] | None = None,
    open_browser: bool = True,
    read_redirect: Callable[[str], str] = input,
    announce: Callable[[str], None] = print,
) -> UserCredentials:
    """Run Google's installed-app flow and return the person's credentials.

    With a browser: a one-shot server on a free loopback port receives the redirect.
    Without (``open_browser=False``, a headless machine): the URL is printed, the person
    opens it anywhere, and pastes back the address the browser ended on (that page does
    not load, but its address carries the code).
    """
    from google_auth_oauthlib.flow import InstalledAppFlow
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets), scopes=scopes or SCOPES)
    except FileNotFoundError:
        raise AuthError(
            f"{client_secrets}: file not found; download the OAuth client JSON (see docs/google.md)"
        ) from None
    except (ValueError, KeyError):
        raise AuthError(
            f"{client_secrets}: not an OAuth client file of type 'Desktop app'; create one under "
            "APIs & Services > Credentials and download its JSON (see docs/google.md)"
        ) from None
    token_uri = flow.client_config["token_uri"]
    try:
        with _loopback_http_allowed(token_uri):
            if open_browser:
                return flow.run_local_server(
                    host="localhost",
                    port=0,
                    open_browser=True,
                    authorization_prompt_message="If no browser opened, visit this URL to authorise timeaudit:\n{url}",
                    success_message="timeaudit is authorised; you can close this tab.",
                    prompt="consent",
                )
            flow.redirect_uri = "http://localhost:1/"
            url, _ = flow.authorization_url(prompt="consent")
            announce(
                "Open this URL in a browser on any machine and allow access:\n"
                f"{url}\n"
                "The browser then fails to load a http://localhost:1/ page; copy that page's address."
            )
            pasted = read_redirect("Paste the address here: ").strip()
            if "code=" in pasted:
                flow.fetch_token(authorization_response=pasted.replace("http://", "https://", 1))
            elif pasted:
                flow.fetch_token(code=pasted)
            else:
                raise AuthError("no address pasted; run `timeaudit auth google --no-browser` again")
            return flow.credentials
    except OAuth2Error as e:
        raise AuthError(f"Google did not grant access ({e.error}: {e.description or 'no detail'}); {REAUTH}") from None


def token_info(credentials: UserCredentials) -> dict:
    """The credentials as an ``authorized_user`` file's fields (what an IMAP token_file holds)."""
    return json.loads(credentials.to_json())


# -- recognising a refused credential -----------------------------------------------------------
def refused(e: BaseException) -> bool:
    """True when ``e`` means the credentials themselves were refused (not a passing fault)."""
    if isinstance(e, RefreshError):
        return not getattr(e, "retryable", False)
    if isinstance(e, HttpError):
        return int(getattr(e.resp, "status", 0) or 0) == 401
    return False


def describe_refusal(e: BaseException) -> str:
    """A short, token-free description of why Google refused."""
    if isinstance(e, RefreshError):
        data = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], dict) else {}
        if data.get("error"):
            detail = data.get("error_description") or ""
            return f"{data['error']}{': ' + detail if detail else ''}"
        return str(e.args[0]) if e.args else "token refresh failed"
    if isinstance(e, TransportError):
        return f"token endpoint unreachable ({e})"
    return "401 Invalid Credentials"
