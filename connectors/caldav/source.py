"""CalDAV as a source: each calendar of each ``caldav`` account is one read.

The account's calendars are discovered from its URL (the principal, then its
calendar-home-set). A calendar is synced with WebDAV sync-collection (RFC 6578) where the
server offers it; elsewhere the client library lists every object's ETag and reads the
calendar whole only when one changed. Each calendar object is parsed by the same .ics reader
as `timeaudit import ics` (``connectors.ics.reader.iter_ics_records``), so recurrence and time
zones behave identically; events are expanded inside the window ``[today - weeks_back,
today + weeks_ahead)``.

The cursor keeps, per calendar, its sync token and the event ids each object (href) gave, so
an object deleted upstream, or one whose changed recurrence no longer gives an occurrence,
becomes a deletion. A first sync (or one after the token expired) reads the calendar whole
and deletes the lake's events of that calendar and window it no longer holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import caldav
from caldav.lib import error as dav_error

from connectors.base import Cursor, OnFailure, Report, Summary
from connectors.ics.reader import ImportFileError, iter_ics_records
from timeaudit.core.config import CaldavAccount, Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Attendee, Event
from timeaudit.core.private_files import read_secret

SOURCE = "caldav"
PRIMARY_KEY = ("source", "account", "id")  # id: "<calendar key>/<UID>[/<occurrence>]", as the .ics import's
BATCH_SIZE = 5000
TIMEOUT = 30


class ServerError(UserError):
    """The server cannot be reached, refused the login or its certificate is not trusted."""


@dataclass
class CaldavReport(Report):
    objects: int = 0  # calendar objects read
    requests: int = 0  # HTTP requests this calendar's read sent
    skipped: int = 0  # events or objects the .ics reader could not read

    def line(self) -> str:
        skipped = f", {self.skipped} unreadable skipped" if self.skipped else ""
        read = f"{self.records:,} events from {self.objects:,} objects{skipped}, {self.requests} requests"
        return f"{self.account} {self.part}: {read}, {self.outcome}"

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.objects:,} objects, {self.records:,} events {state}"


class CaldavSummary(Summary):
    def line(self) -> str:
        return (
            f"CalDAV: {len(self.reports)} calendar(s), {self.added:,} added, {self.updated:,} updated, "
            f"{self.deleted:,} deleted, {self.failed} failed, {self.total('requests'):,} requests to read them"
        )


class CountingClient(caldav.DAVClient):
    """A CalDAV client that counts the HTTP requests it sends (each read reports its own)."""

    requests = 0

    def request(self, *args, **kwargs):
        self.requests += 1
        return super().request(*args, **kwargs)


def calendar_key(url: str) -> str:
    """A calendar's identity in its events' ids: a digest of its URL (never its name)."""
    return "calendar:" + hashlib.sha256(f"caldav\0{url}".encode()).hexdigest()[:20]


def window(config: CaldavAccount, today: datetime | None = None) -> tuple[datetime, datetime]:
    """``[today - weeks_back, today + weeks_ahead)`` at midnight UTC, as `timeaudit import ics` takes it."""
    day = (today or datetime.now(UTC)).date()
    start = day - timedelta(weeks=config.weeks_back)
    end = day + timedelta(weeks=config.weeks_ahead)
    return datetime.combine(start, time(0), tzinfo=UTC), datetime.combine(end, time(0), tzinfo=UTC)


def server_error(error: Exception, config: CaldavAccount) -> ServerError | None:
    """One line naming the fix for a server that cannot be reached, a refused login or an
    untrusted certificate; None for other failures."""
    chain, e = [], error
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    text = " ".join(f"{type(c).__name__} {c}" for c in chain)
    if any(isinstance(c, dav_error.AuthorizationError) for c in chain) or " 401" in text:
        return ServerError(
            f"{config.url} refused the login of '{config.login()}'; check username and the password in "
            f"password_file for {config.account} (with two-step sign-in: an app password)"
        )
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLCertVerificationError" in text or "certificate verify" in text:
        return ServerError(
            f"{config.url}: the server's certificate is not trusted; fix the server's certificate, "
            f"or set ca_file for {config.account} to the CA that signed it"
        )
    if any(s in text for s in ("NameResolutionError", "Name or service not known", "getaddrinfo", "nodename")):
        return ServerError(
            f"CalDAV host of {config.url} not found; check the url of caldav account {config.account} in the settings"
        )
    if any(s in text for s in ("ConnectionError", "Connection refused", "ConnectTimeout", "Max retries")):
        return ServerError(
            f"cannot connect to {config.url}; check the url (scheme, host, port) of caldav account {config.account}"
        )
    return None


def _event(row: dict, key: str, account: str) -> Event:
    rest = row["id"].partition("/")[2]  # after the feed the reader named the object by
    series = row.get("series_id") or ""
    attendees = [Attendee(**a) if isinstance(a, dict) else Attendee(*a) for a in row.get("attendees") or ()]
    fields = {k: v for k, v in row.items() if k not in ("attendee_count", "attendees", "source", "ingested_at")}
    fields.update(
        source=SOURCE,
        account=account,
        id=f"{key}/{rest}",
        series_id=f"{key}/{series.partition('/')[2]}" if series else "",
        attendees=attendees,
    )
    return Event(**fields)


class CaldavSource:
    """The calendars of the ``caldav`` accounts of the settings (``accounts``: only those named)."""

    name = SOURCE
    table = "events"
    write_disposition = "merge"
    held_columns = ("start", "end", "updated")
    shardable = True
    batch_size = BATCH_SIZE

    def __init__(self, settings: Settings, *, accounts: list[str] | None = None, today: datetime | None = None):
        self.settings, self.today = settings, today
        configured = {a.account: a for a in settings.caldav}
        if not configured:
            raise UserError(
                "no caldav account in the settings; add one (see the caldav entries of timeaudit.example.toml)"
            )
        unknown = [a for a in accounts or () if a.strip().lower() not in configured]
        if unknown:
            raise UserError(f"--account {unknown[0]}: no caldav account has it; add it to the settings")
        chosen = [a.strip().lower() for a in accounts] if accounts else list(configured)
        self.configs = {a: configured[a] for a in chosen}
        self._calendars: dict[str, dict[str, caldav.Calendar]] = {}

    def accounts(self) -> list[str]:
        return list(self.configs)

    def client(self, config: CaldavAccount) -> CountingClient:
        path = config.file(config.password_file, self.settings.path)
        password = read_secret(path, f"the CalDAV password of {config.account}") if path else None
        ca_file = config.file(config.ca_file, self.settings.path)
        return CountingClient(
            url=config.url,
            username=config.login() if password else None,
            password=password,
            timeout=TIMEOUT,
            ssl_verify_cert=str(ca_file) if ca_file else True,
        )

    def parts(self, account: str) -> Sequence[str]:
        """The account's calendars by URL (discovered: principal, calendar-home-set)."""
        config = self.configs[account]
        try:
            found = self.client(config).principal().calendars()
        except UserError:
            raise
        except Exception as e:
            stop = server_error(e, config)
            if stop:
                raise stop from None
            raise
        calendars = {}
        for calendar in found:
            url = str(calendar.url)
            if config.calendars and url not in config.calendars and (calendar.name or "") not in config.calendars:
                continue
            calendars[url] = calendar
        self._calendars[account] = calendars
        return list(calendars)

    def report(self, account: str, part: str) -> CaldavReport:
        return CaldavReport(account, part)

    def summary(self, reports: Sequence[Report]) -> CaldavSummary:
        return CaldavSummary(reports)

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Event]:
        """One calendar's (``cursor.part``) changed events since its sync token."""
        report = report or self.report(account, cursor.part)
        config, url = self.configs[account], cursor.part
        calendar = self._calendars[account][url]
        start, end = window(config, self.today)
        saved_all = dict((cursor.value or {}).get("calendars", {}))
        saved = saved_all.get(url) or {}
        bounds = [start.isoformat(), end.isoformat()]
        # The window moves with the days: a series read before may have occurrences in it now
        # that it had not then, so a new window reads the calendar whole (once a day at most).
        token = saved.get("token") if saved.get("window") == bounds else None
        objects: dict[str, list[str]] = dict(saved.get("objects", {}))
        key = calendar_key(url)
        client = calendar.client
        sent = getattr(client, "requests", 0)
        try:
            result = calendar.get_objects_by_sync_token(sync_token=token or None, load_objects=True)
        finally:
            report.requests = getattr(client, "requests", 0) - sent
        new_token = str(result.sync_token) if result.sync_token else None
        # Without sync-collection the library lists the calendar whole when an ETag changed.
        full = not token or (new_token or "").startswith("fake-") and bool(list(result))
        report.full_sync = full

        def inside(held: tuple) -> bool:
            return held[1] > start and held[0] < end

        seen_hrefs: set[str] = set()
        dropped: set[str] = set()
        produced: set[str] = set()
        for obj in result:
            href = str(obj.url.canonical()) if hasattr(obj.url, "canonical") else str(obj.url)
            seen_hrefs.add(href)
            before = set(objects.pop(href, ()))
            data = obj.data
            if not data:  # gone since it was listed
                dropped |= before
                continue
            report.objects += 1
            ids = []
            for event in self._events(href, data, account, key, start, end, report):
                ids.append(event.id)
                produced.add(event.id)
                yield event
            # Occurrences the object gave before that are now outside the window stay (the
            # window moved on, or they are past): only those inside it that it lacks go.
            kept = sorted(i for i in before - set(ids) if i in cursor.held and not inside(cursor.held[i]))
            objects[href] = ids + kept
            dropped |= before - set(ids) - set(kept)
            report.show_progress()
        for href in getattr(result, "deleted_urls", None) or ():
            dropped |= set(objects.pop(str(href), ()))
        if full:
            for href in [h for h in objects if h not in seen_hrefs]:
                dropped |= set(objects.pop(href))
            prefix = key + "/"
            for id_, (s, e, _) in cursor.held.items():
                if id_.startswith(prefix) and id_ not in produced and e > start and s < end:
                    dropped.add(id_)
        for id_ in sorted(dropped - produced):
            held = cursor.held.get(id_)
            if held:
                s, e, updated = held
                yield Event(source=SOURCE, account=account, id=id_, start=s, end=e, updated=updated, deleted=True)
        saved_all[url] = {"token": new_token, "window": bounds, "objects": objects}
        cursor.new_value = dict(cursor.value or {}, calendars=saved_all)
        report.show_progress()

    def _events(
        self, href: str, data, account: str, key: str, start: datetime, end: datetime, report: CaldavReport
    ) -> Iterator[Event]:
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        name = href.rstrip("/").rpartition("/")[2] or "event.ics"

        def skip(item: str, why: str) -> None:
            report.skipped += 1

        try:
            items = list(iter_ics_records(name, raw, account, self.settings, start, end, skip))
        except ImportFileError:
            report.skipped += 1
            return
        for item in items:
            rows = item.to_pylist() if not isinstance(item, dict) else [item]
            for row in rows:
                yield _event(row, key, account)

    def failed(self, report: Report, error: Exception) -> OnFailure | None:
        if isinstance(error, UserError):
            raise error
        stop = server_error(error, self.configs[report.account])
        if stop:
            raise stop from None
        if isinstance(error, (dav_error.DAVError, OSError)):
            report.error = f"{error.__class__.__name__}: {error}"
            return "next part"
        return None

    def finish(self) -> None:
        pass
