"""What every CLI command does first: open the database, read a recipe file; each problem is one
line on stderr and the command returns 2."""

from __future__ import annotations

import sys
from pathlib import Path

from services.core.store import Store, StoreLockedError
from services.recipes.recipe import Recipe, RecipeError
from services.recipes.recipe_yaml import from_yaml


def open_store(db: Path | None = None) -> Store | None:
    """The store at ``db`` (the default file when None), or None after saying why it is not available."""
    try:
        return Store(db) if db else Store()
    except StoreLockedError as exc:
        print(exc, file=sys.stderr)
        return None


def read_recipe(path: Path) -> Recipe | None:
    """The recipe in a YAML file, or None after saying what is wrong with the file."""
    try:
        return from_yaml(path.read_bytes())
    except OSError as exc:
        print(f"Cannot read {path}: {exc.strerror}", file=sys.stderr)
    except RecipeError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
    return None
