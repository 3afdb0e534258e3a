"""Header and label rules shared by the mail connectors (connectors.mail.headers)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.mail.headers import BadHeaders, message_from_headers
from timeaudit.core.config import Privacy, Settings

ME = "ana@acme.com"
DATE = "Tue, 03 Mar 2026 09:15:00 +0100"


def msg(*headers: tuple[str, str], labels=(), settings: Settings | None = None, **kw):
    base = {"From": "bob@client.com", "To": ME, "Date": DATE, "Message-ID": "<m1@client.com>", "Subject": "hello"}
    names = {name for name, _ in headers}
    merged = [(k, v) for k, v in base.items() if k not in names] + list(headers)
    return message_from_headers(
        merged, source="mail", account=ME, id="box/m1", labels=labels, settings=settings or Settings(), **kw
    )


def test_received_to_me_with_ids_and_time_in_utc():
    m = msg(("In-Reply-To", "<parent@acme.com>"), ("References", "<root@acme.com> <parent@acme.com>"))
    assert (m.direction, m.self_in, m.sender, m.to) == ("received", "to", "bob@client.com", [ME])
    assert m.ts == datetime(2026, 3, 3, 8, 15, tzinfo=UTC) == m.updated
    assert (m.message_id, m.in_reply_to, m.thread_id) == ("m1@client.com", "parent@acme.com", "root@acme.com")
    assert not (m.bulk or m.auto or m.unread)
    assert m.subject is None


def test_thread_falls_back_to_in_reply_to_then_own_id_unless_given():
    assert msg(("In-Reply-To", "<p@x>")).thread_id == "p@x"
    assert msg().thread_id == "m1@client.com"
    assert msg(thread_id="18c2f").thread_id == "18c2f"


def test_sent_by_label_by_account_and_by_alias():
    assert msg(labels=["SENT"]).direction == "sent"
    by_from = msg(("From", "Ana <ANA@acme.com>"), ("To", "bob@client.com"))
    assert (by_from.direction, by_from.self_in, by_from.sender) == ("sent", "from", ME)
    by_alias = msg(("From", "ana.s@acme.com"), ("To", "bob@client.com"), aliases=["Ana.S@acme.com"])
    assert by_alias.direction == "sent"


def test_cc_only_and_bcc():
    cc = msg(("To", "carl@acme.com, dee@acme.com"), ("Cc", "Ana <ana@acme.com>"))
    assert (cc.self_in, cc.to, cc.cc) == ("cc", ["carl@acme.com", "dee@acme.com"], [ME])
    assert msg(("To", "list@acme.com")).self_in == "bcc"
    assert msg(("To", "list@acme.com"), ("Cc", "ana2@acme.com"), aliases=["ana2@acme.com"]).self_in == "cc"


def test_repeated_to_headers_are_all_read():
    m = msg(("To", "carl@acme.com"), ("To", ME))
    assert m.to == ["carl@acme.com", ME] and m.self_in == "to"


@pytest.mark.parametrize(
    "headers, labels",
    [
        ((("List-Id", "<news.client.com>"),), ()),
        ((("List-Unsubscribe", "<mailto:u@client.com>"),), ()),
        ((("Precedence", "bulk"),), ()),
        ((("Precedence", "List"),), ()),
        ((("Precedence", "junk"),), ()),
        ((("From", "noreply@client.com"),), ()),
        ((("From", "No-Reply <no-reply@client.com>"),), ()),
        ((("From", "donotreply@client.com"),), ()),
        ((("From", "calendar-noreply@google.com"),), ()),
        ((("From", "MAILER-DAEMON@acme.com"),), ()),
        ((("From", "notifications@github.com"),), ()),
        ((), ("INBOX", "CATEGORY_PROMOTIONS")),
        ((), ("CATEGORY_UPDATES",)),
        ((), ("CATEGORY_SOCIAL",)),
        ((), ("CATEGORY_FORUMS",)),
    ],
)
def test_bulk_rules(headers, labels):
    assert msg(*headers, labels=labels).bulk


def test_not_bulk():
    assert not msg(("Precedence", "first-class"), ("From", "noreen@client.com"), labels=["CATEGORY_PERSONAL"]).bulk


@pytest.mark.parametrize(
    "headers",
    [
        (("Auto-Submitted", "auto-replied"),),
        (("Auto-Submitted", "auto-generated; type=x"),),
        (("X-Autoreply", "yes"),),
        (("X-Autorespond", "Out of office"),),
        (("Content-Type", 'text/calendar; charset="utf-8"; method=REPLY'),),
        (("Subject", "Accepted: QBR with Client"),),
        (("Subject", "Declined: weekly sync"),),
        (("Subject", "Tentative: planning"),),
        (("Subject", "Automatic reply: your request"),),
        (("Subject", "Out of Office: back Monday"),),
        (("Subject", "=?utf-8?q?Accepted=3A_QBR?="),),
    ],
)
def test_auto_rules(headers):
    assert msg(*headers).auto


def test_not_auto():
    m = msg(("Auto-Submitted", "no"), ("Content-Type", "text/calendar; method=REQUEST"), ("Subject", "Re: Accepted"))
    assert not m.auto


def test_flags_from_labels():
    m = msg(labels=["INBOX", "UNREAD", "INBOX"])
    assert m.unread and m.labels == ["INBOX", "UNREAD"]


def test_encoded_names_and_subjects():
    m = msg(
        ("From", "=?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <Jose@Client.com>"),
        ("To", '=?iso-8859-1?q?Ana_S=E1nchez?= <ana@acme.com>, "Doe, John" <john@acme.com>'),
        ("Subject", "=?utf-8?b?UHJvamVjdCByZXZpZXcg4oCUIGJ1ZGdldA==?="),
        settings=Settings(privacy=Privacy(store_subjects=True)),
    )
    assert m.sender == "jose@client.com" and m.to == [ME, "john@acme.com"]
    assert m.subject == "Project review — budget"
    assert m.subject_tags == ["project", "review", "budget"]


def test_raw_8bit_header_bytes_never_crash():
    utf8 = "Réunion budget".encode().decode("ascii", "surrogateescape")
    latin1 = "Réunion budget".encode("latin-1").decode("ascii", "surrogateescape")
    settings = Settings(privacy=Privacy(store_subjects=True))
    assert msg(("Subject", utf8), settings=settings).subject == "Réunion budget"
    assert msg(("Subject", latin1), settings=settings).subject == "Réunion budget"
    assert msg(("Subject", "=?x-nonsense?q?abc?="), ("From", "=?utf-8?b?###?= <x@y.com>")).sender == "x@y.com"


def test_subject_kept_only_when_privacy_allows():
    assert msg(("Subject", "Budget review")).subject is None
    assert msg(("Subject", "Budget review")).subject_tags == ["budget", "review"]


def test_broken_date_uses_internal_ts_or_raises():
    fallback = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert msg(("Date", "not a date"), internal_ts=fallback).ts == fallback
    assert msg(("Date", "Tue, 99 Foo 2026 99:99:99 +0100"), internal_ts=fallback).ts == fallback
    with pytest.raises(BadHeaders, match="Date"):
        msg(("Date", "yesterday"))
    with pytest.raises(BadHeaders):
        message_from_headers([("Subject", "x")], source="mail", account=ME, id="x", settings=Settings())


def test_date_without_zone_is_utc_and_updated_can_be_given():
    later = datetime(2026, 4, 1, tzinfo=UTC)
    m = msg(("Date", "3 Mar 2026 09:15:00 -0000"), updated=later)
    assert m.ts == datetime(2026, 3, 3, 9, 15, tzinfo=UTC) and m.updated == later


ADDRESS_LINES = [
    "ann@acme.com",
    "Ann Lee <Ann@Acme.com>",
    "<ann@acme.com>",
    "a@acme.com, B <b@acme.com>,c@acme.com",
    " , a@acme.com, ,",
    "Bob <BOB@acme.com>, bob@acme.com",  # the same address twice, in two cases
    "Bob  Smith  <bob@acme.com> , Cat\t<cat@acme.com>",
    "a@acme.com <b@acme.com>",  # not simple: the standard library decides
    "Ann Lee",
    "a@b@acme.com",
    "Ann <ann@acme.com>>",
    '"Lee, Ann" <ann@acme.com>',
    "=?utf-8?q?Ann?= <ann@acme.com>",
    "",
    " ",
]


@pytest.mark.parametrize("first", ADDRESS_LINES)
@pytest.mark.parametrize("second", ["", "cat@acme.com", "Ann <ann@acme.com>, x"])
def test_simple_address_lines_read_as_the_standard_library_reads_them(first, second):
    from email.utils import getaddresses

    from connectors.mail.headers import _addresses

    values = tuple(v for v in (first, second) if v)
    expected = list(dict.fromkeys(a.strip().lower() for _, a in getaddresses(list(values)) if a.strip()))
    assert list(_addresses(values)) == expected


def test_a_long_address_line_that_is_not_simple_is_read_quickly():
    """The simple-list pattern gives up in one pass (a pattern that backtracks over the blanks
    would take hours on this line)."""
    from connectors.mail.headers import _addresses

    started = datetime.now()
    _addresses(("ann@acme.com," + " " * 200_000 + "x",))
    assert (datetime.now() - started).total_seconds() < 2
