"""One analysis per lake version and settings, shared by every caller in the process.

Classifying the records (``metrics.open_analysis``) is most of the work of any figure, and it
depends on the lake's snapshot and the settings alone, never on who asks or for which weeks.
So the weekly table, the audit tables and the reports of one lake version all read one shared
``Analysis``: the first caller builds it while later ones wait for it rather than classify the
same events again, and the weekly table is computed on it once (``metrics.compute_weekly``).
What depends on the caller's scope (the weeks, the people, the grouping the privacy gate
allows) is registered on the shared connection per call, under the analysis's lock
(``audit.scoped``), so callers with different scopes take turns there and share the rest.
A report for a few people (a person's or a team's) whose weekly table comes from the stored
derived tables needs only their records classified (``shared_analysis(..., people)``): the
analysis is then per lake version and access scope. A new lake version or new settings get a
new analysis; the old one is let go.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection

from timeaudit.analysis import metrics
from timeaudit.analysis.metrics import Analysis
from timeaudit.core.config import Settings
from timeaudit.lake.store import Lake

KEPT = 2  # analyses kept: the newest lake version's and the one before, still in use by a page
_analyses: dict[tuple, Analysis] = {}
_building: dict[tuple, threading.Lock] = {}
_guard = threading.Lock()


def analysis_key(lake: Lake, settings: Settings, people: Collection[str] | None = None) -> tuple:
    """What an analysis depends on: the lake's folder and table versions, the settings as
    loaded, the roster's contents, and whose records it classifies (None: everyone's)."""
    roster = settings.roster_path()
    h = hashlib.sha256(settings.model_dump_json().encode())
    h.update(roster.read_bytes() if roster and roster.is_file() else b"")
    whose = None if people is None else frozenset(people)
    return (str(lake.root.resolve()), lake.version(), h.hexdigest(), whose)


def shared_analysis(
    lake: Lake, settings: Settings, people: Collection[str] | None = None, classified: dict[str, str] | None = None
) -> Analysis:
    """The analysis of the lake's current version with these settings: built once, then shared.
    Given ``people``, one that serves the audit of those people alone (their records and
    everyone's sent messages), unless one of everyone's is at hand: it serves them too. Its
    weekly table covers only those people: take the weekly table from the stored tables or
    from an analysis of everyone. ``classified``: the records stored classified, read instead of
    classifying (``metrics.open_analysis``); the analysis is the same either way."""
    key = analysis_key(lake, settings, people)
    everyone = key[:-1] + (None,)
    with _guard:
        found = _analyses.get(everyone) or _analyses.get(key)
        if found is not None:
            return found
        building = _building.setdefault(key, threading.Lock())
    with building:  # one caller builds, the others wait for it
        with _guard:
            found = _analyses.get(key)
        if found is None:
            if people is None:
                found = metrics.open_analysis(lake, settings, classified=classified)
            else:
                found = metrics.open_analysis(lake, settings, only=people, sent_by_anyone=True, classified=classified)
            with _guard:
                _analyses[key] = found
                _building.pop(key, None)
                for old in list(_analyses)[:-KEPT]:
                    del _analyses[old]
        return found


def forget_analyses() -> None:
    """Let every shared analysis go (tests, or a settings page that wants a fresh start)."""
    with _guard:
        _analyses.clear()
