"""Process-wide objects, built once per studio process by st.cache_resource factories.

Pages call these; services never do (they take the objects as arguments).
"""

from __future__ import annotations

import streamlit as st

from services.store import Store


@st.cache_resource(show_spinner=False)
def get_store() -> Store:
    """The studio's one database connection (path from $STUDIO_DB or data/studio.duckdb)."""
    return Store()
