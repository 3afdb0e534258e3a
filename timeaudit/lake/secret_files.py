"""Files holding secrets must be readable by their owner only.

Streamlit's ``secrets.toml`` holds the sign-in (OIDC) client secret and cookie secret; the
token folder holds a Google refresh token or a service-account key. Anyone who can read one
can sign in as the app or read every calendar it reads. timeaudit writes its own tokens with
mode 0600, but a copied or hand-made file can be 0644, so the dashboard refuses to start and
`timeaudit doctor` reports it. POSIX permissions only: on Windows nothing is checked.
"""

from __future__ import annotations

from pathlib import Path

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.private_files import check_private

__all__ = ["APP_ROOT", "check_private", "check_secret_files", "secret_file_problems", "secret_files"]
# The folder `timeaudit dashboard` runs Streamlit in: Streamlit reads <cwd>/.streamlit there.
APP_ROOT = Path(__file__).resolve().parent.parent


def secret_files(*streamlit_files: Path | str, settings: Settings | None = None) -> list[tuple[Path, str]]:
    """Every file timeaudit knows to hold a secret, whether it exists or not, with what it is:
    Streamlit's secrets in the current folder, the folder the dashboard runs in and the home
    folder, plus ``streamlit_files`` (the files Streamlit was told to read), the saved
    Google credentials, the password (and token) files of the IMAP and CalDAV accounts of
    ``settings`` and its Slack token file."""
    from connectors.google.auth import SERVICE_ACCOUNT_FILE, USER_TOKEN_FILE, token_dir

    defaults = [folder / ".streamlit" / "secrets.toml" for folder in (Path.cwd(), APP_ROOT, Path.home())]
    named = [Path(p).expanduser().absolute() for p in streamlit_files]
    found = [(path, "Streamlit's secrets file") for path in dict.fromkeys([*defaults, *named])]
    tokens = token_dir()
    found += [
        (tokens / USER_TOKEN_FILE, "the saved Google token"),
        (tokens / SERVICE_ACCOUNT_FILE, "the saved Google service-account key"),
    ]
    for kind, accounts in (
        ("IMAP", settings.imap if settings else []),
        ("CalDAV", settings.caldav if settings else []),
    ):
        for account in accounts:
            path = account.file(account.password_file, settings.path)
            if path is not None:
                found.append((path, f"the {kind} password of {account.account}"))
            token = account.file(getattr(account, "token_file", ""), settings.path)
            if token is not None:
                found.append((token, f"the {kind} OAuth token of {account.account}"))
    slack = settings.slack.file(settings.path) if settings else None
    if slack is not None:
        found.append((slack, "the Slack token"))
    return found


def secret_file_problems(*streamlit_files: Path | str, settings: Settings | None = None) -> list[str]:
    """One message per secret file that others can read or write."""
    problems = []
    for path, what in secret_files(*streamlit_files, settings=settings):
        try:
            check_private(path, what)
        except UserError as e:
            problems.append(str(e))
    return problems


def check_secret_files(*streamlit_files: Path | str) -> None:
    """Stop (UserError) when any secret file is open to others. `timeaudit dashboard` calls it
    before serving; the app calls it first too, with ``st.get_option("secrets.files")``."""
    problems = secret_file_problems(*streamlit_files)
    if len(problems) > 1:
        raise UserError(f"{problems[0]} ({len(problems) - 1} more: see `timeaudit doctor`)")
    if problems:
        raise UserError(problems[0])
