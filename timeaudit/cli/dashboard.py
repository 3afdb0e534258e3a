"""`timeaudit dashboard`: serve the Streamlit dashboard until stopped, refusing to start while
secrets are readable by others or on an address others can reach without sign-in."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from timeaudit.cli.common import ConfigOption, DataOption, open_workspace, out, user_errors
from timeaudit.core.config import CONFIG_ENV
from timeaudit.core.errors import UserError
from timeaudit.core.sign_in import ALLOW_NETWORK_FLAG
from timeaudit.lake.store import DATA_ENV
from timeaudit.privacy import VIEWER_ENV


@user_errors
def dashboard(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; another than loopback needs sign-in (--secrets) or the flag below."),
    ] = "localhost",
    allow_anyone_on_the_network: Annotated[
        bool,
        typer.Option(
            ALLOW_NETWORK_FLAG,
            help="Serve without sign-in on a --host others can reach: everyone who reaches it sees everything.",
        ),
    ] = False,
    viewer: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Show the dashboard as this roster member sees it (their role), without sign-in. "
            "(default: everything)",
        ),
    ] = None,
    secrets: Annotated[
        Path | None,
        typer.Option(
            help="Streamlit secrets file with an \\[auth] section for sign-in. "
            "(default: ./.streamlit/secrets.toml if it exists)"
        ),
    ] = None,
    data: DataOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the dashboard (Streamlit) on http://localhost:8501 until you press Ctrl+C.

    With an \\[auth] section in the secrets file everyone signs in (OpenID Connect, e.g.
    Google Workspace or Microsoft Entra ID) and sees what their roster role allows; see
    docs/privacy.md. Refuses to start while a secrets file or a saved Google token is readable
    by other users, and on a --host others can reach without sign-in unless told
    --allow-anyone-on-the-network.
    """
    from timeaudit.core.sign_in import check_exposure
    from timeaudit.lake.secret_files import check_secret_files

    lake, settings = open_workspace(data, config)
    lake.check_schema()
    spec = importlib.util.find_spec("dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the dashboard package is not installed; reinstall timeaudit (pip install -e .)")
    # server.py: Streamlit's server for app.py, with the frontend's files answered from memory
    app_file = Path(next(iter(spec.submodule_search_locations))) / "server.py"
    env = dict(os.environ, **{DATA_ENV: str(lake.root.resolve())})
    if settings.path:
        env[CONFIG_ENV] = str(Path(settings.path).resolve())
    env.pop(VIEWER_ENV, None)
    if viewer:
        env[VIEWER_ENV] = viewer.strip().lower()
    secrets = secrets or (Path(".streamlit/secrets.toml") if Path(".streamlit/secrets.toml").is_file() else None)
    if secrets and not secrets.is_file():
        raise UserError(f"--secrets {secrets}: no such file")
    check_secret_files(*([secrets] if secrets else []))
    check_exposure(host, signs_in=bool(secrets) and has_auth_section(secrets), allowed=allow_anyone_on_the_network)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    out.print(f"timeaudit dashboard: http://{shown}:{port}  (data: {lake.root}; Ctrl+C stops it)")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # dashboard/static: the light plotly.js the charts load (dashboard/widgets.py chart)
        "--server.enableStaticServing",
        "true",
        # Served, not edited: no watching of the source files for changes, and no full garbage
        # collection after every page run
        "--server.fileWatcherType",
        "none",
        "--runner.postScriptGC",
        "false",
    ]
    if secrets:  # Streamlit runs in the project folder, so the user's secrets file is named to it
        command += ["--secrets.files", str(secrets.resolve())]
    raise typer.Exit(_run_until_stopped(command, env=env, cwd=app_file.parent.parent))


def has_auth_section(secrets: Path) -> bool:
    """Whether a Streamlit secrets file switches sign-in on (an ``[auth]`` section)."""
    import tomllib

    try:
        return "auth" in tomllib.loads(secrets.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise UserError(f"--secrets {secrets}: not a readable TOML file ({e}); fix it or leave --secrets out") from None


def _run_until_stopped(command: list[str], **popen) -> int:
    """Run ``command`` and wait for it, passing Ctrl+C, SIGTERM and SIGHUP on to it, so that
    stopping the CLI stops the server under it too. Its exit code: 0 when it ended on a signal
    passed on to it (Streamlit's server shuts down cleanly, then raises the signal again, as
    uvicorn does), 128 + signal when something else killed it."""
    started: list[subprocess.Popen] = []
    received: list[int] = []

    def forward(signum, _frame) -> None:
        received.append(signum)
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    stops = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]
    previous = {s: signal.signal(getattr(signal, s), forward) for s in stops}
    try:
        proc = subprocess.Popen(command, **popen)
        started.append(proc)
        if received:  # stopped while it was starting
            proc.send_signal(received[-1])
        code = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(getattr(signal, s), handler)
    if code < 0 and -code in received:
        return 0
    return 128 - code if code < 0 else code
