"""Rules -> one category and a human-readable reason for every event and message.

The rules run as SQL (``sql/classify_events.sql``, ``sql/classify_messages.sql``) over the
lake's views, so a change of keywords reclassifies everything at once and the same
definitions run on DuckDB or Spark. This module turns the settings into the small rule
tables those queries join with.

Event categories: customer, admin, internal, focus (counted time); tentative (shown apart);
out_of_office (shrinks capacity); excluded (declined, cancelled, all-day, shown as free,
working-location markers, longer than the limit).
Message categories: customer, internal, cc_only, bulk (email work); automatic (not work).
"""

from __future__ import annotations

from collections.abc import Collection

import duckdb
import pandas as pd

from timeaudit.analysis.sql import read_sql
from timeaudit.core.config import Settings
from timeaudit.core.model import Person
from timeaudit.lake.store import PARTY_TABLES, party_lists_view, sql_list


def rule_tables(settings: Settings, people: list[Person]) -> dict[str, pd.DataFrame]:
    """The settings as tables: customer domains, own domains, keywords and the scalar rules,
    and the roster's names, teams and managers."""
    rules = settings.rules
    customers = pd.DataFrame(
        [(d, c.name, c.tier) for c in settings.customers for d in c.domains],
        columns=["domain", "customer", "tier"],
    )
    own = set(settings.organisation.domains) | {p.email.split("@", 1)[1] for p in people}
    org_domains = pd.DataFrame(sorted(own), columns=["domain"], dtype="string")
    admin = pd.DataFrame(
        [(k, kind) for kind, words in rules.admin_keywords.items() for k in words],
        columns=["keyword", "kind"],
    )
    committee = pd.DataFrame(rules.committee_keywords, columns=["keyword"], dtype="string")
    scalars = pd.DataFrame(
        [
            {
                "external_is_customer": rules.external_is_customer,
                "max_event_minutes": rules.max_event_hours * 60.0,
                "minutes_per_read": float(rules.email_minutes_per_read),
                "minutes_per_sent": float(rules.email_minutes_per_sent),
                "large_meeting": rules.large_meeting,
                "long_meeting_minutes": rules.long_meeting_minutes,
                "focus_min_minutes": rules.focus_min_hours * 60.0,
                "default_hourly_cost": float(settings.audit.default_hourly_cost),
                "storm_min_replies": rules.storm_min_replies,
                "storm_min_recipients": rules.storm_min_recipients,
                "chat_minutes_per_sent": float(rules.chat_minutes_per_sent),
                "chat_minutes_per_read": float(rules.chat_minutes_per_read),
                "interruption_reply_minutes": float(rules.interruption_reply_minutes),
                "refocus_minutes": float(rules.refocus_minutes),
            }
        ]
    )
    customer_list = pd.DataFrame(
        [(c.name, c.tier, c.owner.lower(), i) for i, c in enumerate(settings.customers)],
        columns=["customer", "tier", "owner", "position"],
    )
    costs = pd.DataFrame([(p.email, p.hourly_cost) for p in people], columns=["person", "hourly_cost"]).astype(
        {"person": "string", "hourly_cost": "float64"}
    )
    names = pd.DataFrame(
        [(p.email, p.name or p.email, p.team) for p in people], columns=["person", "name", "team"]
    ).astype("string")
    managers = pd.DataFrame(
        [(p.email, p.manager) for p in people if p.manager and p.manager != p.email], columns=["person", "manager"]
    ).astype("string")
    return {
        "roster_people": names,
        "roster_managers": managers,
        "rule_customers": customer_list.astype({"customer": "string", "tier": "string", "owner": "string"}),
        "roster_costs": costs,
        "rule_customer_domains": customers.astype({"domain": "string", "customer": "string", "tier": "string"}),
        "rule_org_domains": org_domains,
        "rule_admin_keywords": admin.astype("string"),
        "rule_committee_keywords": committee,
        "rule_settings": scalars,
        "shared_mailboxes": pd.DataFrame(
            [(m.address, m.team) for m in settings.shared_mailboxes], columns=["mailbox", "team"], dtype="string"
        ),
    }


CLASSIFIED = ("classified_events", "classified_messages")  # what classifying the records gives


def register_rules(con: duckdb.DuckDBPyConnection, settings: Settings, people: list[Person]) -> None:
    """Make the rule tables and the classified views available on ``con`` (a DuckDB
    connection, or ``timeaudit.outputs.spark.SparkConnection`` which takes the same two calls)."""
    _register_rule_tables(con, settings, people)
    for table in PARTY_TABLES:
        name = f"{table.removesuffix('s')}_counterparts"
        addresses = "any_value(p.addresses) AS addresses," if table == "events" else ""
        con.execute(read_sql("counterparts.sql").format(name=name, lists=party_lists_view(table), addresses=addresses))
    con.execute(read_sql("classify_events.sql"))
    con.execute(read_sql("classify_messages.sql"))


def register_classified(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    people: list[Person],
    stored: dict[str, str],
    only: Collection[str] | None = None,
    sent_by_anyone: bool = False,
) -> None:
    """``register_rules`` without the classifying: each of ``CLASSIFIED`` is read from
    ``stored[name]`` (a relation, e.g. ``read_parquet(...)``, holding what classifying the
    same lake version with the same settings gave), of the accounts in ``only`` when given
    (and everyone's sent messages with ``sent_by_anyone``), as ``metrics.restrict_records`` does."""
    _register_rule_tables(con, settings, people)
    for name in CLASSIFIED:
        where = "" if only is None else f" WHERE {records_of(only, sent_by_anyone and name.endswith('messages'))}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {stored[name]}{where}")


def records_of(accounts: Collection[str], and_sent: bool = False) -> str:
    """The SQL condition on a table of records (raw or classified) that keeps those of
    ``accounts``, and with ``and_sent`` every account's sent messages too."""
    return f"account IN ({sql_list(accounts)})" + (" OR direction = 'sent'" if and_sent else "")


def _register_rule_tables(con, settings: Settings, people: list[Person]) -> None:
    for name, frame in rule_tables(settings, people).items():
        con.register(name, frame)
