"""The starting pipelines of Compare Filters are valid, and judge something, on every run shipped."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from services.core.store import Store
from services.curation.pipeline import FilterContext, Pipeline, SampleBatch, default_pipeline, load_batch, run_pipeline
from services.demo.loader import load_demo
from services.explore.embedders import HashEmbedder
from tests.explore_data import insert_run
from tests.test_compare_page import PAGE, fake_embedder  # noqa: F401 - the fixture, by name

LABEL_ONLY = [(f"A {'good' if i % 2 else 'bad'} meal, review number {i}, with enough words to pass.", {"label": "positive" if i % 2 else "negative"})
              for i in range(12)]


def demo_and_label_runs(store: Store) -> list[str]:
    load_demo(store)
    insert_run(store, "run-label", LABEL_ONLY, name="label only")
    return [r for (r,) in store.query("SELECT run_id FROM runs ORDER BY run_id")]


def kinds(raw: dict) -> list[str]:
    return [s["kind"] for s in raw["steps"]]


def test_defaults_parse_and_leave_out_what_cannot_apply(store):
    batches = [load_batch(store, r) for r in demo_and_label_runs(store)]
    assert len(batches) == 3 and all(len(b) for b in batches)
    ctx = FilterContext(store=store, embedder=HashEmbedder(), max_embed_inline=0)
    for batch in batches:
        for i in range(4):
            result = run_pipeline(Pipeline.parse(default_pipeline(i, batch)), batch, ctx)
            assert not [n for n in result.notes if "judges nothing" in n or "no length" in n], (batch.run_id, i)
    with_length = next(b for b in batches if "length" in b.dimensions)
    b = default_pipeline(1, with_length)
    assert kinds(b)[-1] == "adherence" and b["steps"][-1]["length_dimension"] == "length"
    label = next(b for b in batches if b.dimensions == ["label"])
    assert "adherence" not in kinds(default_pipeline(1, label))
    assert kinds(default_pipeline(0, label)) == kinds(default_pipeline(0, with_length)) == ["length", "refusal", "exact_dedup"]
    # A length dimension is found by its values, whatever it is called.
    sized = SampleBatch.from_texts(["a b", "c d"], [{"budget": "between 50 and 100 words"}, {"budget": "20 words"}])
    assert default_pipeline(1, sized)["steps"][-1]["length_dimension"] == "budget"


@pytest.mark.usefixtures("fake_embedder")
def test_a_fresh_page_opens_without_errors_on_every_demo_run_and_a_label_run(db_path):
    store = Store(db_path)
    run_ids = demo_and_label_runs(store)
    length_runs = {r for r in run_ids if "length" in load_batch(store, r).dimensions}
    store.close()
    assert len(length_runs) == 1
    for run_id in run_ids:
        at = AppTest.from_file(PAGE, default_timeout=120)
        at.session_state["compare_filters_run"] = run_id  # a fresh session that opens on this run
        at.session_state["compare_filters_n"] = 4
        at.run()
        assert not at.exception, at.exception
        assert at.selectbox(key="compare_filters_run").value == run_id
        assert not any("Fix the pipelines" in w.value for w in at.warning), [e.value for e in at.error]
        assert len([m for m in at.metric if m.label == "Kept"]) == 4  # every pipeline valid and compared
        assert not any("judges nothing" in i.value for i in at.info)
        b_steps = at.multiselect(key="compare_filters_p1_steps").value
        assert ("adherence" in b_steps) == (run_id in length_runs)
        if run_id in length_runs:  # B checks the asked length, and finds samples off it
            assert at.selectbox(key="compare_filters_p1_adherence_length_dimension").value == "length"
            reasons = [d.value for d in at.dataframe if "reason" in d.value.columns]
            assert any("length not as requested" in r["reason"].tolist() for r in reasons)
