"""Render helpers: take data, return a widget value. May import streamlit, never duckdb/openai."""
