"""Filter verdicts on the map: the latest pipeline applied to each run decides the colour."""

from __future__ import annotations

from services.curation.pipeline import FilterContext, Pipeline, load_batch, run_pipeline
from services.curation.pipeline_store import apply_pipeline, latest_verdicts
from tests.explore_data import insert_run


def test_latest_applied_pipeline_decides(store):
    insert_run(store, "r1", [("As an AI language model, I cannot.", {"m": "a"}), ("A fine normal sentence here.", {"m": "b"}),
                             ("A fine normal sentence here.", {"m": "c"})])
    assert latest_verdicts(store, ["r1"]) == {}
    batch = load_batch(store, "r1")
    apply_pipeline(store, run_pipeline(Pipeline.parse({"name": "refusals", "steps": [{"kind": "refusal"}]}), batch, FilterContext(store=store)))
    v = latest_verdicts(store, ["r1"])
    assert v["r1-0"].startswith("dropped: 1.") and v["r1-1"] == "kept" and v["r1-2"] == "kept"
    later = Pipeline.parse({"name": "dedup", "steps": [{"kind": "refusal"}, {"kind": "exact_dedup"}]})
    apply_pipeline(store, run_pipeline(later, batch, FilterContext(store=store)))
    v = latest_verdicts(store, ["r1"])
    assert v["r1-2"].startswith("dropped: 2.") and v["r1-1"] == "kept"
    assert latest_verdicts(store, ["other"]) == {}
