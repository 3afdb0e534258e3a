"""timeaudit dashboard, served by `timeaudit dashboard` (dashboard/server.py) or `streamlit run dashboard/app.py`."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by streamlit

from dashboard import data, widgets  # noqa: E402
from timeaudit.core.errors import UserError  # noqa: E402
from timeaudit.core.sign_in import SignInRefused  # noqa: E402
from timeaudit.lake.secret_files import check_secret_files  # noqa: E402
from timeaudit.lake.store import keep_private  # noqa: E402
from timeaudit.privacy import NotOnRoster  # noqa: E402

keep_private()  # imports and settings written from the Data and Rules pages: the user's only
# Icons from Streamlit's own Material Symbols font and an SVG favicon: emoji need a font a plain
# Linux machine lacks, and a Material favicon would be fetched from Google's font servers.
FAVICON = Path(__file__).with_name("static") / "favicon.svg"
st.set_page_config(page_title="timeaudit", page_icon=str(FAVICON), layout="wide")


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


def serve() -> None:
    """The signed-in viewer's navigation and the page they asked for."""
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
        st.Page("views/my_week.py", title="My week", icon=":material/person:", default=True),
        st.Page("views/team.py", title="Team", icon=":material/groups:", url_path="team"),
        st.Page("views/wasters.py", title="Time wasters", icon=":material/hourglass_bottom:", url_path="wasters"),
        st.Page("views/customers.py", title="Customers", icon=":material/handshake:", url_path="customers"),
    ]
    if viewer.may_configure:
        pages += [
            st.Page("views/rules.py", title="Rules", icon=":material/tune:", url_path="rules"),
            st.Page("views/data.py", title="Data", icon=":material/database:", url_path="data"),
        ]
    with st.sidebar:
        st.caption(viewer.describe())
        if not viewer.local and data.sign_in_configured():
            st.button("Sign out", on_click=st.logout)
    page = st.navigation(pages)
    widgets.refresh_notice()
    page.run()


with data.one_version():  # every figure of this run from one version of the data
    serve()
