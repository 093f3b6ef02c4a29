"""Generate page."""

import streamlit as st

st.title("Generate")
st.info("run a plan live against the built-in model or any OpenAI-compatible backend (coming soon).")
