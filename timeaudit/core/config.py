"""timeaudit.toml -> validated settings.

Every key has a default, so no file at all is a valid configuration. Errors name the file,
the key and the fix in one line (``ConfigError``), which the CLI turns into exit code 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from timeaudit.core.errors import ConfigError

CONFIG_ENV = "TIMEAUDIT_CONFIG"
CONFIG_NAME = "timeaudit.toml"

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def parse_working_hours(value: str) -> tuple[time, time]:
    """'09:00-17:30' -> (09:00, 17:30). '24:00' is accepted as an end."""
    m = _HOURS.match(value.strip())
    if not m:
        raise ValueError(f"'{value}' is not a range like '09:00-17:30'")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if (h2, m2) <= (h1, m1) or (h2 == 24 and m2 != 0):
        raise ValueError(f"'{value}' must end after it starts, within one day")
    end = time(23, 59, 59, 999999) if h2 == 24 else time(h2, m2)
    return time(h1, m1), end


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value}' is not an IANA time zone such as 'Europe/London'") from None
    return value


def check_domain(value: str) -> str:
    value = value.strip().lower()
    if not _DOMAIN.match(value):
        raise ValueError(f"'{value}' is not a domain name such as 'example.com'")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def file(self, value: str, settings_path: str) -> Path | None:
        """``value`` (a path in the settings) as a path: relative ones from the settings file's folder."""
        if not value:
            return None
        p = Path(value).expanduser()
        return Path(settings_path).parent / p if not p.is_absolute() and settings_path else p


class Organisation(_Section):
    name: str = "My organisation"
    domains: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    working_hours: str = "09:00-17:00"
    working_days: list[str] = Field(default_factory=lambda: DAY_NAMES[:5])

    _domains = field_validator("domains", mode="after")(lambda v: [check_domain(d) for d in v])
    _tz = field_validator("timezone")(lambda v: check_timezone(v))

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        parse_working_hours(v)
        return v

    @field_validator("working_days")
    @classmethod
    def _days(cls, v: list[str]) -> list[str]:
        out = []
        for day in v:
            name = day.strip()[:3].title()
            if name not in DAY_NAMES:
                raise ValueError(f"'{day}' is not a weekday; use Mon, Tue, ... Sun")
            out.append(name)
        return out


class CustomerConfig(_Section):
    name: str
    domains: list[str]
    tier: str = ""
    owner: str = ""

    _domains = field_validator("domains", mode="after")(lambda v: [check_domain(d) for d in v])


DEFAULT_ADMIN_KEYWORDS: dict[str, list[str]] = {
    "budgets": ["budget", "forecast", "spend", "procurement", "invoice", "purchase"],
    "records": ["record", "records", "crm", "data entry", "filing", "timesheet", "timesheets"],
    "forms": ["form", "forms", "expense", "expenses", "approval", "paperwork"],
    "policy": ["policy", "compliance", "audit", "governance", "risk"],
    "reports": ["report", "reporting", "kpi", "metrics", "status update", "dashboard"],
}
DEFAULT_COMMITTEE_KEYWORDS = ["committee", "board", "council", "steering", "working group", "taskforce"]


class Rules(_Section):
    admin_keywords: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ADMIN_KEYWORDS))
    committee_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_COMMITTEE_KEYWORDS))
    external_is_customer: bool = False
    focus_min_hours: float = Field(2.0, gt=0, le=8)
    large_meeting: int = Field(8, ge=2)
    long_meeting_minutes: int = Field(60, ge=1)
    # Viva Insights charges 87.2 s per read email (29.2 s reading + 58 s refocusing).
    email_minutes_per_read: float = Field(87.2 / 60, ge=0)
    email_minutes_per_sent: float = Field(5.0, ge=0)
    # Chat (docs/metrics.md): typing a short message at 52 words a minute (Dhakal et al., CHI 2018)
    # and reading one at 238 (Brysbaert, 2019), with the glance away from work that each takes.
    chat_minutes_per_sent: float = Field(0.5, ge=0)
    chat_minutes_per_read: float = Field(0.1, ge=0)
    # An answer this soon to a message that came in during focus is a reflex reply: an interruption.
    interruption_reply_minutes: float = Field(5.0, gt=0, le=60)
    # Time to get back to an interrupted task (Mark, Gonzalez & Harris, CHI 2005: 23 min 15 s).
    refocus_minutes: float = Field(23.0, ge=0, le=120)
    max_event_hours: float = Field(8.0, gt=0)
    # A reply-all storm: an internal thread with this many replies that each go to this many
    # people or more (the issue's own example, "5+ replies to 10+ people"; docs/metrics.md).
    storm_min_replies: int = Field(5, ge=1)
    storm_min_recipients: int = Field(10, ge=2)

    def email_cost_text(self) -> str:
        """How email time is estimated, in words ("87.2 s per read email, 5 min per sent one")."""
        read, sent = self.email_minutes_per_read * 60, self.email_minutes_per_sent
        return f"{read:g} s per read email, {sent:g} min per sent one"

    def focus_gap_text(self) -> str:
        """The shortest free gap that counts as focus, in words ("2 hours")."""
        return f"{self.focus_min_hours:g} hour{'' if self.focus_min_hours == 1 else 's'}"

    @field_validator("admin_keywords")
    @classmethod
    def _lower_admin(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {kind: [k.strip().lower() for k in words if k.strip()] for kind, words in v.items()}

    @field_validator("committee_keywords")
    @classmethod
    def _lower_committee(cls, v: list[str]) -> list[str]:
        return [k.strip().lower() for k in v if k.strip()]


class Privacy(_Section):
    min_group_size: int = Field(5, ge=1)
    store_titles: bool = False
    store_subjects: bool = False
    chat_tags: bool = False  # keyword tags of chat messages' text (the text itself is never kept)
    leads_see_individuals: bool = False


class Audit(_Section):
    neglected_after_days: int = Field(30, ge=1)
    target_customer_share: float = Field(0.5, ge=0, le=1)
    default_hourly_cost: float = Field(75.0, ge=0)
    currency: str = "EUR"
    tier_order: list[str] = Field(default_factory=lambda: ["gold", "silver", "bronze"])


class GoalValues(_Section):
    """What a team aims for each week; a key left out (or unset) is not a goal."""

    customer_share: float | None = Field(None, ge=0, le=1)  # at least (default: audit.target_customer_share)
    meeting_hours: float | None = Field(None, ge=0, le=80)  # internal meetings, at most, per person
    admin_hours: float | None = Field(None, ge=0, le=80)  # at most, per person
    focus_hours: float | None = Field(None, ge=0, le=80)  # at least, per person
    reply_p90_hours: float | None = Field(None, gt=0, le=500)  # customer replies, working hours, at most
    max_wait_hours: float | None = Field(None, gt=0, le=500)  # oldest unanswered customer email, at most


class Goals(GoalValues):
    """``[goals]`` for the organisation, ``[goals.teams.NAME]`` overriding single keys for one team."""

    meeting_hours: float | None = Field(8.0, ge=0, le=80)
    admin_hours: float | None = Field(4.0, ge=0, le=80)
    focus_hours: float | None = Field(10.0, ge=0, le=80)
    reply_p90_hours: float | None = Field(8.0, gt=0, le=500)
    max_wait_hours: float | None = Field(16.0, gt=0, le=500)
    teams: dict[str, GoalValues] = Field(default_factory=dict)


GOAL_KEYS = tuple(GoalValues.model_fields)


class Smtp(_Section):
    """The mail server digests are sent through. ``security``: "starttls" (port 587), "tls"
    (implicit TLS, port 465) or "plain" (no TLS: only to a loopback host, e.g. a local relay)."""

    host: str = ""
    port: int | None = Field(None, ge=1, le=65535)
    security: str = "starttls"
    username: str = ""  # "" = no login
    password_file: str = ""  # a file (mode 0600) holding the password
    ca_file: str = ""  # a CA bundle to trust besides the system's
    sender: str = ""  # the From address, e.g. "timeaudit <timeaudit@example.com>"
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @field_validator("security")
    @classmethod
    def _security(cls, v: str) -> str:
        if v not in ("tls", "starttls", "plain"):
            raise ValueError(f"'{v}' is not one of tls, starttls, plain")
        return v

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> Smtp:
        if self.security == "plain" and self.host and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"security = 'plain' sends mail and password unencrypted; it is allowed only to a loopback host, "
                f"not '{self.host}': use 'starttls' or 'tls'"
            )
        return self

    def server_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "plain": 25}[self.security]


class ChatChannel(_Section):
    """One ``[[digest.channels]]``: a team's Slack or Microsoft Teams incoming webhook. The URL
    is a secret, so it is read from a file (mode 0600)."""

    team: str
    kind: str = "slack"
    webhook_file: str

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in ("slack", "teams"):
            raise ValueError(f"'{v}' is not one of slack, teams")
        return v


class Digest(_Section):
    """``timeaudit digest``: who gets the weekly digest, and through what."""

    dashboard_url: str = ""  # the link at the end of every digest ("" = no link)
    people_opt_in: list[str] = Field(default_factory=list)  # people who get their own digest
    attempts: int = Field(3, ge=1, le=10)  # per delivery, with a growing pause between
    retry_seconds: float = Field(2.0, ge=0, le=300)
    smtp: Smtp = Field(default_factory=Smtp)
    channels: list[ChatChannel] = Field(default_factory=list)

    @field_validator("people_opt_in")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = []
        for address in v:
            address = address.strip().lower()
            if "@" not in address:
                raise ValueError(f"'{address}' is not an email address such as 'ana@example.com'")
            out.append(address)
        return out

    @field_validator("dashboard_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError(f"'{v}' is not an http(s):// URL")
        return v


class Google(_Section):
    weeks_back: int = Field(26, ge=1, le=520)
    weeks_ahead: int = Field(4, ge=0, le=104)
    calendars: list[str] = Field(default_factory=lambda: ["primary"])
    requests_per_minute: int = Field(600, ge=1, le=10_000)


class Microsoft(_Section):
    weeks_back: int = Field(26, ge=1, le=520)
    weeks_ahead: int = Field(4, ge=0, le=104)
    # Mail folders read per mailbox: Graph's well-known names, or a custom folder's display name.
    folders: list[str] = Field(default_factory=lambda: ["inbox", "sentitems", "archive"])


class Slack(_Section):
    """``timeaudit sync slack``: a bot or user token (in ``token_file``, mode 0600) of one workspace."""

    token_file: str = ""
    base_url: str = "https://slack.com/api/"  # another only for a stand-in in tests
    weeks_back: int = Field(26, ge=1, le=520)
    # A reply to an older thread does not show in a channel's history: threads whose parent is this
    # recent are read again on every sync.
    thread_days: int = Field(14, ge=0, le=365)
    types: list[str] = Field(default_factory=lambda: ["public_channel", "private_channel", "mpim", "im"])

    @field_validator("types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        known = ("public_channel", "private_channel", "mpim", "im")
        for t in v:
            if t not in known:
                raise ValueError(f"'{t}' is not one of {', '.join(known)}")
        return v

    def file(self, settings_path: str) -> Path | None:
        if not self.token_file:
            return None
        p = Path(self.token_file).expanduser()
        return Path(settings_path).parent / p if not p.is_absolute() and settings_path else p


class SharedMailbox(_Section):
    """A mailbox a team answers from together (support@, sales@): synced like a person's."""

    address: str
    team: str = ""

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip().lower()
        if "@" not in value:
            raise ValueError(f"'{value}' is not an email address such as 'support@example.com'")
        return value


class Imports(_Section):
    weeks_back: int = Field(52, ge=1, le=520)
    weeks_ahead: int = Field(8, ge=0, le=104)
    # Bounds on what one hostile or broken export may cost (see timeaudit.example.toml).
    max_occurrences_per_series: int = Field(10_000, ge=1, le=10_000_000)
    max_zip_mb: int = Field(1024, ge=1)
    max_zip_ratio: int = Field(100, ge=1)


class _ServerAccount(_Section):
    """What every IMAP and CalDAV account names: whose it is, how to sign in, which CA to trust."""

    account: str  # the mailbox's or calendar's address: the records' account
    username: str = ""  # (default: ``account``)
    password_file: str = ""  # a file (mode 0600) holding the password or app password
    ca_file: str = ""  # a CA bundle to trust besides the system's (a company CA, a test server)
    weeks_back: int = Field(26, ge=1, le=520)

    @field_validator("account")
    @classmethod
    def _address(cls, v: str) -> str:
        v = v.strip().lower()
        if "@" not in v or v.startswith("@") or v.endswith("@"):
            raise ValueError(f"'{v}' is not an email address; give whose mailbox or calendar this is")
        return v

    def login(self) -> str:
        return self.username or self.account


class ImapAccount(_ServerAccount):
    """One ``[[imap]]`` mailbox. ``security``: "tls" (implicit TLS, port 993), "starttls"
    (port 143, then TLS) or "plain" (no TLS: only to a loopback host, for a local bridge or tests).
    ``auth``: "password" (``password_file``) or "xoauth2": an OAuth access token from
    ``token_file`` (refreshed in place, see ``connectors.imap.oauth``) or printed by ``token_command``."""

    host: str
    port: int | None = Field(None, ge=1, le=65535)
    security: str = "tls"
    auth: str = "password"
    token_file: str = ""  # xoauth2: a JSON file (mode 0600) with the access and refresh tokens
    token_command: str = ""  # xoauth2: a command that prints an access token (oama, pizauth, ...)
    aliases: list[str] = Field(default_factory=list)  # other addresses of the same person: mail from them is sent
    folders: list[str] = Field(default_factory=list)  # only these (default: every folder)
    skip_folders: list[str] = Field(default_factory=list)
    skip_junk_and_trash: bool = True

    @field_validator("security")
    @classmethod
    def _security(cls, v: str) -> str:
        if v not in ("tls", "starttls", "plain"):
            raise ValueError(f"'{v}' is not one of tls, starttls, plain")
        return v

    @field_validator("auth")
    @classmethod
    def _auth(cls, v: str) -> str:
        if v not in ("password", "xoauth2"):
            raise ValueError(f"'{v}' is not one of password, xoauth2")
        return v

    @model_validator(mode="after")
    def _one_way_to_sign_in(self) -> ImapAccount:
        if self.auth == "xoauth2" and bool(self.token_file) == bool(self.token_command):
            raise ValueError("auth = 'xoauth2' needs one of token_file or token_command (not both)")
        if self.auth == "password" and (self.token_file or self.token_command):
            raise ValueError("token_file and token_command are read only with auth = 'xoauth2'; add it")
        return self

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> ImapAccount:
        if self.security == "plain" and self.host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"security = 'plain' sends the password unencrypted; it is allowed only to a loopback host, "
                f"not '{self.host}': use 'tls' or 'starttls'"
            )
        return self

    def server_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)


class CaldavAccount(_ServerAccount):
    """One ``[[caldav]]`` account: its server's URL (the principal is discovered from it)."""

    url: str
    calendars: list[str] = Field(default_factory=list)  # only these, by name or URL (default: every calendar)
    weeks_ahead: int = Field(4, ge=0, le=104)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError(f"'{v}' is not an https:// URL")
        return v


class Settings(_Section):
    roster: str = ""
    organisation: Organisation = Field(default_factory=Organisation)
    customers: list[CustomerConfig] = Field(default_factory=list)
    rules: Rules = Field(default_factory=Rules)
    privacy: Privacy = Field(default_factory=Privacy)
    audit: Audit = Field(default_factory=Audit)
    goals: Goals = Field(default_factory=Goals)
    digest: Digest = Field(default_factory=Digest)
    google: Google = Field(default_factory=Google)
    microsoft: Microsoft = Field(default_factory=Microsoft)
    shared_mailboxes: list[SharedMailbox] = Field(default_factory=list)
    slack: Slack = Field(default_factory=Slack)
    imports: Imports = Field(default_factory=Imports)
    imap: list[ImapAccount] = Field(default_factory=list)
    caldav: list[CaldavAccount] = Field(default_factory=list)

    # Where the file was read from ("" = built-in defaults); not a key of the file.
    path: str = Field("", exclude=True)

    def roster_path(self) -> Path | None:
        if not self.roster:
            return None
        p = Path(self.roster).expanduser()
        if not p.is_absolute() and self.path:
            p = Path(self.path).parent / p
        return p

    def goals_for(self, team: str | None = None) -> GoalValues:
        """The organisation's goals with ``team``'s own keys over them; the customer share
        goal falls back to ``audit.target_customer_share``."""
        values = self.goals.model_dump(include=set(GOAL_KEYS))
        if values["customer_share"] is None:
            values["customer_share"] = self.audit.target_customer_share
        override = self.goals.teams.get(team) if team else None
        if override is not None:
            values.update(override.model_dump(include=override.model_fields_set))
        return GoalValues(**values)

    def customer_domains(self) -> dict[str, str]:
        """domain -> customer name."""
        return {d: c.name for c in self.customers for d in c.domains}


def _explain(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}'; remove it or check its spelling (see timeaudit.example.toml)"
    if kind == "missing":
        return f"{source}: '{key}' is required; add it (see timeaudit.example.toml)"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{source}: '{key}' is invalid: {msg}; fix it (see timeaudit.example.toml)"


def parse_settings(data: dict, source: str = "timeaudit.toml") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_explain(e, source)) from None


def find_config(explicit: str | Path | None, data_dir: Path) -> Path | None:
    """--config, then $TIMEAUDIT_CONFIG, then ./timeaudit.toml, then <data>/timeaudit.toml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for candidate in (Path.cwd() / CONFIG_NAME, data_dir / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: Path | None) -> Settings:
    if path is None:
        return Settings()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; create it from timeaudit.example.toml or drop --config")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    settings = parse_settings(data, str(path))
    settings.path = str(path)
    return settings


def save_rules(path: Path, admin_keywords: dict[str, list[str]], committee_keywords: list[str]) -> Settings:
    """Write new keyword rules into the settings file, keeping its comments and other keys.

    The result is validated before anything is written; the file is replaced atomically.
    """
    import tomlkit

    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.is_file() else tomlkit.document()
    rules = doc.setdefault("rules", tomlkit.table())
    rules["committee_keywords"] = committee_keywords
    table = tomlkit.table()
    for kind, words in admin_keywords.items():
        table[kind] = words
    rules["admin_keywords"] = table
    text = tomlkit.dumps(doc)
    settings = parse_settings(tomllib.loads(text), str(path))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    settings.path = str(path)
    return settings
