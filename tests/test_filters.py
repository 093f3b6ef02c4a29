"""Filter steps on crafted inputs, pipelines, the judge cache, review and edits."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from services.curation.dedup_steps import MinHashStep, SemanticDedupStep, jaccard, shingles
from services.curation.judge_step import JudgeStep, count_scores, parse_judgement, score_missing
from services.curation.pipeline import (
    FilterContext,
    Pipeline,
    PipelineError,
    SampleBatch,
    ScoreCache,
    load_batch,
    parse_step,
    run_pipeline,
)
from services.curation.pipeline_store import (
    apply_pipeline,
    list_pipelines,
    load_pipeline,
    save_pipeline,
)
from services.curation.review_store import edit_sample, sample_history, set_review
from services.curation.text_steps import (
    AdherenceStep,
    KeywordStep,
    LengthStep,
    RefusalStep,
    RegexStep,
    length_dimensions,
    requested_length,
)
from services.demo.loader import load_demo
from services.explore.embedders import HashEmbedder
from services.generation.backends import BackendConfig, Completion, OpenAIBackend
from tests.explore_data import insert_run
from tests.mock_openai import MockServer

WORDS = ["river", "mountain", "coffee", "bread", "garden", "window", "purple", "silver", "quiet", "storm", "lantern", "harbor", "pepper", "violin", "meadow", "engine", "basket", "candle", "forest", "marble", "pocket", "thunder", "velvet", "orchard", "saddle", "kettle", "ribbon", "glacier", "compass"]


def kept(verdicts) -> list[bool]:
    return [v.kept for v in verdicts]


def distinct_sentences(n: int, seed: int = 0, length: int = 14) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(length)) + f" number {i}" for i in range(n)]


# -- length, regex, keywords -------------------------------------------------------------------------


def test_length_bounds_in_words_characters_and_tokens():
    batch = SampleBatch.from_texts(["one two", "one two three four five", "x" * 50])
    assert kept(LengthStep(unit="words", min=3, max=10).verdicts(batch)) == [False, True, False]
    v = LengthStep(unit="characters", min=1, max=20).verdicts(batch)
    assert kept(v) == [True, False, False] and v[2].reason == "too long: 50 characters > 20"
    tokens = LengthStep(unit="tokens", min=3).verdicts(batch)
    assert tokens[0].kept is False and tokens[1].kept is True and tokens[0].score == 2


def test_length_bounds_out_of_range_say_so():
    with pytest.raises(PipelineError, match="minimum length \\(10\\) is above the maximum \\(5\\)"):
        parse_step({"kind": "length", "min": 10, "max": 5})
    with pytest.raises(PipelineError, match="0 or more"):
        parse_step({"kind": "length", "min": -1})


def test_regex_include_exclude_and_invalid_regex_message():
    batch = SampleBatch.from_texts(["Call 555-1234 now", "no digits here", "Email me"])
    assert kept(RegexStep(pattern=r"\d{3}-\d{4}").verdicts(batch)) == [False, True, True]
    assert kept(RegexStep(pattern=r"^email", mode="include").verdicts(batch)) == [False, False, True]
    with pytest.raises(PipelineError) as err:
        Pipeline.parse({"name": "p", "steps": [{"kind": "regex", "pattern": "([a-z]+"}]})
    assert err.value.problems == ["step 1: regex: invalid regular expression '([a-z]+': missing ), unterminated subpattern at position 0"]


def test_keywords_whole_words_and_modes():
    batch = SampleBatch.from_texts(["I love cats", "concatenate strings", "dogs and cats"])
    assert kept(KeywordStep(keywords=["cat", "cats"]).verdicts(batch)) == [False, True, False]
    assert kept(KeywordStep(keywords=["cats", "dogs"], mode="include_all").verdicts(batch)) == [False, False, True]
    with pytest.raises(PipelineError, match="at least one keyword"):
        parse_step({"kind": "keywords", "keywords": [" "]})


# -- refusals --------------------------------------------------------------------------------------


def test_refusals_caught_and_sorry_sentences_kept():
    refusals = [
        "As an AI language model, I cannot write that story.",
        "I'm sorry, but I can't help with that request.",
        "I’m sorry, but as an assistant I must decline.",
        "I cannot provide instructions for that.",
        "I apologize, but I am unable to comply.",
        "As a language model, I don't have personal opinions.",
    ]
    normal = [
        "I'm sorry to hear that your flight was cancelled; here is how to rebook.",
        "She said sorry to her brother and they shared the cake.",
        "Sorry seems to be the hardest word, the song goes.",
        "The robot apologised for the noise and kept sweeping.",
        "We cannot wait for the summer holidays at the lake.",
    ]
    v = RefusalStep().verdicts(SampleBatch.from_texts(refusals + normal))
    assert kept(v) == [False] * len(refusals) + [True] * len(normal)
    assert "As an AI language model" in v[0].reason


def test_boilerplate_only_when_asked():
    batch = SampleBatch.from_texts(["Sure! Here is a poem about rain.", "Rain fell on the town. I hope this helps!", "Rain fell."])
    assert kept(RefusalStep().verdicts(batch)) == [True, True, True]
    assert kept(RefusalStep(boilerplate=True).verdicts(batch)) == [False, False, True]


# -- dedup -----------------------------------------------------------------------------------------


def test_exact_dedup_on_normalised_text_keeps_first():
    batch = SampleBatch.from_texts(["Hello, World!", "hello world", "HELLO   world.", "something else"])
    p = Pipeline.parse({"name": "d", "steps": [{"kind": "exact_dedup"}]})
    r = run_pipeline(p, batch)
    assert r.kept.tolist() == [True, False, False, True]
    assert r.reason[1] == "duplicate of s0 (1.00)"
    raw = run_pipeline(Pipeline.parse({"name": "d", "steps": [{"kind": "exact_dedup", "normalise": False}]}), batch)
    assert raw.kept.all()


def planted_near_duplicates(n: int = 300, planted: int = 12, seed: int = 3) -> tuple[list[str], set[int]]:
    """Distinct sentences, then ``planted`` copies of earlier ones with one word changed."""
    texts = distinct_sentences(n, seed)
    copies = set()
    for k in range(planted):
        words = texts[k * 7].split()
        words[3] = "zeppelin"
        texts.append(" ".join(words))
        copies.add(len(texts) - 1)
    return texts, copies


def test_minhash_finds_planted_near_duplicates():
    texts, copies = planted_near_duplicates()
    batch = SampleBatch.from_texts(texts)
    truth = {i for i in copies if any(jaccard(shingles(texts[i], 3, "words"), shingles(texts[j], 3, "words")) >= 0.5
                                      for j in range(len(texts)) if j != i)}
    assert truth == copies  # the planted copies really are near-duplicates (J ~ 0.65), and only they
    v = MinHashStep(threshold=0.5, shingle_size=3).verdicts(batch)
    dropped = {i for i, x in enumerate(v) if not x.kept}
    assert dropped == copies
    assert all("near duplicate of s" in v[i].reason for i in dropped)


def test_minhash_threshold_change_rethresholds_cached_pairs():
    texts, copies = planted_near_duplicates()
    batch = SampleBatch.from_texts(texts)
    cache = ScoreCache()
    strict = run_pipeline(Pipeline(name="p", steps=[MinHashStep(threshold=0.95)]), batch, cache=cache)
    loose = run_pipeline(Pipeline(name="p", steps=[MinHashStep(threshold=0.5)]), batch, cache=cache)
    assert cache.misses == 1 and cache.hits == 1
    assert strict.n_dropped < loose.n_dropped == len(copies)


def test_threshold_out_of_range_messages():
    for data, msg in [({"kind": "minhash", "threshold": 1.5}, "between 0.05 and 1.0"),
                      ({"kind": "minhash", "shingle_size": 0}, "shingle size"),
                      ({"kind": "semantic_dedup", "threshold": 0.2}, "cosine threshold must be between 0.5 and 1.0"),
                      ({"kind": "judge", "threshold": 7}, "between 1 and 5"),
                      ({"kind": "adherence", "length_dimension": "length", "tolerance": -1}, "tolerance")]:
        with pytest.raises(PipelineError, match=msg):
            parse_step(data)


def test_semantic_dedup_uses_the_embedding_cache(store):
    emb = HashEmbedder(dim=256)
    base = distinct_sentences(40, seed=5)
    # A reordering has the same bag of words: cosine 1 with the hash embedder.
    texts = base + [" ".join(reversed(base[2].split())), " ".join(reversed(base[9].split()))]
    batch = SampleBatch.from_texts(texts)
    ctx = FilterContext(store=store, embedder=emb)
    v = SemanticDedupStep(threshold=0.95).verdicts(batch, ctx)
    assert [i for i, x in enumerate(v) if not x.kept] == [40, 41]
    assert v[40].reason.startswith("semantic duplicate of s2")
    assert store.scalar("SELECT count(*) FROM embeddings WHERE model = ?", [emb.name]) == len(set(texts))
    calls = len(emb.calls)
    centre = SemanticDedupStep(threshold=0.95, keep="centre").verdicts(batch, ctx)
    assert len(emb.calls) == calls  # the second run read every vector from the cache
    assert sum(not x.kept for x in centre) == 2


def test_semantic_dedup_waits_for_the_map_when_too_many_texts_are_missing(store):
    batch = SampleBatch.from_texts(distinct_sentences(30))
    ctx = FilterContext(store=store, embedder=HashEmbedder(), max_embed_inline=10)
    r = run_pipeline(Pipeline(name="p", steps=[SemanticDedupStep()]), batch, ctx)
    assert r.kept.all() and "30 texts have no cached embedding" in r.notes[0]


# -- adherence, review -------------------------------------------------------------------------------


def test_condition_adherence_length_and_keyword():
    assert requested_length("50 words") == ("words", 50, 50)
    assert requested_length("two sentences") == ("sentences", 2, 2)
    assert requested_length("short")[0] == "words" and requested_length("happy") is None
    texts = ["One. Two.", "One. Two. Three. Four. Five.", "A story about tea and biscuits.", "A story about coffee."]
    conds = [{"length": "two sentences"}, {"length": "2 sentences"}, {"length": "cheerful", "topic": "tea"}, {"length": "x", "topic": "tea"}]
    v = AdherenceStep(length_dimension="length", keyword_dimension="topic", tolerance=0.5).verdicts(SampleBatch.from_texts(texts, conds))
    assert kept(v) == [True, False, True, False]
    assert "asked '2 sentences', got 5 sentences" in v[1].reason and "missing 'tea'" in v[3].reason


def words(n: int) -> str:
    return " ".join(["word"] * n)


def test_adherence_counts_bare_numbers_in_the_chosen_unit():
    # Values like the demo's: '30' and '100' with no unit are words unless said otherwise.
    assert requested_length("30") == ("words", 30, 30) and requested_length("about 100") == ("words", 100, 100)
    assert requested_length("30", "sentences") == ("sentences", 30, 30)
    conds = [{"length": "30"}] * 4 + [{"length": "100"}] * 4
    texts = [words(n) for n in (10, 20, 45, 50, 40, 60, 150, 160)]
    v = AdherenceStep(length_dimension="length").verdicts(SampleBatch.from_texts(texts, conds))
    # ±50 %: 30 asks for 15..45 words, 100 for 50..150.
    assert kept(v) == [False, True, True, False, False, True, True, False]
    assert "asked '30', got 10 words" in v[0].reason and v[0].score == pytest.approx(2 / 3)
    chars = SampleBatch.from_texts(["x" * 30, words(30)], [{"length": "30"}, {"length": "30"}])
    assert kept(AdherenceStep(length_dimension="length", bare_unit="characters").verdicts(chars)) == [True, False]
    assert kept(AdherenceStep(length_dimension="length").verdicts(chars)) == [False, True]


def test_adherence_judges_ranges_as_ranges():
    assert requested_length("between 50 and 100 words") == ("words", 50, 100)
    assert requested_length("50-100") == ("words", 50, 100)
    assert requested_length("50–100", "tokens") == ("tokens", 50, 100)
    assert requested_length("2 to 3 sentences") == ("sentences", 2, 3)
    assert requested_length("at most 20 words") == ("words", 0, 20)
    assert requested_length("at least 3 sentences") == ("sentences", 3, math.inf)
    assert requested_length("a 50-word review") == ("words", 50, 50)
    assert requested_length("1,000 characters") == ("characters", 1000, 1000)
    # Numbers that are not a length stay unjudged: a unit is needed unless the value is only a length.
    assert requested_length("3 friends") is None and requested_length("people over 18") is None
    conds = [{"length": "between 50 and 100 words"}] * 3 + [{"length": "50-100"}, {"length": "at most 20 words"}]
    texts = [words(50), words(100), words(120), words(40), words(22)]
    v = AdherenceStep(length_dimension="length", tolerance=0.1).verdicts(SampleBatch.from_texts(texts, conds))
    # Anywhere inside the range is exact; outside, the error is measured from the nearer bound.
    assert [x.score for x in v] == [0.0, 0.0, pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.1)]
    assert kept(v) == [True, True, False, False, True]
    assert "asked '50-100', got 40 words" in v[3].reason


def test_adherence_that_cannot_judge_says_so_in_its_note():
    batch = SampleBatch.from_texts(["good food", "bad food"], [{"label": "positive"}, {"label": "negative"}])
    steps = [AdherenceStep(length_dimension="label"), AdherenceStep(length_dimension="length"), parse_step({"kind": "adherence"})]
    notes = [run_pipeline(Pipeline(name="p", steps=[s]), batch).notes for s in steps]
    assert "judges nothing on this run" in notes[0][0] and "no value of 'label' names a length ('positive', 'negative')" in notes[0][0]
    assert "no sample has a 'length' condition" in notes[1][0]
    assert "judges nothing" in notes[2][0]  # no dimension chosen: valid, never an error, but it says so
    mixed = SampleBatch.from_texts([words(30), words(3)], [{"length": "30"}, {"length": "whatever"}])
    r = run_pipeline(Pipeline(name="p", steps=[AdherenceStep(length_dimension="length")]), mixed)
    assert r.n_dropped == 0 and "1 of 2 samples ask no length in 'length' ('whatever')" in r.notes[0]
    judged = SampleBatch.from_texts([words(30)], [{"length": "30"}])
    assert run_pipeline(Pipeline(name="p", steps=[AdherenceStep(length_dimension="length")]), judged).notes == []


def test_adherence_on_the_demo_run_judges_every_sample(store):
    load_demo(store)
    batch = next(b for b in (load_batch(store, r) for (r,) in store.query("SELECT run_id FROM runs")) if "length" in b.dimensions)
    assert length_dimensions(batch) == ["length"]
    r = run_pipeline(Pipeline(name="p", steps=[AdherenceStep(length_dimension="length")]), batch)
    # The same count a SQL user gets: word counts outside ±50 % of the bare number asked.
    asked = [float(c["length"]) for c in batch.conditions]
    got = [len(re.findall(r"\w+(?:['’]\w+)*", t)) for t in batch.texts]
    outside = sum(abs(g - a) / a > 0.5 for a, g in zip(asked, got, strict=True))
    assert r.notes == [] and 0 < r.n_dropped == outside
    assert set(r.code[~r.kept].tolist()) == {"length not as requested"}


def test_review_keeps_only_what_a_reviewer_kept(store):
    insert_run(store, "r1", [(f"text {i}", {"mode": "a"}) for i in range(4)])
    batch = load_batch(store, "r1")
    set_review(store, ["r1-0", "r1-1"], "keep")
    set_review(store, ["r1-1"], "drop")  # the latest decision wins
    cache = ScoreCache()
    ctx = FilterContext(store=store)
    r = run_pipeline(Pipeline.parse({"name": "h", "steps": [{"kind": "review"}]}), batch, ctx, cache)
    assert r.kept.tolist() == [True, False, False, False]
    assert r.code.tolist()[1:] == ["dropped by reviewer", "not reviewed", "not reviewed"]
    set_review(store, ["r1-2"], "keep")  # a new decision invalidates the cached scores
    assert run_pipeline(Pipeline.parse({"name": "h", "steps": [{"kind": "review"}]}), batch, ctx, cache).n_kept == 2
    lenient = run_pipeline(Pipeline.parse({"name": "h", "steps": [{"kind": "review", "unreviewed": "keep"}]}), batch, ctx, cache)
    assert lenient.kept.tolist() == [True, False, True, True]


# -- the judge -------------------------------------------------------------------------------------


class FlakyJudge:
    """Scores by the text ('good' -> 5, else 2); fails every other new text on its first try."""

    model = "fake-judge"

    def __init__(self):
        self.calls: list[str] = []
        self.failed_once: set[str] = set()

    async def complete(self, messages, params):
        text = messages[-1]["content"].split("Sample:\n", 1)[1]
        self.calls.append(text)
        if len(self.calls) % 2 == 0 and text not in self.failed_once:
            self.failed_once.add(text)
            raise ValueError("judge backend hiccup")
        score = 5 if "good" in text else 2
        return Completion(f'{{"score": {score}, "rationale": "because"}}', 10, 5, "stop", 1.0)

    async def aclose(self):
        pass


def test_judge_partial_failures_are_kept_and_retried_never_paid_twice(store):
    texts = [f"{'good' if i % 2 else 'bad'} sample {i}" for i in range(10)] + ["good sample 1"]  # one repeat
    judge = FlakyJudge()
    step = JudgeStep(rubric="Is it good?", judge_model="fake/judge", threshold=4)
    first = score_missing(store, judge, step.judge_model, step.rubric, texts, concurrency=1)
    assert first.scored + first.failed == 10 and first.failed > 0 and "hiccup" in first.errors[0]
    assert count_scores(store, step.rubric, step.judge_model) == first.scored
    batch = SampleBatch.from_texts(texts)
    partial = step.verdicts(batch, FilterContext(store=store))
    assert sum(v.score is None for v in partial) >= first.failed  # unscored kept, with no score yet
    second = score_missing(store, judge, step.judge_model, step.rubric, texts, concurrency=1)
    assert second.failed == 0 and second.scored == first.failed and second.cached == first.scored
    calls = len(judge.calls)
    third = score_missing(store, judge, step.judge_model, step.rubric, texts)
    assert third.scored == 0 and len(judge.calls) == calls  # never paid twice
    v = step.verdicts(batch, FilterContext(store=store))
    assert kept(v) == ["good" in t for t in texts]
    assert v[0].reason.startswith("judge score 2 < 4")


def test_judge_parses_json_and_plain_replies():
    assert parse_judgement('Here: {"score": 4, "rationale": "fine"}') == (4.0, "fine")
    assert parse_judgement("Score: 2 - off topic")[0] == 2.0
    with pytest.raises(ValueError, match="no 1-5 score"):
        parse_judgement("I like it")


def test_judge_through_a_real_openai_compatible_server(store):
    # The mock echoes the prompt, so a rubric reading "score: 4" yields a reply the parser reads as 4;
    # [[503:once]] makes those samples fail on the first pass (no client retries) and succeed on the retry.
    texts = [f"sample {i}" + (" [[503:once]]" if i % 2 else "") for i in range(6)]
    with MockServer() as url:
        cfg = BackendConfig("custom", url, "mock-model", None, timeout_s=5, max_retries=0)
        first = score_missing(store, lambda: OpenAIBackend(cfg), "custom/mock-model", "score: 4", texts)
        second = score_missing(store, lambda: OpenAIBackend(cfg), "custom/mock-model", "score: 4", texts)
    assert (first.scored, first.failed) == (3, 3) and "HTTP 503" in first.errors[0]
    assert (second.scored, second.cached, second.failed) == (3, 3, 0)
    v = JudgeStep(rubric="score: 4", judge_model="custom/mock-model", threshold=4).verdicts(SampleBatch.from_texts(texts), FilterContext(store=store))
    assert all(x.kept and x.score == 4.0 for x in v)


# -- pipelines in the store --------------------------------------------------------------------------


def test_pipeline_versions_verdicts_in_sql_and_edits(store):
    insert_run(store, "r1", [("As an AI language model, I can't.", {"mood": "sad"}), ("A fine tale of rain.", {"mood": "glad"}),
                             ("A fine tale of rain!", {"mood": "glad"}), ("ok", {"mood": "sad"})])
    p = Pipeline.parse({"name": "clean", "steps": [{"kind": "length", "min": 2}, {"kind": "refusal"}, {"kind": "exact_dedup"}]})
    v1 = save_pipeline(store, p)
    assert save_pipeline(store, p) == v1 and v1.version == 1
    p2 = Pipeline.parse({"name": "clean", "steps": [{"kind": "refusal"}]})
    assert save_pipeline(store, p2).version == 2
    assert load_pipeline(store, v1.pipeline_hash) == p
    assert [x.version for x in list_pipelines(store)] == [2, 1]

    result = run_pipeline(p, load_batch(store, "r1"), FilterContext(store=store))
    apply_pipeline(store, result)
    apply_pipeline(store, result)  # applying again replaces, never duplicates
    rows = store.query("SELECT step_name, reason IS NOT NULL, count(*) FROM filter_verdicts WHERE NOT kept GROUP BY ALL ORDER BY 1")
    assert [(r[0][:2], r[2]) for r in rows] == [("1.", 1), ("2.", 1), ("3.", 1)]
    assert store.scalar("SELECT count(*) FROM filter_verdicts WHERE pipeline_hash = ? AND step_idx = 0", [v1.pipeline_hash]) == 4

    assert edit_sample(store, "r1-3", "ok then, a longer text") == 1
    assert edit_sample(store, "r1-3", "ok then, a longer text") == 1  # unchanged text: no new version
    assert edit_sample(store, "r1-3", "a second edit") == 2
    assert sample_history(store, "r1-3") == [(0, "ok"), (1, "ok then, a longer text"), (2, "a second edit")]
    assert store.query("SELECT text, original_text, edit_version FROM samples_latest WHERE sample_key = 'r1-3'") == [("a second edit", "ok", 2)]
    assert load_batch(store, "r1").texts[3] == "a second edit"
    assert np.asarray(run_pipeline(p, load_batch(store, "r1")).kept).tolist() == [False, True, False, True]
