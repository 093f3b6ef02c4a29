"""The figures Explore shows are the selection's: every selected sample is mapped or said to be
left out (and why), analyses look at one run and never at the reference, names are the user's,
the heatmap knows the recipe, edited texts are mapped, and speeds are measured here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.explore import embedding_store, gaps, map_view
from services.explore import items as items_mod
from services.explore.embedders import HashEmbedder
from services.explore.embedding_store import embed_texts
from services.explore.gaps import condition_heatmap, probe_separability
from services.explore.items import ItemSet, combine, load_runs, usable
from services.explore.map_jobs import MapData, MapRequest, build_map, source_version
from services.recipes.recipe import Recipe
from services.recipes.version_store import save_version
from tests.explore_data import insert_dataset, insert_run

FIVE = ("topic", "tone", "length", "audience", "format")


def _five_dim_samples(n: int, empty: int = 0) -> list[tuple[str | None, dict[str, str]]]:
    out = []
    for i in range(n):
        cond = {"topic": ["pizza", "sushi"][i % 2], "tone": ["warm", "cold"][(i // 2) % 2], "length": ["short", "long"][i % 3 % 2],
                "audience": "kids", "format": "review"}
        out.append(("" if i < empty else f"{cond['topic']} {cond['tone']} words number {i}", cond))
    return out


def test_the_map_counts_every_selected_sample_and_says_what_it_left_out(store):
    insert_run(store, "full", _five_dim_samples(20, empty=2), name="five dims", errors=1)
    insert_run(store, "base", [(f"plain text {i}", {"topic": "pizza"}) for i in range(6)] + [("   ", {"topic": "pizza"})], name="baseline")
    data = build_map(store, HashEmbedder(), MapRequest(run_ids=("full", "base")))
    assert map_view.map_title(data).startswith("24 of 27 texts (3 left out)")  # 27: what the picker's labels add up to
    assert len(data.items) == 24
    notes = " ".join(data.notes)
    assert "3 empty text(s) left out" in notes and "five dims: 2" in notes and "baseline: 1" in notes
    assert "1 failed sample(s)" in notes


def test_a_sample_selected_twice_is_shown_once_and_said(store):
    insert_run(store, "r", [(f"text {i}", {"topic": "a"}) for i in range(4)], name="r")
    both = usable(combine(load_runs(store, ["r"]), load_runs(store, ["r"])))
    assert len(both.items) == 4 and any("selected twice" in n for n in both.notes)


def _pooled_map() -> MapData:
    """A five-dimension run and a one-dimension baseline on one map, plus a reference dataset row."""
    rng = np.random.default_rng(0)
    rows, vecs = [], []
    for i, (_, cond) in enumerate(_five_dim_samples(16)):
        rows.append({"id": f"f{i}", "text": f"t{i}", "source": "run:five", "run_id": "five", **cond})
        vecs.append(rng.normal(size=8))
    for i in range(8):
        rows.append({"id": f"b{i}", "text": f"b{i}", "source": "run:base", "run_id": "base", "topic": "pizza",
                     **{d: "(none)" for d in FIVE[1:]}})
        vecs.append(rng.normal(size=8))
    rows.append({"id": "ref", "text": "real", "source": "reference:real", "run_id": None, "topic": "chess",
                 **{d: "(none)" for d in FIVE[1:]}})
    vecs.append(rng.normal(size=8))
    e = np.array(vecs, dtype=np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    items = ItemSet(frame=pd.DataFrame(rows), dimensions=list(FIVE), run_names={"five": "five dims", "base": "baseline"})
    return MapData(items=items, vectors=e, pca=e[:, :2], labels=np.zeros(len(rows), dtype=int), model="fake")


def test_analyses_default_to_the_run_with_the_dimensions_and_never_pool_a_none_value():
    data = _pooled_map()
    assert map_view.default_analysis_run(data) == "five"
    one = map_view.scope(data, "five")
    assert set(one.items.frame["run_id"]) == {"five"} and one.items.dimensions == list(FIVE)
    cells = map_view.heatmap(one, "topic", "tone")
    assert "(none)" not in set(cells["topic"]) | set(cells["tone"]) and int(cells["empty"].sum()) == 0
    # pooled on purpose: the baseline's missing dimensions are left out, not a value
    pooled = map_view.scope(data, None)
    cells = map_view.heatmap(pooled, "topic", "tone")
    assert "(none)" not in set(cells["tone"]) and cells.attrs["left_out"] == 8
    probes = map_view.probes(pooled).set_index("dimension")
    assert probes.loc["tone", "chance"] == 0.5 and "8 text(s) without this dimension" in probes.loc["tone", "note"]


def test_reference_rows_stay_out_of_diversity_probes_and_heatmap():
    data = _pooled_map()
    kept = map_view.scope(data, None)
    assert len(kept.items) == len(data.items) - 1 and not map_view.reference_mask(kept.items.frame).any()
    assert len(kept.vectors) == len(kept.items) and len(kept.labels) == len(kept.items)
    assert "chess" not in set(map_view.heatmap(kept, "topic", "tone")["topic"])
    assert map_view.diversity(kept, None)["n"].item() == 24
    assert "reference dataset is left out" in map_view.scope_note(data, None)


def test_a_cell_of_two_samples_is_not_called_collapsed():
    frame = pd.DataFrame({"a": ["x", "x", "y", "y", "y", "y", "y"], "b": ["p"] * 7})
    e = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [1, 1], [-1, 1], [1, -1]], dtype=np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    cells = condition_heatmap(frame, e, "a", "b").set_index("a")
    assert cells.loc["x", "mean_similarity"] > 0.99 and not cells.loc["x", "collapsed"]
    assert getattr(gaps, "MIN_COLLAPSE_CELL", 0) > 2  # and the page says so


def test_a_dimension_called_length_keeps_its_name_and_runs_colour_by_name(store):
    insert_run(store, "r1", [(f"text {i}", {"length": ["short", "long"][i % 2], "cluster": "c"}) for i in range(4)], name="same")
    insert_run(store, "r2", [("other", {"length": "short"})], name="same")
    items = load_runs(store, ["r1", "r2"])
    # its own column (the map has a "length" of its own), but "length" is the only name shown
    col = items.column("length")
    assert col in items.dimensions and items.name(col) == "length"
    labels = map_view.option_labels(map_view.colour_options(items.dimensions, has_verdicts=False, has_reference=False), items)
    assert labels[col] == "length" and labels[map_view.TEXT_LENGTH] == "text length"
    assert "attr_length" not in labels.values() and "attr_cluster" not in labels.values()
    assert labels[items.column("cluster")] == "cluster" and labels["cluster"] == "cluster (map)"
    names = map_view.cluster_names(np.zeros(len(items), dtype=int))
    by_dim = map_view.colour_by(col, items.frame, clusters=names)
    assert set(by_dim.categories) == {"short", "long"}
    assert map_view.colour_by(map_view.TEXT_LENGTH, items.frame, clusters=names).numeric
    shown = map_view.display_frame(items, items.frame)
    assert "length" in shown and "cluster" in shown and not any(c.startswith("attr_") for c in shown)
    assert map_view.condition_lines(items.frame, items.dimensions, items.names)[0] == "length=short, cluster=c"
    probes = map_view.probes(map_view.scope(MapData(items=items, vectors=np.eye(len(items), dtype=np.float32),
                                                      pca=np.zeros((len(items), 2))), None))
    assert set(probes["dimension"]) == {"length", "cluster"}
    by_run = map_view.colour_by("run", items.frame, clusters=names, run_names=items.run_names)
    assert len(set(by_run.categories)) == 2 and all(c.startswith("same (") for c in by_run.categories)
    assert set(items.frame["source"]) == {f"run:{c}" for c in by_run.categories}  # "source" and "run" agree


def test_run_names_are_unique():
    run_names = items_mod.run_names
    runs = pd.DataFrame({"run_id": ["a", "b", "c", "d"], "name": ["x", "x", "y", "z"],
                         "created_at": pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-01 09:00", None])})
    assert run_names(runs) == {"a": "x (2026-01-01 10:00)", "b": "x (2026-01-01 11:00)", "c": "y", "d": "z"}
    same_minute = runs.assign(created_at=pd.Timestamp("2026-01-01 10:00"))
    assert run_names(same_minute) == {"a": "x (a)", "b": "x (b)", "c": "y", "d": "z"}


RECIPE = {
    "name": "reviews", "task": "Write a review.", "user_template": "A {{ tone }} review of a {{ product }}'s {{ feature }}.",
    "dimensions": [
        {"name": "tone", "values": ["warm", "cold", "neutral"]},
        {"name": "product", "values": ["phone", "laptop"]},
        {"name": "feature", "depends_on": "product", "values_by_parent": {"phone": ["battery"], "laptop": ["keyboard"]}},
    ],
}


def test_heatmap_shows_the_recipes_values_and_no_impossible_cell_as_empty(store):
    from services.explore.recipe_cells import recipe_cells, scope_recipe

    version = save_version(store, Recipe.parse(RECIPE))
    samples = [(f"{t} {p} {f} {i}", {"tone": t, "product": p, "feature": f})
               for i, (t, p, f) in enumerate([("warm", "phone", "battery"), ("cold", "laptop", "keyboard")] * 3)]
    insert_run(store, "r", samples, recipe_hash=version.recipe_hash)
    recipe = scope_recipe(store, ["r"])
    assert recipe is not None and scope_recipe(store, []) is None
    data = build_map(store, HashEmbedder(), MapRequest(run_ids=("r",)))
    cells = map_view.heatmap(data, "product", "feature", recipe_cells(recipe, "product", "feature"))
    assert cells["impossible"].sum() == 2 and cells["empty"].sum() == 0  # phone x keyboard, laptop x battery
    tone = map_view.heatmap(data, "tone", "product", recipe_cells(recipe, "tone", "product")).set_index(["tone", "product"])
    assert tone.loc[("neutral", "phone"), "empty"] and tone.loc[("neutral", "laptop"), "count"] == 0  # a value no sample got
    sim, counts = map_view.heatmap_grids(cells, "product", "feature")
    assert counts.loc["phone", "keyboard"] == -1 and counts.loc["phone", "battery"] == 3
    assert "cannot produce" in map_view.flagged_cells(cells)[1]


def test_edited_texts_are_mapped_and_a_new_edit_makes_a_new_map(store):
    insert_run(store, "r", [(f"original text {i}", {"topic": "a"}) for i in range(4)], name="r")
    request = MapRequest(run_ids=("r",))
    before = source_version(store, request)
    with store.write() as cur:
        cur.execute("INSERT INTO sample_edits (sample_key, version, text) VALUES ('r-1', 1, 'a reviewer rewrote this')")
    assert source_version(store, request) != before
    data = build_map(store, HashEmbedder(), request)
    assert "a reviewer rewrote this" in data.items.texts and "original text 1" not in data.items.texts
    assert any("edited by a reviewer" in n and "use the edited texts" in n for n in data.notes)


def test_embedding_speed_is_measured_here_not_quoted(store):
    from components.explore_controls import EMBEDDER_NAMES

    assert not any("texts/s" in label or "cores" in label for label in EMBEDDER_NAMES.values())
    from components.explore_controls import embedder_speed

    emb = HashEmbedder()
    embed_texts(store, emb, [f"text number {i}" for i in range(40)])
    rate = embedding_store.last_rate(emb.name)
    assert rate and rate > 0
    assert embedder_speed("fake") == f"{rate:,.0f} texts/s in its last embedding job here"


def test_probes_leave_out_texts_without_the_dimension():
    frame = pd.DataFrame({"d": ["a"] * 4 + ["b"] * 4 + ["(none)"] * 8})
    e = np.eye(16, dtype=np.float32)
    out = probe_separability(frame, e, ["d"]).set_index("dimension")
    assert out.loc["d", "values"] == 2 and out.loc["d", "chance"] == 0.5


def test_dataset_rows_count_toward_the_title(store):
    insert_dataset(store, "d", [("real one", {"topic": "a"}), ("", {"topic": "b"}), ("real three", {"topic": "c"})], purpose="audit")
    data = build_map(store, HashEmbedder(), MapRequest(dataset_id="d"))
    assert map_view.map_title(data).startswith("2 of 3 texts")
