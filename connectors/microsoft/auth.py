"""Microsoft 365 credentials through MSAL: the device-code flow for one person (delegated
``Calendars.Read`` and ``Mail.ReadBasic``; MSAL adds ``offline_access``) and client
credentials (a client secret or a certificate) for an organisation (application
``Calendars.Read`` and ``Mail.ReadBasic.All``, granted by an administrator).

Everything lives in the token folder (the user's config folder, or ``$TIMEAUDIT_TOKEN_DIR``),
never in the repository or the data folder, written whole with mode 0600:
``microsoft.json`` (which app, which tenant, which mode, whose), ``microsoft-token-cache.json``
(MSAL's token cache, delegated) and a private copy of the client secret or certificate.

``TIMEAUDIT_MICROSOFT_AUTHORITY`` replaces ``https://login.microsoftonline.com`` (a national
cloud, a proxy, the tests' stand-in); MSAL only accepts an https authority.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from timeaudit.core.private_files import TOKEN_DIR_ENV as TOKEN_DIR_ENV  # the tests point it elsewhere
from timeaudit.core.private_files import token_dir, write_private

AUTHORITY_ENV = "TIMEAUDIT_MICROSOFT_AUTHORITY"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DELEGATED_SCOPES = ["Calendars.Read", "Mail.ReadBasic"]  # + offline_access, which MSAL always adds
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"  # Exchange Online's IMAP (`timeaudit auth imap`)
APPLICATION_PERMISSIONS = ["Calendars.Read", "Mail.ReadBasic.All"]
IDENTITY_FILE = "microsoft.json"
CACHE_FILE = "microsoft-token-cache.json"
SECRET_FILE = "microsoft-client-secret.txt"
CERTIFICATE_FILE = "microsoft-certificate.pem"
REAUTH = "re-run `timeaudit auth microsoft`"


class AuthError(Exception):
    """A credential problem the user fixes; the message says how."""


class TokenRefused(AuthError):
    """Microsoft refused the saved credentials (revoked, expired, secret rotated)."""


def authority_root() -> str:
    return (os.environ.get(AUTHORITY_ENV, "").strip() or DEFAULT_AUTHORITY).rstrip("/")


@dataclass
class Identity:
    """The saved Microsoft identity: one person (``delegated``) or an app (``application``)."""

    mode: str  # "delegated" | "application"
    client_id: str
    tenant: str
    folder: Path
    account: str = ""  # the signed-in person (delegated)
    thumbprint: str = ""  # certificate credential (application)
    _app: object = field(default=None, repr=False)
    _cache: object = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # --workers share one app

    @property
    def path(self) -> Path:
        return self.folder / IDENTITY_FILE

    @property
    def authority(self) -> str:
        return f"{authority_root()}/{self.tenant}"

    @property
    def personal(self) -> bool:
        return self.mode == "delegated"

    def save(self) -> Path:
        info = {"mode": self.mode, "client_id": self.client_id, "tenant": self.tenant, "account": self.account}
        if self.thumbprint:
            info["thumbprint"] = self.thumbprint
        write_private(self.path, json.dumps(info, indent=1))
        return self.path

    # -- MSAL applications ------------------------------------------------------------------
    def app(self):
        with self._lock:
            return self._app or self._make_app()

    def _make_app(self):
        import msal

        if self.personal:
            cache = msal.SerializableTokenCache()
            cache_path = self.folder / CACHE_FILE
            if cache_path.is_file():
                cache.deserialize(cache_path.read_text(encoding="utf-8"))
            self._cache = cache
            self._app = msal.PublicClientApplication(
                self.client_id, authority=self.authority, token_cache=cache, instance_discovery=False
            )
        else:
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                authority=self.authority,
                client_credential=self._credential(),
                instance_discovery=False,
            )
        return self._app

    def _credential(self) -> str | dict:
        if self.thumbprint:
            pem = (self.folder / CERTIFICATE_FILE).read_text(encoding="utf-8")
            return {"private_key": pem, "thumbprint": self.thumbprint}
        secret = self.folder / SECRET_FILE
        if not secret.is_file():
            raise AuthError(f"{secret}: the client secret is missing; {REAUTH} --client-secret-file FILE")
        return secret.read_text(encoding="utf-8").strip()

    def save_cache(self) -> None:
        """Keep MSAL's cache when it changed (a refreshed token), so the next run does not refresh."""
        with self._lock:
            if self._cache is not None and self._cache.has_state_changed:
                write_private(self.folder / CACHE_FILE, self._cache.serialize())
                self._cache.has_state_changed = False

    def token(self, resource: str) -> str:
        """An access token for Graph (``resource`` is its root URL); MSAL refreshes as needed.
        ``TokenRefused`` when Microsoft refuses the saved credentials."""
        try:
            app = self.app()
            if self.personal:
                accounts = app.get_accounts(username=self.account or None) or app.get_accounts()
                if not accounts:
                    raise TokenRefused(f"{self.folder / CACHE_FILE}: no signed-in account in the token cache; {REAUTH}")
                result = app.acquire_token_silent_with_error(graph_scopes(resource), account=accounts[0])
                if result is None:
                    raise TokenRefused(f"{self.folder / CACHE_FILE}: the saved sign-in has expired; {REAUTH}")
            else:
                result = app.acquire_token_for_client(scopes=[f"{resource.rstrip('/')}/.default"])
        except ValueError as e:  # MSAL: a bad authority or an unusable certificate
            raise AuthError(f"{self.path}: MSAL could not use these credentials ({e}); {REAUTH}") from None
        except OSError as e:  # requests' ConnectionError and SSLError are OSErrors
            raise AuthError(
                f"the sign-in endpoint {self.authority} did not answer ({type(e).__name__}); check that this machine "
                "can reach it (network, proxy, TIMEAUDIT_MICROSOFT_AUTHORITY), then sync again"
            ) from None
        if "access_token" not in result:
            raise TokenRefused(f"Microsoft refused the saved credentials ({describe(result)}); {self.fix()}")
        self.save_cache()
        return result["access_token"]

    def fix(self) -> str:
        if self.personal:
            return "re-run `timeaudit auth microsoft --device-code --client-id ID`"
        return (
            "create a new client secret (or certificate) for the app in Entra ID and re-run "
            "`timeaudit auth microsoft --client-id ID --tenant TENANT --client-secret-file FILE`"
        )


def graph_scopes(resource: str) -> list[str]:
    """The delegated scopes, qualified with the Graph root unless it is Microsoft's global one."""
    root = resource.rstrip("/")
    if root == "https://graph.microsoft.com":
        return list(DELEGATED_SCOPES)
    return [f"{root}/{scope}" for scope in DELEGATED_SCOPES]


def describe(result: dict) -> str:
    """A token-free description of an MSAL error answer."""
    error = result.get("error", "unknown_error")
    detail = str(result.get("error_description") or "").splitlines()[0:1]
    return f"{error}: {detail[0]}" if detail else str(error)


def load_identity(folder: Path | None = None) -> Identity | None:
    """The saved identity, or None when `timeaudit auth microsoft` has not been run."""
    folder = folder or token_dir()
    path = folder / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return Identity(
            mode=info["mode"],
            client_id=info["client_id"],
            tenant=info["tenant"],
            folder=folder,
            account=info.get("account", ""),
            thumbprint=info.get("thumbprint", ""),
        )
    except (ValueError, KeyError) as e:
        raise AuthError(f"{path}: not a usable identity file ({e}); {REAUTH}") from None


def _clear(folder: Path) -> None:
    for name in (IDENTITY_FILE, CACHE_FILE, SECRET_FILE, CERTIFICATE_FILE):
        (folder / name).unlink(missing_ok=True)


def sign_in_device_code(
    client_id: str,
    tenant: str = "organizations",
    *,
    resource: str,
    announce: Callable[[str], None] = print,
    folder: Path | None = None,
) -> Identity:
    """One person signs in on any browser with a code; their token cache is saved."""
    folder = folder or token_dir()
    identity = Identity("delegated", client_id, tenant, folder)
    import msal

    cache = msal.SerializableTokenCache()
    result = _device_flow(client_id, identity.authority, graph_scopes(resource), announce, cache)
    claims = result.get("id_token_claims") or {}
    identity.account = str(claims.get("preferred_username") or claims.get("email") or "").lower()
    _clear(folder)
    write_private(folder / CACHE_FILE, cache.serialize())
    identity.save()
    return identity


def _device_flow(
    client_id: str, authority: str, scopes: list[str], announce: Callable[[str], None], cache=None
) -> dict:
    """MSAL's device-code flow: the person signs in on any browser with the code announced."""
    import msal

    try:
        app = msal.PublicClientApplication(client_id, authority=authority, token_cache=cache, instance_discovery=False)
        flow = app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            raise AuthError(
                f"Microsoft did not start a device sign-in ({describe(flow)}); check --client-id and --tenant"
            )
        announce(flow["message"])
        result = app.acquire_token_by_device_flow(flow)
    except ValueError as e:
        raise AuthError(f"the authority {authority} is not usable ({e})") from None
    except OSError as e:
        raise AuthError(f"the sign-in endpoint {authority} did not answer ({type(e).__name__})") from None
    if "access_token" not in result:
        raise AuthError(f"Microsoft did not grant access ({describe(result)}); {REAUTH} --device-code")
    return result


def imap_token_info(client_id: str, tenant: str, *, announce: Callable[[str], None] = print) -> dict:
    """One person's device-code sign-in for Exchange Online's IMAP, as the fields of an IMAP
    token_file (``connectors.imap.oauth``): the tokens, the tenant's token endpoint, the scopes.
    Nothing is saved here, and the Graph sign-in of `timeaudit auth microsoft` is left alone."""
    authority = f"{authority_root()}/{tenant}"
    scopes = [IMAP_SCOPE, "offline_access"]
    result = _device_flow(client_id, authority, [IMAP_SCOPE], announce)
    if not result.get("refresh_token"):
        raise AuthError("Microsoft granted no refresh token; check the app registration allows public client flows")
    expiry = datetime.now(UTC) + timedelta(seconds=int(result.get("expires_in") or 0))
    claims = result.get("id_token_claims") or {}
    return {
        "token": result["access_token"],
        "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "refresh_token": result["refresh_token"],
        "client_id": client_id,
        "token_uri": f"{authority}/oauth2/v2.0/token",
        "scopes": scopes,
        "account": str(claims.get("preferred_username") or claims.get("email") or "").lower(),
    }


def save_application(
    client_id: str,
    tenant: str,
    *,
    secret_file: Path | None = None,
    certificate: Path | None = None,
    thumbprint: str = "",
    resource: str,
    folder: Path | None = None,
) -> Identity:
    """Check an app's credentials (one token request) and keep a private copy of them."""
    folder = folder or token_dir()
    source = secret_file or certificate
    if source is None:
        raise AuthError("give --client-secret-file FILE or --certificate PEM --thumbprint X")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuthError(f"{source}: file not found") from None
    except UnicodeDecodeError:
        raise AuthError(f"{source}: not text; give the secret's value (or a PEM certificate with its key)") from None
    if not text.strip():
        raise AuthError(f"{source}: empty; paste the client secret's value (not its id) into it")
    if certificate and not thumbprint:
        raise AuthError("--certificate needs --thumbprint (the certificate's SHA-1 thumbprint shown in Entra ID)")
    staging = folder / f".staging-{uuid.uuid4().hex}"
    identity = Identity("application", client_id, tenant, staging, thumbprint=thumbprint)
    try:
        write_private(staging / (CERTIFICATE_FILE if certificate else SECRET_FILE), text)
        identity.token(resource)
        _clear(folder)
        for child in staging.iterdir():
            os.replace(child, folder / child.name)
    except TokenRefused as e:
        raise AuthError(str(e).split("; ")[0] + "; check --client-id, --tenant and the secret or certificate") from None
    finally:
        for child in staging.glob("*"):
            child.unlink()
        if staging.exists():
            staging.rmdir()
    identity = Identity("application", client_id, tenant, folder, thumbprint=thumbprint)
    identity.save()
    return identity
