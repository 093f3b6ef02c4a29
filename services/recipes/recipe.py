"""The recipe model: everything needed to make a plan, validated with pydantic.

A recipe is saved as an immutable version identified by the hash of its canonical JSON
(defaults excluded, so adding a field with a default never changes existing hashes).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from services.core.errors import StudioError
from services.recipes.columns import Column, column_problems

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names templates provide besides the dimensions.
RESERVED_NAMES = frozenset({"task", "demos", "condition", "index", "steps", "loop", "range", "namespace"})


class RecipeError(StudioError, ValueError):
    """A recipe that cannot be planned; ``problems`` lists (where, message) pairs."""

    title = "The recipe is not valid"

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{where}: {msg}" if where else msg for where, msg in problems))


class Value(BaseModel):
    """One value of a dimension, with an optional sampling weight and an optional short label.

    ``text`` is what templates render (``{{ persona }}``); ``label`` (default: the text) is what a
    sample's condition stores and what Explore, charts, SQL and exclusion rules see, so a long
    "Name: description" value can show as "Name". ``key`` is the label, or the text when none.
    """

    model_config = ConfigDict(frozen=True)
    text: str
    weight: float = 1.0
    label: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_plain(cls, data: Any) -> Any:
        # YAML may give a plain string, a one-key mapping {value: weight}, or {label:, text:, weight:}.
        if isinstance(data, str | int | float) and not isinstance(data, bool):
            return {"text": str(data)}
        if isinstance(data, dict) and len(data) == 1 and "text" not in data and "label" not in data:
            ((text, weight),) = data.items()
            return {"text": str(text), "weight": weight}
        if isinstance(data, dict) and "label" in data:
            # A label equal to the text (or blank) is no label: the value and its recipe's hash stay as before.
            data = {**data, "text": data.get("text", data["label"])}
            label = str(data["label"] or "").strip()
            data["label"] = "" if label == str(data["text"]).strip() else label
        return data

    @property
    def key(self) -> str:
        """What the condition stores and every table shows: the label, else the text."""
        return self.label or self.text

    @model_serializer(mode="plain")
    def _compact(self) -> Any:
        if not self.label:
            return self.text if self.weight == 1.0 else {"text": self.text, "weight": self.weight}
        out: dict[str, Any] = {"label": self.label, "text": self.text}
        if self.weight != 1.0:
            out["weight"] = self.weight
        return out


class Dimension(BaseModel):
    """A named condition with values; may depend on another dimension's value."""

    name: str
    kind: Literal["categorical", "random_words"] = "categorical"
    description: str = ""
    values: list[Value] = Field(default_factory=list)
    depends_on: str | None = None
    values_by_parent: dict[str, list[Value]] = Field(default_factory=dict)
    # random_words: k words drawn per item from the word list (TinyStories-style creative randomness)
    words: list[str] = Field(default_factory=list)
    k: int = 3

    def options(self, parent_value: str | None = None) -> list[Value]:
        """The values this dimension can take (given its parent's value, if it depends on one)."""
        if self.depends_on:
            return self.values_by_parent.get(parent_value or "", [])
        return self.values

    def has_labels(self) -> bool:
        return any(v.label for v in self.all_values())

    def text_of(self, key: str, parent_value: str | None = None) -> str:
        """The full text of the value a condition stores as ``key`` (its label); ``key`` if unknown."""
        for v in self.options(parent_value):
            if v.key == key:
                return v.text
        return key

    def all_values(self) -> list[Value]:
        if self.depends_on:
            return [v for vals in self.values_by_parent.values() for v in vals]
        return list(self.values)


class Demo(BaseModel):
    """A seed example shown to the model; attributes allow stratified selection."""

    id: str
    text: str
    attributes: dict[str, str] = Field(default_factory=dict)


class DemoSettings(BaseModel):
    examples: list[Demo] = Field(default_factory=list)
    k: int = 0
    # nearest: the k most similar to the item (an annotated row's text, or its condition);
    # diverse: similar but unlike each other (maximal marginal relevance)
    strategy: Literal["random", "stratified", "matching", "nearest", "diverse"] = "random"
    stratify_by: str | None = None
    diversity: float = 0.5  # diverse: 0 = only similarity to the item, 1 = only unlikeness to the demos chosen


class DatasetSource(BaseModel):
    """Annotation: run over the rows of an imported dataset instead of a plan of conditions; each
    row's text (as ``text`` and under its column's name) and attributes are template variables."""

    dataset: str  # the dataset's name (the newest import of that name)
    limit: int | None = None  # only the first N rows
    # Where to import it from when no dataset has that name yet (a path under data/, or absolute).
    file: str | None = None
    text_column: str = "text"
    attribute_columns: list[str] = Field(default_factory=list)


class Sampling(BaseModel):
    strategy: Literal["grid", "random", "balanced", "pairwise"] = "grid"
    # grid/pairwise: items per selected cell; random/balanced: total number of items.
    n_items: int = 100
    per_cell: int = 1
    seed: int = 0
    exclusions: list[str] = Field(default_factory=list)


class ModelSettings(BaseModel):
    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int | None = None
    samples_per_item: int = 1


class Step(BaseModel):
    """An extra generation step; its templates may use earlier outputs as ``steps.<name>``."""

    name: str
    system_template: str = ""
    user_template: str


class Recipe(BaseModel):
    name: str = "untitled"
    description: str = ""
    task: str = ""
    system_template: str = "{{ task }}"
    user_template: str = ""
    dimensions: list[Dimension] = Field(default_factory=list)
    demos: DemoSettings = Field(default_factory=DemoSettings)
    sampling: Sampling = Field(default_factory=Sampling)
    model: ModelSettings = Field(default_factory=ModelSettings)
    steps: list[Step] = Field(default_factory=list)
    # Named, typed outputs after the recipe's own template (see services/recipes/columns.py).
    columns: list[Column] = Field(default_factory=list)
    output_column: str | None = None  # which column a sample's text is; default: the last text column
    source: DatasetSource | None = None  # annotation of a dataset's rows instead of sampled conditions

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the recipe needs a name")
        return v.strip()

    @model_validator(mode="after")
    def _check_design(self) -> Recipe:
        problems = design_problems(self)
        if problems:
            raise RecipeError(problems)
        return self

    # -- identity ----------------------------------------------------------------------
    def canonical(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)

    def content_hash(self) -> str:
        body = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def dimension(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Recipe:
        """Validate a dict (e.g. from YAML), turning pydantic errors into a RecipeError."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                ctx_err = (err.get("ctx") or {}).get("error")
                if isinstance(ctx_err, RecipeError):
                    problems.extend(ctx_err.problems)
                    continue
                where = ".".join(str(p) for p in err["loc"])
                problems.append((where, err["msg"].removeprefix("Value error, ")))
            raise RecipeError(problems) from None


def dimension_problems(dim: Dimension, others: list[Dimension]) -> list[str]:
    """What is wrong with one dimension, in words a user can act on."""
    out: list[str] = []
    if not NAME_RE.match(dim.name):
        out.append(f"'{dim.name}' is not a usable name: use letters, digits and _ (not starting with a digit)")
    elif dim.name in RESERVED_NAMES:
        out.append(f"'{dim.name}' is reserved in templates; pick another name")
    if dim.kind == "random_words":
        words = [w for w in dim.words if w.strip()]
        if not words:
            out.append("the word list is empty")
        if dim.k < 1:
            out.append("k must be at least 1")
        elif words and dim.k > len(set(words)):
            out.append(f"k={dim.k} is more than the {len(set(words))} distinct words in the list")
        return out
    names = {d.name for d in others}
    if dim.depends_on:
        if dim.depends_on == dim.name:
            out.append("a dimension cannot depend on itself")
        elif dim.depends_on not in names:
            out.append(f"depends on '{dim.depends_on}', which is not a dimension (have: {', '.join(sorted(names)) or 'none'})")
        else:
            parent = next(d for d in others if d.name == dim.depends_on)
            parent_vals = {v.key for v in parent.all_values()}
            unknown = sorted(set(dim.values_by_parent) - parent_vals)
            if unknown:
                out.append(f"values given for {', '.join(map(repr, unknown))}, which '{parent.name}' does not have")
            missing = sorted(p for p in parent_vals if not dim.values_by_parent.get(p))
            if missing:
                out.append(f"no values for {parent.name} = {', '.join(map(repr, missing))}")
        groups = list(dim.values_by_parent.items())
    else:
        if not dim.values:
            out.append("has no values")
        groups = [("", dim.values)]
    for parent_value, vals in groups:
        where = f" (for {dim.depends_on} = {parent_value!r})" if dim.depends_on else ""
        seen: set[str] = set()
        seen_text: set[str] = set()
        for v in vals:
            if not v.text.strip():
                out.append(f"an empty value{where}")
            key = v.key.strip().casefold()
            if key in seen:
                out.append(f"duplicate value {v.key!r}{where}" + (" (labels must differ)" if v.label else ""))
            elif v.label and v.text.strip().casefold() in seen_text:
                out.append(f"the value labelled {v.label!r}{where} has the same text as another value")
            seen.add(key)
            seen_text.add(v.text.strip().casefold())
            if not (v.weight > 0) or v.weight != v.weight or v.weight == float("inf"):
                out.append(f"weight of {v.key!r}{where} must be a positive number, got {v.weight}")
    return out


def dependency_cycle(dims: list[Dimension]) -> list[str] | None:
    """The names on a dependency cycle, or None."""
    parent = {d.name: d.depends_on for d in dims}
    for start in parent:
        seen = [start]
        cur = parent.get(start)
        while cur is not None and cur in parent:
            if cur in seen:
                return seen[seen.index(cur):] + [cur]
            seen.append(cur)
            cur = parent.get(cur)
    return None


def design_problems(recipe: Recipe) -> list[tuple[str, str]]:
    """Every problem in a recipe's design, as (where, message)."""
    problems: list[tuple[str, str]] = []
    names = [d.name for d in recipe.dimensions]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append((f"dimension '{dup}'", "two dimensions have this name"))
    for d in recipe.dimensions:
        problems.extend((f"dimension '{d.name}'", m) for m in dimension_problems(d, recipe.dimensions))
    cycle = dependency_cycle(recipe.dimensions)
    if cycle:
        problems.append(("dimensions", "dependency cycle: " + " → ".join(cycle)))
    for d in recipe.dimensions:
        if d.depends_on and d.depends_on in names and recipe.dimension(d.depends_on).kind == "random_words":
            problems.append((f"dimension '{d.name}'", "cannot depend on a random-words dimension"))
    s = recipe.sampling
    if s.n_items < 1:
        problems.append(("sampling", "the number of items must be at least 1"))
    if s.per_cell < 1:
        problems.append(("sampling", "items per cell must be at least 1"))
    dm = recipe.demos
    if dm.k < 0:
        problems.append(("demos", "k must be 0 or more"))
    if dm.k > len(dm.examples):
        problems.append(("demos", f"k={dm.k} but only {len(dm.examples)} demonstrations are given"))
    ids = [e.id for e in dm.examples]
    if len(set(ids)) != len(ids):
        problems.append(("demos", "demonstration ids must be unique"))
    if dm.strategy in ("stratified", "matching") and dm.k > 0 and not dm.stratify_by:
        problems.append(("demos", f"the '{dm.strategy}' strategy needs a dimension to stratify by"))
    m = recipe.model
    if not 0 <= m.temperature <= 2:
        problems.append(("model", "temperature must be between 0 and 2"))
    if not 0 < m.top_p <= 1:
        problems.append(("model", "top_p must be in (0, 1]"))
    if m.max_tokens < 1:
        problems.append(("model", "max_tokens must be at least 1"))
    if m.samples_per_item < 1:
        problems.append(("model", "samples per item must be at least 1"))
    step_names = [s.name for s in recipe.steps]
    for step in recipe.steps:
        if not NAME_RE.match(step.name):
            problems.append((f"step '{step.name}'", "use letters, digits and _ for step names"))
    if len(set(step_names)) != len(step_names):
        problems.append(("steps", "step names must be unique"))
    if recipe.columns or recipe.output_column:
        # Over a dataset, the row's fields are known only once it is read (make_plan checks them).
        provided = None if recipe.source else set(names) | RESERVED_NAMES
        problems.extend(column_problems(recipe, provided, RESERVED_NAMES))
    if recipe.source and recipe.source.limit is not None and recipe.source.limit < 1:
        problems.append(("source", "limit must be at least 1"))
    if not 0 <= dm.diversity <= 1:
        problems.append(("demos", "diversity must be between 0 and 1"))
    return problems
