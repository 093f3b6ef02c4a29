"""Writing plans to the store before anything is sent, and reading their items back."""

from __future__ import annotations

import json

import pyarrow as pa

from services.core.store import Store
from services.recipes.plan import Plan, PlanItem

_MAP = pa.map_(pa.string(), pa.string())


def save_plan(store: Store, plan: Plan) -> bool:
    """Write a plan and its items once; returns False if the plan was already stored."""
    table = pa.table(
        {
            "plan_id": pa.array([plan.plan_id] * len(plan.items), pa.string()),
            "idx": pa.array([it.index for it in plan.items], pa.int32()),
            "item_key": pa.array([it.key for it in plan.items], pa.string()),
            "condition": pa.array([list(it.condition.items()) for it in plan.items], _MAP),
            "demo_ids": pa.array([it.demo_ids for it in plan.items], pa.list_(pa.string())),
            "messages": pa.array([json.dumps(it.messages, ensure_ascii=False) for it in plan.items], pa.string()),
        }
    )
    with store.write() as cur:
        if cur.execute("SELECT 1 FROM plans WHERE plan_id = ?", [plan.plan_id]).fetchone():
            return False
        cur.execute(
            "INSERT INTO plans (plan_id, recipe_hash, strategy, seed, n_items, n_cells) VALUES (?, ?, ?, ?, ?, ?)",
            [plan.plan_id, plan.recipe_hash, plan.strategy, plan.seed, len(plan.items), plan.n_cells],
        )
        cur.register("_plan_items_in", table)
        try:
            cur.execute("INSERT INTO plan_items SELECT plan_id, idx, item_key, condition, demo_ids, messages FROM _plan_items_in")
        finally:
            cur.unregister("_plan_items_in")
    return True


def load_plan_items(store: Store, plan_id: str, limit: int | None = None) -> list[PlanItem]:
    sql = "SELECT idx, item_key, condition, demo_ids, messages FROM plan_items WHERE plan_id = ? ORDER BY idx"
    params: list = [plan_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [PlanItem(i, k, dict(c), list(d), json.loads(m)) for i, k, c, d, m in store.query(sql, params)]
