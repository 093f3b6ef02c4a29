"""What the home page shows about the database: counts of recipes, runs, samples, datasets."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.store import Store


@dataclass(frozen=True)
class Overview:
    recipes: int
    recipe_versions: int
    runs: int
    running: int
    interrupted: int
    samples: int
    failed_samples: int
    datasets: int
    dataset_rows: int


def overview(store: Store) -> Overview:
    row = store.query(
        """SELECT
            (SELECT count(DISTINCT name) FROM recipe_versions),
            (SELECT count(*) FROM recipe_versions),
            (SELECT count(*) FROM runs),
            (SELECT count(*) FROM runs WHERE status = 'running'),
            (SELECT count(*) FROM runs WHERE status = 'interrupted'),
            (SELECT count(*) FROM samples WHERE error IS NULL AND step = 'output'),
            (SELECT count(*) FROM samples WHERE error IS NOT NULL),
            (SELECT count(*) FROM datasets),
            (SELECT count(*) FROM dataset_rows)"""
    )[0]
    return Overview(*row)
