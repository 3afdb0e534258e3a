"""Data: what timeaudit holds, and importing calendar and mail exports by upload."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data
from timeaudit.core.errors import UserError
from timeaudit.lake.imports import import_ics, import_mail
from timeaudit.lake.store import holdings
from timeaudit.outputs.derived import manifest_in_use

SOURCE_NAMES = {
    "demo": "Demo organisation",
    "google_calendar": "Google Calendar",
    "gmail": "Gmail",
    "microsoft": "Microsoft 365",
    "ics": "Calendar files",
    "mail": "Mail files",
    "slack": "Slack",
}
CALENDAR_TYPES = ["ics", "zip"]
MAIL_TYPES = ["mbox", "eml", "mbx"]


def show() -> None:
    st.title("Data")
    if not data.access().may_configure:
        st.error("Only administrators see this page.")
        return
    lake, settings = data.workspace()
    _show_holdings(lake)
    _show_derived(lake, settings)
    if "last-import" in st.session_state:
        _show_report(*st.session_state.pop("last-import"))

    st.subheader("Import exports")
    st.caption(
        "For calendars and mailboxes you cannot connect. Importing the same export again changes nothing; "
        "a newer export of the same calendar or mailbox updates what changed and removes what it no longer has. "
        "Mail is read for its headers only; message bodies are never kept."
    )
    calendar_tab, mail_tab = st.tabs(["Calendar (.ics)", "Mail (mbox, .eml)"])
    with calendar_tab, st.form("import-ics", clear_on_submit=True):
        files = st.file_uploader(
            "Calendar exports",
            type=CALENDAR_TYPES,
            accept_multiple_files=True,
            help="From Google Calendar (Settings > Import & export), Outlook, Apple Calendar or Thunderbird; "
            "a .zip of several .ics files works too.",
        )
        account = st.text_input("Whose calendar is it?", placeholder="ann@example.com", key="ics-account")
        if st.form_submit_button("Import calendar"):
            _run_import(files, account, lambda paths: import_ics(lake, settings, paths, account, base=paths[0].parent))
    with mail_tab, st.form("import-mail", clear_on_submit=True):
        files = st.file_uploader(
            "Mail exports",
            type=MAIL_TYPES,
            accept_multiple_files=True,
            help="A Google Takeout or Thunderbird .mbox file, or .eml messages.",
        )
        account = st.text_input("Whose mailbox is it?", placeholder="ann@example.com", key="mail-account")
        if st.form_submit_button("Import mail"):
            _run_import(files, account, lambda paths: import_mail(lake, settings, paths, account, base=paths[0].parent))


def _show_holdings(lake) -> None:
    con = lake.connect()
    try:
        rows = holdings(con)
    finally:
        con.close()
    if not rows:
        st.info("No data yet. Import an export below, or run `timeaudit demo` or `timeaudit sync google-calendar`.")
        return
    table = pd.DataFrame(rows, columns=["table", "source", "records", "accounts", "first", "last", "landed"])
    table["What"] = table["table"].map({"events": "Calendar events", "messages": "Emails", "chat": "Chat messages"})
    table["Source"] = table["source"].map(lambda s: SOURCE_NAMES.get(s, s))
    for column in ("first", "last"):
        table[column] = pd.to_datetime(table[column]).dt.strftime("%Y-%m-%d")
    table["landed"] = pd.to_datetime(table["landed"]).dt.strftime("%Y-%m-%d %H:%M UTC")
    shown = table[["What", "Source", "records", "accounts", "first", "last", "landed"]].rename(
        columns={"records": "Records", "accounts": "People", "first": "From", "last": "To", "landed": "Last updated"}
    )
    st.table(shown.set_index("What"))


def _show_derived(lake, settings) -> None:
    """Whether the weekly figures come from the tables `timeaudit metrics` wrote (docs/spark.md)."""
    used = manifest_in_use(lake, settings)
    if used:
        st.caption(
            f"Weekly figures are read from the tables `timeaudit metrics` computed with {used['engine']} "
            f"at {datetime.fromisoformat(used['computed_at']):%Y-%m-%d %H:%M UTC}; "
            "nothing in the data or the settings has changed since."
        )
    else:
        st.caption(
            "Weekly figures are computed from the data when first shown. For a large organisation, run "
            "`timeaudit metrics` after each sync and they are read from its tables instead."
        )


def _run_import(files, account: str, run) -> None:
    if not files:
        st.error("Choose at least one file to import.")
        return
    with tempfile.TemporaryDirectory(prefix="timeaudit-upload-") as folder:
        paths = []
        for upload in files:
            path = Path(folder) / Path(upload.name).name  # the browser's name, never a path it sends
            path.write_bytes(upload.getbuffer())
            paths.append(path)
        try:
            with st.spinner("Importing…"):
                report = run(paths)
        except UserError as e:
            st.error(str(e).replace(folder + "/", ""))
            return
    problems = [(p, "the whole file could not be read") for p in report.failed_files] + report.skipped
    # Rerun so the holdings above include the import; the report is shown after it.
    st.session_state["last-import"] = (report.line(), [(i.replace(folder + "/", ""), r) for i, r in problems])
    st.rerun()


def _show_report(line: str, problems: list[tuple[str, str]]) -> None:
    st.success(line)
    if problems:
        with st.expander(f"{len(problems)} item(s) not imported", expanded=True):
            st.dataframe(
                pd.DataFrame(problems, columns=["Item", "Why"]),
                hide_index=True,
                width="stretch",
            )


if __name__ == "__main__":
    show()
