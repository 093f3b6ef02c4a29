"""The demo recipes shipped under data/recipes."""

from __future__ import annotations

from pathlib import Path

from services.recipe import Recipe
from services.recipe_yaml import from_yaml

RECIPES_DIR = Path(__file__).resolve().parent.parent / "data" / "recipes"


def demo_recipe_files() -> dict[str, Path]:
    """File stem -> path of every shipped recipe."""
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}


def load_demo_recipe(stem: str) -> Recipe:
    return from_yaml(demo_recipe_files()[stem].read_text(encoding="utf-8"))
