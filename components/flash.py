"""A message that survives one rerun: set it in a callback or before ``st.rerun()``, show it once below."""

from __future__ import annotations

from typing import Literal

import streamlit as st

Kind = Literal["success", "info", "warning", "error"]


def flash(key: str, kind: Kind, text: str) -> None:
    """Remember a message under the page's key (e.g. ``builder_flash``) for the next run of the script."""
    st.session_state[key] = (kind, text)


def show_flash(key: str) -> None:
    """Show the remembered message, once, as text (never as HTML)."""
    msg = st.session_state.pop(key, None)
    if msg:
        kind, text = msg
        getattr(st, kind)(text)
