"""Compare Filters: a judge step's threshold shows its agreement with human review right under it,
computed on the reviewed samples of the run (and says how many more reviews it needs)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from resources import get_store
from services.core.hashing import text_hash
from services.curation.judge_step import JudgeStep, rubric_hash
from services.curation.review_store import set_review
from tests import test_compare_page
from tests.test_compare_page import PAGE, seed

fake_embedder = test_compare_page.fake_embedder  # the fixture (fake embedder, stubbed UMAP, fresh caches), by name

STEP = JudgeStep()  # the editor's defaults: rubric and judge label


def note(at: AppTest, pipeline: int = 0) -> str:
    """The calibration caption of pipeline ``pipeline``'s judge step (each pipeline has its own)."""
    found = [c.value for c in at.caption if c.value.startswith("**Calibration against human review.**")]
    assert len(found) == 1 + (pipeline > 0), found
    return found[pipeline]


def test_judge_threshold_shows_its_calibration_on_the_reviewed_samples(db_path, fake_embedder):
    seed(db_path)  # i % 3: 0 calm, 1 angry (one refusal text), 2 happy
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    at.multiselect(key="compare_filters_p0_steps").set_value(["judge"]).run()
    assert not at.exception
    assert "Calibration needs at least 5 reviewed samples that this judge scored; none of these samples is reviewed yet: review 5 more" in note(at)

    store = get_store()
    texts = dict(store.query("SELECT sample_key, text FROM samples WHERE run_id = 'run-a'"))
    score = {"calm": 5.0, "angry": 1.0, "happy": 3.0}
    with store.write() as cur:
        for key, text in texts.items():
            mood = ["calm", "angry", "happy"][int(key.rsplit("-", 1)[1]) % 3]
            cur.execute("INSERT INTO judge_scores (rubric_hash, judge_model, text_hash, score) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [rubric_hash(STEP.rubric), STEP.judge_model, text_hash(text), score[mood]])
    set_review(store, ["run-a-0", "run-a-3"], "keep")
    set_review(store, ["run-a-1"], "drop")
    at.run()
    assert "3 are reviewed, 3 of them scored by this judge: review 2 more" in note(at)

    # six reviews: calm kept (5), angry dropped (1), one happy (3) dropped by the reviewer
    set_review(store, ["run-a-6"], "keep")
    set_review(store, ["run-a-4", "run-a-2"], "drop")
    at.run()
    # at >= 3 the judge keeps 4 of which the reviewers kept 3: 5 of 6 agree; kappa (5/6 - 1/2) / (1/2)
    assert "At ≥ 3, on the 6 reviewed samples this judge scored (3 kept by the reviewers): accuracy 83%, Cohen's kappa 0.67." in note(at)
    assert "Unreviewed samples of this run are not covered." in note(at)
    at.slider(key="compare_filters_p0_judge_threshold").set_value(4.0).run()
    assert "At ≥ 4, on the 6 reviewed samples" in note(at) and "accuracy 100%, Cohen's kappa 1.00." in note(at)
    # another judge label has no scores: the note says so
    at.text_input(key="compare_filters_p0_judge_judge_model").set_value("openai/gpt-4o-mini").run()
    assert "6 are reviewed, 0 of them scored by this judge: review or score 5 more" in note(at)

    # the second pipeline's judge step has its own threshold and its own figures
    at.multiselect(key="compare_filters_p1_steps").set_value(["judge"]).run()
    at.slider(key="compare_filters_p1_judge_threshold").set_value(1.0).run()
    assert "At ≥ 1, on the 6 reviewed samples" in note(at, 1) and "accuracy 50%" in note(at, 1)
