"""Synthetic Data Studio: entry point. Page config, navigation, shared sidebar."""

from __future__ import annotations

import sys

import streamlit as st
from streamlit import runtime

if __name__ == "__main__" and not runtime.exists():
    # `python app.py [streamlit options]` starts the server on this script.
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", __file__, *sys.argv[1:]]
    sys.exit(cli.main())

from services.core import settings
from services.core.store import StoreLockedError

st.set_page_config(page_title="Synthetic Data Studio", page_icon=":material/science:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/prompt_builder.py", title="Prompt Builder", icon=":material/extension:", url_path="prompt_builder"),
    st.Page("app_pages/generate.py", title="Generate", icon=":material/bolt:", url_path="generate"),
    st.Page("app_pages/explore.py", title="Explore", icon=":material/scatter_plot:", url_path="explore"),
    st.Page("app_pages/compare_filters.py", title="Compare Filters", icon=":material/compare:", url_path="compare_filters"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("app_pages/sql.py", title="SQL", icon=":material/database:", url_path="sql"),
]

page = st.navigation(PAGES)

try:
    from resources import get_batch_poller, get_store

    store = get_store()
except StoreLockedError as exc:
    st.error(str(exc))
    st.stop()

# Warm the embedder and UMAP in the background so the first map does not pay for it (off in most tests).
if settings.flag("STUDIO_WARMUP"):
    from resources import get_warmup

    get_warmup()

# Open provider batches are polled, and collected when they end, by a thread of this process.
get_batch_poller()

with st.sidebar:
    st.caption(f"Database: `{store.path}`")

page.run()
