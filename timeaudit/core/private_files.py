"""Files holding secrets (tokens, passwords) must be readable by their owner only.

``token_dir`` is where sign-in tokens live (the user's config folder, or
``$TIMEAUDIT_TOKEN_DIR``; never the repository or the data folder) and ``write_private``
writes a file there whole, 0600 in a 0700 folder. ``check_private`` is the one test;
``read_secret`` reads a password file a source's settings name (IMAP, CalDAV) after checking
it. POSIX permissions only: on Windows nothing is checked.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import platformdirs

from timeaudit.core.errors import UserError

TOKEN_DIR_ENV = "TIMEAUDIT_TOKEN_DIR"
_OTHERS_READ = stat.S_IRGRP | stat.S_IROTH
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def check_private(path: Path, what: str) -> None:
    """Raise a UserError when group or others can read or write ``path``; a missing file passes."""
    if os.name == "nt":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & (_OTHERS_READ | _OTHERS_WRITE):
        can = "readable" if mode & _OTHERS_READ else "writable"
        raise UserError(f"{path}: {what} is {can} by other users (mode {mode:04o}); run `chmod 600 {path}`")


def read_secret(path: Path, what: str) -> str:
    """The secret in ``path`` (its first line), after checking only its owner can read it."""
    if not path.is_file():
        raise UserError(f"{path}: {what} not found; write the password into it and run `chmod 600 {path}`")
    check_private(path, what)
    lines = path.read_text(encoding="utf-8").splitlines()
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise UserError(f"{path}: {what} is empty; write the password (or app password) on its first line")
    return secret


def token_dir() -> Path:
    override = os.environ.get(TOKEN_DIR_ENV, "").strip()
    return Path(override).expanduser() if override else Path(platformdirs.user_config_dir("timeaudit"))


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
