"""Prompt Builder: build a conditional prompt (task, templates, dimensions, demos, sampling), see its plan, save versions."""

from __future__ import annotations

import streamlit as st

from components import column_editor, plan_view, recipe_form, recipe_gallery, versions
from components.flash import flash, show_flash
from resources import get_local_server, get_store
from services.demo.recipe_files import demo_recipe_files, load_demo_recipe
from services.recipes.columns import graph_dot
from services.recipes.plan import make_plan, template_report
from services.recipes.recipe import Dimension, Recipe, RecipeError
from services.recipes.recipe_yaml import from_yaml, to_yaml
from services.recipes.sampling import plan_size
from services.recipes.templating import TemplateProblem
from services.recipes.version_store import diff_recipes, duplicate, list_versions, load_version, save_version

store = get_store()
DEFAULT = Recipe(name="movie-reviews", task="Suppose you are a movie reviewer.",
                 user_template="Write a {{ sentiment }} review of a {{ genre }} movie.",
                 dimensions=[Dimension(name="sentiment", values=["positive", "negative"]),
                             Dimension(name="genre", values=["comedy", "horror", "drama"])])
STARTER = "the movie-review example (pick a starter or an empty recipe here)"
recipe_form.ensure_loaded(DEFAULT, STARTER)

st.title("Prompt Builder")
st.caption("A conditional prompt: a task specification, dimensions with values, demonstrations and a template, "
           "sampled into a plan. Nothing is sent to a model here.")


def _load(kind: str) -> None:
    key = st.session_state.get(f"builder_pick_{kind}")
    if not key:
        return
    recipe = load_demo_recipe(key) if kind == "demo" else load_version(store, key)
    recipe_form.load_recipe(recipe, f"demo {key}" if kind == "demo" else f"saved version {key[:8]}")


def _import_yaml() -> None:
    f = st.session_state.get("builder_pin_yaml")
    if f is None:
        return
    try:
        recipe_form.load_recipe(from_yaml(f.getvalue()), f"file {f.name}")
        # A builder_pin_* key: load_recipe clears the form's other keys, this message survives it.
        flash("builder_pin_flash", "success", f"Imported {f.name}.")
    except RecipeError as exc:
        flash("builder_pin_flash", "error", f"{f.name} was not imported (the form is unchanged): {exc}")


recipe_gallery.starter_hint(recipe_form.source_label() == STARTER)
with st.expander(f"Open a recipe — editing: {recipe_form.source_label()}", icon=":material/folder_open:"):
    recipe_gallery.starter_gallery()
    c1, c2, c3 = st.columns(3)
    demos = list(demo_recipe_files())
    c1.selectbox("Demo recipe", demos, key="builder_pick_demo", index=None, placeholder="Choose a demo recipe")
    c1.button("Open demo", on_click=_load, args=("demo",), disabled=not demos)
    saved = list_versions(store)
    c2.selectbox("Saved version", [v.recipe_hash for v in saved], key="builder_pick_saved", index=None,
                 format_func={v.recipe_hash: v.label for v in saved}.get, placeholder="Choose a saved version")
    c2.button("Open version", on_click=_load, args=("saved",), disabled=not saved)
    c3.file_uploader("Import a YAML recipe", type=["yaml", "yml"], key="builder_pin_yaml", on_change=_import_yaml)
    show_flash("builder_pin_flash")

result = recipe_form.read_recipe()
draft = result.recipe
report = template_report(draft) if draft else None
dim_names = [d.name for d in draft.dimensions] if draft else [
    st.session_state.get(f"builder_dim_{u}_name", "") for u in st.session_state["builder_dims"]]

tabs = st.tabs(["1 · Task & templates", "2 · Dimensions", "3 · Demonstrations", "4 · Sampling", "5 · Columns"])
with tabs[0]:
    recipe_form.task_and_templates(report)
    for m in result.problems.get("general", []):
        st.error(m, icon=":material/error:")
with tabs[1]:
    recipe_form.dimensions_editor(result.problems)
with tabs[2]:
    recipe_form.demos_editor(result.problems, dim_names)
with tabs[3]:
    recipe_form.sampling_editor(result.problems)
with tabs[4]:
    column_editor.columns_editor(result.problems.get("columns", []), ["output"] if st.session_state.get("builder_user", "").strip() else [])

st.divider()
st.subheader("Plan")
if draft is None:
    n = sum(len(v) for v in result.problems.values())
    st.error(f"The recipe has {n} problem{'s' * (n != 1)} (shown next to each field above); fix them to see the plan. Nothing saved is lost.")
    st.stop()

plan = None
try:
    size = plan_size(draft)
    plan_view.plan_size_metrics(size, draft.sampling.strategy, draft)
    n_preview = st.number_input("Preview items", min_value=1, max_value=200, value=5, key="builder_pin_n")
    if draft.source is None:  # a recipe over a dataset's rows is planned from them: see "Test one row"
        plan = make_plan(draft, limit=int(n_preview))
except (RecipeError, TemplateProblem) as exc:
    st.error(str(exc), icon=":material/error:")
if draft.columns or draft.steps or draft.source:
    st.caption("Column graph: dimensions → columns → judges.")
    column_editor.column_graph(graph_dot(draft))
with st.expander("Test one row", icon=":material/science:"):
    column_editor.test_row_panel(store, draft, get_local_server())

if plan is not None and plan.items:
    st.caption(f"The first {len(plan.items)} items, rendered exactly as they would be sent.")
    plan_view.preview_table(plan, dim_names)
    # Labels as options (not a format_func) so the widget refreshes when the plan changes.
    labels = [f"item {it.index}: " + ", ".join(it.condition.values())[:120] for it in plan.items]
    pick = st.selectbox("Open an item in full", labels, key="builder_pin_item")
    with st.container(border=True):
        plan_view.item_detail(plan, labels.index(pick) if pick in labels else 0)

st.divider()
st.subheader("Versions")
rhash = draft.content_hash()
existing = {v.recipe_hash: v for v in saved}
c1, c2 = st.columns([3, 2])
with c1:
    if rhash in existing:
        st.success(f"This exact recipe is saved as **{existing[rhash].label}**.")
    else:
        note = st.text_input("Note for this version (optional)", key="builder_pin_note")
        if st.button("Save as a new version", type="primary", icon=":material/save:"):
            v = save_version(store, draft, parent_hash=recipe_form.loaded_hash(), note=note)
            st.session_state["builder_loaded_hash"] = v.recipe_hash
            st.session_state["builder_source"] = f"saved version {v.label}"  # the header names what was saved
            st.rerun()
    st.download_button("Export YAML", icon=":material/download:", data=to_yaml(draft), file_name=f"{draft.name}.yaml", mime="application/x-yaml")
with c2:
    new_name = st.text_input("Duplicate as", key="builder_pin_dup", placeholder=f"{draft.name}-copy")
    if st.button("Duplicate", disabled=rhash not in existing or not new_name.strip(),
                 help="Copy the saved version under a new name"):
        try:
            v = duplicate(store, rhash, new_name)
            recipe_form.load_recipe(load_version(store, v.recipe_hash), f"saved version {v.recipe_hash[:8]}")
            st.rerun()
        except RecipeError as exc:
            st.error(str(exc))

same_name = [v for v in saved if v.name == draft.name]
versions.versions_table(same_name)
if len(saved) >= 2:
    with st.expander("Compare two versions"):
        labels = {v.recipe_hash: v.label for v in saved}
        a = st.selectbox("Old", list(labels), format_func=labels.get, key="builder_pin_diff_a", index=min(1, len(saved) - 1))
        b = st.selectbox("New", list(labels), format_func=labels.get, key="builder_pin_diff_b", index=0)
        versions.diff_view(diff_recipes(load_version(store, a), load_version(store, b), labels[a], labels[b]))
