"""Which IMAP folders a sync reads and what each says about its messages.

A folder's role comes from its SPECIAL-USE flag (RFC 6154: \\Sent, \\Archive, \\Junk, \\Trash,
\\Drafts) and, when the server gives none, from its name as the mail-file import tells it
(``connectors.mail.folders.ROLES``), so mail in a Sent folder is sent mail either way. Junk and
trash are skipped by default, drafts always (as Gmail's API and the import leave them out). A
folder's identity in the lake is a digest of the server, account and folder name
(``mailbox:<digest>``, as the import's labels), never its name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from connectors.mail.folders import ROLES
from timeaudit.core.config import ImapAccount

NOT_SELECTABLE = frozenset({b"\\noselect", b"\\nonexistent"})
DRAFTS, JUNK, TRASH, SENT = b"\\drafts", b"\\junk", b"\\trash", b"\\sent"


@dataclass(frozen=True)
class ImapFolder:
    name: str
    labels: tuple[str, ...]  # its role (INBOX, SENT) where it has one, its name where kept, its identity

    @property
    def key(self) -> str:
        """Its identity (``folder_key``): what the cursor knows it by, never its name."""
        return self.labels[-1]


def folder_role(name: str, flags: Iterable[bytes]) -> str | None:
    """The folder's role: "SENT", "INBOX", "" (left out: drafts, junk, trash) or None (none)."""
    flags = {f.lower() for f in flags}
    if SENT in flags:
        return "SENT"
    if flags & {DRAFTS, JUNK, TRASH}:
        return ""
    if name.upper() == "INBOX":
        return "INBOX"
    last = name.replace(".", "/").rpartition("/")[2].strip().lower()
    return ROLES.get(last)


def folder_key(account: ImapAccount, name: str) -> str:
    digest = hashlib.sha256(f"imap\0{account.host}\0{account.login()}\0{name}".encode("utf-8", "surrogateescape"))
    return "mailbox:" + digest.hexdigest()[:20]


def chosen_folders(
    account: ImapAccount, listed: Iterable[tuple[tuple[bytes, ...], bytes, str]], keep_names: bool
) -> list[ImapFolder]:
    """The folders of ``list_folders`` this account's sync reads, in the server's order."""
    found = []
    for flags, _, name in listed:
        lowered = {f.lower() for f in flags}
        if lowered & NOT_SELECTABLE:
            continue
        if account.folders and name not in account.folders:
            continue
        if name in account.skip_folders:
            continue
        role = folder_role(name, flags)
        if role == "" and (lowered & {DRAFTS} or account.skip_junk_and_trash or not lowered & {JUNK, TRASH}):
            continue  # drafts always; junk and trash unless asked for
        labels = (*filter(None, [role]), *((name,) if keep_names else ()), folder_key(account, name))
        found.append(ImapFolder(name, labels))
    return found
