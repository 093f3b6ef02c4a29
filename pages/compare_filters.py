"""Compare Filters page."""

import streamlit as st

st.title("Compare Filters")
st.info("build curation pipelines and compare what each keeps, side by side (coming soon).")
