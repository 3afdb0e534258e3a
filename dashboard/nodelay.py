"""Send the dashboard's small HTTP and websocket replies at once, not 40 ms late.

Streamlit binds its listening socket without naming the protocol (``socket.socket(family)``,
so ``proto`` is 0), and asyncio turns Nagle's algorithm off only for sockets whose ``proto``
is ``IPPROTO_TCP``. Every connection the server accepts therefore keeps Nagle on: a reply
written as headers then a small body waits for the browser's delayed acknowledgement of the
headers, 40 ms on Linux. A new tab fetches some 90 small scripts and a burst of small
websocket messages that way; on loopback that was about half a second of a page's first
load. Loosening the check to any TCP socket turns Nagle off for every connection accepted
after ``install``: dashboard/server.py calls it before the server starts, app.py again for
``streamlit run dashboard/app.py`` (from its first page run on).
"""

from __future__ import annotations

import socket
from asyncio import base_events


def _set_nodelay(sock: socket.socket) -> None:
    if sock.family in {socket.AF_INET, socket.AF_INET6} and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def install() -> None:
    """Turn Nagle's algorithm off for the TCP connections asyncio accepts from now on."""
    if hasattr(socket, "TCP_NODELAY"):
        base_events._set_nodelay = _set_nodelay
