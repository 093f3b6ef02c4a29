"""The Explore map's view model: colours, legend order, hovers and the tables under the map."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.explore import map_view
from services.explore.gaps import coverage
from services.explore.items import ItemSet
from services.explore.map_jobs import MapData


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def small_map(*, labels: list[int] | None = None, with_reference: bool = False) -> MapData:
    """Six synthetic texts in two tight groups (topic pizza / sushi), optionally two reference texts:
    one next to the pizza group, one far from everything."""
    rows = [{"id": f"s{i}", "text": f"{t} text {i}", "source": "run:r1", "run_id": "r1" if i < 3 else "r2",
             "topic": t, "tone": "warm" if i % 2 else "cold"}
            for i, t in enumerate(["pizza"] * 3 + ["sushi"] * 3)]
    vecs = [[1.0, 0.02 * i, 0.0] for i in range(3)] + [[0.0, 1.0, 0.02 * i] for i in range(3)]
    if with_reference:
        rows += [{"id": "ref0", "text": "pizza real", "source": "reference:real", "run_id": None, "topic": "pizza", "tone": "warm"},
                 {"id": "ref1", "text": "chess real", "source": "reference:real", "run_id": None, "topic": "chess", "tone": "cold"}]
        vecs += [[1.0, 0.01, 0.0], [0.0, 0.0, 1.0]]
    vectors = _unit(np.array(vecs, dtype=np.float32))
    items = ItemSet(frame=pd.DataFrame(rows), dimensions=["topic", "tone"])
    return MapData(items=items, vectors=vectors, pca=vectors[:, :2], labels=None if labels is None else np.array(labels),
                   model="fake-model")


def test_category_order_numbers_then_names_then_grey():
    cats = ["b", "noise", "10", "2", "a", "other", "-1"]
    assert sorted(cats, key=map_view.category_order) == ["-1", "2", "10", "a", "b", "noise", "other"]


def test_colouring_lumps_the_smallest_categories_into_other():
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 1 + ["e"] * 1
    c = map_view.colouring(values, max_legend=3)
    assert c.categories == ("a", "b", "other")
    assert (c.values == "other").sum() == 5
    assert c.colours() == [map_view.PALETTE[0], map_view.PALETTE[1], map_view.NOISE_COLOUR]


def test_colouring_numeric_keeps_numbers():
    c = map_view.colouring([3, 1, 2], numeric=True)
    assert c.numeric and c.categories == ()
    assert c.values.dtype == np.float64 and c.values.tolist() == [3.0, 1.0, 2.0]


def test_colour_by_cluster_run_length_dimension_and_verdict():
    data = small_map(labels=[0, 0, 0, 1, 1, -1])
    frame = data.items.frame
    names = map_view.cluster_names(map_view.cluster_labels(data))
    assert names.tolist() == ["0", "0", "0", "1", "1", "noise"]
    by_cluster = map_view.colour_by("cluster", frame, clusters=names)
    assert by_cluster.categories == ("0", "1", "noise")
    assert by_cluster.colours()[-1] == map_view.NOISE_COLOUR
    assert map_view.colour_by("run", frame, clusters=names).categories == ("r1", "r2")
    length = map_view.colour_by("length", frame, clusters=names)
    assert length.numeric and length.values[0] == len("pizza text 0")
    assert map_view.colour_by("topic", frame, clusters=names).values.tolist() == ["pizza"] * 3 + ["sushi"] * 3
    verdict = map_view.colour_by("filter verdict", frame, clusters=names, verdicts={"s0": "kept", "s1": "dropped: 1. refusal"})
    assert verdict.values.tolist()[:3] == ["kept", "dropped: 1. refusal", "not filtered"]


def test_no_clustering_is_all_noise():
    data = small_map()
    assert not map_view.has_clusters(data)
    assert set(map_view.cluster_names(map_view.cluster_labels(data)).tolist()) == {"noise"}
    assert map_view.has_clusters(small_map(labels=[0, 0, 0, -1, -1, -1]))
    assert not map_view.has_clusters(small_map(labels=[-1] * 6))


def test_coverage_colours_the_uncovered_reference_point():
    data = small_map(with_reference=True)
    frame = data.items.frame
    ref = map_view.reference_mask(frame)
    assert ref.tolist() == [False] * 6 + [True, True]
    cov = map_view.reference_coverage(data, ref, 0.3)
    assert cov is not None and cov.n_uncovered == 1
    names = map_view.cluster_names(map_view.cluster_labels(data))
    c = map_view.colour_by("coverage", frame, clusters=names, reference=ref, cov=cov)
    assert c.values.tolist()[5:] == ["synthetic", "reference: covered", map_view.UNCOVERED]
    table = map_view.uncovered_reference(frame, ref, cov)
    assert table["text"].tolist() == ["chess real"] and table["distance"].iloc[0] > 0.9
    assert map_view.reference_coverage(small_map(), map_view.reference_mask(small_map().items.frame), 0.3) is None
    with pytest.raises(ValueError):
        map_view.colour_by("coverage", frame, clusters=names)


def test_colour_options_follow_what_the_map_has():
    assert map_view.colour_options(["topic"], has_verdicts=False, has_reference=False) == ["cluster", "topic", "run", "source", "length"]
    opts = map_view.colour_options([], has_verdicts=True, has_reference=True)
    assert opts[-2:] == ["filter verdict", "coverage"]
    assert map_view.mapped_runs(small_map(with_reference=True).items.frame) == ["r1", "r2"]


def test_hover_labels_are_escaped_short_and_one_line():
    texts = ["<b>bold</b>\nnext line", "x" * 100, None]
    hover = map_view.hover_labels(texts, ["topic=<i>", "", "tone=a"], n=40)
    assert hover[0] == "&lt;b&gt;bold&lt;/b&gt; next line<br>topic=&lt;i&gt;"
    assert hover[1] == "x" * 40 + "…"
    assert hover[2] == "<br>tone=a"


def test_condition_lines_and_title():
    data = small_map()
    lines = map_view.condition_lines(data.items.frame, ["topic", "tone"])
    assert lines[0] == "topic=pizza, tone=cold" and lines[3] == "topic=sushi, tone=warm"
    assert map_view.condition_lines(data.items.frame, []) is None
    assert map_view.map_title(data) == "6 texts · PCA · fake-model"


def test_selection_frame_carries_cluster_names():
    data = small_map(labels=[0, 0, 0, 1, 1, -1])
    names = map_view.cluster_names(map_view.cluster_labels(data))
    sel = map_view.selection_frame(data.items.frame, [1, 5], names)
    assert sel["id"].tolist() == ["s1", "s5"] and sel["cluster"].tolist() == ["0", "noise"]


def test_analyses_on_a_small_map():
    data = small_map(labels=[0, 0, 0, 1, 1, 1])
    summary = map_view.cluster_table(data)
    assert {"0", "1"} <= set(summary["cluster"])
    assert "pizza" in map_view.cluster_keywords(summary, "0")
    reps = map_view.cluster_representatives(data, 1)
    assert list(reps.columns) == ["text", "topic", "tone"] and set(reps["topic"]) == {"sushi"}
    dominant = map_view.cluster_dominant_values(data, 0).set_index("dimension")
    assert dominant.loc["topic", "value"] == "pizza"
    by_run = map_view.diversity(data, map_view.diversity_column("run"))
    assert by_run["group"].tolist() == ["r1", "r2"]
    assert map_view.diversity(data, map_view.diversity_column(map_view.DIVERSITY_OVERALL))["group"].tolist() == ["all"]
    assert map_view.diversity_column("topic") == "topic"
    assert map_view.diversity_groups(["topic"]) == ["(overall)", "run", "source", "topic"]
    groups = map_view.near_duplicates(data, 0.99)
    assert len(groups) == 2 and groups["size"].tolist() == [3, 3]


def test_heatmap_grids_and_flags():
    data = small_map()
    cells = map_view.heatmap(data, "topic", "tone")
    sim, counts = map_view.heatmap_grids(cells, "topic", "tone")
    assert list(sim.index) == ["pizza", "sushi"] and list(sim.columns) == ["cold", "warm"]
    assert counts.loc["pizza", "cold"] == 2 and counts.loc["sushi", "cold"] == 1
    flagged, summary = map_view.flagged_cells(cells)
    assert summary.endswith("thin cell(s)") and summary.startswith(f"{int(cells['collapsed'].sum())} collapsed")
    assert len(flagged) == int((cells["collapsed"] | cells["empty"] | cells["thin"]).sum())


def test_fill_the_gap_helpers():
    runs = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "recipe_hash": ["h1", "h2", "h1"]})
    assert map_view.gap_recipe_choices(runs, ["r1", "r3"], {"h1": "v1", "h9": "v9"}) == ["h1"]
    assert map_view.gap_recipe_choices(runs, ["r2"], {"h1": "v1", "h9": "v9"}) == ["h1", "h9"]  # unsaved: every version
    assert map_view.gap_recipe_choices(runs, ["r2"], {}) == []
    assert map_view.split_values(" a, b ,, c ") == ["a", "b", "c"]
    frame = small_map().items.frame
    demos = map_view.gap_demonstrations(frame, ["topic"], [4, 0], limit=1)
    assert demos == [("sushi text 4", {"topic": "sushi"})]


def test_coverage_matches_the_service():
    data = small_map(with_reference=True)
    ref = map_view.reference_mask(data.items.frame)
    direct = coverage(data.vectors[~ref], data.vectors[ref], 0.3)
    via = map_view.reference_coverage(data, ref, 0.3)
    assert via is not None and via.uncovered.tolist() == direct.uncovered.tolist()


# -- large maps ---------------------------------------------------------------------------------


def test_display_rows_keeps_sparse_points_and_thins_dense_ones():
    rng = np.random.default_rng(0)
    dense = rng.normal(scale=0.5, size=(50_000, 2))
    outliers = np.array([[40.0, 40.0], [-40.0, 35.0], [30.0, -45.0]])
    xy = np.concatenate([dense, outliers])
    rows = map_view.display_rows(xy, max_points=5_000)
    assert len(rows) <= 5_000 and len(rows) > 4_000
    assert {50_000, 50_001, 50_002} <= set(rows.tolist())  # every outlier is drawn
    assert np.all(np.diff(rows) > 0)
    assert np.array_equal(map_view.display_rows(xy[:100], max_points=5_000), np.arange(100))


def test_rows_in_region_selects_every_point_inside_a_box_or_lasso():
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 5.0], [0.5, 1.8]])
    box = {"box": [{"xref": "x", "yref": "y", "x": [2.5, -0.5], "y": [-0.5, 2.5]}], "lasso": [], "points": []}
    assert map_view.rows_in_region(xy, box).tolist() == [0, 1, 2, 4]
    triangle = {"lasso": [{"x": [-1.0, 3.0, -1.0], "y": [-1.0, -1.0, 3.0]}]}  # below the line x + y = 2
    assert map_view.rows_in_region(xy, triangle).tolist() == [0]
    assert map_view.rows_in_region(xy, {"points": [{"customdata": 1}], "box": [], "lasso": []}) is None


def test_large_map_figure_ships_no_texts_and_counts_every_point_in_the_legend():
    import plotly.io as pio

    from components.explore_map import map_figure

    rng = np.random.default_rng(1)
    n = 30_000
    xy = rng.normal(size=(n, 2))
    labels = map_view.cluster_names(rng.integers(-1, 5, n))
    drawn = np.arange(0, n, 3)
    fig = map_figure(xy, map_view.colouring(labels), hover=None, rows=drawn)
    assert all(t.text is None for t in fig.data)
    assert sorted(int(v) for t in fig.data for v in t.customdata) == drawn.tolist()
    legend = {t.name for t in fig.data}
    assert f"noise ({int((labels == 'noise').sum())})" in legend  # counts over all n, not the drawn third
    assert len(pio.to_json(fig, validate=False)) < 0.5e6  # x, y and row numbers as binary arrays
