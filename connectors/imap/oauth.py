"""Where an IMAP account's XOAUTH2 access tokens come from (``auth = "xoauth2"``).

- ``token_file``: a JSON file (mode 0600) with the fields of an OAuth ``authorized_user``
  file as Google's libraries write them (what ``timeaudit auth imap`` writes, for Google or
  Microsoft): ``token`` (the access token; ``access_token`` is read
  too), ``expiry``, ``refresh_token``, ``client_id``, ``client_secret`` (none for a public
  client, as most Microsoft app registrations), ``token_uri`` (default: Google's) and
  ``scopes`` (sent with a refresh, as Microsoft's endpoint wants). An access token that
  expires within a minute, or that the server refused, is renewed with the refresh token
  (RFC 6749, section 6) and the file rewritten whole, 0600, keeping a rotated refresh token.
- ``token_command``: a command printing an access token (oama, pizauth, mutt_oauth2.py),
  which keeps its own refresh token; run once per sync.

Every refusal is one line naming the file or command and what to do.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests

from timeaudit.core.config import LOOPBACK_HOSTS, ImapAccount
from timeaudit.core.errors import UserError
from timeaudit.core.private_files import check_private, write_private

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
EARLY = timedelta(seconds=60)  # renew a token this close to its expiry
TIMEOUT = 30.0
COMMAND_TIMEOUT = 120.0  # a token command may ask its own sign-in first
SCOPES = "Gmail: https://mail.google.com/, Outlook: https://outlook.office.com/IMAP.AccessAsUser.All"


class TokenError(UserError):
    """No usable access token: the file, the command or the token endpoint says why."""


def _expiry(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().removesuffix("Z"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


class Tokens:
    """The access tokens of one ``[[imap]]`` account with ``auth = "xoauth2"``."""

    def __init__(self, config: ImapAccount, settings_path: str):
        self.account = config.account
        self.command = config.token_command
        self.path: Path | None = config.file(config.token_file, settings_path)

    @property
    def sign_in_again(self) -> str:
        return f"sign in again: `timeaudit auth imap {self.account}` (or the tool that wrote the file) writes a new one"

    @property
    def origin(self) -> str:
        return f"the token token_command printed for {self.account}" if self.command else f"the token in {self.path}"

    def current(self) -> str:
        """An access token believed valid: the saved one, or a renewed one when it expires soon."""
        if self.command:
            return self._run_command()
        info = self._load()
        token = info.get("token") or info.get("access_token") or ""
        expiry = _expiry(info.get("expiry"))
        if token and (expiry is None or expiry - EARLY > datetime.now(UTC)):
            return token
        if not info.get("refresh_token"):
            raise TokenError(f"{self.path}: the access token expired, with no refresh_token; {self.sign_in_again}")
        return self._refresh(info)

    def renew(self) -> str | None:
        """A new access token after the server refused one, or None when there is no way to get one."""
        if self.command:
            return None
        info = self._load()
        return self._refresh(info) if info.get("refresh_token") else None

    def refused(self, where: str, login: str, renewed: bool) -> str:
        """The one line for a server that refused the token."""
        if self.command:
            return (
                f"{where} refused the XOAUTH2 sign-in of '{login}' with {self.origin} (expired or revoked); "
                "run the command's own sign-in again, then sync"
            )
        if not renewed:
            return (
                f"{where} refused the XOAUTH2 sign-in of '{login}' with {self.origin} (expired or revoked) and "
                f"the file has no refresh_token to renew it; {self.sign_in_again}"
            )
        return (
            f"{where} refused the XOAUTH2 sign-in of '{login}' with a token just renewed from {self.path}; "
            f"check username (the mailbox's address) and that the sign-in granted IMAP access ({SCOPES})"
        )

    # -- the token file ------------------------------------------------------------------
    def _load(self) -> dict:
        assert self.path is not None
        what = f"the IMAP OAuth token of {self.account}"
        if not self.path.is_file():
            raise TokenError(f"{self.path}: {what} not found; {self.sign_in_again}")
        check_private(self.path, what)
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise TokenError(f"{self.path}: not a JSON token file; {self.sign_in_again}") from None
        if not isinstance(info, dict) or not any(info.get(k) for k in ("token", "access_token", "refresh_token")):
            raise TokenError(f"{self.path}: holds neither an access token nor a refresh_token; {self.sign_in_again}")
        return info

    def _token_uri(self, info: dict) -> str:
        uri = str(info.get("token_uri") or GOOGLE_TOKEN_URI)
        parts = urlsplit(uri)
        if parts.scheme == "https" or (parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS):
            return uri
        raise TokenError(f"{self.path}: token_uri {uri} is neither https nor this machine; fix token_uri")

    def _refresh(self, info: dict) -> str:
        uri = self._token_uri(info)
        form = {"grant_type": "refresh_token", "refresh_token": info["refresh_token"]}
        for key in ("client_id", "client_secret"):
            if info.get(key):
                form[key] = info[key]
        scopes = info.get("scopes")
        if scopes:
            form["scope"] = " ".join(scopes) if isinstance(scopes, list) else str(scopes)
        try:
            answer = requests.post(uri, data=form, timeout=TIMEOUT, headers={"Accept": "application/json"})
        except requests.RequestException as e:
            raise TokenError(
                f"the token endpoint {uri} did not answer ({type(e).__name__}); check the network, then sync again"
            ) from None
        try:
            data = answer.json()
        except ValueError:
            data = {}
        if not answer.ok or not data.get("access_token"):
            error = data.get("error") or f"HTTP {answer.status_code}"
            detail = str(data.get("error_description") or "").splitlines()[:1]
            reason = f"{error}: {detail[0]}" if detail else str(error)
            raise TokenError(
                f"{self.path}: {uri} refused the refresh token ({reason}); the sign-in expired or was revoked: "
                f"{self.sign_in_again}"
            )
        info = {k: v for k, v in info.items() if k != "access_token"}
        info["token"] = data["access_token"]
        if data.get("refresh_token"):
            info["refresh_token"] = data["refresh_token"]  # rotated (Microsoft)
        if data.get("expires_in"):
            expiry = datetime.now(UTC) + timedelta(seconds=int(data["expires_in"]))
            info["expiry"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")  # as google-auth writes it
        else:
            info.pop("expiry", None)
        write_private(self.path, json.dumps(info, indent=1))
        return info["token"]

    # -- the token command ---------------------------------------------------------------
    def _run_command(self) -> str:
        where = f"token_command of imap account {self.account}"
        try:
            done = subprocess.run(
                self.command, shell=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise TokenError(f"the {where} took over {COMMAND_TIMEOUT:g} s; run it by hand to see why") from None
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1][:200]
            raise TokenError(
                f"the {where} failed (exit {done.returncode}{': ' + last if last else ''}); run it by hand to fix it"
            )
        lines = done.stdout.strip().splitlines()
        if not lines or not lines[0].strip():
            raise TokenError(f"the {where} printed nothing; it must print the access token on its first line")
        return lines[0].strip()
