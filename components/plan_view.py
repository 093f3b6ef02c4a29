"""Rendering a plan's size and a preview of its items (model-facing text shown as plain text)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from services.recipes.plan import Plan
from services.recipes.recipe import Recipe
from services.recipes.sampling import PlanSize, value_counts


def plan_size_metrics(size: PlanSize, strategy: str, recipe: Recipe | None = None) -> None:
    c = st.columns(3)
    c[0].metric("Cells in the grid", f"{size.cells:,}")
    c[1].metric("Items in the plan", f"{size.items:,}" if size.items is not None else ("computed on preview" if size.materialisable else "—"))
    c[2].metric("Cells excluded by rules", f"{size.excluded_cells:,}" if size.excluded_cells is not None else "—")
    if size.note:
        (st.warning if not size.materialisable or "more than" in size.note else st.caption)(size.note)
    if recipe is not None and strategy == "random" and recipe.dimensions:
        counts = value_counts(recipe)
        with st.expander("Items per value (random sampling)"):
            if counts is None:
                st.caption("Not counted: the plan has more than 50,000 items.")
            for dim, by_value in (counts or {}).items():
                st.text(f"{dim} ({sum(by_value.values()):,} items): " + " · ".join(f"{v} {n:,}" for v, n in by_value.items()))


def preview_table(plan: Plan, dim_names: list[str]) -> pd.DataFrame:
    rows = []
    for it in plan.items:
        row = {"#": it.index}
        row.update({n: it.condition.get(n, "") for n in dim_names})
        row["demos"] = ", ".join(it.demo_ids)
        user = next((m["content"] for m in it.messages if m["role"] == "user"), "")
        row["user message"] = user[:200] + ("…" if len(user) > 200 else "")
        rows.append(row)
    df = pd.DataFrame(rows)
    st.dataframe(df, hide_index=True, width="stretch")
    return df


def item_detail(plan: Plan, index: int) -> None:
    it = plan.items[index]
    st.caption(f"Item {it.index} · key `{it.key}` · demos: {', '.join(it.demo_ids) or 'none'}")
    st.json(it.condition, expanded=True)
    for m in it.messages:
        with st.chat_message("assistant" if m["role"] == "system" else "user", avatar=":material/settings:" if m["role"] == "system" else ":material/person:"):
            st.caption(m["role"])
            st.code(m["content"], language=None, wrap_lines=True)
