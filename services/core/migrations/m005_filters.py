"""Curation: filter pipelines as versions, their verdicts, judge scores, human review, sample edits.

Everything a filter decided is queryable with SQL, e.g.
``SELECT step_name, reason, count(*) FROM filter_verdicts WHERE NOT kept GROUP BY ALL``.
Judge scores are cached by (rubric hash, backend/model, text hash): a score is never paid for
twice. An edit never overwrites a sample: it is a new row in ``sample_edits`` and the view
``samples_latest`` shows each output sample with its newest text (and the original beside it).
"""

VERSION = 5
NAME = "filters: pipelines, verdicts, judge scores, review, sample edits"

STATEMENTS = [
    # An immutable pipeline version; pipeline_hash is the content hash of its canonical steps.
    """CREATE TABLE filter_pipelines (
        pipeline_hash VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        steps JSON NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        UNIQUE (name, version)
    )""",
    # One pipeline applied to one run: the counts, for listing and for the data card.
    """CREATE TABLE filter_applications (
        pipeline_hash VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        n_in INTEGER NOT NULL,
        n_kept INTEGER NOT NULL,
        applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (pipeline_hash, run_id)
    )""",
    # A verdict per (pipeline, sample, step reached): a sample stops at the first step that drops it.
    """CREATE TABLE filter_verdicts (
        pipeline_hash VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        sample_key VARCHAR NOT NULL,
        step_idx INTEGER NOT NULL,
        step_name VARCHAR NOT NULL,
        kept BOOLEAN NOT NULL,
        reason VARCHAR,
        score DOUBLE,
        PRIMARY KEY (pipeline_hash, sample_key, step_idx)
    )""",
    "CREATE INDEX filter_verdicts_run ON filter_verdicts (run_id)",
    # LLM-as-judge scores; judge_model is the backend preset and model (never a key).
    """CREATE TABLE judge_scores (
        rubric_hash VARCHAR NOT NULL,
        judge_model VARCHAR NOT NULL,
        text_hash VARCHAR NOT NULL,
        score DOUBLE NOT NULL,
        rationale VARCHAR,
        scored_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (rubric_hash, judge_model, text_hash)
    )""",
    # The latest human decision per sample: 'keep' or 'drop'.
    """CREATE TABLE review_decisions (
        sample_key VARCHAR PRIMARY KEY,
        decision VARCHAR NOT NULL CHECK (decision IN ('keep', 'drop')),
        note VARCHAR,
        decided_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    # Edits are new versions (1, 2, ...); the original text stays in samples.
    """CREATE TABLE sample_edits (
        sample_key VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        text VARCHAR NOT NULL,
        edited_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (sample_key, version)
    )""",
    # Output samples with their newest text; original_text and edit_version (0 = never edited) beside it.
    """CREATE VIEW samples_latest AS
        SELECT s.sample_key, s.run_id, s.plan_id, s.item_idx, s.item_key, s.sample_idx, s.step, s.recipe_hash,
               s.condition, s.demo_ids, s.messages, coalesce(e.text, s.text) AS text, s.text AS original_text,
               coalesce(e.version, 0) AS edit_version, s.model, s.params, s.prompt_tokens, s.completion_tokens,
               s.latency_ms, s.cost_usd, s.finish_reason, s.error, s.attempts, s.created_at
        FROM samples s
        LEFT JOIN (SELECT sample_key, arg_max(text, version) AS text, max(version) AS version
                   FROM sample_edits GROUP BY sample_key) e ON e.sample_key = s.sample_key""",
]
