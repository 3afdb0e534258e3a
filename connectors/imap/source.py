"""IMAP as a source: each ``imap`` account of the settings is one read (all its folders),
its cursor the folders' UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and copies (``connectors.imap.mailbox``).

TLS by default (implicit on 993, or STARTTLS); the password comes from the account's
``password_file`` (mode 0600), or with ``auth = "xoauth2"`` an OAuth access token
(``connectors.imap.oauth``), renewed once when the server refuses it. A host that cannot be
found or reached, a refused login or token and an untrusted certificate end the run with one
line naming the fix; any other failure of one account is recorded and the next account goes on.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from connectors.base import Cursor, OnFailure, Report, Summary
from connectors.imap.folders import chosen_folders
from connectors.imap.mailbox import CONDSTORE, PLAIN, QRESYNC, SOURCE, Counts, Session, read_account
from connectors.imap.oauth import Tokens
from timeaudit.core.config import ImapAccount, Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Message
from timeaudit.core.private_files import read_secret

BATCH_SIZE = 5000
TIMEOUT = 30.0  # seconds to connect and for each answer


class ServerError(UserError):
    """The server cannot be reached, refused the login or its certificate is not trusted."""


@dataclass
class ImapReport(Report):
    commands: int = 0
    folders: int = 0
    changed: int = 0
    fetched: int = 0

    messages = property(lambda self: self.records)

    def line(self) -> str:
        return (
            f"{self.account}: {self.messages:,} messages, {self.folders} folders ({self.changed} changed), "
            f"{self.commands:,} IMAP commands, {self.outcome}"
        )

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.folders} folders, {self.fetched:,} messages read, {state}"


class ImapSummary(Summary):
    def line(self) -> str:
        return (
            f"IMAP: {len(self.reports)} mailbox(es), {self.records:,} messages ({self.added:,} added, "
            f"{self.updated:,} updated, {self.deleted:,} deleted), {self.failed} failed, "
            f"{self.total('commands'):,} IMAP commands"
        )


def ssl_context(ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


def connect(config: ImapAccount, credentials: str | Tokens, ca_file: Path | None, counts: Counts) -> Session:
    """A logged-in client (``credentials``: the password, or the account's OAuth tokens), or a
    ServerError naming the fix."""
    where = f"{config.host}:{config.server_port()}"
    context = ssl_context(ca_file)
    try:
        client = IMAPClient(
            config.host,
            port=config.server_port(),
            ssl=config.security == "tls",
            ssl_context=context,
            timeout=TIMEOUT,
        )
        client.normalise_times = False  # INTERNALDATE with its offset, not as local time
        session = Session(client, counts)
        if config.security == "starttls":
            session.starttls(context)
        if isinstance(credentials, Tokens):
            _sign_in_with_token(session, config, credentials, where)
        else:
            session.login(config.login(), credentials)
    except socket.gaierror:
        raise ServerError(
            f"IMAP host '{config.host}' not found; check the host of imap account {config.account} in the settings"
        ) from None
    except ssl.SSLCertVerificationError as e:
        raise ServerError(
            f"{where}: the server's certificate is not trusted ({e.verify_message}); fix the server's "
            f"certificate, or set ca_file for {config.account} to the CA that signed it"
        ) from None
    except LoginError:
        raise ServerError(
            f"{where} refused the login of '{config.login()}'; check username and the password in "
            f"password_file for {config.account} (with two-step sign-in, an app password)"
        ) from None
    except (ConnectionError, TimeoutError, ssl.SSLError, OSError) as e:
        raise ServerError(
            f"cannot connect to {where} ({e.__class__.__name__}: {e}); check host, port and security "
            f"(tls on 993, starttls on 143) for {config.account}"
        ) from None
    return session


def change_mode(session: Session) -> str:
    """How this server tells what changed (``connectors.imap.mailbox``): QRESYNC where it offers
    it (ENABLE QRESYNC, which enables CONDSTORE too), else CONDSTORE, else neither."""
    capabilities = {c.upper() for c in session.capabilities()}
    if b"ENABLE" in capabilities:
        for mode, extension in ((QRESYNC, b"QRESYNC"), (CONDSTORE, b"CONDSTORE")):
            if extension in capabilities and extension in {e.upper() for e in session.enable(extension.decode())}:
                return mode
    return CONDSTORE if b"CONDSTORE" in capabilities else PLAIN


def _sign_in_with_token(session: Session, config: ImapAccount, tokens: Tokens, where: str) -> None:
    """AUTHENTICATE XOAUTH2; a refused token is renewed (where it can be) and tried once more."""
    try:
        session.oauth2_login(config.login(), tokens.current())
        return
    except LoginError:
        if b"AUTH=XOAUTH2" not in {c.upper() for c in session.client.capabilities()}:
            raise ServerError(
                f'{where} does not offer XOAUTH2 sign-in; set auth = "password" and a password_file '
                f"(an app password) for {config.account}"
            ) from None
        renewed = tokens.renew()
    if renewed is None:
        raise ServerError(tokens.refused(where, config.login(), renewed=False))
    try:
        session.oauth2_login(config.login(), renewed)
    except LoginError:
        raise ServerError(tokens.refused(where, config.login(), renewed=True)) from None


class ImapSource:
    """The ``imap`` accounts of the settings (``accounts``: only those named)."""

    name = SOURCE
    table = "messages"
    write_disposition = "merge"
    held_columns = ("ts", "updated")
    shardable = True
    batch_size = BATCH_SIZE

    def __init__(self, settings: Settings, *, accounts: list[str] | None = None, since: datetime | None = None):
        self.settings, self.since = settings, since
        if since is not None and since > datetime.now(UTC):
            raise UserError("--since is in the future; give the first day to read from, e.g. 2026-01-05")
        configured = {a.account: a for a in settings.imap}
        if not configured:
            raise UserError("no imap account in the settings; add one (see the imap entries of timeaudit.example.toml)")
        unknown = [a for a in accounts or () if a.strip().lower() not in configured]
        if unknown:
            raise UserError(f"--account {unknown[0]}: no imap account has it; add it to the settings")
        chosen = [a.strip().lower() for a in accounts] if accounts else list(configured)
        self.configs = {a: configured[a] for a in chosen}

    def accounts(self) -> list[str]:
        return list(self.configs)

    def parts(self, account: str) -> Sequence[str]:
        return [""]

    def report(self, account: str, part: str) -> ImapReport:
        return ImapReport(account, part)

    def summary(self, reports: Sequence[Report]) -> ImapSummary:
        return ImapSummary(reports)

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Message]:
        """The account's changed messages across its folders since ``cursor.value``."""
        report = report or self.report(account, cursor.part)
        config = self.configs[account]
        credentials: str | Tokens
        if config.auth == "xoauth2":
            credentials = Tokens(config, self.settings.path)
        else:
            path = config.file(config.password_file, self.settings.path)
            if path is None:
                raise ServerError(
                    f"imap account {account}: no password_file; name a file (mode 0600) holding its password"
                )
            credentials = read_secret(path, f"the IMAP password of {account}")
        counts = Counts()

        def show() -> None:
            report.commands, report.folders, report.changed, report.fetched = (
                counts.commands,
                counts.folders,
                counts.changed,
                counts.fetched,
            )
            report.show_progress()

        session = connect(config, credentials, config.file(config.ca_file, self.settings.path), counts)
        try:
            mode = change_mode(session)
            folders = chosen_folders(config, session.list_folders(), self.settings.privacy.store_subjects)
            saved = cursor.value if cursor.value and cursor.value.get("folders") is not None else None
            report.full_sync = saved is None
            since = (
                datetime.fromisoformat(saved["since"]).date()
                if saved and saved.get("since")
                else (self.since or datetime.now(UTC) - timedelta(weeks=config.weeks_back)).date()
            )
            records, new_value = read_account(
                session,
                account=account,
                aliases=tuple(dict.fromkeys([account, *(a.strip().lower() for a in config.aliases)])),
                settings=self.settings,
                folders=folders,
                saved=saved,
                since=since,
                known=cursor.held,
                mode=mode,
                on_progress=show,
            )
            for n, record in enumerate(records, 1):
                yield record
                if n % 500 == 0:
                    show()
            cursor.new_value = new_value
        finally:
            try:
                session.logout()
            except (IMAPClientError, OSError):
                pass
            show()

    def failed(self, report: Report, error: Exception) -> OnFailure | None:
        if isinstance(error, UserError):
            raise error
        if isinstance(error, (IMAPClientError, OSError)):
            report.error = f"{error.__class__.__name__}: {error}"
            return "next account"
        return None

    def finish(self) -> None:
        pass
