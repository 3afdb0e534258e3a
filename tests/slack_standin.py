"""A local stand-in for Slack's Web API on 127.0.0.1 (plain HTTP; slack_sdk's ``base_url``
points at it), and the workspace export the same data gives.

- ``auth.test``, ``users.list``, ``conversations.list`` (``types``), ``conversations.members``,
  ``conversations.history`` (``oldest`` exclusive, newest first, thread replies left out but
  broadcasts kept) and ``conversations.replies`` (the parent first): every list pages at most
  ``page_size`` items with ``response_metadata.next_cursor``, whatever ``limit`` asks.
- Faults: a token other than ``TOKEN`` gets ``invalid_auth``; ``scopes`` leaves conversation
  types out (``missing_scope``); ``throttle`` answers a method's next n calls 429 with
  Retry-After; a log of every call.

``sample_workspace`` makes a small workspace: a home team at northwind.test, two people of a
customer (globex.test) in a Slack Connect channel and a DM, public and private channels, a
group DM, threads, mentions, reactions, an edit, and joins that are no chat.
``export_zip`` writes the export Slack gives of the same workspace.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "xoxb-standin-token"
HOME, OTHER = "T0HOME", "T0GLOBEX"
KIND_FLAGS = {
    "public_channel": {"is_channel": True},
    "private_channel": {"is_group": True, "is_private": True},
    "mpim": {"is_mpim": True, "is_private": True},
    "im": {"is_im": True},
}
EXPORT_LISTS = {
    "public_channel": "channels.json",
    "private_channel": "groups.json",
    "mpim": "mpims.json",
    "im": "dms.json",
}


@dataclass
class Workspace:
    users: list[dict]
    conversations: list[dict]  # id, name, type, members, shared (Slack Connect), user (an im's other side)
    messages: dict[str, list[dict]]  # conversation id -> its messages, replies included, oldest first
    me: str = "U01"


def ts_of(at: datetime, n: int = 0) -> str:
    return f"{int(at.timestamp())}.{n:06d}"


def _user(uid: str, name: str, team: str, domain: str) -> dict:
    return {"id": uid, "team_id": team, "name": name, "profile": {"email": f"{name}@{domain}", "real_name": name}}


def sample_workspace(now: datetime, weeks: int = 2) -> Workspace:
    """About 80 messages over ``weeks`` weeks before ``now``."""
    people = ["ann", "bob", "cat", "dan", "eve", "fay"]
    users = [_user(f"U0{i + 1}", p, HOME, "northwind.test") for i, p in enumerate(people)]
    users += [_user("UX1", "gus", OTHER, "globex.test"), _user("UX2", "hal", OTHER, "globex.test")]
    users.append({"id": "UB1", "team_id": HOME, "name": "deploybot", "is_bot": True, "profile": {}})
    conversations = [
        {"id": "C01", "name": "general", "type": "public_channel", "members": [u["id"] for u in users[:6]]},
        {"id": "C02", "name": "support", "type": "public_channel", "members": ["U01", "U02", "U03"]},
        {
            "id": "C03",
            "name": "northwind-globex",
            "type": "public_channel",
            "members": ["U01", "U02", "UX1", "UX2"],
            "shared": True,
        },
        {"id": "G01", "name": "leads", "type": "private_channel", "members": ["U01", "U04"]},
        {"id": "G02", "name": "mpdm-ann--bob--cat-1", "type": "mpim", "members": ["U01", "U02", "U03"]},
        {"id": "D01", "type": "im", "user": "U02", "members": ["U01", "U02"]},
        {"id": "D02", "type": "im", "user": "UX1", "members": ["U01", "UX1"], "shared": True},
    ]
    messages: dict[str, list[dict]] = {c["id"]: [] for c in conversations}
    start = (now - timedelta(weeks=weeks)).replace(hour=9, minute=0, second=0, microsecond=0)
    n = 0
    edited_one = False
    for day in range(weeks * 7):
        at = start + timedelta(days=day)
        if at.weekday() >= 5 or at >= now:
            continue
        for k, (cid, uid) in enumerate(
            [
                ("C01", "U03"),
                ("C02", "U01"),
                ("C03", "UX1"),
                ("G01", "U04"),
                ("G02", "U02"),
                ("D01", "U02"),
                ("D02", "UX1"),
            ]
        ):
            n += 1
            when = at + timedelta(minutes=37 * k)
            text = f"hello <@U01> about the budget {n}" if k % 2 else "status update <!here>"
            parent = {"type": "message", "user": uid, "text": text, "ts": ts_of(when, n), "team": HOME}
            messages[cid].append(parent)
            if day % 3 == 0:  # a thread: two replies, one of them a broadcast
                parent["reactions"] = [{"name": "eyes", "users": ["U01", "U02"], "count": 2}]
                replies = []
                for r, who in enumerate(["U01", "U02" if cid != "C03" else "UX2"]):
                    n += 1
                    reply = {
                        "type": "message",
                        "user": who,
                        "text": "on it",
                        "ts": ts_of(when + timedelta(minutes=3 + r), n),
                        "thread_ts": parent["ts"],
                        "parent_user_id": uid,
                    }
                    if r == 1:
                        reply["subtype"] = "thread_broadcast"
                    replies.append(reply)
                parent.update(thread_ts=parent["ts"], reply_count=len(replies), latest_reply=replies[-1]["ts"])
                messages[cid].extend(replies)
            if k == 0 and not edited_one:  # the first weekday's, whatever day of the week the run starts
                edited_one = True
                parent["edited"] = {"user": uid, "ts": ts_of(when + timedelta(minutes=1), n)}
                n += 1
                messages[cid].append(
                    {
                        "type": "message",
                        "subtype": "channel_join",
                        "user": "U05",
                        "text": "<@U05> has joined the channel",
                        "ts": ts_of(when + timedelta(minutes=2), n),
                    }
                )
                n += 1
                messages[cid].append(
                    {
                        "type": "message",
                        "subtype": "bot_message",
                        "bot_id": "B01",
                        "username": "deploybot",
                        "text": "deployed",
                        "ts": ts_of(when + timedelta(minutes=4), n),
                    }
                )
    for cid in messages:
        messages[cid].sort(key=lambda m: float(m["ts"]))
    return Workspace(users, conversations, messages)


def export_zip(workspace: Workspace, path: Path) -> Path:
    """The workspace as Slack's export: the lists, then a folder per conversation of daily files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("users.json", json.dumps(workspace.users))
        for kind, name in EXPORT_LISTS.items():
            items = [
                {k: v for k, v in c.items() if k not in ("type", "shared", "user")} | {"created": 1700000000}
                for c in workspace.conversations
                if c["type"] == kind
            ]
            z.writestr(name, json.dumps(items))
        for c in workspace.conversations:
            folder = c["id"] if c["type"] == "im" else c["name"]
            days: dict[str, list[dict]] = {}
            for m in workspace.messages[c["id"]]:
                day = datetime.fromtimestamp(float(m["ts"]), UTC).date().isoformat()
                days.setdefault(day, []).append(m)
            for day, items in sorted(days.items()):
                z.writestr(f"{folder}/{day}.json", json.dumps(items, indent=1))
    return path


@dataclass
class SlackStandin:
    workspace: Workspace
    page_size: int = 3
    scopes: set[str] = field(default_factory=lambda: set(KIND_FLAGS))
    throttle: dict[str, int] = field(default_factory=dict)  # method -> 429s still to give
    retry_after: int = 1
    log: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    # -- the methods ----------------------------------------------------------------------
    def answer(self, method: str, params: dict, token: str) -> tuple[int, dict, dict]:
        with self.lock:
            self.log.append((method, params))
            if self.throttle.get(method, 0) > 0:
                self.throttle[method] -= 1
                return 429, {"Retry-After": str(self.retry_after)}, {"ok": False, "error": "ratelimited"}
        if token != TOKEN:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(params)

    def _page(self, items: list, params: dict, key: str) -> dict:
        start = int(params.get("cursor") or 0)
        end = start + min(self.page_size, int(params.get("limit") or 100))
        more = end < len(items)
        return {
            "ok": True,
            key: items[start:end],
            "has_more": more,
            "response_metadata": {"next_cursor": str(end) if more else ""},
        }

    def m_auth_test(self, params: dict) -> dict:
        return {"ok": True, "team_id": HOME, "user_id": self.workspace.me, "team": "Northwind"}

    def m_users_list(self, params: dict) -> dict:
        return self._page(self.workspace.users, params, "members")

    def m_conversations_list(self, params: dict) -> dict:
        types = (params.get("types") or "public_channel").split(",")
        if any(t not in self.scopes for t in types):
            return {"ok": False, "error": "missing_scope", "needed": ",".join(types)}
        items = []
        for c in self.workspace.conversations:
            if c["type"] in types:
                item = {"id": c["id"], **KIND_FLAGS[c["type"]], "is_ext_shared": bool(c.get("shared"))}
                item |= {"user": c["user"]} if c["type"] == "im" else {"name": c["name"]}
                items.append(item)
        return self._page(items, params, "channels")

    def _conversation(self, params: dict) -> dict | None:
        return next((c for c in self.workspace.conversations if c["id"] == params.get("channel")), None)

    def m_conversations_members(self, params: dict) -> dict:
        c = self._conversation(params)
        return self._page(c["members"], params, "members") if c else {"ok": False, "error": "channel_not_found"}

    def m_conversations_history(self, params: dict) -> dict:
        c = self._conversation(params)
        if c is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(params.get("oldest") or 0)
        top = [
            m
            for m in self.workspace.messages[c["id"]]
            if float(m["ts"]) > oldest
            and (m.get("thread_ts", m["ts"]) == m["ts"] or m.get("subtype") == "thread_broadcast")
        ]
        return self._page(top[::-1], params, "messages")

    def m_conversations_replies(self, params: dict) -> dict:
        c = self._conversation(params)
        if c is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = params.get("ts")
        thread = [m for m in self.workspace.messages[c["id"]] if m["ts"] == ts or m.get("thread_ts") == ts]
        return self._page(thread, params, "messages")


def serve(standin: SlackStandin) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                body = self.rfile.read(length).decode()
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    params |= json.loads(body)
                else:
                    params |= dict(urllib.parse.parse_qsl(body))
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            status, headers, payload = standin.answer(url.path.removeprefix("/api/"), params, token)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _handle

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    standin.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
