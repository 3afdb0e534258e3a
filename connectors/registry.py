"""Every source the `timeaudit sync` commands can run, by name: adding a source is one line here
("name": "module:factory", the factory taking the settings and the command's options).

Sources are imported when named, so a command never loads another source's client libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from connectors.base import AccountSource
from timeaudit.core.config import Settings

SOURCES = {
    "google-calendar": "connectors.google.calendar_source:CalendarSource",
    "gmail": "connectors.google.gmail_source:GmailSource",
    "microsoft": "connectors.microsoft.source:MicrosoftSource",
    "imap": "connectors.imap.source:ImapSource",
    "caldav": "connectors.caldav.source:CaldavSource",
    "slack": "connectors.slack.source:SlackSource",
}


def source_factory(name: str) -> Callable[..., AccountSource]:
    """What builds the registered source ``name`` (its module is imported now)."""
    module, factory = SOURCES[name].split(":")
    return getattr(import_module(module), factory)


def build_source(name: str, settings: Settings, **options: Any) -> AccountSource:
    """The registered source ``name``, built for this run."""
    return source_factory(name)(settings, **options)
