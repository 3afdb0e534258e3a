"""Real mail and calendar servers for the tests: Debian's Dovecot and PyPI's Radicale, each
started on a free loopback port with a throwaway configuration and stopped after the test.

Dovecot runs as the current user; as root (CI), its login and mail processes run as the
package's own unprivileged users (dovenull, dovecot), as Dovecot refuses root for them, so its
folder is made under /tmp (short socket paths, reachable by those users) rather than tmp_path.
Outside CI a missing Dovecot skips its tests with the reason; on CI it fails them (.ci/run
installs dovecot-imapd), as test_browser's ``require_chromium`` does.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


def require_dovecot() -> str:
    if DOVECOT:
        return DOVECOT
    if os.environ.get("CI") == "true":
        pytest.fail("dovecot is missing on CI: .ci/run must install it (apt-get install dovecot-imapd)")
    pytest.skip("Debian's Dovecot is not installed (apt-get install dovecot-imapd); IMAP tests skipped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server ended at start-up: {log.read_text() if log and log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not answer on port {port}")


@dataclass
class Dovecot:
    """A running Dovecot: one passwd-file user per ``users`` entry, Maildirs in ``folder``/mail."""

    folder: Path
    port: int
    tls_port: int
    process: subprocess.Popen
    cert: Path
    offers: str = "qresync"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


# What a server without CONDSTORE and QRESYNC (Exchange, older Courier) announces once logged
# in, and one with CONDSTORE only (Gmail).
PLAIN_CAPABILITY = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS LITERAL+ SPECIAL-USE MOVE"
CAPABILITIES = {"qresync": "", "condstore": PLAIN_CAPABILITY + " CONDSTORE", "plain": PLAIN_CAPABILITY}


def start_dovecot(users: dict[str, str], *, offers: str = "qresync", introspection_url: str | None = None) -> Dovecot:
    """Dovecot on two free loopback ports: plain IMAP (with STARTTLS) and implicit TLS, with a
    self-signed certificate for localhost; the SPECIAL-USE folders Sent, Archive, Junk and Trash.
    ``offers``: "qresync" (Dovecot as it is: CONDSTORE and QRESYNC), "condstore" (it announces
    CONDSTORE only) or "plain" (neither). ``introspection_url``: it
    also takes XOAUTH2 and OAUTHBEARER sign-ins, each bearer token checked by POSTing it to that
    RFC 7662 token-introspection endpoint (Dovecot's oauth2 passdb), whose answer's ``active``
    must be true and ``username`` the login's."""
    binary = require_dovecot()
    folder = Path(tempfile.mkdtemp(prefix="dv"))
    folder.chmod(0o755)
    root = os.getuid() == 0
    me = pwd.getpwuid(os.getuid()).pw_name
    login_user, mail_user = ("dovenull", "dovecot") if root else (me, me)
    mail = folder / "mail"
    mail.mkdir()
    if root:
        shutil.chown(mail, mail_user, mail_user)
    cert, key = _self_signed(folder)
    key.chmod(0o600)
    (folder / "passwd").write_text("".join(f"{user}:{{PLAIN}}{password}\n" for user, password in users.items()))
    oauth2 = ""
    if introspection_url:
        (folder / "oauth2.conf").write_text(
            f"introspection_mode = post\nintrospection_url = {introspection_url}\nforce_introspection = yes\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\ntimeout_msecs = 5000\n"
        )
        oauth2 = f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {folder}/oauth2.conf\n}}"
    port, tls_port = free_port(), free_port()
    config = folder / "dovecot.conf"
    config.write_text(
        f"""
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
instance_name = timeaudit-test-{port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login{" xoauth2 oauthbearer" if introspection_url else ""}
default_internal_user = {me if not root else "dovecot"}
default_internal_group = {grp.getgrgid(pwd.getpwnam(me if not root else "dovecot").pw_gid).gr_name}
default_login_user = {login_user}
mail_location = maildir:{mail}/%u
first_valid_uid = 1
{"imap_capability = " + CAPABILITIES[offers] if CAPABILITIES[offers] else ""}
{oauth2}
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={mail}/%u
}}
service auth {{
  user = {me}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
"""
    )
    process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, process, folder / "dovecot.log")
        wait_for_port(tls_port, process, folder / "dovecot.log")
    except Exception:
        process.kill()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Dovecot(folder, port, tls_port, process, cert, offers)


@dataclass
class Radicale:
    folder: Path
    port: int
    process: subprocess.Popen
    cert: Path | None = None  # its self-signed certificate, when it serves https

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/" if self.cert else f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_radicale(folder: Path, users: dict[str, str], *, tls: bool = False) -> Radicale:
    """Radicale (a subprocess of this Python) on a free loopback port, a plain htpasswd file,
    its collections under ``folder``; ``tls``: https with a self-signed certificate for localhost."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = _self_signed(folder) if tls else (None, None)
    ssl = f"ssl = True\ncertificate = {cert}\nkey = {key}\n" if tls else ""
    (folder / "htpasswd").write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
    port = free_port()
    config = folder / "radicale.conf"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{port}
{ssl}[auth]
type = htpasswd
htpasswd_filename = {folder}/htpasswd
htpasswd_encryption = plain
[storage]
filesystem_folder = {folder}/collections
[rights]
type = owner_only
[logging]
level = warning
"""
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "radicale.log", "wb"),  # noqa: SIM115
    )
    wait_for_port(port, process, folder / "radicale.log")
    return Radicale(folder, port, process, cert)


class TokenServer:
    """An OAuth authorisation server's two endpoints on a free loopback port: ``/introspect``
    (RFC 7662), which Dovecot's oauth2 passdb asks about each bearer token, and ``/token``,
    which renews an access token with a refresh token (RFC 6749, section 6) and rotates the
    refresh token as Microsoft's does. ``revoke`` makes a token inactive (access) or refused
    (refresh); ``requests`` counts what each endpoint was asked. ``also``: the user of an access
    token another authorisation server issued (a stand-in's), or None."""

    def __init__(self, lifetime: int = 3600, also: Callable[[str], str | None] = lambda token: None):
        self.access: dict[str, str] = {}  # access token -> username, while active
        self.refresh: dict[str, str] = {}  # refresh token -> username, while valid
        self.requests = {"/introspect": 0, "/token": 0}
        self.lifetime, self._next, self.also = lifetime, 0, also
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode())
                value = lambda key: form.get(key, [""])[0]  # noqa: E731
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                if self.path == "/introspect":
                    user = server.access.get(value("token")) or server.also(value("token"))
                    self._answer(200, {"active": True, "username": user} if user else {"active": False})
                elif self.path == "/token" and value("grant_type") == "refresh_token":
                    user = server.refresh.pop(value("refresh_token"), None)
                    if user is None:
                        self._answer(400, {"error": "invalid_grant", "error_description": "Token has been revoked."})
                        return
                    access, refresh = server.issue(user)
                    self._answer(200, {"access_token": access, "refresh_token": refresh,
                                       "expires_in": server.lifetime, "token_type": "Bearer"})  # fmt: skip
                else:
                    self._answer(400, {"error": "unsupported_grant_type"})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def issue(self, user: str) -> tuple[str, str]:
        """A new access token and refresh token for ``user``."""
        self._next += 1
        access, refresh = f"at-{self._next}-{secrets.token_hex(8)}", f"rt-{self._next}-{secrets.token_hex(8)}"
        self.access[access], self.refresh[refresh] = user, user
        return access, refresh

    def revoke(self, token: str) -> None:
        self.access.pop(token, None)
        self.refresh.pop(token, None)

    def stop(self) -> None:
        self.http.shutdown()
        self.http.server_close()
