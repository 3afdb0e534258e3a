"""Titles and subjects -> keyword tags, so content stays out of the lake by default.

A tag is a known keyword found in the text as a whole word (a trailing plural 's' is
allowed). The vocabulary is the built-in one below plus every admin and committee keyword
of the configuration in force when the record is ingested.
"""

from __future__ import annotations

import re
from functools import lru_cache

from timeaudit.core.config import Rules

BUILTIN_VOCABULARY = (
    "1:1",
    "one-on-one",
    "standup",
    "stand-up",
    "sync",
    "review",
    "planning",
    "retro",
    "retrospective",
    "demo",
    "call",
    "visit",
    "onboarding",
    "training",
    "interview",
    "lunch",
    "all-hands",
    "town hall",
    "kickoff",
    "qbr",
    "workshop",
    "escalation",
    "renewal",
    "support",
    "focus",
    "deep work",
    "offsite",
    "weekly",
    "monthly",
    "team",
    "prep",
    "handover",
    "hiring",
    "catch-up",
    "update",
    "project",
    "roadmap",
    "incident",
    "newsletter",
    "invitation",
)


def vocabulary(rules: Rules) -> tuple[str, ...]:
    words = set(BUILTIN_VOCABULARY) | set(rules.committee_keywords)
    for kind_words in rules.admin_keywords.values():
        words.update(kind_words)
    return tuple(sorted(words))


@lru_cache(maxsize=16)
def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first, so "status update" wins over "update".
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})s?(?![\w-])", re.IGNORECASE)


def tags_of(text: str | None, words: tuple[str, ...]) -> list[str]:
    """Keyword tags found in ``text``, lower-case, in order of first appearance, no repeats."""
    if not text:
        return []
    found: list[str] = []
    for m in _pattern(words).finditer(text):
        tag = m.group(1).lower()
        if tag not in found:
            found.append(tag)
    return found
