"""The Gmail API v1 part of the local Google stand-in (``google_standin.StandIn.gmail``).

It holds mailboxes and answers the routes of the gmail v1 discovery document that a
``gmail.metadata`` token may use, as Google does:

- ``users.getProfile``; ``users.messages.list`` (newest first, spam and trash left out,
  drafts included, pages of at most 500); ``users.messages.get`` with ``format=minimal`` or
  ``metadata`` + ``metadataHeaders``; ``users.threads.list``; ``users.threads.get``;
  ``users.history.list`` from a ``startHistoryId`` (404 when it is older than the history
  kept, after ``expire_history``).
- What the metadata scope refuses: ``q`` (403 "Metadata scope does not support 'q'
  parameter") and ``format=full``/``raw``.
- ``units``: quota units served per user, with Google's published per-method costs, counted
  for every call answered (inside batches too, errors included) except those refused to be
  served now (429, rate-limit 403, 5xx).
- Per-user limits, off unless set: ``units_per_second`` (Google's 250) and
  ``units_per_minute`` (15,000), over sliding windows of the units served; a call that would
  exceed one is answered 429 ``rateLimitExceeded`` and counted in ``rate_limited``.

Every change (``add``, ``relabel``, ``delete``) raises the mailbox's history id and writes a
history record shaped like the API's. ``generate_mailbox`` builds the standard corpus: a
deterministic mailbox of realistic threads (colleagues, customers, cc chains, newsletters,
notifications, auto-replies, drafts, spam), 20,000 messages in a fraction of a second.
The OAuth, fault, hold and log machinery stays in ``google_standin``; the batch endpoint
(multipart/mixed) is parsed there and each call inside comes here as an ordinary request.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

PREFIX = "/gmail/v1/users/"
COSTS = {  # Google's quota units per method
    "users.getProfile": 1,
    "users.history.list": 2,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.threads.list": 10,
    "users.threads.get": 10,
}
HIDDEN = {"SPAM", "TRASH"}  # left out of listings unless includeSpamTrash=true


@dataclass
class Mail:
    id: str
    thread_id: str
    internal_ms: int
    labels: list[str]
    headers: list[tuple[str, str]]
    history_id: int = 0

    def ref(self) -> dict:
        return {"id": self.id, "threadId": self.thread_id}

    def resource(self, fmt: str, wanted_headers: set[str]) -> dict:
        body = {
            "id": self.id,
            "threadId": self.thread_id,
            "labelIds": list(self.labels),
            "snippet": "",  # bodies are not ours to show
            "historyId": str(self.history_id),
            "internalDate": str(self.internal_ms),
            "sizeEstimate": 2048,
        }
        if fmt == "metadata":
            headers = [
                {"name": n, "value": v} for n, v in self.headers if not wanted_headers or n.lower() in wanted_headers
            ]
            body["payload"] = {"partId": "", "mimeType": "multipart/alternative", "headers": headers}
        return body


@dataclass
class Mailbox:
    address: str
    messages: dict[str, Mail] = field(default_factory=dict)
    threads: dict[str, list[str]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    history_id: int = 1000
    oldest_history: int = 0  # a startHistoryId below this is answered 404
    _order: list[str] | None = None

    def order(self) -> list[str]:
        """Message ids newest first, as messages.list gives them."""
        if self._order is None:
            self._order = sorted(self.messages, key=lambda i: (self.messages[i].internal_ms, i), reverse=True)
        return self._order

    def record(self, **entries) -> int:
        self.history_id += 1
        self.history.append({"id": str(self.history_id), **entries})
        return self.history_id


def _error(status: int, reason: str, message: str) -> tuple[int, dict, dict]:
    error = {"errors": [{"domain": "global", "reason": reason, "message": message}], "code": status}
    return status, {"error": dict(error, message=message)}, {}


class GmailApi:
    def __init__(self, page_size: int = 500, history_page_size: int = 500):
        self.page_size = page_size
        self.history_page_size = history_page_size
        self.mailboxes: dict[str, Mailbox] = {}
        self.units: dict[str, int] = {}  # user -> quota units of the calls served
        self.units_per_second: int | None = None  # per-user limits enforced (None: none)
        self.units_per_minute: int | None = None
        self.served: dict[str, deque[tuple[float, int]]] = {}  # user -> (when, units) of the last minute
        self.rate_limited: dict[str, int] = {}  # user -> calls refused with 429 for the limits above
        self.calls: dict[str, int] = {}  # method -> calls received

    # -- data ----------------------------------------------------------------------------------
    def mailbox(self, user: str) -> Mailbox:
        return self.mailboxes.setdefault(user, Mailbox(user))

    def add(
        self,
        user: str,
        id_: str,
        thread_id: str,
        when: datetime,
        headers: list[tuple[str, str]],
        labels: list[str],
    ) -> Mail:
        box = self.mailbox(user)
        mail = Mail(id_, thread_id, int(when.timestamp() * 1000), list(labels), list(headers))
        box.messages[id_] = mail
        box.threads.setdefault(thread_id, []).append(id_)
        box._order = None
        mail.history_id = box.record(
            messages=[mail.ref()], messagesAdded=[{"message": dict(mail.ref(), labelIds=list(mail.labels))}]
        )
        return mail

    def relabel(self, user: str, id_: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
        box = self.mailbox(user)
        mail = box.messages[id_]
        mail.labels = [label for label in mail.labels if label not in remove] + [
            label for label in add if label not in mail.labels
        ]
        entries = {"messages": [mail.ref()]}
        ref = dict(mail.ref(), labelIds=list(mail.labels))
        if add:
            entries["labelsAdded"] = [{"message": ref, "labelIds": list(add)}]
        if remove:
            entries["labelsRemoved"] = [{"message": ref, "labelIds": list(remove)}]
        mail.history_id = box.record(**entries)

    def delete(self, user: str, id_: str) -> None:
        box = self.mailbox(user)
        mail = box.messages.pop(id_)
        box.threads[mail.thread_id].remove(id_)
        box._order = None
        box.record(messages=[mail.ref()], messagesDeleted=[{"message": mail.ref()}])

    def expire_history(self, user: str) -> None:
        """Forget the history so far: a sync from any history id older than the current one gets 404."""
        box = self.mailbox(user)
        box.oldest_history = box.history_id

    def live_ids(self, user: str) -> set[str]:
        return {i for i, m in self.mailbox(user).messages.items() if not (HIDDEN | {"DRAFT"}).intersection(m.labels)}

    # -- requests ---------------------------------------------------------------------------------
    @staticmethod
    def method_of(path: str) -> str:
        parts = path.removeprefix(PREFIX).split("/")[1:]
        if parts == ["profile"]:
            return "users.getProfile"
        if parts and parts[0] in ("messages", "threads", "history"):
            return f"users.{parts[0]}." + ("get" if len(parts) == 2 else "list")
        return ""

    def admit(self, path: str, subject: str, now: float) -> bool:
        """Whether a call fits the per-user unit limits (``units_per_second``, ``units_per_minute``:
        units of the calls served in the sliding second / minute before ``now``); one that does not
        is refused with 429 and counted in ``rate_limited``."""
        cost = COSTS.get(self.method_of(path), 0)
        served = self.served.setdefault(subject, deque())
        while served and served[0][0] <= now - 60:
            served.popleft()
        for limit, seconds in ((self.units_per_second, 1.0), (self.units_per_minute, 60.0)):
            if limit is not None and sum(u for t, u in served if t > now - seconds) + cost > limit:
                self.rate_limited[subject] = self.rate_limited.get(subject, 0) + 1
                return False
        served.append((now, cost))
        return True

    def charge(self, path: str, subject: str, status: int = 200, body: dict | None = None) -> None:
        """Count the units of a call served: answered with anything but a refusal to serve it now."""
        reason = ((body or {}).get("error") or {}).get("errors", [{}])[0].get("reason", "") if status >= 400 else ""
        refused = status == 429 or status >= 500 or (status == 403 and reason.endswith("ateLimitExceeded"))
        method = self.method_of(path)
        if method and not refused:
            self.units[subject] = self.units.get(subject, 0) + COSTS[method]
            self.calls[method] = self.calls.get(method, 0) + 1

    def handle(self, path: str, query: dict[str, str], subject: str) -> tuple[int, dict, dict]:
        parts = path.removeprefix(PREFIX).split("/")
        if parts[0] not in ("me", subject):
            return _error(403, "forbidden", "Delegation denied for " + subject)
        if subject not in self.mailboxes:
            return _error(400, "failedPrecondition", "Mail service not enabled")
        box = self.mailboxes[subject]
        method = self.method_of(path)
        if "q" in query and method in ("users.messages.list", "users.threads.list"):
            return _error(403, "forbidden", "Metadata scope does not support 'q' parameter")
        fmt = query.get("format", "full")
        if method.endswith(".get") and fmt in ("full", "raw"):
            return _error(403, "forbidden", f"Metadata scope doesn't allow format {fmt.upper()}")
        wanted = {h.strip().lower() for h in query.get("metadataHeaders", "").split(",") if h.strip()}
        if method == "users.getProfile":
            return 200, self._profile(box), {}
        if method == "users.messages.list":
            return self._list_messages(box, query)
        if method == "users.messages.get":
            mail = box.messages.get(parts[2])
            if mail is None:
                return _error(404, "notFound", "Requested entity was not found.")
            return 200, mail.resource(fmt, wanted), {}
        if method == "users.threads.list":
            return self._list_threads(box, query)
        if method == "users.threads.get":
            ids = box.threads.get(parts[2]) or []
            if not ids:
                return _error(404, "notFound", "Requested entity was not found.")
            mails = sorted((box.messages[i] for i in ids), key=lambda m: (m.internal_ms, m.id))
            body = {
                "id": parts[2],
                "historyId": str(max(m.history_id for m in mails)),
                "messages": [m.resource(fmt, wanted) for m in mails],
            }
            return 200, body, {}
        if method == "users.history.list":
            return self._history(box, query)
        return _error(404, "notFound", "Not Found")

    def _profile(self, box: Mailbox) -> dict:
        return {
            "emailAddress": box.address,
            "messagesTotal": len(box.messages),
            "threadsTotal": sum(1 for ids in box.threads.values() if ids),
            "historyId": str(box.history_id),
        }

    def _page(self, items: list, query: dict[str, str], cap: int) -> tuple[list, str | None]:
        size = min(int(query.get("maxResults", "100")), cap, 500)
        offset = int(query.get("pageToken") or 0)
        page = items[offset : offset + size]
        return page, str(offset + size) if offset + size < len(items) else None

    def _listed(self, box: Mailbox, query: dict[str, str]) -> list[Mail]:
        spam_trash = query.get("includeSpamTrash") == "true"
        return [box.messages[i] for i in box.order() if spam_trash or not HIDDEN.intersection(box.messages[i].labels)]

    def _list_messages(self, box: Mailbox, query: dict[str, str]) -> tuple[int, dict, dict]:
        mails = self._listed(box, query)
        page, token = self._page(mails, query, self.page_size)
        body: dict = {"resultSizeEstimate": len(mails)}
        if page:
            body["messages"] = [m.ref() for m in page]
        if token:
            body["nextPageToken"] = token
        return 200, body, {}

    def _list_threads(self, box: Mailbox, query: dict[str, str]) -> tuple[int, dict, dict]:
        threads = list(dict.fromkeys(m.thread_id for m in self._listed(box, query)))
        page, token = self._page(threads, query, self.page_size)
        body: dict = {"resultSizeEstimate": len(threads)}
        if page:
            body["threads"] = [
                {"id": t, "snippet": "", "historyId": str(max(box.messages[i].history_id for i in box.threads[t]))}
                for t in page
            ]
        if token:
            body["nextPageToken"] = token
        return 200, body, {}

    def _history(self, box: Mailbox, query: dict[str, str]) -> tuple[int, dict, dict]:
        try:
            start = int(query.get("startHistoryId", ""))
        except ValueError:
            return _error(400, "invalidArgument", "Invalid startHistoryId")
        if start < box.oldest_history or start > box.history_id:
            return _error(404, "notFound", "Requested entity was not found.")
        records = [r for r in box.history if int(r["id"]) > start]
        page, token = self._page(records, query, self.history_page_size)
        body: dict = {"historyId": str(box.history_id)}
        if page:
            body["history"] = page
        if token:
            body["nextPageToken"] = token
        return 200, body, {}


# -- the standard corpus ------------------------------------------------------------------------------
COLLEAGUES = [f"{n}@northwind.com" for n in ("bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim")]
CUSTOMERS = ["joe@acme.com", "sue@acme.com", "li@globex.com", "raj@initech.com", "mia@umbrella.io"]
TOPICS = [
    "renewal",
    "roadmap",
    "budget report",
    "invoice",
    "onboarding",
    "policy update",
    "release plan",
    "expense form",
    "support ticket",
    "quarterly review",
]


@dataclass
class Corpus:
    owner: str
    start: datetime  # the oldest message's day
    end: datetime
    ids: list[str] = field(default_factory=list)


def generate_mailbox(api: GmailApi, owner: str, n: int = 20_000, *, weeks: int = 28, seed: int = 7) -> Corpus:
    """A mailbox of ``n`` messages in realistic threads over the last ``weeks`` weeks, deterministically."""
    rng = random.Random(seed)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    span = timedelta(weeks=weeks).total_seconds()
    corpus = Corpus(owner, end - timedelta(weeks=weeks), end)
    planned: list[tuple[datetime, str, str, list[tuple[str, str]], list[str]]] = []
    thread_no = 0
    while len(planned) < n:
        thread_no += 1
        kind = rng.choices(
            ["internal", "customer", "cc", "newsletter", "notification", "auto", "draft", "spam"],
            [30, 26, 12, 14, 10, 3, 2, 3],
        )[0]
        size = rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 8, 11]) if kind in ("internal", "customer", "cc") else 1
        size = min(size, n - len(planned))
        when = end - timedelta(seconds=rng.random() * span)
        topic = rng.choice(TOPICS)
        thread_key = f"t{thread_no:06d}"
        other = rng.choice(CUSTOMERS if kind == "customer" else COLLEAGUES)
        references: list[str] = []
        for k in range(size):
            msg_id = f"<{thread_key}.{k}@mail.example>"
            if kind == "newsletter":
                sender, to, cc = "news@vendor-news.com", [owner], []
                extra = [("List-Id", "<weekly.vendor-news.com>"), ("List-Unsubscribe", "<mailto:u@vendor-news.com>")]
                labels = ["INBOX", "CATEGORY_PROMOTIONS"]
            elif kind == "notification":
                sender, to, cc, extra, labels = (
                    "no-reply@tickets.example",
                    [owner],
                    [],
                    [],
                    ["INBOX", "CATEGORY_UPDATES"],
                )
            elif kind == "auto":
                sender, to, cc = other, [owner], []
                extra, labels = [("Auto-Submitted", "auto-replied")], ["INBOX"]
            elif kind == "cc":
                sender, to, cc, extra, labels = other, [rng.choice(COLLEAGUES)], [owner], [], ["INBOX"]
            else:
                mine = k % 2 == 1 or kind == "draft"
                sender = owner if mine else other
                to, cc, extra = ([other] if mine else [owner]), [], []
                labels = ["SENT"] if mine else ["INBOX"]
                if kind == "draft":
                    labels = ["DRAFT"]
                if kind == "spam":
                    sender, labels = "winner@lottery.example", ["SPAM"]
            if "INBOX" in labels and rng.random() < 0.15:
                labels.append("UNREAD")
            subject = ("Re: " if k else "") + topic.capitalize()
            if kind == "auto":
                subject = f"Automatic reply: {topic}"
            headers = [
                ("From", sender),
                ("To", ", ".join(to)),
                *([("Cc", ", ".join(cc))] if cc else []),
                ("Subject", subject),
                ("Date", format_datetime(when)),
                ("Message-ID", msg_id),
                *([("In-Reply-To", references[-1]), ("References", " ".join(references))] if references else []),
                *extra,
                ("X-Mailer", "standin"),  # a header nobody asked for: not returned
            ]
            planned.append((when, thread_key, msg_id, headers, labels))
            references.append(msg_id)
            when = min(end, when + timedelta(seconds=rng.uniform(600, 2 * 86400)))
    # Gmail ids grow with time: hex of the date in ms, then a counter.
    planned.sort(key=lambda p: p[0])
    thread_ids: dict[str, str] = {}
    for number, (when, thread_key, _msg_id, headers, labels) in enumerate(planned):
        gid = f"{int(when.timestamp() * 1000):011x}{number:05x}"
        thread_id = thread_ids.setdefault(thread_key, gid)
        api.add(owner, gid, thread_id, when, headers, labels)
        corpus.ids.append(gid)
    return corpus
