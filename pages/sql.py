"""SQL page."""

import streamlit as st

st.title("SQL")
st.info("query every recipe, plan, run and sample from DuckDB in a read-only console (coming soon).")
