"""Rules: the keywords that make an event admin or a committee, editable with a live preview."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import data
from timeaudit.analysis.audit import preview_rules
from timeaudit.core.config import parse_settings, save_rules
from timeaudit.core.errors import UserError
from timeaudit.core.tags import vocabulary


def _words(text: str) -> list[str]:
    return [w.strip().lower() for w in text.split(",") if w.strip()]


def show() -> None:
    st.title("Rules")
    if not data.access().may_configure:
        st.error("Only administrators see this page.")
        return
    lake, settings = data.workspace()
    st.write(
        "An internal event whose title carries one of these words counts as **admin** time of that kind; "
        "meetings with a committee word are flagged as committees. Titles are kept only as keyword tags, "
        "so a word that was not known when the calendar was synced needs a new sync to match."
    )
    st.caption(f"Settings file: {settings.path or 'none yet (built-in defaults)'}")
    edited: dict[str, list[str]] = {}
    for kind, words in settings.rules.admin_keywords.items():
        edited[kind] = _words(st.text_input(f"Admin: {kind}", ", ".join(words), key=f"kw-{kind}"))
    committee = _words(
        st.text_input("Committee words", ", ".join(settings.rules.committee_keywords), key="kw-committee")
    )
    candidate = settings.model_copy(deep=True)
    candidate.rules.admin_keywords = edited
    candidate.rules.committee_keywords = committee
    unknown = sorted({w for ws in edited.values() for w in ws} - set(vocabulary(settings.rules)))
    if unknown:
        st.info(f"New words that synced titles do not carry yet (sync again to match them): {', '.join(unknown)}")

    st.subheader("Preview")
    table, changed = preview_rules(lake, settings, candidate)
    st.dataframe(
        table.rename(columns={"category": "Category", "before": "Hours now", "after": "Hours with edits"}),
        hide_index=True,
        width="stretch",
    )
    st.metric("Events that would change category", len(changed))
    path = Path(settings.path) if settings.path else lake.root / "timeaudit.toml"
    if st.button(f"Save to {path.name}", key="save-rules", disabled=candidate == settings):
        try:
            parse_settings(candidate.model_dump(exclude={"path"}))
            save_rules(path, edited, committee)
            st.cache_data.clear()
            st.success(f"Saved to {path}. Every page now uses the new rules.")
        except UserError as e:
            st.error(str(e))


if __name__ == "__main__":
    show()
