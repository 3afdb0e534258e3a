"""The browser step's floor: an empty Streamlit page (a heading, nothing computed), served by
the same Streamlit as the dashboard, so its load is Streamlit's own frontend boot."""

import streamlit as st

st.title("Floor")
