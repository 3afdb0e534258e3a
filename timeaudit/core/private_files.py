"""Files holding secrets (tokens, passwords) must be readable by their owner only.

``check_private`` is the one test of that; ``read_secret`` reads a password file a source's
settings name (IMAP, CalDAV) after checking it. POSIX permissions only: on Windows nothing is
checked.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from timeaudit.core.errors import UserError

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
