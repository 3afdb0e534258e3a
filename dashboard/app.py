"""timeaudit dashboard: `timeaudit dashboard` (or `streamlit run dashboard/app.py`)."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script by streamlit

st.set_page_config(page_title="timeaudit", page_icon="⏱", layout="wide")

pages = [
    st.Page("pages/my_week.py", title="My week", icon="👤", default=True),
    st.Page("pages/team.py", title="Team", icon="👥", url_path="team"),
    st.Page("pages/wasters.py", title="Time wasters", icon="⏳", url_path="wasters"),
    st.Page("pages/customers.py", title="Customers", icon="🤝", url_path="customers"),
    st.Page("pages/rules.py", title="Rules", icon="⚙", url_path="rules"),
    st.Page("pages/data.py", title="Data", icon="🗂", url_path="data"),
]
st.navigation(pages).run()
