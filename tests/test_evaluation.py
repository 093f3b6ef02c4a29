"""The evaluation services and the two curation steps they brought: prompt echo and label
disagreement. Real DuckDB, the deterministic hash embedder, scikit-learn and cleanlab for real."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.curation.echo_steps import PromptEchoStep, echo_scores
from services.curation.judge_step import score_missing
from services.curation.label_noise import LabelDisagreementStep, ProbeError, label_issues, probe
from services.curation.pipeline import FilterContext, Pipeline, load_batch, parse_step, run_pipeline
from services.curation.review_store import set_review
from services.evaluation.calibration import judge_agreement
from services.evaluation.cost import run_costs
from services.evaluation.coverage import CoverageSet, coverage
from services.evaluation.export import to_html, to_markdown
from services.evaluation.intervals import SetInput, compare_table, diversity_intervals
from services.evaluation.judging import FAITHFUL_AT, judged, plan_judging, run_judging
from services.evaluation.lexical import at_budget, budget_metrics, mtld
from services.evaluation.reference import REFERENCE_DIR, dataset_reference, shipped_reference
from services.evaluation.report import build_report
from services.evaluation.tstr import train_synthetic_test_real
from services.explore.embedders import HashEmbedder
from services.explore.embedding_store import embed_texts
from services.explore.items import load_runs
from services.generation.backends import Completion
from tests.explore_data import insert_dataset, insert_run

RNG = np.random.default_rng(0)
VOCAB = [f"w{i}" for i in range(20_000)]


def varied(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(VOCAB, size=length)) for _ in range(n)]


def blobs(n: int, classes: int = 2, sep: float = 4.0, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, dim))
    x[np.arange(n), y] += sep
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), np.array([f"c{k}" for k in y])


# -- lexical ------------------------------------------------------------------------------------


def test_mtld_is_low_for_repetition_and_not_driven_by_length():
    assert mtld(["the", "cat"] * 6) <= 3 < mtld(varied(1, 200)[0].split())
    short, long_ = varied(50, 20), varied(50, 200, seed=1)
    rng = np.random.default_rng(0)
    from services.explore.diversity import tokens, vocabulary_size

    # raw vocabulary rewards the longer run; the same token budget does not
    assert vocabulary_size(long_) > 2 * vocabulary_size(short)
    budget = 800
    a = budget_metrics(at_budget([tokens(t) for t in short], budget, rng))
    b = budget_metrics(at_budget([tokens(t) for t in long_], budget, rng))
    assert abs(a["vocab_at_budget"] - b["vocab_at_budget"]) / a["vocab_at_budget"] < 0.1
    assert abs(a["mtld"] - b["mtld"]) / a["mtld"] < 0.25
    assert mtld(["a"] * 5) is None


# -- intervals ----------------------------------------------------------------------------------


def test_intervals_mark_a_real_difference_only():
    x_div, _ = blobs(120, classes=12, sep=0.0, seed=1)
    same_a = SetInput(varied(120, 30, seed=1), x_div)
    same_b = SetInput(varied(120, 30, seed=2), blobs(120, classes=12, sep=0.0, seed=2)[0])
    repetitive = SetInput([" ".join(["w1", "w2", "w3"] * 10)] * 60 + varied(60, 30, seed=3), np.repeat(x_div[:2], 60, axis=0))
    iv = diversity_intervals({"A": same_a, "B": same_b, "R": repetitive}, draws=40, bleu_draws=3)
    assert iv.m == 60
    t = iv.table
    assert (t["lo"] <= t["value"]).all() and (t["value"] <= t["hi"]).all()
    table = compare_table(iv, "A").set_index("metric")
    assert (table["B: difference"] == "").sum() >= len(table) - 2   # twins: (almost) nothing called different
    assert table.loc["distinct-2", "R: difference"] == "less diverse"
    assert table.loc["Vendi score", "R: difference"] == "less diverse"
    assert table.loc["mean pairwise cosine (lower: more diverse)", "R: difference"] == "less diverse"


def test_intervals_with_too_few_texts_say_so():
    iv = diversity_intervals({"one": SetInput(["only"]), "two": SetInput(["a b c", "d e f"])}, draws=5, bleu_draws=1)
    assert any("one: fewer than 2 texts" in n for n in iv.notes)
    assert set(iv.table["set"]) == {"two"}


# -- probe and label noise ------------------------------------------------------------------------


def test_probe_recovers_a_separable_condition_and_cleanlab_finds_flipped_labels():
    x, y = blobs(200, classes=2, sep=6.0)
    flipped = np.array([3, 50, 101, 150])
    y = y.copy()
    y[flipped] = np.where(y[flipped] == "c0", "c1", "c0")
    res = probe(x, y, dimension="label")
    assert res.accuracy > 0.9 and res.chance == 0.5
    issues = label_issues(res)
    assert set(flipped.tolist()) <= set(issues.tolist())
    conf = res.self_confidence()[issues]
    assert (np.diff(conf) >= -1e-12).all()   # least confident first


def test_probe_needs_two_values_and_cuts_folds_to_fit():
    x, _ = blobs(10)
    with pytest.raises(ProbeError, match="at least two values"):
        probe(x, ["a"] * 10, dimension="label")
    res = probe(x, ["a"] * 7 + ["b"] * 3, dimension="label")
    assert res.folds == 3 and any("3-fold" in n for n in res.notes)
    res = probe(x, ["a"] * 5 + ["b"] * 4 + ["c"], dimension="label")
    assert res.classes == ["a", "b"] and any("fewer than 2" in n for n in res.notes)


WORDS = {"positive": "great lovely delicious friendly wonderful tasty", "negative": "awful cold rude slow dirty bland"}


def _labelled_run(store, run_id="run-a", n=40, flip=(5, 17)):
    rows = []
    for i in range(n):
        lab = "positive" if i % 2 else "negative"
        asked = ({"positive": "negative", "negative": "positive"}[lab]) if i in flip else lab
        rows.append((f"{WORDS[lab]} dinner {i}", {"label": asked}))
    insert_run(store, run_id, rows, name=run_id)


def test_label_disagreement_step_drops_the_flipped_samples(store):
    _labelled_run(store)
    batch = load_batch(store, "run-a")
    step = parse_step({"kind": "label_disagreement", "dimension": "label"})
    ctx = FilterContext(store=store, embedder=HashEmbedder())
    res = run_pipeline(Pipeline(name="p", steps=[step]), batch, ctx)
    dropped = {batch.keys[i] for i in np.flatnonzero(~res.kept)}
    assert {"run-a-5", "run-a-17"} <= dropped and len(dropped) <= 6
    reason = res.reason[batch.keys.index("run-a-5")]
    assert "asked for label='negative'" in reason and "reads as 'positive'" in reason


def test_label_disagreement_without_the_dimension_says_so(store):
    insert_run(store, "r", [(f"text {i}", {"tone": "x"}) for i in range(6)])
    scores = LabelDisagreementStep().score(load_batch(store, "r"), FilterContext(store=store, embedder=HashEmbedder()))
    assert "no sample has a 'label' condition" in scores.note


# -- prompt echo ----------------------------------------------------------------------------------

PROMPT = "Write a positive review of a Thai restaurant, written by a student. Keep it under 60 words. Return only the review."


def test_prompt_echo_scores_and_step(store):
    texts = [PROMPT, "Write a positive review of a Thai restaurant, written by a student. Lovely food.",
             "The green curry was fragrant and the staff remembered my name."]
    assert echo_scores(texts, [PROMPT] * 3).round(2).tolist()[0] == 1.0
    insert_run(store, "r", [(t, {"label": "positive"}) for t in texts])
    with store.write() as cur:
        cur.execute("UPDATE samples SET messages = ? WHERE run_id = 'r'", [json.dumps([{"role": "user", "content": PROMPT}])])
    batch = load_batch(store, "r")
    verdicts = PromptEchoStep(threshold=0.5).verdicts(batch, FilterContext(store=store))
    assert [v.kept for v in verdicts] == [False, False, True]
    assert "come from its own prompt" in verdicts[0].reason
    assert PromptEchoStep().score(batch, FilterContext()).note.startswith("prompt echo needs the store")


# -- coverage, cost ---------------------------------------------------------------------------------


def test_coverage_empty_and_collapsed_cells_per_set():
    va = blobs(8, classes=2, seed=1)[0]
    a = pd.DataFrame({"label": ["pos", "neg"] * 4, "cuisine": ["Thai"] * 4 + ["Italian"] * 4})
    b = pd.DataFrame({"label": ["pos"] * 4, "cuisine": ["Thai"] * 4})
    vb = np.repeat(va[:1], 4, axis=0)   # four identical texts: one collapsed cell, all near-duplicates
    cov = coverage({"A": CoverageSet(a, va), "B": CoverageSet(b, vb)}, ["label", "cuisine"])
    s = cov.summary.set_index("set")
    assert s.loc["A", "empty cells"] == 0
    assert {"label=neg", "cuisine=Italian", "label=pos, cuisine=Italian"} <= set(cov.empty.loc[cov.empty["set"] == "B", "cell"])
    assert s.loc["B", "near-duplicate texts"] == 4
    assert "label=pos" in set(cov.collapsed.loc[cov.collapsed["set"] == "B", "cell"])
    shares = cov.shares[(cov.shares["set"] == "A") & (cov.shares["dimension"] == "label")]
    assert shares["share"].tolist() == [0.5, 0.5]


def test_cost_per_kept_sample(store):
    insert_run(store, "r", [("a", {}), ("b", {})], errors=1)
    with store.write() as cur:
        cur.execute("UPDATE samples SET prompt_tokens = 10, completion_tokens = 5, cost_usd = 0.01, latency_ms = 1000 WHERE run_id = 'r'")
    c = run_costs(store, ["r"], {"r": "R"}).iloc[0]
    assert (c["samples"], c["failed"], c["kept"], c["tokens"]) == (2, 1, 2, 45)
    assert c["dollars / kept"] == pytest.approx(0.015) and c["kept by"] == "no filter applied"


# -- train on synthetic, test on real ---------------------------------------------------------------


def test_tstr_curve_tests_on_the_reference_only_and_names_unused_labels():
    x, y = blobs(120, classes=2, sep=3.0, seed=2)
    tx, ty = blobs(40, classes=3, sep=3.0, seed=3)   # c2 is a label no run asks for
    curve = train_synthetic_test_real({"run": (x, y.tolist())}, tx, ty.tolist())
    assert curve.test_size == int((ty != "c2").sum())
    assert any("c2" in n for n in curve.notes)
    t = curve.table
    assert t["n_train"].tolist() == [10, 20, 40, 80, 120]
    assert t["accuracy"].iloc[-1] > 0.9
    one = train_synthetic_test_real({"flat": (x, ["c0"] * 120)}, tx, ty.tolist())
    assert one.table.empty and "fewer than two labels" in one.notes[-1]


def test_shipped_reference_and_its_card():
    ref = shipped_reference()
    assert len(ref.texts) == 1000 and sorted(set(ref.labels)) == ["negative", "positive"]
    card = (REFERENCE_DIR / "README.md").read_text()
    assert "Kotzias" in card and "CC BY 4.0" in card
    import pyarrow.parquet as pq

    from services.core.hashing import text_hash

    shipped = set(pq.read_table(REFERENCE_DIR / "embeddings.parquet").column("text_hash").to_pylist())
    assert {text_hash(t) for t in ref.texts} <= shipped


def test_dataset_reference_without_its_label_column(store):
    insert_dataset(store, "d", [("a text", {"topic": "food"})])
    ref = dataset_reference(store, "d", "label")
    assert not ref.texts and "no label column 'label'" in ref.notes[0] and "topic" in ref.notes[0]


# -- the whole report, its export -----------------------------------------------------------------


def test_report_sections_and_escaped_export(store):
    _labelled_run(store, "run-a")
    insert_run(store, "run-b", [(f"{WORDS['positive']} {i}", {"label": "positive"}) for i in range(10)], name="b")
    items = load_runs(store, ["run-a", "run-b"])
    vectors = embed_texts(store, HashEmbedder(), items.texts)
    ref = shipped_reference()
    ref_vectors = embed_texts(store, HashEmbedder(), ref.texts[:60])
    ref.texts, ref.labels = ref.texts[:60], ref.labels[:60]
    r = build_report(store, items, vectors, None, label_dimension="label", reference=ref, reference_vectors=ref_vectors, draws=10)
    assert r.sets == ["run-a", "b"]
    assert set(r.faithfulness["set"]) == {"run-a"}                     # b asks for one label only
    assert any("b: no condition dimension with two or more values" in n for n in r.notes["faithfulness"])
    assert {"run-a-5", "run-a-17"} <= set(r.label_queue["id"])
    assert set(r.tstr.table["run"]) == {"run-a"} and any("b: its samples ask for fewer than two labels" in n for n in r.notes["tstr"])
    # untrusted sample text in any table stays text in both formats
    r.label_queue.loc[r.label_queue.index[0], "text"] = "<script>alert(1)</script> a | b"
    page = to_html(r)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; a | b" in page
    md = to_markdown(r)
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt; a \\| b" in md and "## Diversity" in md


# -- judge faithfulness and calibration ---------------------------------------------------------------


class WordJudge:
    """Scores 5 when the asked value's word is in the sample, 1 otherwise; can be made to fail."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls = 0

    async def complete(self, messages, params):
        self.calls += 1
        if self.fail:
            raise ConnectionError("judge backend down")
        user = messages[-1]["content"]
        value = user.split("asked to have label: ", 1)[1].split(".", 1)[0]
        sample = user.split("Sample:\n", 1)[1]
        score = 5 if WORDS[value].split()[0] in sample else 1
        return Completion(f'{{"score": {score}, "rationale": "r"}}', 10, 5, "stop", 1.0)

    async def aclose(self):
        pass


def test_judge_plan_costs_first_scores_on_request_and_a_failure_is_a_sentence(store):
    frame = pd.DataFrame({"id": [f"s{i}" for i in range(6)], "text": [f"{WORDS['positive']} {i}" for i in range(6)],
                          "label": ["positive"] * 3 + ["negative"] * 3})
    plan = plan_judging({"A": frame}, ["label"], per_set=4)
    assert plan.calls == 4 and plan.prompt_tokens() > 0
    assert plan.cost("gpt-4o-mini") > 0 and plan.cost("no-such-model") is None
    assert judged(store, plan, "fake/judge")["scored"].sum() == 0   # nothing scored before asked
    said = run_judging(store, WordJudge(fail=True), "fake/judge", plan)
    assert said and "failed" in said[0].lower()
    assert run_judging(store, WordJudge(), "fake/judge", plan) == []
    res = judged(store, plan, "fake/judge").set_index("value")
    assert res["scored"].sum() == 4
    assert res.loc["positive", "faithful"] == 1.0 and res.loc["negative", "faithful"] == 0.0
    assert FAITHFUL_AT == 4.0


def test_judge_calibration_against_reviews(store):
    texts = [f"good sample {i}" if i % 2 else f"bad sample {i}" for i in range(10)]
    insert_run(store, "r", [(t, {}) for t in texts])

    class Judge(WordJudge):
        async def complete(self, messages, params):
            sample = messages[-1]["content"].split("Sample:\n", 1)[1]
            score = 5 if "good" in sample else 2
            return Completion(f'{{"score": {score}, "rationale": "r"}}', 1, 1, "stop", 1.0)

    score_missing(store, Judge(), "fake/judge", "Is it good?", texts)
    set_review(store, [f"r-{i}" for i in range(10) if i % 2], "keep")
    set_review(store, [f"r-{i}" for i in range(10) if not i % 2], "drop")
    table, notes = judge_agreement(store, ["r"])
    at4 = table[table["threshold"] == 4.0].iloc[0]
    assert at4["accuracy"] == 1.0 and at4["kappa"] == 1.0 and at4["spearman"] == pytest.approx(1.0)
    assert table[table["threshold"] == 2.0].iloc[0]["accuracy"] == 0.5
    empty, notes = judge_agreement(store, ["nothing"])
    assert empty.empty and "nothing to calibrate" in notes[0]


def test_export_maps_are_inline_svg_escaped_and_thinned(store):
    import base64
    import re
    from html import escape as html_escape

    from services.evaluation.export import ReportMap, report_map, svg_panel
    from services.evaluation.report import set_masks

    insert_run(store, "run-a", [(f"pizza oven crust {i}", {"label": "positive"}) for i in range(30)], name="<script>x</script>")
    insert_run(store, "run-b", [(f"sushi rice fish {i}", {"label": "negative"}) for i in range(30)], name="b")
    items = load_runs(store, ["run-a", "run-b"])
    vectors = embed_texts(store, HashEmbedder(), items.texts)
    r = build_report(store, items, vectors, None, draws=5)
    xy = np.vstack([np.random.default_rng(0).normal(size=(30, 2)), np.random.default_rng(1).normal(size=(30, 2)) + 8])
    clusters = np.array([0] * 30 + [1] * 30)
    maps = report_map(xy, set_masks(items), clusters, items.texts)
    assert {frozenset(n[2].split(" · ")) for n in maps.names} == {frozenset({"pizza", "oven", "crust"}),
                                                                   frozenset({"sushi", "rice", "fish"})}
    page = to_html(r, maps=maps)
    assert page.count("<svg") == 2 and "<script" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert all(html_escape(n[2]) in page for n in maps.names) and "grey" in page
    svg, note = svg_panel(maps, "b")
    assert note == "" and svg.count("<path") == 2  # the other set in grey, this set's one cluster
    assert svg.count("M") == 60  # every point drawn once: 30 grey, 30 coloured
    md = to_markdown(r, maps=maps)
    uris = re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", md)
    assert len(uris) == 2 and base64.b64decode(uris[1]).decode() == svg and "<script" not in md
    # a big map is thinned, and says so
    big = ReportMap(np.random.default_rng(2).normal(size=(5000, 2)), {"a": np.arange(5000) < 4000, "b": np.arange(5000) >= 4000},
                    np.zeros(5000, dtype=int))
    svg, note = svg_panel(big, "a", limit=500)
    assert svg.count("M") == 1000 and "500 of this set's 4,000 points" in note and len(svg) < 20_000
