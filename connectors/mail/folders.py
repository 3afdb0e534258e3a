"""The mailboxes in what a mail import is given: a file, a folder, or a whole tree of folders.

A tree is walked whole, each folder one mailbox: Maildir folders (``cur/`` and ``new/``), with
Maildir++ subfolders as Dovecot and Courier keep them (``.Sent``, ``.Archive.2024``) or
nested as Thunderbird and Evolution keep them; mbox files anywhere in it (Thunderbird's
``Inbox`` beside ``Inbox.msf``, ``Archive.sbd/2024``); and folders of message files, one RFC
822 message each, named ``.eml`` or not (MH's numbers, notmuch, plain dumps), told by content.

A mailbox's identity (``Folder.key``) is a digest of its format and its full path (or its path
below a given base, for files uploaded to a temporary folder), never its name alone: two
folders named alike never stand for each other, and a name that says something
("Zanzibar Merger Secret") stays out of the lake's ids. Its name within the tree (``name``) is
a label only where the settings keep subjects; its role (``role``, from the name: Sent, Sent
Items, Gesendet, ...) always counts, so mail in a Sent folder is sent mail.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

SNIFF_BYTES = 1 << 16
MAILDIR_PARTS = ("cur", "new", "tmp")
NOT_MAIL_SUFFIXES = frozenset({".msf", ".dat", ".db", ".json", ".sqlite", ".index", ".log", ".lock", ".txt"})

_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_KNOWN_HEADER = re.compile(rb"^(from|date|message-id|subject|received|return-path|to|mime-version):", re.I | re.M)

# Folder names (the last part of a folder's path, lower case, "|" between them) by role: Sent
# folders make their mail sent mail; drafts, spam and trash are left out, as Gmail's API does.
INBOX_NAMES = "inbox|posteingang|boîte de réception|bandeja de entrada|inkorgen|postvak in"
SENT_NAMES = (
    "sent|sent items|sent messages|sent mail|sent-mail|sentmail|gesendet|gesendete objekte|gesendete elemente"
    "|gesendete nachrichten|envoyés|envoyes|éléments envoyés|messages envoyés|enviados|elementos enviados"
    "|posta inviata|inviata|inviati|verzonden|verzonden items|skickat|skickade objekt|sendt|sendte elementer"
    "|lähetetyt|wysłane|elementy wysłane|odeslané|itens enviados|отправленные|送信済み|已发送"
)
LEFT_OUT_NAMES = (
    "drafts|draft|entwürfe|brouillons|borradores|bozze|concepten|utkast|trash|deleted items|deleted messages"
    "|bin|papierkorb|gelöschte elemente|corbeille|éléments supprimés|papelera|elementos eliminados|cestino"
    "|prullenbak|spam|junk|junk e-mail|junk email|bulk mail|spamverdacht"
)
ROLES: dict[str, str] = {
    **dict.fromkeys(INBOX_NAMES.split("|"), "INBOX"),
    **dict.fromkeys(SENT_NAMES.split("|"), "SENT"),
    **dict.fromkeys(LEFT_OUT_NAMES.split("|"), ""),  # "": the folder is left out
}


@dataclass(frozen=True)
class Folder:
    """One mailbox: where it is, how it is kept ("mbox", "maildir", "files" or "eml"), and its
    name within what was imported (levels joined by "/")."""

    path: Path
    format: str
    name: str
    files: tuple[Path, ...] = field(default=(), repr=False)  # of a "files" folder, in name order
    base: Path | None = None  # what its place is told from; None: the root of the file system

    @property
    def key(self) -> str:
        """The mailbox's identity as a label: a digest of its format and its place."""
        digest = hashlib.sha256(f"{self.format}\0{self.place}".encode("utf-8", "surrogateescape"))
        return "mailbox:" + digest.hexdigest()[:20]

    @property
    def place(self) -> str:
        """Its full path, or its path below ``base``."""
        path = self.path.resolve()
        return path.relative_to(self.base.resolve()).as_posix() if self.base else str(path)

    @property
    def role(self) -> str | None:
        """The label of the folder's role ("SENT", "INBOX"), or None."""
        return ROLES.get(self.name.rpartition("/")[2].strip().lower()) or None


def sniff(head: bytes) -> str:
    """What the start of a file says it is: "mbox", "eml" (one message), or "" (not mail)."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if head.startswith(b"From "):
        return "mbox"
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    return "eml" if _HEADER_LINE.match(block) and _KNOWN_HEADER.search(block) else ""


def tree_folders(root: Path, base: Path | None = None) -> list[Folder]:
    """Every mailbox in the folder ``root`` and its subfolders, in path order (``root`` first);
    their places told from ``base`` (see ``Folder.place``)."""
    found: list[Folder] = []
    for top, subfolders, files in os.walk(root):
        here = Path(top)
        subfolders.sort()
        name = _tree_name(root, here)
        if here != root and _left_out(name):
            subfolders.clear()
            continue
        if any(part in subfolders for part in ("cur", "new")):
            found.append(Folder(here, "maildir", name, base=base))
            subfolders[:] = [s for s in subfolders if s not in MAILDIR_PARTS]  # Maildir++ folders start with "."
            continue
        subfolders[:] = [s for s in subfolders if _walked(here / s)]
        messages, mboxes = _message_files(here, sorted(files))
        if messages:
            found.append(Folder(here, "files", name, tuple(messages), base))
        below = "" if here == root else name
        in_here = (Folder(m, "mbox", _joined(below, _part_name(m.name, mbox=True)), base=base) for m in mboxes)
        found += [folder for folder in in_here if not _left_out(folder.name)]
    return found


def file_folder(path: Path, fmt: str, base: Path | None = None) -> Folder:
    """The mailbox of one mbox or message file given on its own."""
    return Folder(path, fmt, _part_name(path.name, mbox=fmt == "mbox"), base=base)


def _left_out(name: str) -> bool:
    """Drafts, spam and trash folders are not read."""
    return ROLES.get(name.rpartition("/")[2].strip().lower()) == ""


def _walked(folder: Path) -> bool:
    """Whether a subfolder of a folder that is not a Maildir is walked: a hidden one (.git,
    .Trash-1000) only when it is a Maildir."""
    return not folder.name.startswith(".") or any((folder / part).is_dir() for part in ("cur", "new"))


def _message_files(folder: Path, names: list[str]) -> tuple[list[Path], list[Path]]:
    """(message files, mbox files) among ``names`` in ``folder``: .eml files, and any other
    file whose first bytes are an mbox "From " line or message headers."""
    messages, mboxes = [], []
    for name in names:
        path = folder / name
        suffix = path.suffix.lower()
        if name.startswith(".") or suffix in NOT_MAIL_SUFFIXES or not path.is_file():
            continue
        kind = "eml" if suffix == ".eml" else _sniff_file(path)
        if kind == "eml":
            messages.append(path)
        elif kind == "mbox":
            mboxes.append(path)
    return messages, mboxes


def _sniff_file(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return sniff(f.read(4096))
    except OSError:
        return ""


def _tree_name(root: Path, folder: Path) -> str:
    """A folder's name within the tree: its own name for the root; else its path below the
    root, Maildir++ dots and Thunderbird's ".sbd" folders read as levels."""
    if folder == root:
        return _part_name(root.name, mbox=False)
    return "/".join(_part_name(part, mbox=False) for part in folder.relative_to(root).parts)


def _part_name(part: str, *, mbox: bool) -> str:
    if part.lower().endswith(".sbd"):
        return part[:-4]
    if part.startswith(".") and len(part) > 1:  # Maildir++: ".Archive.2024" is Archive/2024
        return "/".join(p for p in part[1:].split(".") if p)
    if mbox and part.lower().endswith(".mbox"):
        return part[:-5]
    return part


def _joined(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name
