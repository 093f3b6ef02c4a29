"""Generation: run settings, run events, per-model prices and what a run covers."""

VERSION = 2
NAME = "generation: run settings, events, model prices"

STATEMENTS = [
    # Settings of the worker (concurrency, throttles, timeout, retries): never a key.
    "ALTER TABLE runs ADD COLUMN settings JSON",
    # A preview run covers only the first item_limit items of its plan.
    "ALTER TABLE runs ADD COLUMN item_limit INTEGER",
    # What happened during a run, in words (started, server starting, quota, cancelled...).
    """CREATE TABLE run_events (
        run_id VARCHAR NOT NULL,
        event_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        kind VARCHAR NOT NULL,
        message VARCHAR NOT NULL
    )""",
    # Editable price table, USD per million tokens, per model name.
    """CREATE TABLE model_prices (
        model VARCHAR PRIMARY KEY,
        input_per_mtok DOUBLE NOT NULL DEFAULT 0,
        output_per_mtok DOUBLE NOT NULL DEFAULT 0,
        updated_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
]
