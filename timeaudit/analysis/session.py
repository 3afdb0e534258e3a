"""One analysis per lake version and settings, shared by every caller in the process.

Classifying the records (``metrics.open_analysis``) is most of the work of any figure, and it
depends on the lake's snapshot and the settings alone, never on who asks or for which weeks.
So the weekly table, the audit tables and the reports of one lake version all read one shared
``Analysis``: the first caller builds it while later ones wait for it rather than classify the
same events again, and the weekly table is computed on it once (``metrics.compute_weekly``).
What depends on the caller's scope (the weeks, the people, the grouping the privacy gate
allows) is registered on the shared connection per call, under the analysis's lock
(``audit.scoped``), so callers with different scopes take turns there and share the rest.
A new lake version or new settings get a new analysis; the old one is let go.
"""

from __future__ import annotations

import hashlib
import threading

from timeaudit.analysis import metrics
from timeaudit.analysis.metrics import Analysis
from timeaudit.core.config import Settings
from timeaudit.lake.store import Lake

KEPT = 2  # analyses kept: the newest lake version's and the one before, still in use by a page
_analyses: dict[tuple, Analysis] = {}
_building: dict[tuple, threading.Lock] = {}
_guard = threading.Lock()


def analysis_key(lake: Lake, settings: Settings) -> tuple:
    """What an analysis depends on: the lake's folder and table versions, the settings as
    loaded and the roster's contents."""
    roster = settings.roster_path()
    h = hashlib.sha256(settings.model_dump_json().encode())
    h.update(roster.read_bytes() if roster and roster.is_file() else b"")
    return (str(lake.root.resolve()), lake.version(), h.hexdigest())


def shared_analysis(lake: Lake, settings: Settings) -> Analysis:
    """The analysis of the lake's current version with these settings: built once, then shared."""
    key = analysis_key(lake, settings)
    with _guard:
        found = _analyses.get(key)
        if found is not None:
            return found
        building = _building.setdefault(key, threading.Lock())
    with building:  # one caller builds, the others wait for it
        with _guard:
            found = _analyses.get(key)
        if found is None:
            found = metrics.open_analysis(lake, settings)
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
