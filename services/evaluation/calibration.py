"""Judge calibration: how well a judge's scores agree with human review decisions.

For every (rubric, judge) with scores on reviewed samples, and every threshold t, the judge
"keeps" a sample at score >= t; against the reviewer's keep/drop that gives accuracy and Cohen's
kappa; Spearman's rank correlation compares the raw scores with keep (1) / drop (0). The figures
come from ``services.curation.calibration.agreement``, which Compare Filters shows next to each
judge threshold.
"""

from __future__ import annotations

import pandas as pd

from services.core.store import Store
from services.curation.calibration import MIN_REVIEWED, agreement

THRESHOLDS = (2.0, 3.0, 4.0, 5.0)


def judge_agreement(store: Store, run_ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """rubric (first words), judge, threshold, n, accuracy, kappa, spearman; plus notes."""
    rows = store.query(
        """SELECT j.rubric_hash, j.judge_model, j.score, r.decision = 'keep'
           FROM samples_latest s JOIN review_decisions r USING (sample_key)
           JOIN judge_scores j ON j.text_hash = sha256(s.text)
           WHERE s.run_id IN (SELECT unnest(?::VARCHAR[])) AND s.step = 'output'""",
        [list(run_ids)],
    )
    if not rows:
        return pd.DataFrame(), ["No sample of these runs has both a human review decision and a judge score: nothing to calibrate."]
    frame = pd.DataFrame(rows, columns=["rubric", "judge", "score", "human_keep"])
    out, notes = [], []
    for (rubric, judge), g in frame.groupby(["rubric", "judge"]):
        if len(g) < MIN_REVIEWED:
            notes.append(f"judge {judge} (rubric {rubric[:8]}): only {len(g)} reviewed sample(s), fewer than {MIN_REVIEWED}.")
            continue
        for t in THRESHOLDS:
            a = agreement(g["score"].to_numpy(), g["human_keep"].to_numpy(dtype=bool), t)
            out.append({"rubric": rubric[:8], "judge": judge, "threshold": t, "n": a.n,
                        "accuracy": a.accuracy, "kappa": a.kappa, "spearman": a.spearman})
    return pd.DataFrame(out), notes
