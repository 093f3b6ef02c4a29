"""Recipes as YAML files: export, import, with messages that say where a file is wrong."""

from __future__ import annotations

from typing import Any

import yaml

from services.recipes.recipe import Recipe, RecipeError


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # Multi-line strings (templates) as literal blocks, so files read like the templates.
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(recipe: Recipe) -> str:
    body = recipe.model_dump(mode="json", exclude_defaults=True)
    body = {"name": recipe.name, **body}  # the name always first, even when it is the default
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def from_yaml(text: str | bytes) -> Recipe:
    """Parse and validate; raises RecipeError naming the line of a YAML error or the bad field."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RecipeError([("file", f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at position {exc.start})")]) from None
    try:
        data: Any = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        raise RecipeError([(where, f"malformed YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([("YAML", f"malformed YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise RecipeError([("file", "a recipe file must be a YAML mapping (name:, task:, dimensions: ...)")])
    return Recipe.parse(data)
