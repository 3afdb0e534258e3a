"""The structure of an .ics file: its text, the line of each top-level VEVENT, and the checks
that refuse a file that is not iCalendar or is cut short (``ImportFileError``, naming the file
and the line, which icalendar's own messages do not) or blank out a component whose END does not
match its BEGIN. Only the BEGIN and END lines are looked at one by one unless something is wrong."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import icalendar

from connectors.ics.files import ImportFileError


def text_of(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older Outlook exports; any byte decodes, the structure check decides


# Lines that may begin or end a component ("begın" upper-cases to "BEGIN" too), from the newline
# before them (searching for a literal is fast; "^" is tried at every character).
BEGIN_OR_END = re.compile(r"\n[^\S\n]*(?:[Bb][Ee][Gg][Iiı][Nn]|[Ee][Nn][Dd]):.*")


def event_lines(name: str, text: str) -> Callable[[int], int]:
    """The line of the n-th top-level BEGIN:VEVENT (0 past the last); ImportFileError if the
    structure is broken.

    icalendar's own messages on a cut-short or foreign file name neither the file nor the line.
    Only the BEGIN and END lines are looked at one by one; a file with something to report is
    then read line by line, which words the report.
    """
    line_of = None if odd_line_breaks(text) else begin_lines(text)
    if line_of is not None:
        return line_of
    numbers = _check_every_line(name, text)
    return lambda n: numbers[n] if n < len(numbers) else 0


def odd_line_breaks(text: str) -> bool:
    """Whether str.splitlines() breaks ``text`` anywhere but at LF and CRLF."""
    return text.count("\r") != text.count("\r\n") or any(c in text for c in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def begin_lines(text: str) -> Callable[[int], int] | None:
    """What ``_check_every_line`` finds for a sound file, as a function; None for a file it would
    report on. Lines are counted only when one is asked for (only a skipped event needs it)."""
    first = re.search(r"\S", text)
    if first is None:
        return None
    line_end = text.find("\n", first.start())
    first_line = text[text.rfind("\n", 0, first.start()) + 1 : None if line_end < 0 else line_end]
    if first_line.strip().upper() != "BEGIN:VCALENDAR":
        return None
    text = "\n" + text  # each line after a newline; the count of newlines up to a line is its number
    events = _top_level_events([line.strip().upper() for line in BEGIN_OR_END.findall(text)])
    if events is None:
        return None

    @functools.cache
    def numbers() -> list[int]:
        starts = [line.start() + 1 for line in BEGIN_OR_END.finditer(text)]
        found, newlines, counted = [], 0, 0
        for event in events:
            newlines += text.count("\n", counted, starts[event])
            counted = starts[event]
            found.append(newlines)
        return found

    return lambda n: numbers()[n] if n < len(events) else 0


def _top_level_events(lines: list[str]) -> list[int] | None:
    """Where among a file's BEGIN and END lines (upper case) each top-level VEVENT begins; None
    when they are not nested one inside the other."""
    stack: list[str] = []
    events: list[int] = []
    for position, upper in enumerate(lines):
        if upper.startswith("BEGIN:"):
            if upper == "BEGIN:VEVENT" and len(stack) == 1:
                events.append(position)
            stack.append(upper[6:])
        elif stack and stack[-1] == upper[4:]:
            stack.pop()
        else:
            return None
    return None if stack else events


def _check_every_line(name: str, text: str) -> list[int]:
    stack: list[tuple[str, int]] = []
    events: list[int] = []
    seen_calendar = False
    last = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        last = number
        upper = line.upper()
        if not seen_calendar and upper != "BEGIN:VCALENDAR":
            raise ImportFileError(
                f"{name}: not an iCalendar file (line {number} should be BEGIN:VCALENDAR); "
                "export the calendar as .ics (iCalendar) and import that file"
            )
        if upper.startswith("BEGIN:"):
            seen_calendar = True
            kind = upper[6:]
            if kind == "VEVENT" and len(stack) == 1:
                events.append(number)
            stack.append((kind, number))
        elif upper.startswith("END:"):
            kind = upper[4:]
            if not stack or stack[-1][0] != kind:
                open_kind = f"{stack[-1][0]} begun at line {stack[-1][1]}" if stack else "nothing"
                raise ImportFileError(
                    f"{name}: line {number} ends {kind} but {open_kind} is open; the file is damaged, export it again"
                )
            stack.pop()
    if not seen_calendar:
        raise ImportFileError(f"{name}: the file is empty; export the calendar as .ics again")
    if stack:
        kind, begun = stack[-1]
        raise ImportFileError(
            f"{name}: cut short at line {last} inside {kind} begun at line {begun} (no END:VCALENDAR); "
            "the export or download was interrupted, export it again"
        )
    return events


_LINE_BREAKS = re.compile("[^\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+")


def without_broken_parts(name: str, text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text with each component whose END does not match its BEGIN blanked out (its lines
    kept empty, so every other line keeps its number), and (item, reason) of each. A file that
    is not iCalendar or is cut short is left as it is: ``event_lines`` refuses it whole."""
    if not odd_line_breaks(text) and begin_lines(text) is not None:
        return text, []
    stack: list[tuple[str, int, int]] = []  # (kind, line, offset of the BEGIN line)
    blank: list[tuple[int, int]] = []
    broken: list[tuple[str, str]] = []
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        at, offset = offset, offset + len(line)
        upper = line.strip().upper()
        if upper.startswith("BEGIN:"):
            stack.append((upper[6:], number, at))
        elif upper.startswith("END:") and stack and stack[-1][0] != upper[4:]:
            kind, open_kinds = upper[4:], [open_kind for open_kind, _, _ in stack]
            if kind in open_kinds:  # the components inside it never ended
                depth = len(open_kinds) - 1 - open_kinds[::-1].index(kind)
                inner, begun, start = stack[depth + 1]
                blank.append((start, at))
                reason = f"has no END:{inner} before line {number} ends {kind}; lines {begun}-{number - 1} skipped"
                broken.append((f"{name} line {begun}: {inner}", f"{reason}, fix or export it again"))
                del stack[depth:]
            elif len(stack) > 1:  # a mistyped END of the innermost one
                inner, begun, start = stack.pop()
                blank.append((start, offset))
                reason = f"ends with END:{kind} at line {number} instead of END:{inner}; lines {begun}-{number} skipped"
                broken.append((f"{name} line {begun}: {inner}", f"{reason}, fix or export it again"))
            else:
                blank.append((at, offset))
                broken.append((f"{name} line {number}", f"END:{kind} ends nothing that is open; the line is skipped"))
        elif upper.startswith("END:") and stack:
            stack.pop()
    return _blanked(text, blank), broken


def _blanked(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with everything but the line breaks in ``spans`` (start, end offsets) taken out."""
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for start, end in reversed(merged):
        text = text[:start] + _LINE_BREAKS.sub("", text[start:end]) + text[end:]
    return text


def parsed_calendars(name: str, text: str) -> list[icalendar.Calendar]:
    try:
        return icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as e:
        raise ImportFileError(f"{name}: not valid iCalendar ({e}); export the calendar as .ics again") from None
