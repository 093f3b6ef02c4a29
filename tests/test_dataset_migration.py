"""Migration m009 on a database made by the previous schema: dataset rows with a MAP per row become
a list of values per row with the keys once per dataset, and every reader sees the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from services.core.migrations import MIGRATIONS
from services.core.store import Store
from services.data.importer import import_dataset
from services.data.rows import annotation_rows
from services.explore.items import load_dataset
from services.sql.views import refresh_views


def _old_database(path: Path) -> None:
    """The schema before m009 (migrations 1-8), with rows as the previous importer wrote them."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMP DEFAULT current_timestamp)")
    for m in MIGRATIONS:
        if m.version < 9:
            for stmt in m.statements:
                con.execute(stmt)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [m.version, m.name])
    con.execute("INSERT INTO datasets (dataset_id, name, purpose, text_column, attribute_columns, n_rows, n_failed)"
                " VALUES ('ds_a', 'reviews', 'audit', 'body', ['label', 'topic'], 3, 1), ('ds_b', 'plain', 'reference',"
                " 'text', [], 1, 0)")
    rows = [("ds_a", 0, "great food", {"label": "pos", "topic": "food"}),
            ("ds_a", 1, "slow trip", {"label": "neg", "topic": None}),
            ("ds_a", 2, "hmm", {"label": "neutral", "topic": "x", "lang": "en"}),  # a key beyond attribute_columns
            ("ds_b", 0, "just text", {}),
            ("lost", 0, "no dataset row", {"k": "v"})]  # rows whose dataset is not recorded
    for ds, i, text, attrs in rows:
        con.execute("INSERT INTO dataset_rows VALUES (?, ?, ?, ?, MAP(?::VARCHAR[], ?::VARCHAR[]))",
                    [ds, i, f"{ds}:{i}", text, list(attrs), list(attrs.values())])
    # the view the SQL page had built over the old table
    con.execute("CREATE VIEW dataset_rows_wide AS SELECT d.*, d.attributes['label'] AS label FROM dataset_rows d")
    con.close()


def test_old_rows_are_converted_and_every_reader_sees_them(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    _old_database(db)
    store = Store(db)
    try:
        assert store.schema_version() >= 9
        kinds = dict(store.query("SELECT table_name, 'table' FROM duckdb_tables() WHERE table_name LIKE 'dataset_row%'"
                                 " UNION ALL SELECT view_name, 'view' FROM duckdb_views() WHERE view_name LIKE 'dataset_row%'"))
        assert kinds == {"dataset_row_values": "table", "dataset_rows": "view"}
        # the keys are kept once per dataset; an extra key is added to them, an unrecorded dataset recorded
        assert dict(store.query("SELECT dataset_id, attribute_columns FROM datasets")) == {
            "ds_a": ["label", "topic", "lang"], "ds_b": [], "lost": ["k"]}
        assert store.query("SELECT name, n_rows FROM datasets WHERE dataset_id = 'lost'") == [("lost", 1)]
        assert store.query("SELECT dataset_id, row_idx, attribute_values FROM dataset_row_values ORDER BY ALL") == [
            ("ds_a", 0, ["pos", "food", None]), ("ds_a", 1, ["neg", None, None]), ("ds_a", 2, ["neutral", "x", "en"]),
            ("ds_b", 0, []), ("lost", 0, ["v"])]
        # SQL written against the old table still works on the view
        assert store.query("SELECT row_key, text, attributes['label'] FROM dataset_rows WHERE dataset_id = 'ds_a'"
                           " ORDER BY row_idx") == [("ds_a:0", "great food", "pos"), ("ds_a:1", "slow trip", "neg"),
                                                    ("ds_a:2", "hmm", "neutral")]
        assert store.scalar("SELECT attributes FROM dataset_rows WHERE row_key = 'ds_a:2'") == {
            "label": "neutral", "topic": "x", "lang": "en"}
        refresh_views(store)
        assert store.query("SELECT dataset_name, text, label, topic, lang FROM dataset_rows_wide"
                           " WHERE dataset_id = 'ds_a' ORDER BY row_idx") == [
            ("reviews", "great food", "pos", "food", None), ("reviews", "slow trip", "neg", None, None),
            ("reviews", "hmm", "neutral", "x", "en")]
        assert [r["label"] for r in annotation_rows(store, "reviews")] == ["pos", "neg", "neutral"]
        assert annotation_rows(store, "reviews")[0] == {"label": "pos", "topic": "food", "text": "great food",
                                                        "body": "great food"}
        items = load_dataset(store, "ds_a")
        assert items.ids == ["ds_a:0", "ds_a:1", "ds_a:2"] and items.dimensions == ["label", "topic", "lang"]
        assert items.frame["topic"].tolist() == ["food", "(none)", "x"]  # a row without a value for it
        # and the migrated database takes new imports
        src = tmp_path / "new.jsonl"
        src.write_text("\n".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2]}) for i in range(5)) + "\n")
        report = import_dataset(store, src, text_column="text", attribute_columns=["label"])
        assert store.scalar("SELECT count(*) FROM dataset_rows WHERE dataset_id = ?", [report.dataset_id]) == 5
    finally:
        store.close()


def test_a_fresh_database_gets_the_same_schema(store: Store) -> None:
    cols = store.query("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'dataset_rows'"
                       " ORDER BY column_index")
    assert cols == [("dataset_id", "VARCHAR"), ("row_idx", "INTEGER"), ("row_key", "VARCHAR"), ("text", "VARCHAR"),
                    ("attributes", "MAP(VARCHAR, VARCHAR)")]
