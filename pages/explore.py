"""Explore page."""

import streamlit as st

st.title("Explore")
st.info("embed samples, project them as a UMAP map with clusters, and measure diversity (coming soon).")
