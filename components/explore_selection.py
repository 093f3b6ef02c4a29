"""Actions on a box or lasso selection of the Explore map: tag, drop in review, export, and
"generate more like these" / "fill this gap" (which open Fill the gap with the selected texts as
demonstrations: components.explore_gap does the work).

Each action says what it did with counts; dataset rows, which cannot be tagged or reviewed, are
counted and said. Texts reach the downloads as data, never as HTML.
"""

from __future__ import annotations

import streamlit as st

from components.flash import flash, show_flash
from services.core.store import Store
from services.curation.export import to_csv, to_jsonl
from services.curation.selection_actions import (
    DROP_NOTE,
    DropResult,
    TagError,
    drop_in_review,
    list_tags,
    selection_dataset_rows,
    selection_samples,
    split_selection,
    tag_samples,
    undo_drop,
    untag_samples,
)
from services.explore.items import ItemSet

FLASH = "explore_sel_flash"
UNDO = "explore_sel_undo"  # the last drop's DropResult, for its undo button
GAP_DEMOS = "selected texts as demonstrations"  # the Fill the gap target (components.explore_gap)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _open_fill_the_gap() -> None:
    # A callback runs before the next script run, so the section's widgets may still be set.
    st.session_state["explore_section"] = st.session_state["explore_last_section"] = "Fill the gap"
    st.session_state["explore_gap_how"] = GAP_DEMOS


def selection_actions(store: Store, items: ItemSet, selected: list[int]) -> None:
    """The actions panel under the selection's table (nothing without a selection)."""
    show_flash(FLASH)
    if not selected:
        return
    sel = split_selection(items.frame, selected)
    n_s, n_d = len(sel.sample_keys), len(sel.dataset_ids)
    with st.container(border=True):
        st.markdown(f"**Act on the selection:** {n_s:,} sample(s)" + (f" and {n_d:,} dataset row(s)" if n_d else ""))
        if n_d:
            st.caption(f"Dataset rows cannot be tagged or dropped in review (they are not generated samples): "
                       f"those actions apply to the {n_s:,} sample(s) only. Export and demonstrations take every selected text.")
        c1, c2 = st.columns(2)
        with c1:
            _tag(store, sel, n_s)
        with c2:
            _review(store, sel, n_s)
        c3, c4 = st.columns(2)
        with c3:
            _export(store, items, sel)
        with c4:
            st.caption("Recipe")
            reference = items.frame["source"].iloc[sel.rows].astype(str).str.startswith("reference:").any()
            label = "Fill this gap with these texts" if reference else "Generate more like these"
            st.button(label, key="explore_sel_more", on_click=_open_fill_the_gap, width="stretch")
            st.caption("Opens **Fill the gap** below with the selected texts (the first 20) as the new recipe version's "
                       "demonstrations; nothing is generated until you run it on Generate.")


def _tag(store: Store, sel, n_s: int) -> None:
    used = list_tags(store)
    st.caption("Tag" + (" · in use: " + ", ".join(used["tag"].head(8)) if len(used) else ""))
    tag = st.text_input("Tag", key="explore_sel_tag", placeholder="a name, e.g. off-topic", label_visibility="collapsed")
    b1, b2 = st.columns(2)
    if b1.button(f"Tag {n_s:,} sample(s)", key="explore_sel_tag_go", disabled=not n_s, width="stretch"):
        try:
            flash(FLASH, "success", tag_samples(store, sel, tag).summary() + " Colour the map by 'tag' to see them.")
            st.rerun()  # the map's colour options now include the tag
        except TagError as exc:
            st.error(str(exc))
    if b2.button("Remove the tag", key="explore_sel_untag", disabled=not n_s, width="stretch"):
        try:
            n = untag_samples(store, sel, tag)
            flash(FLASH, "success", f"Removed the tag '{tag.strip()}' from {n} selected sample(s).")
            st.rerun()
        except TagError as exc:
            st.error(str(exc))


def _review(store: Store, sel, n_s: int) -> None:
    st.caption("Review")
    if st.button(f"Drop {n_s:,} sample(s) in review", key="explore_sel_drop", disabled=not n_s, width="stretch"):
        result = drop_in_review(store, sel)
        st.session_state[UNDO] = result
        flash(FLASH, "success", result.summary())
        st.rerun()
    last: DropResult | None = st.session_state.get(UNDO)
    if last is not None and st.button(f"Undo the last drop ({last.dropped:,} sample(s))", key="explore_sel_undo_go", width="stretch"):
        n = undo_drop(store, last)
        del st.session_state[UNDO]
        changed = last.dropped - n
        flash(FLASH, "success", f"Undone: {n} sample(s) have their earlier review decision back"
              + (f"; {changed} reviewed again since were left as they are." if changed else "."))
        st.rerun()
    st.caption(f"Marks them 'drop' in human review with the note '{DROP_NOTE}': Compare Filters' Human review step "
               "then leaves them out. Undo puts back each sample's earlier decision.")


def _export(store: Store, items: ItemSet, sel) -> None:
    # Built only when a download is clicked: an idle page never serialises the selection.
    st.caption("Export")
    if sel.sample_keys:
        e1, e2 = st.columns(2)
        e1.download_button(f"JSONL ({_count(len(sel.sample_keys), 'sample')})", lambda: to_jsonl(selection_samples(store, sel)),
                           file_name="selection.jsonl", mime="application/jsonl", key="explore_sel_jsonl", width="stretch")
        e2.download_button(f"CSV ({_count(len(sel.sample_keys), 'sample')})", lambda: to_csv(selection_samples(store, sel)),
                           file_name="selection.csv", mime="text/csv", key="explore_sel_csv", width="stretch")
    if sel.dataset_ids:
        def rows():
            return selection_dataset_rows(items.frame, sel, items.dimensions, items.names)

        d1, d2 = st.columns(2)
        d1.download_button(f"JSONL ({_count(len(sel.dataset_ids), 'dataset row')})", lambda: to_jsonl(rows()),
                           file_name="selection-rows.jsonl", mime="application/jsonl", key="explore_sel_rows_jsonl", width="stretch")
        d2.download_button(f"CSV ({_count(len(sel.dataset_ids), 'dataset row')})", lambda: to_csv(rows()), file_name="selection-rows.csv",
                           mime="text/csv", key="explore_sel_rows_csv", width="stretch")
    st.caption("Samples with their condition and provenance columns, as Compare Filters' curated export"
               + ("; dataset rows with their attributes." if sel.dataset_ids else "."))
