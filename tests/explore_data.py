"""Test data for Explore: runs with samples and datasets, inserted straight into the tables."""

from __future__ import annotations

import json

from services.core.store import Store


def insert_run(store: Store, run_id: str, samples: list[tuple[str | None, dict[str, str]]], *, recipe_hash: str = "recipe1",
               name: str | None = None, errors: int = 0) -> None:
    """A run with one output sample per (text, condition); ``errors`` extra failed samples."""
    with store.write() as cur:
        cur.execute(
            "INSERT INTO runs (run_id, plan_id, recipe_hash, name, backend, model, params, status) VALUES (?, ?, ?, ?, 'fake', 'fake-model', '{}', 'done')",
            [run_id, f"plan-{run_id}", recipe_hash, name or run_id],
        )
        rows = [(t, c, None) for t, c in samples] + [("failed text", {}, "boom")] * errors
        for i, (text, cond, err) in enumerate(rows):
            cur.execute(
                """INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                   messages, text, model, params, error)
                   VALUES (?, ?, ?, ?, ?, ?, MAP(?::VARCHAR[], ?::VARCHAR[]), [], ?, ?, 'fake-model', '{}', ?)""",
                [f"{run_id}-{i}", run_id, f"plan-{run_id}", i, f"item-{i}", recipe_hash, list(cond), list(cond.values()),
                 json.dumps([{"role": "user", "content": "x"}]), text, err],
            )


def insert_dataset(store: Store, dataset_id: str, rows: list[tuple[str | None, dict[str, str]]], *, purpose: str = "reference") -> None:
    """A dataset as the importer stores it: the attribute values in the order of its (sorted) keys."""
    attrs = sorted({k for _, a in rows for k in a})
    with store.write() as cur:
        cur.execute(
            "INSERT INTO datasets (dataset_id, name, purpose, text_column, attribute_columns, n_rows) VALUES (?, ?, ?, 'text', ?, ?)",
            [dataset_id, dataset_id, purpose, attrs, len(rows)],
        )
        for i, (text, a) in enumerate(rows):
            cur.execute("INSERT INTO dataset_row_values (dataset_id, row_idx, text, attribute_values) VALUES (?, ?, ?, ?)",
                        [dataset_id, i, text, [a.get(k) for k in attrs]])


TOPICS = ("pizza pasta", "sushi rice", "tacos salsa", "curry naan", "burger fries")
TONES = ("warm", "cold", "angry", "funny")


def insert_big_run(store: Store, run_id: str, n: int) -> None:
    """A run of ``n`` output samples with two dimensions (topic, tone), inserted in one statement."""
    import pyarrow as pa

    insert_run(store, run_id, [(big_text(0), {"topic": TOPICS[0], "tone": TONES[0]})], name=run_id)
    rest = pa.table({"i": list(range(1, n)), "text": [big_text(i) for i in range(1, n)],
                     "topic": [TOPICS[i % 5] for i in range(1, n)], "tone": [TONES[i % 4] for i in range(1, n)]})
    with store.write() as cur:
        cur.register("bulk", rest)
        cur.execute("""INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                       messages, text, model, params)
                       SELECT ? || '-' || i, ?, 'plan-' || ?, i, 'item-' || i, 'recipe1', MAP(['topic', 'tone'], [topic, tone]),
                              [], '[]', text, 'fake-model', '{}' FROM bulk""", [run_id, run_id, run_id])
        cur.unregister("bulk")


def big_text(i: int) -> str:
    return f"A review about {TOPICS[i % 5]} number {i} with a {TONES[i % 4]} tone and some more words {i % 97}"
