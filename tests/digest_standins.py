"""What the weekly digest is delivered to in the tests: a real SMTP server (aiosmtpd) on
loopback, optionally with STARTTLS and a login, and a loopback HTTP server standing in for
Slack's and Microsoft Teams' incoming webhooks."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from mail_servers import free_port


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpHandler:
    """Keeps every message it accepts; refuses the addresses in ``refuse`` (550)."""

    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if address.lower() in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A running aiosmtpd on 127.0.0.1; ``tls``: (cert, key) PEM files to offer STARTTLS and
    require it, with ``login`` (user, password) required before mail."""

    def __init__(self, refuse: set[str] = frozenset(), tls: tuple[Path, Path] | None = None, login=None):
        self.handler = SmtpHandler(set(refuse))
        self.port = free_port()
        self.login = login
        options = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            options = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if login:
            options |= {"authenticator": self._authenticate, "auth_required": True}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login.decode(), auth_data.password.decode()) == tuple(
            self.login
        )
        return AuthResult(success=ok)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class WebhookServer:
    """Loopback HTTP: every POST's JSON body is kept by path; paths in ``fail`` answer 500."""

    def __init__(self, fail: set[str] = frozenset()):
        self.posts: list[tuple[str, dict]] = []
        self.fail = set(fail)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path in owner.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                owner.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> WebhookServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
