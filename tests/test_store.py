"""The DuckDB store: migrations, lock-down, per-thread cursors, recipe versions, plans."""

from __future__ import annotations

import subprocess
import sys
import threading

import duckdb
import pytest

from services.core.migrations import MIGRATIONS
from services.core.store import Store, StoreLockedError
from services.demo.recipe_files import load_demo_recipe
from services.recipes.plan import make_plan
from services.recipes.plan_store import load_plan_items, save_plan
from services.recipes.recipe import Recipe
from services.recipes.version_store import diff_recipes, duplicate, list_versions, load_version, save_version


def test_migrations_apply_once_and_are_recorded(tmp_path):
    s = Store(tmp_path / "a.duckdb")
    assert s.schema_version() == MIGRATIONS[-1].version
    s.close()
    s2 = Store(tmp_path / "a.duckdb")
    assert s2.migrate() == []  # nothing pending on reopen
    rows = s2.query("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]
    s2.close()


def test_external_file_access_is_locked_down(store):
    with pytest.raises(duckdb.Error, match="disabled|Permission"):
        store.query("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(duckdb.Error, match="locked"):
        store.query("SET enable_external_access=true")


def test_second_process_gets_a_clear_message(tmp_path):
    path = tmp_path / "locked.duckdb"
    s = Store(path)
    code = "import sys; sys.path.insert(0, '.');\nfrom services.core.store import Store, StoreLockedError\ntry:\n    Store(sys.argv[1])\nexcept StoreLockedError as e:\n    print('LOCKED', e)"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert "LOCKED" in out.stdout and str(path) in out.stdout and "another process" in out.stdout
    s.close()
    assert StoreLockedError.__doc__


def test_threads_get_their_own_cursor_and_writes_serialise(store):
    with store.write() as cur:
        cur.execute("CREATE TABLE t (i INTEGER)")
    cursors = set()

    def work(n):
        cursors.add(id(store.cursor()))
        for i in range(20):
            with store.write() as cur:
                cur.execute("INSERT INTO t VALUES (?)", [n * 100 + i])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.scalar("SELECT count(*) FROM t") == 80
    assert len(cursors) == 4


def test_failed_write_rolls_back(store):
    with store.write() as cur:
        cur.execute("CREATE TABLE t (i INTEGER PRIMARY KEY)")
    with pytest.raises(duckdb.Error), store.write() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("INSERT INTO t VALUES (1)")
    assert store.scalar("SELECT count(*) FROM t") == 0


def test_recipe_versions_are_immutable_and_hashed(store):
    r = load_demo_recipe("restaurant_reviews")
    v1 = save_version(store, r)
    assert v1.version == 1 and v1.recipe_hash == r.content_hash()
    assert save_version(store, r) == v1  # same content: same version
    r2 = r.model_copy(update={"task": r.task + " Be concise."})
    r2 = Recipe.parse(r2.model_dump(mode="json"))
    v2 = save_version(store, r2, parent_hash=v1.recipe_hash, note="shorter")
    assert v2.version == 2 and v2.parent_hash == v1.recipe_hash
    assert load_version(store, v1.recipe_hash) == r
    assert [v.version for v in list_versions(store, r.name)] == [2, 1]
    d = diff_recipes(r, load_version(store, v2.recipe_hash))
    assert "+task: Suppose" in d and "Be concise." in d
    dup = duplicate(store, v2.recipe_hash, "my-copy")
    assert dup.name == "my-copy" and dup.version == 1 and dup.parent_hash == v2.recipe_hash


def test_plan_round_trip_with_conditions_queryable_by_sql(store):
    r = load_demo_recipe("news_attrprompt")
    plan = make_plan(r)
    assert save_plan(store, plan) is True
    assert save_plan(store, plan) is False  # written once
    items = load_plan_items(store, plan.plan_id)
    assert [(i.key, i.condition, i.demo_ids, i.messages) for i in items] == [
        (i.key, i.condition, i.demo_ids, i.messages) for i in plan.items]
    per_topic = dict(store.query("SELECT condition['topic'], count(*) FROM plan_items WHERE plan_id = ? GROUP BY ALL", [plan.plan_id]))
    assert sum(per_topic.values()) == 200 and set(per_topic) == {"business", "sports", "science", "politics", "health"}
