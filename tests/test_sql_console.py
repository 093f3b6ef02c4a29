"""The SQL console: hostile statements refused with a message and no change; time limit; row cap."""

from __future__ import annotations

import threading

import duckdb
import pytest

from services.core.store import Store
from services.sql import console as sc

HOSTILE = [
    ("insert", "INSERT INTO runs (run_id, plan_id, recipe_hash, backend, model, params) VALUES ('x','p','h','b','m','{}')"),
    ("update", "UPDATE samples SET text = 'pwned'"),
    ("delete", "DELETE FROM samples"),
    ("delete via cte", "WITH x AS (SELECT 1) DELETE FROM samples"),
    ("create table", "CREATE TABLE evil AS SELECT 1"),
    ("create view", "CREATE VIEW evil AS SELECT 1"),
    ("create macro", "CREATE MACRO evil(a) AS a + 1"),
    ("create secret", "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')"),
    ("drop", "DROP TABLE samples"),
    ("alter", "ALTER TABLE samples ADD COLUMN evil INTEGER"),
    ("attach", "ATTACH '/tmp/evil.duckdb' AS evil"),
    ("detach", "DETACH studio"),
    ("copy to", "COPY samples TO '/tmp/evil.csv'"),
    ("copy from", "COPY samples FROM '/etc/passwd'"),
    ("export", "EXPORT DATABASE '/tmp/evil_export'"),
    ("install", "INSTALL httpfs"),
    ("load", "LOAD httpfs"),
    ("pragma", "PRAGMA enable_profiling"),
    ("set", "SET enable_external_access = true"),
    ("reset", "RESET lock_configuration"),
    ("call", "CALL checkpoint()"),
    ("checkpoint", "CHECKPOINT"),
    ("vacuum", "VACUUM"),
    ("begin", "BEGIN TRANSACTION"),
    ("commit", "COMMIT"),
    ("prepare", "PREPARE p AS DELETE FROM samples"),
    ("use", "USE memory"),
    ("two statements", "SELECT 1; DROP TABLE samples"),
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read_csv_auto nested", "SELECT (SELECT count(*) FROM read_csv_auto('/etc/passwd')) AS n"),
    ("replacement scan", "SELECT * FROM '/etc/passwd'"),
    ("read_text", "SELECT * FROM read_text('/etc/passwd')"),
    ("read_blob", "SELECT * FROM read_blob('/etc/hostname')"),
    ("glob", "SELECT * FROM glob('/*')"),
    ("read_json", "SELECT * FROM read_json_auto('/etc/passwd')"),
    ("read_parquet url", "SELECT * FROM read_parquet('https://example.com/x.parquet')"),
    ("url replacement scan", "SELECT * FROM 'https://example.com/data.csv'"),
    ("lateral read_text", "SELECT * FROM samples s, LATERAL read_text(s.text)"),
    ("query()", "SELECT * FROM query('SELECT 1')"),
    ("sqlite_scan", "SELECT * FROM sqlite_scan('/tmp/x.db', 't')"),
    ("nextval", "SELECT nextval('seq')"),
    ("setseed", "SELECT setseed(0.5)"),
    ("secrets", "SELECT * FROM duckdb_secrets()"),
    ("other catalog", "SELECT * FROM evil.main.samples"),
    ("pivot statement", "PIVOT samples ON model"),
    ("empty", "   ;  "),
]


def _seed(store: Store) -> None:
    with store.write() as cur:
        cur.execute("INSERT INTO recipe_versions (recipe_hash, name, version, body) VALUES ('h', 'r', 1, '{}')")
        cur.execute("INSERT INTO runs (run_id, plan_id, recipe_hash, backend, model, params) VALUES ('run1','p','h','local','m','{}')")
        cur.execute(
            """INSERT INTO samples (sample_key, run_id, plan_id, item_idx, item_key, recipe_hash, condition, demo_ids,
                   messages, text, model, params)
               SELECT 'k' || i, 'run1', 'p', i, 'ik' || i, 'h', MAP {'cuisine': 'thai'}, [], '[]', 'text ' || i, 'm', '{}'
               FROM range(20) t(i)"""
        )


def checksum(store: Store) -> tuple:
    """Every table's and view's contents, the catalog and the settings that matter."""
    cur = store.fresh_cursor()
    try:
        tables = cur.execute(
            "SELECT database_name, schema_name, table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
        views = cur.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY ALL").fetchall()
        contents = []
        for db, schema, table in tables:
            q = f'SELECT count(*), md5(coalesce(string_agg(x::VARCHAR, \'|\' ORDER BY x::VARCHAR), \'\')) FROM "{db}"."{schema}"."{table}" x'
            contents.append((table, *cur.execute(q).fetchone()))
        settings = cur.execute(
            "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'),"
            " (SELECT count(*) FROM duckdb_databases())").fetchall()
        return tables, views, contents, settings
    finally:
        cur.close()


@pytest.fixture
def seeded(store: Store) -> Store:
    _seed(store)
    return store


def test_store_connection_is_locked_down(store: Store) -> None:
    cur = store.fresh_cursor()
    sc.verify_lockdown(cur)  # raises if not
    with pytest.raises(duckdb.Error):
        cur.execute("SET enable_external_access = true")
    cur.close()


@pytest.mark.parametrize(("label", "sql"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_query_is_refused_and_changes_nothing(seeded: Store, label: str, sql: str) -> None:
    assert len(HOSTILE) >= 25
    before = checksum(seeded)
    with pytest.raises((sc.QueryRefused, sc.QueryFailed)) as info:
        sc.run_query(seeded, sql, timeout_s=5)
    assert str(info.value).strip(), "a refusal says why"
    assert checksum(seeded) == before
    # The studio works as before.
    assert sc.run_query(seeded, "SELECT count(*) AS n FROM samples").df["n"][0] == 20
    with seeded.write() as cur:
        cur.execute("UPDATE runs SET status = 'done' WHERE run_id = 'run1'")


@pytest.mark.parametrize("sql", HOSTILE[:5] + HOSTILE[28:40])
def test_checker_alone_refuses_without_touching_a_database(sql: tuple) -> None:
    with pytest.raises(sc.QueryRefused):
        sc.check_query(sql[1])


def test_read_only_transaction_is_a_second_layer(seeded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # Even if the checker let a write through, the read-only transaction refuses it.
    monkeypatch.setattr(sc, "check_query", lambda sql, own=frozenset(), cur=None: sql)
    before = checksum(seeded)
    with pytest.raises(sc.QueryFailed, match="read-only"):
        sc.run_query(seeded, "DELETE FROM samples")
    assert checksum(seeded) == before


def test_lockdown_is_a_third_layer(seeded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sc, "check_query", lambda sql, own=frozenset(), cur=None: sql)
    with pytest.raises(sc.QueryFailed, match="Permission|disabled"):
        sc.run_query(seeded, "SELECT * FROM read_csv('/etc/passwd')")


def test_unlocked_connection_is_refused(tmp_path) -> None:
    class Loose:
        def __init__(self) -> None:
            self.con = duckdb.connect(str(tmp_path / "loose.duckdb"))

        def fresh_cursor(self):
            return self.con.cursor()

    with pytest.raises(sc.QueryRefused, match="not locked down"):
        sc.run_query(Loose(), "SELECT 1")


@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM samples",
    "WITH t AS (SELECT run_id FROM samples) SELECT run_id, count(*) FROM t GROUP BY run_id",
    "FROM samples SELECT text LIMIT 3",
    "VALUES (1, 'a'), (2, 'b')",
    "DESCRIBE samples",
    "SUMMARIZE SELECT item_idx FROM samples",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM information_schema.columns LIMIT 5",
    "SELECT condition['cuisine'] AS cuisine, count(*) FROM samples GROUP BY 1",
    "SELECT * FROM range(10)",
    "SELECT 'read_csv(/etc/passwd)' AS harmless_string;",
])
def test_read_queries_run(seeded: Store, sql: str) -> None:
    result = sc.run_query(seeded, sql)
    assert result.row_count >= 1
    assert not result.truncated


def test_syntax_error_shows_duckdb_message_with_position(seeded: Store) -> None:
    with pytest.raises(sc.QueryFailed) as info:
        sc.run_query(seeded, "SELECT text FROM samples WHER item_idx = 1")
    message = str(info.value)
    assert "syntax error" in message and "LINE 1" in message and "^" in message


def test_time_limit_interrupts_a_runaway_cross_join(seeded: Store) -> None:
    before = checksum(seeded)
    with pytest.raises(sc.QueryTimeout, match="time limit"):
        sc.run_query(seeded, "SELECT count(*) FROM range(100000000) a, range(100000000) b WHERE a.range + b.range = -1",
                     timeout_s=0.5)
    assert checksum(seeded) == before
    assert sc.run_query(seeded, "SELECT 42 AS x").df["x"][0] == 42


def test_time_limit_applies_while_fetching(seeded: Store) -> None:
    with pytest.raises(sc.QueryTimeout):
        sc.run_query(seeded, "SELECT a.range FROM range(100000000) a, range(100000000) b ORDER BY a.range * b.range",
                     max_rows=10, timeout_s=0.5)


def test_row_cap_says_rows_were_cut(seeded: Store) -> None:
    result = sc.run_query(seeded, "SELECT * FROM range(100000)", max_rows=2500)
    assert result.row_count == 2500 and result.truncated
    assert result.df["range"].tolist()[:3] == [0, 1, 2]
    exact = sc.run_query(seeded, "SELECT * FROM range(2500)", max_rows=2500)
    assert exact.row_count == 2500 and not exact.truncated
    empty = sc.run_query(seeded, "SELECT * FROM samples WHERE false")
    assert empty.row_count == 0 and "sample_key" in empty.columns


def test_row_cap_does_not_materialise_a_huge_result(seeded: Store) -> None:
    result = sc.run_query(seeded, "SELECT * FROM range(10000000000)", max_rows=10, timeout_s=5)
    assert result.row_count == 10 and result.truncated


def test_concurrent_queries_use_their_own_cursors(seeded: Store) -> None:
    errors: list[Exception] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert sc.run_query(seeded, "SELECT count(*) AS n FROM samples").df["n"][0] == 20
        except Exception as exc:  # noqa: BLE001 - collected for the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_downloads_and_display_handle_maps(seeded: Store) -> None:
    result = sc.run_query(seeded, "SELECT sample_key, condition, demo_ids FROM samples ORDER BY sample_key LIMIT 3")
    shown = sc.display_frame(result.df)
    assert shown["condition"][0] == '{"cuisine": "thai"}'
    assert sc.to_csv_bytes(result.df).startswith(b"sample_key,condition,demo_ids")
    assert sc.to_parquet_bytes(result.df)[:4] == b"PAR1"


def test_views_pivot_dimensions_and_tolerate_new_keys(seeded: Store) -> None:
    from services.sql.views import refresh_views

    refresh_views(seeded)
    assert seeded.query("SELECT DISTINCT cuisine, run_status, recipe_name FROM samples_wide") == [("thai", "planned", "r")]
    with seeded.write() as cur:
        cur.execute("UPDATE samples SET condition = MAP {'cuisine': 'thai', 'text': 'clash'} WHERE item_idx = 0")
    assert "samples_wide" in refresh_views(seeded)
    assert refresh_views(seeded) == []  # nothing changed: no DDL
    # A dimension named like a sample column gets a prefix instead of shadowing it.
    assert seeded.query("SELECT text, dim_text FROM samples_wide WHERE item_idx = 0") == [("text 0", "clash")]


def test_examples_run_on_seeded_data_and_explain_missing_tables(seeded: Store) -> None:
    from services.sql.example_queries import example_queries
    from services.sql.views import refresh_views

    refresh_views(seeded)
    examples = {e.title: e for e in example_queries(seeded)}
    assert {"Samples per condition value", "Average length per run", "Tokens and cost per run",
            "Clusters per condition value", "Kept share per filter"} <= set(examples)
    for ex in examples.values():
        if ex.available:
            sc.run_query(seeded, ex.sql)
        else:
            assert ex.reason and not ex.sql
    per_value = sc.run_query(seeded, examples["Samples per condition value"].sql).df
    assert per_value.to_dict("records") == [{"dimension": "cuisine", "value": "thai", "samples": 20}]


def test_schema_browser_lists_tables_views_counts(seeded: Store) -> None:
    from services.sql.schema import list_relations
    from services.sql.views import refresh_views

    refresh_views(seeded)
    rels = {r.name: r for r in list_relations(seeded)}
    assert rels["samples"].row_count == 20 and rels["samples"].kind == "table"
    assert ("condition", "MAP(VARCHAR, VARCHAR)") in rels["samples"].columns
    assert rels["samples_wide"].kind == "view" and rels["samples_wide"].row_count is None
    assert all(r.description for r in rels.values())
