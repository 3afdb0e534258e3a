"""The dashboard's web server: Streamlit's own (``st.App``), started by `timeaudit dashboard`.

Streamlit's frontend is some sixty scripts a new tab fetches before it can open its websocket,
and the charts then fetch plotly.js (``widgets.chart``). On a small machine the browser and the
server share the cores, so every millisecond the server spends on those files is taken from
the page being drawn. Three things are done here that ``streamlit run dashboard/app.py``
cannot do, because they must be in place before the first request:

- ``FrontendFiles`` answers the frontend's files from memory, uncompressed: Streamlit's
  static-file route spends CPU on every file (security checks, a thread hop) and gzips the
  app's own static files (plotly.js's basic bundle) on every request. Streamlit serves its
  bundles uncompressed on purpose, for the same reason (its ``starlette_gzip_middleware``).
  Against an empty Streamlit page in the same browser run, this opens the team page's
  websocket about 0.4 s sooner (docs/performance.md); a preload of plotly.js in every page and
  Nagle's algorithm switched off (a private asyncio patch) measured nothing and were removed.
- with sign-in configured, download and media files (``/media/...``) are served only to a
  request that carries the sign-in cookie of an identity the dashboard lets in (``SignedInMedia``):
  Streamlit itself serves them to anyone who has the address.
- when the server starts, the tables every first visitor needs are made in the background:
  the weekly table (read from the stored derived tables when they are current) and the team
  figures, then the last four weeks' audit (``_warm_up``), instead of by whoever opens the
  dashboard first. Whatever is not stored is computed on one classification of the lake's
  records (``data._on_analysis``), which every page and download of that lake version shares.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import mimetypes
import pkgutil
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from streamlit import config, file_util
from streamlit.auth_util import get_cookie_with_chunks, get_origin_from_redirect_uri
from streamlit.web.server.server_util import get_cookie_secret
from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.roster import load_people
from timeaudit.core.sign_in import require_roster, verified_address

APP = Path(__file__).with_name("app.py")
APP_STATIC = Path(__file__).with_name("static")  # served by Streamlit at app/static/
HASHED_CACHE = b"public, immutable, max-age=31536000"  # Streamlit's own for its hashed bundles


@functools.cache
def _frontend_files() -> dict[str, tuple[Path, bytes]]:
    """URL path (without the base path) -> (file, Cache-Control) of every file served from memory:
    listed once, so no request path is ever joined to a folder (nothing to traverse)."""
    files: dict[str, tuple[Path, bytes]] = {}
    bundles = Path(file_util.get_static_dir()) / "static"
    for path in bundles.rglob("*"):
        if path.is_file():
            files["/static/" + path.relative_to(bundles).as_posix()] = (path, HASHED_CACHE)
    for path in APP_STATIC.glob("*"):
        if path.is_file():
            files["/app/static/" + path.name] = (path, b"no-cache")
    return files


@functools.cache
def _file(path: Path) -> tuple[bytes, bytes]:
    """The file's bytes and an ETag of them, so a browser that has it is answered in a few bytes."""
    body = path.read_bytes()
    return body, b'"' + hashlib.sha1(body, usedforsecurity=False).hexdigest().encode() + b'"'


def _content_type(path: Path) -> bytes:
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return (kind + "; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else kind).encode()


class FrontendFiles:
    """ASGI middleware: the frontend's files from memory."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        found = _frontend_files().get(_path(scope))
        if found is not None:
            await _send_file(scope, send, *found)
            return
        await self.app(scope, receive, send)


async def _send_file(scope, send, path: Path, cache_control: bytes) -> None:
    body, etag = _file(path)
    if dict(scope["headers"]).get(b"if-none-match") == etag:
        status, body = 304, b""
    else:
        status = 200
    headers = [(b"etag", etag), (b"cache-control", cache_control)]
    if status == 200:
        headers += [(b"content-type", _content_type(path)), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


MEDIA_PREFIX = "/media/"
FORBIDDEN = b"Sign in to the dashboard to download this file.\n"


class SignedInMedia:
    """ASGI middleware: with sign-in configured, ``/media/...`` (downloads, images) only for a
    request signed in as someone the dashboard lets in; 403 for anyone else."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and _path(scope).startswith(MEDIA_PREFIX) and not _may_fetch_media(scope):
            await _send_forbidden(send)
            return
        await self.app(scope, receive, send)


def _path(scope) -> str:
    base = config.get_option("server.baseUrlPath").strip("/")
    return scope["path"].removeprefix(f"/{base}") if base else scope["path"]


def _may_fetch_media(scope) -> bool:
    from dashboard import data

    if not data.sign_in_configured():
        return True
    claims = signed_in_claims(Request(scope).cookies)
    return bool(claims.get("is_logged_in")) and admitted(claims, data.settings())


def signed_in_claims(cookies: dict[str, str]) -> dict:
    """The identity in Streamlit's sign-in cookie, checked as Streamlit checks it for ``st.user``:
    its signature (the ``cookie_secret``), its age, and the origin it was issued for; {} if any fails."""
    secret = get_cookie_secret()

    def one(name: str) -> bytes | None:
        raw = cookies.get(name)
        return None if raw is None else decode_signed_value(secret, name, raw.encode("latin-1"))

    try:
        payload = json.loads(get_cookie_with_chunks(one, USER_COOKIE_NAME) or b"{}")
    except (UnicodeError, ValueError):
        return {}
    if not isinstance(payload, dict) or payload.get("origin") != get_origin_from_redirect_uri():
        return {}
    return payload


def admitted(claims: dict, settings: Settings) -> bool:
    """Whether the dashboard lets this identity in: a verified address on the roster."""
    try:
        people = load_people(settings)
        require_roster(people)
        address = verified_address(claims)
    except UserError:
        return False
    return any(p.email == address for p in people)


async def _send_forbidden(send) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(FORBIDDEN)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": FORBIDDEN})


WARM_UP_THREAD = "timeaudit-warm-up"


class _QuietWarmUp(logging.Filter):
    """Drops Streamlit's warning that a thread of the server's own (the warm-up, a refresh of
    the figures: ``timeaudit-...``) is not a page run (its spinners)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not threading.current_thread().name.startswith("timeaudit-")


@asynccontextmanager
async def _warm_up_in_background(_app):

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_QuietWarmUp())
    threading.Thread(target=_warm_up, name=WARM_UP_THREAD, daemon=True).start()
    yield


def _warm_up() -> None:
    """What the first page run would do once for the whole process, then the weekly figures
    (every page needs them), then the audit pages' (Time wasters, Customers): the Team page
    never waits for the audit."""
    from dashboard import data

    # Streamlit walks the whole call stack once per process, when the first element is made
    # (a check for running in a REPL): 0.14-0.19 s of the first page run. A placeholder made
    # here, outside any page, pays it off that page's path.
    st.empty()
    _import_page_modules()
    data.warm_up_weekly()
    data.warm_up_audit()


def _import_page_modules() -> None:
    """What the first page run would import: every page's modules (the charts, the pickers,
    plotly) and those of the secret-file check it starts with (Google's token names)."""
    from dashboard import views
    from timeaudit.lake.secret_files import secret_files

    for page in pkgutil.iter_modules(views.__path__):
        importlib.import_module(f"{views.__name__}.{page.name}")
    secret_files()


app = st.App(APP, middleware=[Middleware(SignedInMedia), Middleware(FrontendFiles)], lifespan=_warm_up_in_background)
