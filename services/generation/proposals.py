"""The model proposes new values for a dimension (as AttrPrompt does); duplicates are flagged.

A proposal is a duplicate when it equals an existing value (or an earlier proposal) after
case and whitespace folding, and a near-duplicate when rapidfuzz's similarity on the folded
text reaches the threshold (e.g. "Thai food" vs "thai", "Ethiopian" vs "Ethiopean").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz, process

from services.generation.backends import ChatBackend
from services.recipes.recipe import Dimension, Recipe

_BULLET = re.compile(r"^\s*(?:[-*•]+|\d+[.)]|[a-z][.)])\s*", re.IGNORECASE)
NEAR_THRESHOLD = 85.0


def fold(text: str) -> str:
    """Case and whitespace folding (and surrounding punctuation) for comparing values."""
    return " ".join(text.casefold().split()).strip(" .,;:\"'")


@dataclass(frozen=True)
class Proposal:
    text: str
    status: str  # new / duplicate / near-duplicate
    match: str | None = None  # the existing value (or earlier proposal) it resembles
    score: float = 0.0

    @property
    def flagged(self) -> bool:
        return self.status != "new"


def proposal_messages(recipe: Recipe, dim: Dimension, n: int) -> list[dict[str, str]]:
    existing = ", ".join(v.text for v in dim.all_values()) or "(none yet)"
    about = recipe.description.strip() or recipe.task.strip() or recipe.name
    return [
        {"role": "system", "content": "You help design diverse synthetic datasets. Answer with a plain list, one item per line."},
        {"role": "user", "content": (
            f"Dataset: {about}\nAttribute: {dim.name}" + (f" ({dim.description})" if dim.description else "")
            + f"\nExisting values: {existing}\nPropose {n} more values for {dim.name}, different from the existing ones."
            " One per line, no numbering, no explanations.")},
    ]


def parse_proposals(text: str, limit: int | None = None) -> list[str]:
    """Lines of a model's answer, without bullets or numbering; a single comma-separated line is split."""
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    if len(lines) == 1 and "," in lines[0]:
        lines = lines[0].split(",")
    out = []
    for ln in lines:
        v = _BULLET.sub("", ln).strip().strip("\"'`*").strip()
        if v and len(v) <= 80 and not v.endswith(":"):
            out.append(v)
    return out[:limit] if limit else out


def flag_duplicates(proposals: list[str], existing: list[str], threshold: float = NEAR_THRESHOLD) -> list[Proposal]:
    """Mark each proposal as new, a duplicate (after folding) or a near-duplicate (fuzzy)."""
    seen = {fold(e): e for e in existing}
    out = []
    for text in proposals:
        key = fold(text)
        if key in seen:
            out.append(Proposal(text, "duplicate", seen[key], 100.0))
            continue
        best = process.extractOne(key, list(seen), scorer=fuzz.WRatio, score_cutoff=threshold) if seen else None
        if best is not None:
            out.append(Proposal(text, "near-duplicate", seen[best[0]], float(best[1])))
        else:
            out.append(Proposal(text, "new"))
        seen.setdefault(key, text)
    return out


async def propose_values(backend: ChatBackend, recipe: Recipe, dimension: str, n: int = 10,
                         params: dict[str, Any] | None = None) -> list[Proposal]:
    """Ask the model for ``n`` more values of a dimension and flag the duplicates."""
    dim = recipe.dimension(dimension)
    res = await backend.complete(proposal_messages(recipe, dim, n), {"temperature": 0.9, "max_tokens": 200, **(params or {})})
    return flag_duplicates(parse_proposals(res.text, limit=n * 2), [v.text for v in dim.all_values()])


def accept(recipe: Recipe, dimension: str, values: list[str]) -> Recipe:
    """A new recipe with the accepted values appended to an independent dimension."""
    dim = recipe.dimension(dimension)
    if dim.depends_on:
        raise ValueError(f"'{dimension}' depends on '{dim.depends_on}': add its values per parent value in the Prompt Builder")
    have = {fold(v.text) for v in dim.values}
    new = [v for v in values if fold(v) not in have]
    body = recipe.model_dump(mode="json")
    for d in body["dimensions"]:
        if d["name"] == dimension:
            d["values"] = list(d["values"]) + new
    return Recipe.parse(body)
