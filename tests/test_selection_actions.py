"""Actions on a map selection (tag, drop in review with undo, export) and a judge threshold's
calibration against human review, on a real DuckDB file."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from services.core.hashing import text_hash
from services.curation.calibration import MIN_REVIEWED, agreement, threshold_calibration
from services.curation.export import to_csv, to_jsonl
from services.curation.judge_step import rubric_hash
from services.curation.review_store import edit_sample, review_decisions, review_rows, set_review
from services.curation.selection_actions import (
    DROP_NOTE,
    TagError,
    clean_tag,
    drop_in_review,
    list_tags,
    selection_dataset_rows,
    selection_samples,
    split_selection,
    tag_samples,
    tags_of_runs,
    undo_drop,
    untag_samples,
)
from services.explore import map_view
from services.explore.items import combine, load_dataset, load_runs
from services.sql.views import refresh_views
from tests.explore_data import insert_dataset, insert_run

RUBRIC, JUDGE = "Is it on topic?", "fake/judge"


@pytest.fixture
def mapped(store):
    """Two runs and a dataset, loaded as the map loads them."""
    insert_run(store, "a", [(f"pizza text {i}", {"topic": "pizza", "tone": "warm"}) for i in range(6)])
    insert_run(store, "b", [("<script>alert(1)</script> & \"quotes\"", {"topic": "sushi"}), ("plain, with a comma", {"topic": "sushi"})])
    insert_dataset(store, "real", [("a real row", {"topic": "chess"}), ("another real row", {"lang": "en"})])
    items = combine(load_runs(store, ["a", "b"]), load_dataset(store, "real"))
    return store, items


def test_a_selection_splits_into_samples_and_dataset_rows(mapped):
    _, items = mapped
    sel = split_selection(items.frame, [0, 6, 8, 9, 999])  # 999: not a row of this map
    assert sel.sample_keys == ["a-0", "b-0"] and sel.dataset_ids == ["real:0", "real:1"] and sel.rows == [0, 6, 8, 9]
    assert "2 selected dataset row(s) cannot be tagged" in sel.left_out("tagged")
    assert split_selection(items.frame, [1]).left_out("tagged") == ""


def test_tags_are_stored_counted_and_shown_in_sql_and_on_the_map(mapped):
    store, items = mapped
    sel = split_selection(items.frame, [0, 1, 2, 8])
    first = tag_samples(store, sel, "  off-topic ")
    assert (first.tag, first.tagged, first.already) == ("off-topic", 3, 0)
    assert first.summary().startswith("Tagged 3 sample(s) 'off-topic'.") and "1 selected dataset row(s) cannot be tagged" in first.summary()
    again = tag_samples(store, split_selection(items.frame, [2, 3]), "off-topic")
    assert (again.tagged, again.already) == (1, 1) and "(1 already had it)" in again.summary()
    tag_samples(store, split_selection(items.frame, [0]), "keep me")
    assert list_tags(store).values.tolist() == [["off-topic", 4], ["keep me", 1]]
    tags = tags_of_runs(store, ["a", "b"])
    assert tags == {"a-0": "keep me, off-topic", "a-1": "off-topic", "a-2": "off-topic", "a-3": "off-topic"}
    # the SQL console's views carry them as a list
    refresh_views(store)
    rows = store.query("SELECT sample_key, tags FROM samples_wide WHERE run_id = 'a' ORDER BY item_idx LIMIT 5")
    assert rows[0] == ("a-0", ["keep me", "off-topic"]) and rows[4] == ("a-4", None)
    # and the map can be coloured by them
    assert "tag" in map_view.colour_options(items.dimensions, has_verdicts=False, has_reference=False, has_tags=True)
    c = map_view.colour_by("tag", items.frame, clusters=map_view.cluster_names(pd.Series([-1] * len(items.frame)).to_numpy()), tags=tags)
    assert list(c.values[:5]) == ["keep me, off-topic", "off-topic", "off-topic", "off-topic", "untagged"]
    assert untag_samples(store, split_selection(items.frame, [0, 1, 5]), "off-topic") == 2
    assert tags_of_runs(store, ["a"]) == {"a-0": "keep me", "a-2": "off-topic", "a-3": "off-topic"}


def test_a_tag_needs_a_name_of_sensible_length(mapped):
    store, items = mapped
    with pytest.raises(TagError, match="Name the tag"):
        tag_samples(store, split_selection(items.frame, [0]), "   ")
    with pytest.raises(TagError, match="at most 60"):
        clean_tag("x" * 61)
    assert clean_tag("two\n words") == "two words"
    only_rows = tag_samples(store, split_selection(items.frame, [8, 9]), "ref")
    assert only_rows.tagged == 0 and "2 selected dataset row(s) cannot be tagged" in only_rows.summary()


def test_drop_in_review_is_counted_and_undone_to_each_earlier_decision(mapped):
    store, items = mapped
    set_review(store, ["a-0", "a-0"], "keep", note="looked fine")  # a key twice is one decision
    set_review(store, ["a-1"], "drop", note="dull")
    before = review_rows(store, ["a-0", "a-1"])
    result = drop_in_review(store, split_selection(items.frame, [0, 1, 2, 3, 9]))
    assert (result.dropped, result.were_kept, result.were_dropped) == (4, 1, 1)
    assert "Dropped 4 sample(s) in review" in result.summary() and "1 were already dropped and 1 had been kept" in result.summary()
    assert "1 selected dataset row(s) cannot be reviewed" in result.summary()
    assert review_decisions(store, ["a-0", "a-1", "a-2", "a-3"]) == dict.fromkeys(["a-0", "a-1", "a-2", "a-3"], "drop")
    assert store.scalar("SELECT count(*) FROM review_decisions WHERE note = ?", [DROP_NOTE]) == 4
    set_review(store, ["a-3"], "keep", note="reviewed again")  # a later decision is not undone
    assert undo_drop(store, result) == 3
    assert review_rows(store, ["a-0", "a-1"]) == before  # decision, note and time as they were
    assert review_decisions(store, ["a-2", "a-3"]) == {"a-3": "keep"}  # a-2 had none, and has none again


def test_export_of_a_selection_keeps_texts_as_data(mapped):
    store, items = mapped
    edit_sample(store, "a-1", "pizza text 1, edited")
    sel = split_selection(items.frame, [1, 6, 7, 8, 9])
    frame = selection_samples(store, sel)
    assert frame["sample_key"].tolist() == ["a-1", "b-0", "b-1"]
    assert {"topic", "tone", "run_id", "model", "prompt", "condition"} <= set(frame.columns)
    assert frame.loc[0, "text"] == "pizza text 1, edited" and frame.loc[0, "original_text"] == "pizza text 1"
    lines = [json.loads(line) for line in to_jsonl(frame).decode().splitlines()]
    assert lines[1]["text"] == "<script>alert(1)</script> & \"quotes\""  # not escaped into HTML entities
    assert lines[1]["topic"] == "sushi" and lines[1]["tone"] is None
    csv = pd.read_csv(pd.io.common.BytesIO(to_csv(frame)))
    assert csv["text"].tolist() == frame["text"].tolist()
    rows = selection_dataset_rows(items.frame, sel, items.dimensions, items.names)
    assert rows.to_dict("records") == [
        {"id": "real:0", "dataset": "real", "text": "a real row", "topic": "chess", "lang": None},
        {"id": "real:1", "dataset": "real", "text": "another real row", "topic": None, "lang": "en"},
    ]


def _score(store, text: str, score: float) -> None:
    with store.write() as cur:
        cur.execute("INSERT INTO judge_scores (rubric_hash, judge_model, text_hash, score) VALUES (?, ?, ?, ?)",
                    [rubric_hash(RUBRIC), JUDGE, text_hash(text), score])


def test_threshold_calibration_on_the_reviewed_samples_only(store):
    texts = [f"good {i}" if i % 2 else f"bad {i}" for i in range(12)]
    insert_run(store, "r", [(t, {}) for t in texts])
    keys = [f"r-{i}" for i in range(12)]
    for t in texts[:10]:  # two texts have no score
        _score(store, t, 5 if t.startswith("good") else 2)
    cal = threshold_calibration(store, keys, RUBRIC, JUDGE, 3.0)
    assert (cal.reviewed, cal.scored, cal.result) == (0, 0, None)
    assert f"needs at least {MIN_REVIEWED} reviewed samples" in cal.sentence() and f"review {MIN_REVIEWED} more" in cal.sentence()

    set_review(store, ["r-1", "r-3"], "keep")
    set_review(store, ["r-0", "r-11"], "drop")  # r-11 has no score
    few = threshold_calibration(store, keys, RUBRIC, JUDGE, 3.0)
    assert (few.reviewed, few.scored, few.result) == (4, 3, None)
    assert "4 are reviewed, 3 of them scored by this judge" in few.sentence() and "review or score 2 more" in few.sentence()

    set_review(store, ["r-5", "r-2"], "keep")  # r-2 is "bad": the judge (2) and the reviewer disagree
    set_review(store, ["r-4", "r-6"], "drop")
    cal = threshold_calibration(store, keys, RUBRIC, JUDGE, 3.0)
    human = [True, True, True, False, True, False, False]  # r-1, r-3, r-5, r-0, r-2, r-4, r-6
    scores = [5, 5, 5, 2, 2, 2, 2]
    expected = agreement(scores, human, 3.0)
    assert (cal.reviewed, cal.scored, cal.kept) == (8, 7, 4)
    assert cal.result == expected and expected.accuracy == pytest.approx(6 / 7)
    assert 0 < expected.kappa < 1
    s = cal.sentence()
    assert "on the 7 reviewed samples this judge scored (4 kept by the reviewers)" in s
    assert "accuracy 86%" in s and f"kappa {expected.kappa:.2f}" in s and "1 reviewed sample(s) without a score are not counted" in s
    # another threshold, another answer; another judge label has no scores at all
    assert threshold_calibration(store, keys, RUBRIC, JUDGE, 1.0).result.accuracy == pytest.approx(4 / 7)
    assert threshold_calibration(store, keys, RUBRIC, "other/judge", 3.0).scored == 0
    # only the samples asked about count
    assert threshold_calibration(store, keys[:4], RUBRIC, JUDGE, 3.0).reviewed == 4


def test_calibration_reads_the_edited_text_and_says_when_kappa_is_undefined(store):
    insert_run(store, "r", [(f"text {i}", {}) for i in range(5)])
    keys = [f"r-{i}" for i in range(5)]
    for i in range(5):
        _score(store, f"text {i}", 4)
    set_review(store, keys, "keep")
    cal = threshold_calibration(store, keys, RUBRIC, JUDGE, 3.0)
    assert cal.result.accuracy == 1.0 and math.isnan(cal.result.kappa)
    assert "kappa undefined" in cal.sentence() and "kept every one" in cal.sentence()
    edit_sample(store, "r-0", "a new text")  # the step reads the new text, which has no score yet
    assert threshold_calibration(store, keys, RUBRIC, JUDGE, 3.0).scored == 4
