"""Home page."""

import streamlit as st

st.title("Home")
st.info("what the studio does, the state of the database, and a guided tour (coming soon).")
