"""Recipes, plans and plan items, runs and samples (with full provenance)."""

VERSION = 1
NAME = "core: recipes, plans, runs, samples"

STATEMENTS = [
    # An immutable recipe version; recipe_hash is the content hash of the canonical body.
    """CREATE TABLE recipe_versions (
        recipe_hash VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        parent_hash VARCHAR,
        note VARCHAR,
        body JSON NOT NULL,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        UNIQUE (name, version)
    )""",
    # A plan: the materialised list of items for one recipe version and sampling.
    """CREATE TABLE plans (
        plan_id VARCHAR PRIMARY KEY,
        recipe_hash VARCHAR NOT NULL,
        strategy VARCHAR NOT NULL,
        seed BIGINT,
        n_items INTEGER NOT NULL,
        n_cells HUGEINT,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    """CREATE TABLE plan_items (
        plan_id VARCHAR NOT NULL,
        idx INTEGER NOT NULL,
        item_key VARCHAR NOT NULL,
        condition MAP(VARCHAR, VARCHAR) NOT NULL,
        demo_ids VARCHAR[] NOT NULL,
        messages JSON NOT NULL,
        PRIMARY KEY (plan_id, idx)
    )""",
    # A run: one execution of a plan against one backend/model/parameters.
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        plan_id VARCHAR NOT NULL,
        recipe_hash VARCHAR NOT NULL,
        name VARCHAR,
        backend VARCHAR NOT NULL,
        base_url VARCHAR,
        model VARCHAR NOT NULL,
        params JSON NOT NULL,
        samples_per_item INTEGER NOT NULL DEFAULT 1,
        status VARCHAR NOT NULL DEFAULT 'planned',
        error VARCHAR,
        budget_usd DOUBLE,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
        started_at TIMESTAMP,
        finished_at TIMESTAMP
    )""",
    # A sample: one generated output with its provenance. sample_key is deterministic
    # (run, item key, sample index, step), so a resume never duplicates a sample.
    """CREATE TABLE samples (
        sample_key VARCHAR PRIMARY KEY,
        run_id VARCHAR NOT NULL,
        plan_id VARCHAR NOT NULL,
        item_idx INTEGER NOT NULL,
        item_key VARCHAR NOT NULL,
        sample_idx INTEGER NOT NULL DEFAULT 0,
        step VARCHAR NOT NULL DEFAULT 'output',
        recipe_hash VARCHAR NOT NULL,
        condition MAP(VARCHAR, VARCHAR) NOT NULL,
        demo_ids VARCHAR[] NOT NULL,
        messages JSON NOT NULL,
        text VARCHAR,
        model VARCHAR NOT NULL,
        params JSON NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        latency_ms DOUBLE,
        cost_usd DOUBLE,
        finish_reason VARCHAR,
        error VARCHAR,
        attempts INTEGER NOT NULL DEFAULT 1,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    "CREATE INDEX samples_run ON samples (run_id)",
]
