"""Immutable recipe versions in the store: save, list, load, diff, duplicate."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime

from services.core.store import Store
from services.recipes.recipe import Recipe
from services.recipes.recipe_yaml import to_yaml


@dataclass(frozen=True)
class RecipeVersion:
    recipe_hash: str
    name: str
    version: int
    parent_hash: str | None
    note: str | None
    created_at: datetime

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version} ({self.recipe_hash[:8]})"


_COLUMNS = "recipe_hash, name, version, parent_hash, note, created_at"


def save_version(store: Store, recipe: Recipe, *, parent_hash: str | None = None, note: str = "") -> RecipeVersion:
    """Save as a new immutable version; saving identical content returns the existing version."""
    rhash = recipe.content_hash()
    with store.write() as cur:
        row = cur.execute(f"SELECT {_COLUMNS} FROM recipe_versions WHERE recipe_hash = ?", [rhash]).fetchone()
        if row:
            return RecipeVersion(*row)
        version = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM recipe_versions WHERE name = ?", [recipe.name]).fetchone()[0]
        cur.execute(
            "INSERT INTO recipe_versions (recipe_hash, name, version, parent_hash, note, body) VALUES (?, ?, ?, ?, ?, ?)",
            [rhash, recipe.name, version, parent_hash, note or None, json.dumps(recipe.canonical(), ensure_ascii=False)],
        )
        row = cur.execute(f"SELECT {_COLUMNS} FROM recipe_versions WHERE recipe_hash = ?", [rhash]).fetchone()
    return RecipeVersion(*row)


def list_versions(store: Store, name: str | None = None) -> list[RecipeVersion]:
    sql = f"SELECT {_COLUMNS} FROM recipe_versions"
    params: list = []
    if name is not None:
        sql += " WHERE name = ?"
        params.append(name)
    sql += " ORDER BY name, version DESC"
    return [RecipeVersion(*r) for r in store.query(sql, params)]


def load_version(store: Store, recipe_hash: str) -> Recipe:
    row = store.query("SELECT body FROM recipe_versions WHERE recipe_hash = ?", [recipe_hash])
    if not row:
        raise KeyError(f"no recipe version {recipe_hash}")
    return Recipe.parse(json.loads(row[0][0]))


def diff_recipes(old: Recipe, new: Recipe, old_label: str = "old", new_label: str = "new") -> str:
    """A unified diff of the two recipes' YAML (empty when identical)."""
    return "".join(
        difflib.unified_diff(
            to_yaml(old).splitlines(keepends=True), to_yaml(new).splitlines(keepends=True), fromfile=old_label, tofile=new_label
        )
    )


def duplicate(store: Store, recipe_hash: str, new_name: str) -> RecipeVersion:
    """Copy a version under a new name (version 1 of that name, parent = the original)."""
    recipe = load_version(store, recipe_hash).model_copy(update={"name": new_name.strip()})
    return save_version(store, Recipe.parse(recipe.model_dump(mode="json")), parent_hash=recipe_hash, note="duplicated")
