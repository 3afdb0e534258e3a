"""The demo organisation as three sources, its calendars, its mailboxes and its Slack workspace, generated whole."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from connectors.base import Cursor
from connectors.demo.chat import iter_chat
from connectors.demo.org import DemoOrg
from connectors.demo.records import iter_events, iter_messages

SOURCE = "demo"
EVERYONE = "*"  # one read gives every person's records: the organisation is generated as one


@dataclass
class DemoSource:
    org: DemoOrg
    table: str  # "events", "messages" or "chat"
    name: str = SOURCE
    write_disposition: str = "replace"

    def accounts(self) -> Sequence[str]:
        return [EVERYONE]

    def read(self, account: str, cursor: Cursor) -> Iterator:
        yield from {"events": iter_events, "messages": iter_messages, "chat": iter_chat}[self.table](self.org)


def demo_sources(org: DemoOrg) -> list[DemoSource]:
    return [DemoSource(org, "events"), DemoSource(org, "messages"), DemoSource(org, "chat")]
