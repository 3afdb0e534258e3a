"""timeaudit dashboard, served by `timeaudit dashboard` (dashboard/server.py) or `streamlit run dashboard/app.py`."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by streamlit

from dashboard import data, nodelay  # noqa: E402
from timeaudit.core.errors import UserError  # noqa: E402
from timeaudit.core.sign_in import SignInRefused  # noqa: E402
from timeaudit.lake.secret_files import check_secret_files  # noqa: E402
from timeaudit.lake.store import keep_private  # noqa: E402
from timeaudit.privacy import NotOnRoster  # noqa: E402

nodelay.install()  # connections accepted from now on answer without Nagle's 40 ms waits
keep_private()  # imports and settings written from the Data and Rules pages: the user's only
st.set_page_config(page_title="timeaudit", page_icon="⏱", layout="wide")


def sign_in_page() -> None:
    st.title("timeaudit")
    st.write("Sign in with your work account to see where your hours go.")
    if st.button("Sign in", type="primary"):
        st.login()


def not_on_roster_page(reason: str) -> None:
    refusal_page("Not on the roster", reason)


def refusal_page(title: str, reason: str) -> None:
    st.title(title)
    st.error(reason)
    st.button("Sign out", on_click=st.logout)


try:
    check_secret_files(*st.get_option("secrets.files"))
except UserError as e:  # a secrets file or token others can read: refuse to serve anything
    st.error(str(e))
    st.stop()

try:
    viewer = data.access()
except data.SignInNeeded:
    sign_in_page()
    st.stop()
except NotOnRoster as e:
    not_on_roster_page(str(e))
    st.stop()
except SignInRefused as e:
    refusal_page("Sign-in refused", str(e))
    st.stop()

pages = [
    st.Page("views/my_week.py", title="My week", icon="👤", default=True),
    st.Page("views/team.py", title="Team", icon="👥", url_path="team"),
    st.Page("views/wasters.py", title="Time wasters", icon="⏳", url_path="wasters"),
    st.Page("views/customers.py", title="Customers", icon="🤝", url_path="customers"),
]
if viewer.may_configure:
    pages += [
        st.Page("views/rules.py", title="Rules", icon="⚙", url_path="rules"),
        st.Page("views/data.py", title="Data", icon="🗂", url_path="data"),
    ]
with st.sidebar:
    st.caption(viewer.describe())
    if not viewer.local and data.sign_in_configured():
        st.button("Sign out", on_click=st.logout)
st.navigation(pages).run()
