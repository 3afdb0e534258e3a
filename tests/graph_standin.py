"""A local stand-in for Microsoft Graph v1.0 and the Microsoft identity platform's token
endpoints, served over TLS on 127.0.0.1 with a throwaway certificate authority made here
(MSAL refuses an http:// authority); clients trust it through ``REQUESTS_CA_BUNDLE``.

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``, ``POST /{tenant}/oauth2/v2.0/devicecode``
  and ``POST /{tenant}/oauth2/v2.0/token`` (device code, refresh token, client credentials with
  a secret or a certificate's assertion). A revoked refresh token or a wrong secret gets 400
  ``invalid_grant`` / 401 ``invalid_client``; an unknown access token gets 401 from Graph.
- ``GET /v1.0/me``; ``GET /v1.0/users/{u}/calendarView/delta`` (window on the first request,
  ``Prefer: odata.maxpagesize``, ``$skiptoken`` pages, ``$deltatoken`` links, 410
  ``SyncStateNotFound`` after ``invalidate``); ``GET /v1.0/users/{u}/mailFolders/{f}`` and
  ``mailFolders?$filter=displayName eq '...'``; ``GET .../mailFolders/{f}/messages/delta``
  (``$select`` required, and a body, bodyPreview or uniqueBody in it refused);
  ``POST /v1.0/$batch`` (at most 20 calls; ``throttle_in_batch`` answers some calls 429).
- Faults: ``fail`` (a status for n requests whose path holds some text, with Retry-After),
  ``forbidden`` mailboxes (403 as an application access policy gives), ``hold`` at the n-th
  Graph request; a log of every request.

Events are held as calendarView returns them (series expanded into occurrences); tests change
them between syncs with ``put``/``remove``; every change gets a sequence number, and a delta
token is the sequence number it was issued at.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import itertools
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
TENANT = "contoso.onmicrosoft.com"
SECRET = "standin-client-secret"
WELL_KNOWN = {"inbox": "Inbox", "sentitems": "Sent Items", "archive": "Archive"}


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "timeaudit test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(t: dt.datetime) -> dict:
    return {"dateTime": t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


@dataclass
class Item:
    data: dict
    seq: int
    removed: bool = False


@dataclass
class Folder:
    id: str
    name: str
    items: dict[str, Item] = field(default_factory=dict)


@dataclass
class Mailbox:
    address: str
    epoch: int = 0  # bumped to expire every delta token issued before
    events: dict[str, Item] = field(default_factory=dict)
    folders: dict[str, Folder] = field(default_factory=dict)


@dataclass
class Fault:
    status: int
    code: str
    times: int
    path: str = "/v1.0/"
    retry_after: str | None = None


@dataclass
class Logged:
    n: int  # number among Graph requests (token requests get 0)
    method: str
    path: str
    query: dict
    headers: dict
    batched: bool = False


class GraphStandIn:
    def __init__(self, folder: Path, page_size: int = 10):
        self.ca, cert, key = make_tls(folder)
        self.page_size = page_size
        self.mailboxes: dict[str, Mailbox] = {}
        self.seq = itertools.count(1)
        self.last_seq = 0
        self.lock = threading.RLock()
        self.log: list[Logged] = []
        self.faults: list[Fault] = []
        self.forbidden: set[str] = set()
        self.throttle_in_batch = 0  # calls inside the next $batch requests answered 429
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (user or "app", expiry)
        self.refresh: dict[str, str] = {}  # refresh token -> user
        self.device_user = ""
        self.secret = SECRET
        self.graph_requests = 0
        self.hold_at: int | None = None
        self.held, self.release = threading.Event(), threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> GraphStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- data -------------------------------------------------------------------------------------
    def mailbox(self, address: str) -> Mailbox:
        with self.lock:
            if address not in self.mailboxes:
                box = Mailbox(address)
                for name, display in WELL_KNOWN.items():
                    box.folders[name] = Folder(f"{address}-{name}-id", display)
                self.mailboxes[address] = box
            return self.mailboxes[address]

    def add_folder(self, address: str, name: str) -> Folder:
        box = self.mailbox(address)
        box.folders[name] = Folder(f"{address}-{name.replace(' ', '_')}-id", name)
        return box.folders[name]

    def _next(self) -> int:
        self.last_seq = next(self.seq)
        return self.last_seq

    def put_event(self, address: str, item: dict) -> None:
        with self.lock:
            self.mailbox(address).events[item["id"]] = Item(dict(item), self._next())

    def remove_event(self, address: str, event_id: str) -> None:
        with self.lock:
            self.mailbox(address).events[event_id] = Item({"id": event_id}, self._next(), removed=True)

    def put_message(self, address: str, folder: str, item: dict) -> None:
        with self.lock:
            self.mailbox(address).folders[folder].items[item["id"]] = Item(dict(item), self._next())

    def remove_message(self, address: str, folder: str, message_id: str) -> None:
        with self.lock:
            items = self.mailbox(address).folders[folder].items
            items[message_id] = Item({"id": message_id}, self._next(), removed=True)

    def invalidate(self, address: str) -> None:
        with self.lock:
            self.mailbox(address).epoch += 1

    def fail(self, status: int, code: str = "", times: int = 1, path: str = "/v1.0/", retry_after=None) -> None:
        self.faults.append(Fault(status, code, times, path, retry_after))

    def hold(self, n: int) -> None:
        self.hold_at, self.graph_requests = n, 0
        self.held.clear()
        self.release.clear()

    def clear_log(self) -> None:
        self.log.clear()

    def graph_log(self) -> list[Logged]:
        return [entry for entry in self.log if entry.n]

    # -- tokens -----------------------------------------------------------------------------------
    def issue(self, who: str, lifetime: float = 3600) -> dict:
        token = "at-" + secrets.token_urlsafe(12)
        self.access[token] = (who, time.time() + lifetime)
        answer = {"token_type": "Bearer", "access_token": token, "expires_in": int(lifetime), "ext_expires_in": 3600}
        if who != "app":
            refresh = "rt-" + secrets.token_urlsafe(12)
            self.refresh[refresh] = who
            now = int(time.time())
            claims = {
                "iss": f"{self.url}{TENANT}/v2.0",
                "aud": CLIENT_ID,
                "sub": who,
                "oid": who,
                "tid": TENANT,
                "preferred_username": who,
                "iat": now,
                "exp": now + 3600,
            }
            answer.update(
                refresh_token=refresh,
                id_token=f"{_b64({'alg': 'none'})}.{_b64(claims)}.",
                client_info=_b64({"uid": who, "utid": TENANT}),
                scope="Calendars.Read Mail.ReadBasic",
            )
        return answer

    def revoke_all(self) -> None:
        self.refresh.clear()
        self.access.clear()

    def expire_access(self) -> None:
        self.access.clear()


def _handler(standin: GraphStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            parts = urllib.parse.urlsplit(self.path)
            if parts.path.endswith("/.well-known/openid-configuration"):
                base = f"{standin.url}{TENANT}"
                return self._send(
                    200,
                    {
                        "issuer": f"{base}/v2.0",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    },
                )
            self._graph("GET", parts, dict(self.headers))

        def do_POST(self):
            parts = urllib.parse.urlsplit(self.path)
            if parts.path.endswith("/oauth2/v2.0/devicecode"):
                standin.log.append(Logged(0, "POST", parts.path, {}, dict(self.headers)))
                self._body()
                return self._send(
                    200,
                    {
                        "device_code": "dc-" + secrets.token_urlsafe(8),
                        "user_code": "ABCD-EFGH",
                        "verification_uri": "https://microsoft.com/devicelogin",
                        "expires_in": 900,
                        "interval": 1,
                        "message": "To sign in, open https://microsoft.com/devicelogin and enter the code ABCD-EFGH.",
                    },
                )
            if parts.path.endswith("/oauth2/v2.0/token"):
                return self._token(parts)
            self._graph("POST", parts, dict(self.headers))

        def _token(self, parts) -> None:
            form = dict(urllib.parse.parse_qsl(self._body().decode()))
            standin.log.append(Logged(0, "POST", parts.path, {"grant_type": form.get("grant_type", "")}, {}))
            grant = form.get("grant_type")
            if form.get("client_id") != CLIENT_ID:
                return self._send(
                    400, {"error": "unauthorized_client", "error_description": "AADSTS700016: unknown app"}
                )
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                return self._send(200, standin.issue(standin.device_user))
            if grant == "refresh_token":
                user = standin.refresh.get(form.get("refresh_token", ""))
                if not user:
                    return self._send(
                        400,
                        {"error": "invalid_grant", "error_description": "AADSTS70008: The refresh token has expired."},
                    )
                return self._send(200, standin.issue(user))
            if grant == "client_credentials":
                ok = form.get("client_secret") == standin.secret or (
                    form.get("client_assertion") and form.get("client_assertion_type", "").endswith("jwt-bearer")
                )
                if not ok:
                    return self._send(
                        401,
                        {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."},
                    )
                return self._send(200, standin.issue("app"))
            return self._send(400, {"error": "unsupported_grant_type"})

        # -- Graph ---------------------------------------------------------------------------------
        def _graph(self, method: str, parts, headers: dict) -> None:
            query = dict(urllib.parse.parse_qsl(parts.query))
            body = self._body() if method == "POST" else b""
            with standin.lock:
                standin.graph_requests += 1
                n = standin.graph_requests
                standin.log.append(Logged(n, method, parts.path, query, headers))
            if standin.hold_at is not None and n == standin.hold_at:
                standin.held.set()
                standin.release.wait(60)
            auth = headers.get("Authorization", "")
            who, expiry = standin.access.get(auth.removeprefix("Bearer "), ("", 0))
            if not who or expiry < time.time():
                return self._send(401, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})
            for fault in standin.faults:
                if fault.times > 0 and fault.path in parts.path:
                    fault.times -= 1
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    return self._send(fault.status, {"error": {"code": fault.code, "message": "injected"}}, extra)
            if method == "POST" and parts.path == "/v1.0/$batch":
                return self._batch(json.loads(body), headers, who)
            status, answer = route(standin, parts.path, query, headers, who)
            self._send(status, answer)

        def _batch(self, payload: dict, headers: dict, who: str) -> None:
            calls = payload.get("requests") or []
            if len(calls) > 20:
                return self._send(400, {"error": {"code": "BadRequest", "message": "more than 20 requests"}})
            responses = []
            for call in calls:
                inner = urllib.parse.urlsplit("/v1.0" + call["url"])
                query = dict(urllib.parse.parse_qsl(inner.query))
                standin.log.append(
                    Logged(-1, call.get("method", "GET"), inner.path, query, call.get("headers") or {}, True)
                )
                if standin.throttle_in_batch > 0:
                    standin.throttle_in_batch -= 1
                    responses.append(
                        {
                            "id": call["id"],
                            "status": 429,
                            "headers": {"Retry-After": "1"},
                            "body": {"error": {"code": "TooManyRequests", "message": "throttled"}},
                        }
                    )
                    continue
                status, answer = route(standin, inner.path, query, dict(headers, **(call.get("headers") or {})), who)
                responses.append({"id": call["id"], "status": status, "body": answer})
            self._send(200, {"responses": responses})

    return Handler


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def _page_size(standin: GraphStandIn, headers: dict) -> int:
    prefer = headers.get("Prefer") or headers.get("prefer") or ""
    for piece in prefer.split(","):
        name, _, value = piece.strip().partition("=")
        if name == "odata.maxpagesize":
            return min(int(value), standin.page_size)
    return standin.page_size


def route(standin: GraphStandIn, path: str, query: dict, headers: dict, who: str) -> tuple[int, dict]:
    segments = [urllib.parse.unquote(s) for s in path.strip("/").split("/")]
    if segments[:2] == ["v1.0", "me"]:
        return 200, {"userPrincipalName": who, "mail": who}
    if len(segments) < 4 or segments[:2] != ["v1.0", "users"]:
        return _error(404, "ResourceNotFound", f"no route {path}")
    user = segments[2].lower()
    if who != "app" and who != user:
        return _error(403, "ErrorAccessDenied", "Access is denied.")
    if user in standin.forbidden:
        return _error(
            403,
            "ErrorAccessDenied",
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
        )
    if user not in standin.mailboxes:
        return _error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
    box = standin.mailboxes[user]
    rest = segments[3:]
    if rest == ["calendarView", "delta"]:
        return _delta(standin, box, "calendar", box.events, query, headers, f"users/{user}/calendarView/delta")
    if rest[0] == "mailFolders":
        if len(rest) == 1:
            wanted = query.get("$filter", "").removeprefix("displayName eq '").removesuffix("'").replace("''", "'")
            found = [{"id": f.id} for f in box.folders.values() if f.name == wanted]
            return 200, {"value": found}
        folder = next((f for k, f in box.folders.items() if rest[1] in (k, f.id)), None)
        if folder is None:
            return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if len(rest) == 2:
            return 200, {"id": folder.id, "displayName": folder.name}
        if rest[2:] == ["messages", "delta"]:
            select = query.get("$select")
            tokened = "$deltatoken" in query or "$skiptoken" in query
            body_asked = any(f in {"body", "bodyPreview", "uniqueBody"} for f in (select or "").split(","))
            if (not tokened and not select) or body_asked:
                return _error(403, "ErrorAccessDenied", "Mail.ReadBasic does not allow the body; select metadata")
            return _delta(
                standin,
                box,
                folder.id,
                folder.items,
                query,
                headers,
                f"users/{user}/mailFolders/{folder.id}/messages/delta",
            )
    return _error(404, "ResourceNotFound", f"no route {path}")


def _in_window(item: dict, start: str, end: str) -> bool:
    if "start" not in item:
        return True
    s = item["start"]["dateTime"][:19] + "Z"
    e = item["end"]["dateTime"][:19] + "Z"
    return e > start and s < end


def _delta(standin, box: Mailbox, scope: str, items: dict[str, Item], query: dict, headers: dict, path: str):
    state: dict
    if "$deltatoken" in query or "$skiptoken" in query:
        state = _unb64(query.get("$deltatoken") or query["$skiptoken"])
        if state.get("epoch") != box.epoch or state.get("scope") != scope:
            return _error(410, "SyncStateNotFound", "The sync state generation is not found.")
    else:
        state = {"scope": scope, "epoch": box.epoch, "since_seq": 0, "start": "", "end": "", "received": ""}
        if scope == "calendar":
            if "startDateTime" not in query or "endDateTime" not in query:
                return _error(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required")
            state.update(start=query["startDateTime"], end=query["endDateTime"])
        flt = query.get("$filter", "")
        if flt.startswith("receivedDateTime ge "):
            state["received"] = flt.removeprefix("receivedDateTime ge ")
    with standin.lock:
        if "offset" not in state:  # a new round: what changed since since_seq, up to now
            state.update(offset=0, upto=standin.last_seq)
        full = state["since_seq"] == 0
        chosen = []
        for key in sorted(items):
            item = items[key]
            if not (state["since_seq"] < item.seq <= state["upto"]):
                continue
            if item.removed:
                if not full:
                    chosen.append({"id": key, "@removed": {"reason": "deleted"}})
                continue
            data = item.data
            if scope == "calendar" and not _in_window(data, state["start"], state["end"]):
                continue
            if state["received"] and data.get("receivedDateTime", "") < state["received"]:
                continue
            if "$select" in query or state.get("select"):
                state["select"] = query.get("$select") or state.get("select")
                keep = set(state["select"].split(",")) | {"id"}
                data = {k: v for k, v in data.items() if k in keep}
            chosen.append(data)
    size = _page_size(standin, headers)
    offset = state["offset"]
    page = chosen[offset : offset + size]
    answer: dict = {"value": page}
    base = f"{standin.url}v1.0/{path}"
    if offset + size < len(chosen):
        answer["@odata.nextLink"] = f"{base}?$skiptoken={_b64(dict(state, offset=offset + size))}"
    else:
        nxt = {k: v for k, v in state.items() if k not in ("offset", "upto")}
        nxt["since_seq"] = state["upto"]
        answer["@odata.deltaLink"] = f"{base}?$deltatoken={_b64(nxt)}"
    return 200, answer
