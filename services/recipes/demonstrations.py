"""Choosing in-context demonstrations for each plan item."""

from __future__ import annotations

import random

from services.recipes.recipe import Demo, DemoSettings

Condition = dict[str, str]


class DemoPicker:
    """Picks ``k`` demos per item: at random, stratified across a dimension's values, or matching the item's value."""

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.examples = list(settings.examples)
        self.by_value: dict[str, list[Demo]] = {}
        if settings.stratify_by:
            for e in self.examples:
                self.by_value.setdefault(e.attributes.get(settings.stratify_by, ""), []).append(e)

    def pick(self, rng: random.Random, condition: Condition) -> list[Demo]:
        s = self.settings
        k = min(s.k, len(self.examples))
        if k <= 0:
            return []
        if s.strategy == "random" or not s.stratify_by:
            return rng.sample(self.examples, k)
        if s.strategy == "matching":
            same = self.by_value.get(condition.get(s.stratify_by, ""), [])
            chosen = rng.sample(same, min(k, len(same)))
            if len(chosen) < k:  # not enough demos with this value: fill with others
                rest = [e for e in self.examples if e not in chosen]
                chosen += rng.sample(rest, k - len(chosen))
            return chosen
        # stratified: round-robin over the dimension's values so each is represented
        groups = [list(g) for g in self.by_value.values()]
        rng.shuffle(groups)
        for g in groups:
            rng.shuffle(g)
        chosen: list[Demo] = []
        while len(chosen) < k:
            for g in groups:
                if g and len(chosen) < k:
                    chosen.append(g.pop())
        return chosen
