"""Who may be let in at all: the signed-in identity with sign-in configured, and the network
the dashboard listens on without it.

With sign-in configured there is no local mode: an identity without an email address, with
one the provider says is unverified, or a deployment without a roster is refused, with the
reason. Without sign-in, the dashboard shows everything, so it listens on loopback only
unless its operator asks for more in so many words.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

from timeaudit.core.errors import UserError
from timeaudit.core.model import Person

ALLOW_NETWORK_FLAG = "--allow-anyone-on-the-network"


class SignInRefused(UserError):
    """Sign-in is configured and this identity (or the deployment) cannot be let in."""


def verified_address(claims: Mapping[str, object]) -> str:
    """The identity's email address, lower-cased; refused without one or when unverified."""
    address = str(claims.get("email") or "").strip().lower()
    if not address:
        raise SignInRefused(
            "your sign-in gave no email address, so timeaudit cannot tell who you are; "
            "ask its administrator to release the email claim (scope 'openid profile email')"
        )
    if str(claims.get("email_verified", True)).strip().lower() == "false":  # some providers send a string
        raise SignInRefused(f"{address} is not verified by your sign-in provider; verify it there, then sign in again")
    return address


def require_roster(people: Sequence[Person]) -> None:
    """With sign-in configured, roles come from the roster: without one nobody is let in."""
    if not people:
        raise SignInRefused(
            "sign-in is configured but the settings name no roster (or it is empty), so nobody's role "
            "is known; the administrator sets `roster` in timeaudit.toml"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches this machine only: every address it resolves to is loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(found) and all(ipaddress.ip_address(a[4][0].split("%")[0]).is_loopback for a in found)


def check_exposure(host: str, signs_in: bool, allowed: bool) -> None:
    """Refuse to serve everything in the data folder to a network without sign-in."""
    if signs_in or allowed or is_loopback(host):
        return
    raise UserError(
        f"--host {host}: without sign-in anyone who can reach it sees everything in the data folder; "
        f"configure sign-in (docs/privacy.md) or pass {ALLOW_NETWORK_FLAG}"
    )
