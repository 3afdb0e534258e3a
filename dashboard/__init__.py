"""The Streamlit dashboard: shows what timeaudit computes, decides nothing."""
