"""The demo organisation's Slack workspace: each team's channel, threads answered within
minutes or hours as the team's habit goes (Support by reflex), and a Slack Connect channel
per customer where customers ask and Support and Sales answer, a few recent ones not yet.

Deterministic like the events and messages: each week draws from its own random stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from connectors.demo.org import TEAMS, DemoOrg, active_customers, local_time, weeks_of
from timeaudit.core.model import Chat

SOURCE = "demo"
WORKSPACE = "slack:TDEMO"


def _count(rng: random.Random, mean: float) -> int:
    whole = int(mean)
    return whole + (rng.random() < mean - whole)


def _chat(
    conversation: str,
    key: str,
    ts: datetime,
    sender: str,
    kind: str,
    shared: list[str],
    thread: str = "",
    reply_to: str = "",
) -> Chat:
    return Chat(
        source=SOURCE,
        account=WORKSPACE,
        id=f"{conversation}/{key}",
        ts=ts,
        updated=ts,
        conversation=conversation,
        conversation_kind=kind,
        shared_domains=shared,
        sender=sender,
        thread=thread,
        reply_to=reply_to,
    )


def iter_chat(org: DemoOrg) -> Iterator[Chat]:
    """Every chat message of the workspace, week by week."""
    domains = {c.name: c.domains for c in org.customers}
    end = local_time(org.end, 0, "UTC")
    for w, monday in weeks_of(org):
        rng = random.Random(f"{org.seed}:chat:{w}")
        for profile in TEAMS:
            members = org.team(profile.name)
            if len(members) < 2:
                continue
            channel = f"C-{profile.name.lower()}"
            for day in range(5):
                for n in range(_count(rng, profile.chat_threads * len(members))):
                    author = rng.choice(members)
                    ts = local_time(monday + timedelta(days=day), rng.uniform(9.2, 16.8), author.timezone)
                    key = f"{w}-{day}-{n}"
                    thread = f"{channel}/{key}"
                    yield _chat(channel, key, ts, author.email, "public", [], thread)
                    for r in range(rng.randint(1, 3)):
                        replier = rng.choice([m for m in members if m is not author])
                        reflex = rng.random() < profile.reflex_share
                        ts += timedelta(minutes=rng.uniform(0.5, 4) if reflex else rng.uniform(15, 120))
                        yield _chat(channel, f"{key}-{r}", ts, replier.email, "public", [], thread, author.email)
        for p in org.people:
            profile = org.profile(p)
            for n in range(_count(rng, profile.customer_chats)):
                name = rng.choice(active_customers(org, p, w))
                channel = "C-" + name.lower().replace(" ", "-")
                asker = rng.choice(org.contacts[name])
                day = monday + timedelta(days=rng.randrange(5))
                ts = local_time(day, rng.uniform(9, 16.9), p.timezone)
                key = f"{w}-{p.email.split('@')[0]}-{n}"
                roll = rng.random()
                reply = ts + timedelta(minutes=rng.uniform(1, 4) if roll < 0.6 else rng.uniform(30, 300))
                if (roll > 0.9 and w >= org.weeks - 1) or reply >= end:  # recent ones still waiting
                    yield _chat(channel, key, ts, asker, "public", domains[name])
                    continue
                thread = f"{channel}/{key}"
                yield _chat(channel, key, ts, asker, "public", domains[name], thread)
                yield _chat(channel, f"{key}-re", reply, p.email, "public", domains[name], thread, asker)
