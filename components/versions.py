"""Rendering saved recipe versions and their diffs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from services.recipes.version_store import RecipeVersion


def versions_table(versions: list[RecipeVersion]) -> None:
    if not versions:
        st.caption("No saved versions yet. Save one to give the recipe an immutable, hashed version.")
        return
    df = pd.DataFrame(
        [{"name": v.name, "version": v.version, "hash": v.recipe_hash, "saved": v.created_at, "note": v.note or ""} for v in versions]
    )
    st.dataframe(df, hide_index=True, width="stretch")


def diff_view(diff: str) -> None:
    if not diff:
        st.success("The two versions are identical.")
    else:
        st.code(diff, language="diff")
