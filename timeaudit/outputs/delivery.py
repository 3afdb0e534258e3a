"""Sending built digests: mail over SMTP (standard library), chat through incoming webhooks.

Every delivery is retried (``digest.attempts``, with a growing pause) unless the server
refused it for good (a 5xx SMTP reply, a 4xx webhook answer other than 429), reported per
recipient, and recorded once it succeeded in ``<data>/state/digests-sent.json`` (0600), so
a second run for the same week sends nothing new, and a run after a partial failure sends
only what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from timeaudit.core.config import Settings, Smtp
from timeaudit.core.errors import UserError
from timeaudit.core.private_files import check_private, read_secret, write_private
from timeaudit.outputs.digest import Digest
from timeaudit.outputs.export import write_atomically

SENT_FILE = "digests-sent.json"


@dataclass(frozen=True)
class Outcome:
    recipient: str  # the address, or the channel
    via: str  # "email" | "slack" | "teams" | "file"
    status: str  # "sent" | "already sent" | "failed" | "withheld" | "written"
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


class Permanent(Exception):
    """A refusal that retrying will not change."""


# -- the record of what was sent -------------------------------------------------------------
class SentLog:
    """week -> recipient key -> when it was sent, kept in the data folder's state (0600)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / SENT_FILE
        self.sent: dict[str, dict[str, str]] = {}
        self._load()

    def _load(self) -> None:
        check_private(self.path, "the record of sent digests")
        try:
            self.sent = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.sent = {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UserError(
                f"{self.path}: not a record of sent digests (damaged?); move it aside to send again"
            ) from None

    @contextlib.contextmanager
    def hold(self) -> Iterator[SentLog]:
        """Only one run sends at a time: two at once could both send what neither has recorded.
        The record is read again once held."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            if os.name != "nt":
                import fcntl

                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UserError(
                        f"{self.path.parent}: another `timeaudit digest` is sending right now; let it finish"
                    ) from None
            self._load()
            yield self
        finally:
            os.close(fd)

    def has(self, week: str, key: str) -> bool:
        return key in self.sent.get(week, {})

    def mark(self, week: str, key: str) -> None:
        self.sent.setdefault(week, {})[key] = datetime.now(UTC).isoformat(timespec="seconds")
        write_private(self.path, json.dumps(self.sent, indent=1, sort_keys=True) + "\n")


# -- transports --------------------------------------------------------------------------------
def send_mail(smtp: Smtp, settings_path: str, message: EmailMessage) -> None:
    """One message through the configured server: implicit TLS, STARTTLS, or plain to a
    loopback relay; login when ``username`` is set (password from a 0600 file)."""
    ca = smtp.file(smtp.ca_file, settings_path)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    try:
        if smtp.security == "tls":
            conn = smtplib.SMTP_SSL(smtp.host, smtp.server_port(), timeout=smtp.timeout_seconds, context=context)
        else:
            conn = smtplib.SMTP(smtp.host, smtp.server_port(), timeout=smtp.timeout_seconds)
        with conn:
            if smtp.security == "starttls":
                conn.starttls(context=context)
            if smtp.username:
                password_file = smtp.file(smtp.password_file, settings_path)
                if password_file is None:
                    raise UserError("digest.smtp.password_file: not set; name a file (mode 0600) holding the password")
                conn.login(smtp.username, read_secret(password_file, "the SMTP password file"))
            conn.send_message(message)
    except smtplib.SMTPRecipientsRefused as e:
        raise Permanent(f"refused: {_replies(e.recipients)}") from None
    except smtplib.SMTPAuthenticationError as e:
        raise Permanent(f"login refused ({e.smtp_code}); check digest.smtp.username and the password file") from None
    except smtplib.SMTPResponseException as e:
        text = f"{e.smtp_code} {_decode(e.smtp_error)}"
        if 500 <= e.smtp_code < 600:
            raise Permanent(text) from None
        raise OSError(text) from None


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _replies(refused: dict) -> str:
    return "; ".join(f"{who}: {code} {_decode(text)}" for who, (code, text) in refused.items())


def post_webhook(url: str, payload: dict, timeout: float = 30) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as e:
        text = f"HTTP {e.code}"
        if 400 <= e.code < 500 and e.code != 429:
            raise Permanent(text) from None
        raise OSError(text) from None


def attempt(send: Callable[[], None], attempts: int, pause: float, sleep=time.sleep) -> str:
    """Run ``send`` up to ``attempts`` times; "" when it succeeded, else the last error."""
    error = ""
    for n in range(attempts):
        try:
            send()
            return ""
        except Permanent as e:
            return str(e)
        except (OSError, smtplib.SMTPException) as e:  # network trouble, timeouts, 4xx replies
            error = str(e) or type(e).__name__
            if n + 1 < attempts:
                sleep(pause * (2**n))
    return f"{error} (after {attempts} attempts)"


# -- delivering --------------------------------------------------------------------------------
def check_ready(digests: list[Digest], settings: Settings) -> None:
    """Refuse before sending anything when a transport the digests need is not configured."""
    if any(d.message is not None for d in digests) and not settings.digest.smtp.host:
        raise UserError("digest.smtp.host: not set; name the mail server in timeaudit.toml (or use --dry-run DIR)")
    for d in digests:
        channel = d.recipient.channel
        if channel is not None and d.payload is not None:
            path = channel.file(channel.webhook_file, settings.path)
            read_secret(path, f"the {channel.kind} webhook file of team {channel.team}")


def deliver(
    digests: list[Digest],
    settings: Settings,
    log: SentLog,
    report: Callable[[Outcome], None] | None = None,
    sleep=time.sleep,
) -> list[Outcome]:
    """Send every digest not yet recorded as sent for its week; one outcome per recipient."""
    check_ready(digests, settings)
    cfg = settings.digest
    outcomes = []
    for d in digests:
        r = d.recipient
        via = r.channel.kind if r.channel else "email"
        if d.withheld:
            outcome = Outcome(r.address, via, "withheld", d.withheld)
        elif d.already_sent or log.has(d.week, r.key):
            outcome = Outcome(r.address, via, "already sent", f"for {d.week}")
        else:
            if r.channel:
                url = read_secret(r.channel.file(r.channel.webhook_file, settings.path), "the webhook file")
                error = attempt(
                    lambda d=d, url=url: post_webhook(url, d.payload), cfg.attempts, cfg.retry_seconds, sleep
                )
            else:
                error = attempt(
                    lambda d=d: send_mail(cfg.smtp, settings.path, d.message), cfg.attempts, cfg.retry_seconds, sleep
                )
            if error:
                outcome = Outcome(r.address, via, "failed", error)
            else:
                log.mark(d.week, r.key)
                outcome = Outcome(r.address, via, "sent", d.subject)
        outcomes.append(outcome)
        if report:
            report(outcome)
    return outcomes


def write_dry_run(digests: list[Digest], folder: Path) -> list[Outcome]:
    """Each digest as a file instead of sent: ``.eml`` for mail, ``.json`` for chat (0600)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    outcomes = []
    for d in digests:
        r = d.recipient
        via = r.channel.kind if r.channel else "email"
        if d.withheld:
            outcomes.append(Outcome(r.address, via, "withheld", d.withheld))
            continue
        stem = f"{d.week}-{r.kind}-{r.address}".replace("@", "-at-").replace(":", "-").replace("/", "-")
        if d.message is not None:
            path = folder / f"{stem}.eml"
            write_atomically(path, bytes(d.message))
        else:
            path = folder / f"{stem}.json"
            write_atomically(path, json.dumps(d.payload, indent=1).encode("utf-8"))
        outcomes.append(Outcome(r.address, "file", "written", str(path)))
    return outcomes
