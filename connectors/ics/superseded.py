"""Events another one supersedes, blanked out of an .ics file's bytes before either reader sees
it: a byte-for-byte copy of an earlier event of the same UID and RECURRENCE-ID, or one with a
lower SEQUENCE. recurring_ical_events would keep only the newest anyway, but every copy costs
icalendar a component and the series a place, so a file of many copies of one UID is thinned
first (found as ``connectors.ics.plain`` finds events)."""

from __future__ import annotations

import re
from collections import Counter

_BLANKED = re.compile(rb"[^\r\n\x0b\x0c\x1c\x1d\x1e\x85]+")
_UID_LINE = re.compile(rb"\nUID:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
_RID_LINE = re.compile(rb"\nRECURRENCE-ID([;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
_SEQUENCE_LINE = re.compile(rb"\nSEQUENCE:([^\r\n]*)")


def without_superseded(data: bytes) -> bytes:
    """The file with every event that another one of the same UID and RECURRENCE-ID (as
    written) supersedes blanked out, its lines kept empty: a byte-for-byte copy of an earlier
    one, or one with a lower SEQUENCE. recurring_ical_events would keep only the one with the
    highest SEQUENCE (the first of equals) anyway, but each copy costs icalendar a component
    and the series a place (docs/performance.md). Events are
    found as the plain reader finds them (``connectors.ics.plain_lines.find_spans``)."""
    if not _many_copies(data):
        return data
    nl = b"\r\n" if data[: data.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    begin, end = nl + b"BEGIN:VEVENT" + nl, nl + b"END:VEVENT" + nl
    kept: dict[tuple, tuple[int, int, int]] = {}  # by (UID, RECURRENCE-ID): (start, stop, SEQUENCE)
    dropped: list[tuple[int, int]] = []
    b = data.find(begin)
    while b >= 0:
        e = data.find(end, b + len(begin) - len(nl))
        if e < 0:
            break
        start, stop = b + len(nl), e + len(end)
        if data.find(begin, b + len(begin) - len(nl), e) < 0:  # holds no other event
            block = data[start - len(nl) : stop]
            key, sequence = _version_key(block)
            if key is not None:
                earlier = kept.setdefault(key, (start, stop, sequence))
                if earlier[0] != start:
                    if sequence > earlier[2]:
                        kept[key] = (start, stop, sequence)
                    dropped.append((start, stop) if sequence <= earlier[2] else earlier[:2])
        b = data.find(begin, stop - len(nl))
    if not dropped:
        return data
    pieces, done = [], 0
    for start, stop in sorted(dropped):
        pieces += (data[done:start], _BLANKED.sub(b"", data[start:stop]))
        done = stop
    return b"".join([*pieces, data[done:]])


COPIES_WORTH_A_LOOK = 50  # a series with this many overrides is rare; looking costs a tenth of a read


def _many_copies(data: bytes) -> bool:
    """Whether some UID line is written ``COPIES_WORTH_A_LOOK`` times or more (one scan in C)."""
    uids = _UID_LINE.findall(data)
    return len(uids) >= COPIES_WORTH_A_LOOK and Counter(uids).most_common(1)[0][1] >= COPIES_WORTH_A_LOOK


def _version_key(block: bytes) -> tuple[tuple | None, int]:
    """(UID, RECURRENCE-ID) of an event's text as written, and its SEQUENCE; no key when its
    UID is missing or its SEQUENCE is not a plain number (icalendar decides those)."""
    uids, rids, sequence = (line.findall(block) for line in (_UID_LINE, _RID_LINE, _SEQUENCE_LINE))
    if len(uids) != 1 or not uids[0].strip() or len(rids) > 1 or len(sequence) > 1:
        return None, 0
    if sequence and not sequence[0].isdigit():
        return None, 0
    return (uids[0], rids[0] if rids else None), int(sequence[0]) if sequence else -1  # as recurring_ical_events
