"""A local stand-in for Google Calendar API v3 and Google's OAuth 2.0 endpoints.

A real HTTP server on 127.0.0.1 (a free port, one thread per connection), shaped after the
calendar v3 discovery document that ships with google-api-python-client, so the connector
talks to it through the real client library exactly as it talks to Google:

- ``GET /calendar/v3/calendars/{id}`` and ``GET /calendar/v3/calendars/{id}/events`` with
  ``timeMin``/``timeMax``, ``showDeleted``, ``maxResults`` (capped by a small ``page_size`` to
  force many pages), ``pageToken`` and ``syncToken``; a sync token is rejected with
  400 when combined with the parameters Google forbids, and answered with 410
  ``fullSyncRequired`` after ``invalidate_sync_tokens``.
- ``GET /o/oauth2/auth`` (consent, redirecting with a code; PKCE checked) and ``POST /token``
  (authorization code, refresh token, service-account JWT bearer with its signature and
  ``sub`` checked). A revoked refresh token gets 400 ``invalid_grant``; an unknown access
  token gets 401 from the API.
- Error injection (``fail``: any status and reason, a number of times, after some requests,
  with ``Retry-After``), ``hold`` to stop at the n-th API request until released, and a
  log of every request for assertions.

Gmail v1 (``users.*`` under ``/gmail/v1/``, the mailbox state, the quota-unit counter and the
per-user unit limits) lives in ``gmail_standin.GmailApi`` as ``StandIn.gmail``; the batch endpoint (``POST /batch``,
multipart/mixed as the client library sends it) is answered here: every call inside a batch
goes through the same faults, hold, log and quota count as a call of its own, so one call
of a batch can fail while the others succeed.

Events are held as the API returns them with ``singleEvents=true`` (recurring series already
expanded into instances); tests change them between syncs with ``put``/``cancel``/``vanish``.
Run ``python google_standin.py browse URL`` to play a browser that follows the consent redirect.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gmail_standin import GmailApi
from google.auth import jwt
from google.auth.exceptions import GoogleAuthError

CLIENT_ID = "standin-client.apps.googleusercontent.com"
CLIENT_SECRET = "standin-secret"
FORBIDDEN_WITH_SYNC_TOKEN = {
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
}
ERRORS = {
    400: ("global", "invalid", "Invalid Value"),
    401: ("global", "authError", "Invalid Credentials"),
    403: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    404: ("global", "notFound", "Not Found"),
    410: ("calendar", "fullSyncRequired", "Sync token is no longer valid, a full sync is required."),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    503: ("global", "backendError", "Service Unavailable"),
}


def rfc3339(t: datetime) -> str:
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode()


def _unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text.encode()))


@dataclass
class Stored:
    data: dict
    seq: int
    gone: bool = False  # vanished without a trace (e.g. access lost): never listed again


@dataclass
class Calendar:
    id: str
    time_zone: str
    epoch: int = 0  # bumped to expire every sync token issued before
    events: dict[str, Stored] = field(default_factory=dict)


@dataclass
class Fault:
    status: int
    reason: str
    message: str
    times: int
    after: int = 0
    retry_after: str | None = None
    path: str = "/calendar/"
    subject: str | None = None


@dataclass
class Logged:
    n: int  # number among API requests (OAuth requests get 0)
    method: str
    path: str
    query: dict[str, str]
    status: int
    subject: str = ""
    batch: int = 0  # the number of the batch request it came in, 0 for a request of its own


class StandIn:
    """State and server. ``url`` is the root to put in ``TIMEAUDIT_GOOGLE_API_ENDPOINT``."""

    def __init__(self, page_size: int = 5):
        self.page_size = page_size
        self.lock = threading.RLock()
        self._seq = itertools.count(1)
        self.seq = 0
        self.calendars: dict[str, dict[str, Calendar]] = {}  # user -> calendar id -> calendar
        self.forbidden: set[str] = set()  # users the API answers 403 for (not delegated)
        self.undelegated: set[str] = set()  # users the token endpoint refuses to impersonate
        self.access: dict[str, str] = {}  # access token -> subject
        self.refresh: dict[str, str] = {}  # refresh token -> subject
        self.revoked: set[str] = set()
        self.codes: dict[str, tuple[str, str, str]] = {}  # code -> subject, redirect uri, PKCE challenge
        self.service_accounts: dict[str, str] = {}  # client_email -> public key PEM
        self.consent_user = ""
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.api_count = 0
        self.empty_pages = 0  # each listing first serves this many empty pages that carry nextPageToken
        self.gmail = GmailApi()
        self.batches = 0
        self.token_scopes: dict[str, str] = {}  # service-account access token -> the scopes granted
        self.code_scopes: dict[str, str] = {}  # authorization code -> the scopes the person granted
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> StandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/"

    @property
    def token_uri(self) -> str:
        return self.url + "token"

    # -- data -----------------------------------------------------------------------------------
    def _next(self) -> int:
        self.seq = next(self._seq)
        return self.seq

    def add_user(self, email: str, time_zone: str = "Europe/London") -> None:
        with self.lock:
            self.calendars.setdefault(email, {})[email] = Calendar(email, time_zone)

    def add_calendar(self, user: str, calendar_id: str, time_zone: str = "UTC") -> None:
        with self.lock:
            self.calendars[user][calendar_id] = Calendar(calendar_id, time_zone)

    def calendar(self, user: str, calendar_id: str | None = None) -> Calendar:
        return self.calendars[user][calendar_id or user]

    def put(self, user: str, event: dict, calendar_id: str | None = None) -> dict:
        """Insert or replace an event (as the API shows it); stamps ``updated`` and its change number."""
        with self.lock:
            cal = self.calendar(user, calendar_id)
            data = dict(event, updated=rfc3339(datetime.now(UTC)))
            data.setdefault("status", "confirmed")
            data.setdefault("kind", "calendar#event")
            cal.events[data["id"]] = Stored(data, self._next())
            return data

    def cancel(self, user: str, event_id: str, calendar_id: str | None = None) -> None:
        """Delete an event the way Google reports it: status cancelled, listed to incremental syncs."""
        with self.lock:
            stored = self.calendar(user, calendar_id).events[event_id]
            stored.data = dict(stored.data, status="cancelled", updated=rfc3339(datetime.now(UTC)))
            stored.seq = self._next()

    def vanish(self, user: str, event_id: str, calendar_id: str | None = None) -> None:
        """Remove an event with no trace in any listing (what a full resync must notice)."""
        with self.lock:
            self.calendar(user, calendar_id).events[event_id].gone = True

    def invalidate_sync_tokens(self, user: str, calendar_id: str | None = None) -> None:
        with self.lock:
            self.calendar(user, calendar_id).epoch += 1

    def live_ids(self, user: str, calendar_id: str | None = None) -> set[str]:
        cal = self.calendar(user, calendar_id)
        return {i for i, s in cal.events.items() if not s.gone and s.data["status"] != "cancelled"}

    # -- credentials ----------------------------------------------------------------------------
    def grant(self, subject: str) -> tuple[str, str]:
        """Mint an access and a refresh token for ``subject``, as a finished consent would."""
        with self.lock:
            access, refresh = "ya29." + secrets.token_urlsafe(16), "1//" + secrets.token_urlsafe(24)
            self.access[access], self.refresh[refresh] = subject, subject
            return access, refresh

    def revoke(self, refresh_token: str) -> None:
        with self.lock:
            self.revoked.add(refresh_token)
            subject = self.refresh.get(refresh_token)
            for token, who in list(self.access.items()):
                if who == subject:
                    del self.access[token]

    def user_token_info(self, subject: str, *, expired: bool = False) -> dict:
        """A token file's worth of fields (google-auth's authorized_user format)."""
        access, refresh = self.grant(subject)
        return {
            "type": "authorized_user",
            "token": access,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["https://www.googleapis.com/auth/calendar.readonly"],
            "expiry": "2000-01-01T00:00:00Z" if expired else "2100-01-01T00:00:00Z",
            "account": subject,
        }

    def client_secrets(self) -> dict:
        return {
            "installed": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "auth_uri": self.url + "o/oauth2/auth",
                "token_uri": self.token_uri,
                "redirect_uris": ["http://localhost"],
            }
        }

    def service_account_key(self, client_email: str = "timeaudit@standin.iam.gserviceaccount.com") -> dict:
        """A fresh RSA key pair; the stand-in keeps the public half to check JWT signatures."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        self.service_accounts[client_email] = public
        return {
            "type": "service_account",
            "project_id": "standin",
            "private_key_id": "k1",
            "private_key": private,
            "client_email": client_email,
            "client_id": "1234567890",
            "token_uri": self.token_uri,
        }

    # -- faults and observation -----------------------------------------------------------------
    def fail(
        self,
        status: int,
        reason: str | None = None,
        *,
        times: int = 1,
        after: int = 0,
        retry_after: float | None = None,
        path: str = "/calendar/",
        subject: str | None = None,
    ) -> None:
        domain, default_reason, message = ERRORS.get(status, ("global", "error", "Error"))
        with self.lock:
            self.faults.append(
                Fault(
                    status,
                    reason or default_reason,
                    message,
                    times,
                    after,
                    None if retry_after is None else f"{retry_after:g}",
                    path,
                    subject,
                )
            )

    def hold(self, n: int) -> None:
        """Stop the n-th API request (counting from now) until ``release`` is set."""
        with self.lock:
            self.hold_at = self.api_count + n
            self.held.clear()
            self.release.clear()

    def requests(self, path_part: str = "/events", subject: str | None = None) -> list[Logged]:
        with self.lock:
            return [r for r in self.log if path_part in r.path and (subject is None or r.subject == subject)]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- request handling -------------------------------------------------------------------------
    def _fault_for(self, path: str, subject: str) -> Fault | None:
        for fault in self.faults:
            if fault.times <= 0 or fault.path not in path or (fault.subject and fault.subject != subject):
                continue
            if fault.after > 0:
                fault.after -= 1
                continue
            fault.times -= 1
            return fault
        return None

    def handle_api(
        self, path: str, query: dict[str, str], authorization: str, batch: int = 0
    ) -> tuple[int, dict, dict]:
        with self.lock:
            self.api_count += 1
            n = self.api_count
        if self.hold_at == n:
            self.held.set()
            self.release.wait(60)
        with self.lock:
            token = authorization.removeprefix("Bearer ").strip()
            subject = self.access.get(token, "")
            gmail = bool(subject) and path.startswith("/gmail/")
            if gmail and not self.gmail.admit(path, subject, time.monotonic()):
                status, body, headers = _error(429, "rateLimitExceeded", "User-rate limit exceeded")
            else:
                status, body, headers = self._api(path, query, subject, token)
                if gmail:
                    self.gmail.charge(path, subject, status, body)
            self.log.append(Logged(n, "GET", path, query, status, subject, batch))
            return status, body, headers

    def _api(self, path: str, query: dict[str, str], subject: str, token: str = "") -> tuple[int, dict, dict]:
        if not subject:
            return _error(401)
        fault = self._fault_for(path, subject)
        if fault:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return _error(fault.status, fault.reason, fault.message, headers)
        if subject in self.forbidden:
            return _error(403, "forbidden", "Not Authorized to access this resource/api")
        if path.startswith("/gmail/v1/"):
            if token in self.token_scopes and "gmail.metadata" not in self.token_scopes[token]:
                return _error(403, "insufficientPermissions", "Request had insufficient authentication scopes.")
            return self.gmail.handle(path, query, subject)
        parts = path.removeprefix("/calendar/v3/").split("/")
        if len(parts) < 2 or parts[0] != "calendars":
            return _error(404)
        calendar_id = urllib.parse.unquote(parts[1])
        calendar = self.calendars.get(subject, {}).get(subject if calendar_id == "primary" else calendar_id)
        if calendar is None:
            return _error(404)
        if len(parts) == 2:
            return (
                200,
                {
                    "kind": "calendar#calendar",
                    "id": calendar.id,
                    "summary": calendar.id,
                    "timeZone": calendar.time_zone,
                },
                {},
            )
        if parts[2:] == ["events"]:
            return self._list(subject, calendar, query)
        return _error(404)

    def _list(self, subject: str, cal: Calendar, query: dict[str, str]) -> tuple[int, dict, dict]:
        sync_token = query.get("syncToken")
        if sync_token and FORBIDDEN_WITH_SYNC_TOKEN & query.keys():
            return _error(400, "invalid", "Sync token cannot be used with other filtering parameters.")
        fingerprint = hashlib.sha1(
            json.dumps({k: v for k, v in sorted(query.items()) if k != "pageToken"}).encode()
        ).hexdigest()[:12]
        state = {"snap": self.seq, "offset": 0, "empties": 0, "q": fingerprint}
        if query.get("pageToken"):
            try:
                state = _unb64(query["pageToken"])
            except ValueError:
                return _error(400, "invalid", "Invalid page token.")
            if state.get("q") != fingerprint:
                return _error(400, "invalid", "Page token does not match the query.")
        since = None
        if sync_token:
            try:
                token = _unb64(sync_token)
            except ValueError:
                return _error(400, "invalid", "Invalid sync token value.")
            if token["cal"] != f"{subject}/{cal.id}" or token["epoch"] != cal.epoch:
                return _error(410)
            since = token["seq"]
        items = []
        for stored in sorted(cal.events.values(), key=lambda s: s.data["id"]):
            if stored.gone or stored.seq > state["snap"]:
                continue
            if since is not None:
                if stored.seq <= since:
                    continue
            else:
                if stored.data["status"] == "cancelled" and query.get("showDeleted") != "true":
                    continue
                if not _in_window(stored.data, cal.time_zone, query.get("timeMin"), query.get("timeMax")):
                    continue
            items.append(stored.data)
        size = min(int(query.get("maxResults", "250")), self.page_size, 2500)
        body = {
            "kind": "calendar#events",
            "summary": cal.id,
            "timeZone": cal.time_zone,
            "updated": rfc3339(datetime.now(UTC)),
            "accessRole": "owner",
            "items": [],
        }
        if state["empties"] < self.empty_pages:
            body["nextPageToken"] = _b64(dict(state, empties=state["empties"] + 1))
            return 200, body, {}
        offset = state["offset"]
        body["items"] = items[offset : offset + size]
        if offset + size < len(items):
            body["nextPageToken"] = _b64(dict(state, offset=offset + size))
        else:
            body["nextSyncToken"] = _b64({"cal": f"{subject}/{cal.id}", "epoch": cal.epoch, "seq": state["snap"]})
        return 200, body, {}

    def handle_batch(self, content_type: str, body: bytes, authorization: str) -> tuple[int, bytes, str]:
        """A batch request: each application/http part is answered as a request of its own."""
        with self.lock:
            self.batches += 1
            number = self.batches
            fault = self._fault_for("/batch", self.access.get(authorization.removeprefix("Bearer ").strip(), ""))
        if fault:
            status, error, _ = _error(fault.status, fault.reason, fault.message)
            self.log.append(Logged(0, "POST", "/batch", {}, status, "", number))
            return status, json.dumps(error).encode(), "application/json; charset=UTF-8"
        envelope = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        boundary = "batch_" + secrets.token_hex(8)
        out = []
        for part in envelope.iter_parts():
            text = part.get_payload(decode=True).decode()
            head, _, _ = text.replace("\r\n", "\n").partition("\n\n")
            request_line, *header_lines = head.split("\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
            url = urllib.parse.urlsplit(target)
            status, answer, extra = self.handle_api(
                url.path, _query(url.query), headers.get("authorization", authorization), batch=number
            )
            payload = json.dumps(answer)
            lines = [
                f"HTTP/1.1 {status} {'OK' if status < 400 else 'Error'}",
                "Content-Type: application/json; charset=UTF-8",
            ]
            lines += [f"{name}: {value}" for name, value in extra.items()]
            content_id = (part["Content-ID"] or "<x>").strip("<>")
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n"
                + "\r\n".join(lines)
                + f"\r\n\r\n{payload}\r\n"
            )
        with self.lock:
            self.log.append(Logged(0, "POST", "/batch", {}, 200, "", number))
        return 200, ("".join(out) + f"--{boundary}--\r\n").encode(), f"multipart/mixed; boundary={boundary}"

    def batch_calls(self, number: int) -> list[Logged]:
        with self.lock:
            return [r for r in self.log if r.batch == number and r.n]

    def handle_auth(self, query: dict[str, str]) -> tuple[int, dict, dict]:
        with self.lock:
            if query.get("client_id") != CLIENT_ID or not query.get("redirect_uri"):
                return 400, {"error": "invalid_client"}, {}
            code = secrets.token_urlsafe(12)
            self.codes[code] = (self.consent_user, query["redirect_uri"], query.get("code_challenge", ""))
            self.code_scopes[code] = query.get("scope", "")
            target = (
                query["redirect_uri"]
                + "?"
                + urllib.parse.urlencode(
                    {"state": query.get("state", ""), "code": code, "scope": query.get("scope", "")}
                )
            )
            self.log.append(Logged(0, "GET", "/o/oauth2/auth", query, 302))
            return 302, {}, {"Location": target}

    def handle_token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        with self.lock:
            status, body = self._token(form, basic)
            self.log.append(Logged(0, "POST", "/token", {"grant_type": form.get("grant_type", "")}, status))
            return status, body

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        grant = form.get("grant_type")
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._jwt_grant(form.get("assertion", ""))
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        if grant == "authorization_code":
            found = self.codes.pop(form.get("code", ""), None)
            if not found or found[1] != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
            subject, _, challenge = found
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if challenge and digest != challenge:
                return 400, {"error": "invalid_grant", "error_description": "Invalid code verifier."}
            access, refresh = self.grant(subject)
            return 200, {
                "access_token": access,
                "expires_in": 3599,
                "refresh_token": refresh,
                "scope": self.code_scopes.pop(form.get("code", ""), "")
                or "https://www.googleapis.com/auth/calendar.readonly",
                "token_type": "Bearer",
            }
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh in self.revoked or refresh not in self.refresh:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            access = "ya29." + secrets.token_urlsafe(16)
            self.access[access] = self.refresh[refresh]
            return 200, {
                "access_token": access,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/calendar.readonly",
            }
        return 400, {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant}"}

    def _jwt_grant(self, assertion: str) -> tuple[int, dict]:
        try:
            unverified = jwt.decode(assertion, verify=False)
            public = self.service_accounts[unverified["iss"]]
            # google-auth always addresses the assertion to Google's token endpoint, whatever token_uri says.
            claims = jwt.decode(assertion, certs={"k1": public}, audience="https://oauth2.googleapis.com/token")
        except (ValueError, KeyError, GoogleAuthError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        subject, scope = claims.get("sub", ""), claims.get("scope", "")
        if not ("calendar.readonly" in scope or "gmail.metadata" in scope) or subject in self.undelegated:
            return 401, {
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve "
                "access tokens using this method, or client not authorized for any of the scopes requested.",
            }
        access = "ya29." + secrets.token_urlsafe(16)
        self.access[access] = subject or claims["iss"]
        self.token_scopes[access] = scope
        return 200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}


def _error(
    status: int, reason: str | None = None, message: str | None = None, headers: dict | None = None
) -> tuple[int, dict, dict]:
    """Google's JSON error body: {"error": {"errors": [{domain, reason, message}], code, message}}."""
    domain, default_reason, default_message = ERRORS.get(status, ("global", "error", "Error"))
    message = message or default_message
    body = {
        "error": {
            "errors": [{"domain": domain, "reason": reason or default_reason, "message": message}],
            "code": status,
            "message": message,
        }
    }
    return status, body, headers or {}


def _query(text: str) -> dict[str, str]:
    """Query parameters; a repeated one (``metadataHeaders``) has its values joined by commas."""
    query: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(text):
        query[key] = f"{query[key]},{value}" if key in query else value
    return query


def _parse_when(value: dict, time_zone: str) -> datetime:
    from zoneinfo import ZoneInfo

    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)
    return datetime.fromisoformat(value["date"]).replace(tzinfo=ZoneInfo(value.get("timeZone") or time_zone))


def _in_window(event: dict, time_zone: str, time_min: str | None, time_max: str | None) -> bool:
    """Google's filter: timeMin bounds the end (exclusive), timeMax the start (exclusive)."""
    if "start" not in event:
        return True
    start, end = _parse_when(event["start"], time_zone), _parse_when(event["end"], time_zone)
    if time_min and end <= datetime.fromisoformat(time_min):
        return False
    if time_max and start >= datetime.fromisoformat(time_max):
        return False
    return True


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            payload = json.dumps(body).encode() if body else b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed while we answered

        def _send_raw(self, status: int, payload: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self):  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            query = _query(url.query)
            if url.path == "/o/oauth2/auth":
                self._send(*standin.handle_auth(query))
            elif url.path.startswith(("/calendar/v3/", "/gmail/v1/")):
                self._send(*standin.handle_api(url.path, query, self.headers.get("Authorization", "")))
            else:
                self._send(404, {"error": {"code": 404, "message": "Not Found"}})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if urllib.parse.urlsplit(self.path).path in ("/batch", "/batch/gmail/v1"):
                status, payload, content_type = standin.handle_batch(
                    self.headers.get("Content-Type", ""), raw, self.headers.get("Authorization", "")
                )
                self._send_raw(status, payload, content_type)
                return
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            if urllib.parse.urlsplit(self.path).path != "/token":
                self._send(404, {"error": {"code": 404, "message": "Not Found"}})
                return
            basic = None
            header = self.headers.get("Authorization", "")
            if header.startswith("Basic "):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                basic = (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password))
            self._send(*standin.handle_token(form, basic))

    return Handler


def browse(url: str) -> None:
    """Play the person at the browser: open the consent URL and follow its redirect home."""
    with urllib.request.urlopen(url, timeout=30) as response:
        response.read()


if __name__ == "__main__" and sys.argv[1:2] == ["browse"]:
    browse(sys.argv[2])
