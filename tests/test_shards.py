"""Syncing a roster split over machines (--shard i/n) and threads (--workers N), against the
local Google stand-ins: every account exactly once, and the same lake as one plain run."""

from __future__ import annotations

import json

import pytest
from gmail_standin import generate_mailbox
from google_standin import StandIn
from test_gmail import UNLIMITED, sync_gmail
from test_google_calendar import FAST, corpus, live, sync_google_calendar

from connectors.google import auth
from timeaudit.core.config import load_settings
from timeaudit.core.errors import UserError
from timeaudit.lake.shards import parse_shard, shard_of
from timeaudit.lake.store import Lake

ROSTER = [f"p{i:02d}@northwind.com" for i in range(12)]


@pytest.fixture
def org(tmp_path, monkeypatch):
    standin = StandIn(page_size=20).start()
    monkeypatch.setenv(auth.TOKEN_DIR_ENV, str(tmp_path / "tokens"))
    monkeypatch.setenv("TIMEAUDIT_GOOGLE_API_ENDPOINT", standin.url)
    for i, user in enumerate(ROSTER):
        corpus(standin, user)
        generate_mailbox(standin.gmail, user, 30, weeks=4, seed=i)
    key = tmp_path / "key.json"
    key.write_text(json.dumps(standin.service_account_key()))
    auth.save_service_account(key)
    (tmp_path / "people.csv").write_text("email,team\n" + "".join(f"{u},Support\n" for u in ROSTER))
    config = tmp_path / "timeaudit.toml"
    config.write_text('roster = "people.csv"\n[organisation]\ndomains = ["northwind.com"]\n')
    yield standin, load_settings(config)
    standin.stop()


def test_shards_cover_every_account_exactly_once_and_workers_change_nothing(org, tmp_path):
    standin, settings = org
    plain = Lake(tmp_path / "plain")
    assert sync_google_calendar(plain, settings, policy=FAST).failed == 0

    sharded = Lake(tmp_path / "sharded")
    seen: list[str] = []
    for i in (1, 2, 3):
        summary = sync_google_calendar(sharded, settings, policy=FAST, shard=(i, 3), workers=4)
        assert summary.failed == 0
        mine = [r.account for r in summary.calendars]
        assert mine and all(shard_of(a, 3) == i for a in mine)
        seen += mine
    assert sorted(seen) == sorted(ROSTER)  # each account in exactly one shard
    synced = {r.subject for r in standin.requests("/events")}
    assert synced == set(ROSTER)
    assert live(sharded) == live(plain)

    mail_plain, mail_parallel = Lake(tmp_path / "mail-plain"), Lake(tmp_path / "mail-parallel")
    one = sync_gmail(mail_plain, settings, policy=FAST, units_per_second=UNLIMITED, units_per_minute=UNLIMITED)
    many = sync_gmail(
        mail_parallel, settings, policy=FAST, units_per_second=UNLIMITED, units_per_minute=UNLIMITED, workers=6
    )
    assert [m.account for m in many.mailboxes] == [m.account for m in one.mailboxes] == ROSTER
    query = "SELECT account, id, ts, direction, sender FROM messages ORDER BY account, id"
    assert mail_parallel.connect().execute(query).fetchall() == mail_plain.connect().execute(query).fetchall()


def test_shard_and_worker_arguments_are_checked():
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    for bad in ("0/3", "4/3", "two of three", "3"):
        with pytest.raises(UserError, match="--shard"):
            parse_shard(bad)
    assert sorted({shard_of(a, 4) for a in ROSTER * 10}) == [1, 2, 3, 4]
    assert shard_of("Ann@Northwind.com", 5) == shard_of("ann@northwind.com", 5)
