"""Provider batch jobs of a run: what was sent, where, and what came back (never a key)."""

VERSION = 8
NAME = "generation: provider batch jobs"

STATEMENTS = [
    # One batch sent for a run: OpenAI Batch, Anthropic Message Batches, or a file for `vllm run-batch`.
    # custom_ids are the samples' own keys, so importing a result is exactly-once like a live run.
    """CREATE TABLE batches (
        batch_id VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        provider VARCHAR NOT NULL,
        base_url VARCHAR,
        remote_id VARCHAR,
        model VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        custom_ids JSON NOT NULL,
        n_lines INTEGER NOT NULL,
        input_path VARCHAR,
        output_path VARCHAR,
        counts JSON,
        imported INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        error VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        collected_at TIMESTAMP
    )""",
    # Shown by the SQL page's schema browser.
    "COMMENT ON TABLE batches IS 'Provider batches of runs: provider, remote id, lines (custom_id = sample_key), status,"
    " counts, imported and failed lines. No key is ever stored.'",
]
