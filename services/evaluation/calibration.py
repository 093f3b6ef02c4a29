"""Judge calibration: how well a judge's scores agree with human review decisions.

For every (rubric, judge) with scores on reviewed samples, and every threshold t, the judge
"keeps" a sample at score >= t; against the reviewer's keep/drop that gives accuracy and Cohen's
kappa; Spearman's rank correlation compares the raw scores with keep (1) / drop (0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.core.store import Store

MIN_REVIEWED = 5


def judge_agreement(store: Store, run_ids: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """rubric (first words), judge, threshold, n, accuracy, kappa, spearman; plus notes."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

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
        human = g["human_keep"].astype(int).to_numpy()
        if len(g) < MIN_REVIEWED:
            notes.append(f"judge {judge} (rubric {rubric[:8]}): only {len(g)} reviewed sample(s), fewer than {MIN_REVIEWED}.")
            continue
        rho = spearmanr(g["score"], human).statistic if len(set(human)) > 1 and g["score"].nunique() > 1 else np.nan
        for t in (2.0, 3.0, 4.0, 5.0):
            pred = (g["score"].to_numpy() >= t).astype(int)
            kappa = cohen_kappa_score(human, pred) if len(set(human) | set(pred)) > 1 else np.nan
            out.append({"rubric": rubric[:8], "judge": judge, "threshold": t, "n": len(g),
                        "accuracy": float(np.mean(pred == human)), "kappa": float(kappa), "spearman": float(rho)})
    return pd.DataFrame(out), notes
