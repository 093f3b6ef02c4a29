"""Dataset imports: CSV, JSONL, Parquet and Hugging Face layouts, malformed rows, all-or-nothing."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.core.store import Store
from services.data.catalog import delete_dataset, list_datasets
from services.data.importer import import_dataset, import_upload, preview_upload
from services.data.readers import DatasetImportError, preview_source
from services.data.rows import annotation_rows
from services.data.staging import uploads_dir
from services.explore.items import load_dataset
from services.sql.views import refresh_views


def rows(store: Store, dataset_id: str) -> list[tuple]:
    return store.query("SELECT row_idx, row_key, text, attributes FROM dataset_rows WHERE dataset_id = ? ORDER BY row_idx",
                       [dataset_id])


def test_jsonl_clean_file_imports_with_attributes_and_progress(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "clean.jsonl"
    src.write_text("\n".join(json.dumps({"text": f"t{i}", "label": "ab"[i % 2], "n": i, "extra": 1}) for i in range(50)) + "\n")
    seen = []
    report = import_dataset(store, src, text_column="text", attribute_columns=["label", "n"],
                              progress=lambda done, total: seen.append((done, total)))
    assert (report.n_rows, report.n_failed) == (50, 0)
    got = rows(store, report.dataset_id)
    assert got[0] == (0, f"{report.dataset_id}:0", "t0", {"label": "a", "n": "0"})
    assert got[49][2] == "t49"
    assert seen[-1] == (50, 50)
    ds = store.query("SELECT name, source, text_column, attribute_columns, n_rows, n_failed FROM datasets")
    assert ds == [("clean", str(src), "text", ["label", "n"], 50, 0)]


def test_jsonl_malformed_lines_are_listed_and_valid_rows_import(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_bytes(
        b'{"text": "ok1", "label": "a"}\n'
        b"\n"
        b'{"text": broken}\n'
        b'{"label": "no text"}\n'
        b"[1, 2]\n"
        b'{"text": "bad \xff encoding"}\n'
        b'{"text": null}\n'
        b'{"text": "ok2", "label": {"nested": 1}}\n'
    )
    report = import_dataset(store, src, text_column="text", attribute_columns=["label"])
    assert (report.n_rows, report.n_failed) == (2, 5)
    reasons = {e.line: e.reason for e in report.errors}
    assert set(reasons) == {3, 4, 5, 6, 7}
    assert "invalid JSON" in reasons[3]
    assert "missing column 'text'" in reasons[4]
    assert "not a JSON object" in reasons[5]
    assert "UTF-8" in reasons[6]
    assert "null" in reasons[7]
    # rows are numbered by their record in the file (blank lines are not records)
    assert [(r[0], r[2]) for r in rows(store, report.dataset_id)] == [(0, "ok1"), (6, "ok2")]
    assert rows(store, report.dataset_id)[1][3] == {"label": '{"nested":1}'}
    assert store.scalar("SELECT n_failed FROM datasets WHERE dataset_id = ?", [report.dataset_id]) == 5
    # The failed records are stored without text, under their numbers, and every reader leaves them out.
    assert store.query("SELECT row_idx FROM dataset_row_values WHERE text IS NULL ORDER BY 1") == [(1,), (2,), (3,), (4,), (5,)]
    refresh_views(store)
    assert store.scalar("SELECT count(*) FROM dataset_rows") == store.scalar("SELECT count(*) FROM dataset_rows_wide") == 2
    assert [r["text"] for r in annotation_rows(store, "bad")] == ["ok1", "ok2"]
    assert load_dataset(store, report.dataset_id).frame["text"].tolist() == ["ok1", "ok2"]


def test_csv_ragged_rows_bad_encoding_and_empty_text(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(b"text,label\nhello,pos\nragged,a,b\nshort\nbad \xff\xfe enc,pos\n,neg\nok,neg\n")
    report = import_dataset(store, src, text_column="text", attribute_columns=["label"])
    assert (report.n_rows, report.n_failed) == (2, 4)
    reasons = {e.line: e.reason for e in report.errors}
    assert sorted(reasons) == [3, 4, 5, 6]
    assert "ragged" in reasons[3] and "ragged" in reasons[4]
    assert "UTF-8" in reasons[5]
    assert "no text" in reasons[6]
    # the row with an empty text is left out; the rows after it keep their numbers
    assert rows(store, report.dataset_id) == [
        (0, f"{report.dataset_id}:0", "hello", {"label": "pos"}),
        (2, f"{report.dataset_id}:2", "ok", {"label": "neg"}),
    ]


def test_csv_outside_allowed_dirs_is_staged_and_cleaned_up(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    src = outside / "plain.csv"
    src.write_text('text,topic\n"a, quoted",x\nb,y\n')
    report = import_dataset(store, src, text_column="text", attribute_columns=["topic"])
    assert [r[2] for r in rows(store, report.dataset_id)] == ["a, quoted", "b"]
    assert not list(uploads_dir(store).iterdir())


@pytest.mark.parametrize(("name", "content"), [("empty.jsonl", b""), ("blank.csv", b"\n\n  \n"), ("e.parquet", b"")])
def test_empty_file_says_so(store: Store, tmp_path: Path, name: str, content: bytes) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(DatasetImportError, match="empty"):
        import_dataset(store, src, text_column="text")
    assert store.scalar("SELECT count(*) FROM datasets") == 0


def test_header_only_csv_says_no_rows(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "header.csv"
    src.write_text("text,label\n")
    with pytest.raises(DatasetImportError, match="no rows|No valid row|no column"):
        import_dataset(store, src, text_column="text")
    assert store.scalar("SELECT count(*) FROM dataset_rows") == 0


def test_missing_column_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "a.csv"
    src.write_text("body,label\nx,y\n")
    with pytest.raises(DatasetImportError, match="no column 'text'.*body, label"):
        import_dataset(store, src, text_column="text")
    j = tmp_path / "a.jsonl"
    j.write_text('{"body": "x"}\n')
    with pytest.raises(DatasetImportError, match="no column 'text'"):
        import_dataset(store, j, text_column="text")


def test_all_rows_failing_imports_nothing(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "all_bad.jsonl"
    src.write_text('{"text": "fine"}\n' + "not json\n" * 3)
    src.write_text("{bad\n" * 3 + '{"text": null}\n')
    with pytest.raises(DatasetImportError, match="No valid row") as info:
        import_dataset(store, src, text_column="text")
    assert info.value.n_failed == 4 and [e.line for e in info.value.errors] == [1, 2, 3, 4]
    assert store.scalar("SELECT count(*) FROM dataset_rows") == 0
    assert store.scalar("SELECT count(*) FROM datasets") == 0


def test_failure_mid_import_leaves_nothing_half_written(store: Store, tmp_path: Path, monkeypatch) -> None:
    src = tmp_path / "big.jsonl"
    src.write_text("\n".join(json.dumps({"text": f"t{i}"}) for i in range(100)) + "\n{broken\n")
    calls = []

    def boom(done, total):
        calls.append(done)
        if done >= 20:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        import_dataset(store, src, text_column="text", chunk_rows=10, progress=boom)
    assert store.scalar("SELECT count(*) FROM dataset_rows") == 0
    assert store.scalar("SELECT count(*) FROM datasets") == 0
    assert calls  # the last report comes before the commit, so a raising callback rolls it all back


def test_parquet_file_streams_in_chunks(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "data.parquet"
    pq.write_table(pa.table({"content": [f"row {i}" if i != 7 else None for i in range(25)],
                             "score": [i / 2 for i in range(25)], "tags": [["a", "b"]] * 25}), src)
    seen = []
    report = import_dataset(store, src, text_column="content", attribute_columns=["score", "tags"], chunk_rows=10,
                              progress=lambda d, t: seen.append((d, t)))
    assert (report.n_rows, report.n_failed) == (24, 1)
    assert report.errors[0].line == 8
    got = rows(store, report.dataset_id)
    assert [r[0] for r in got] == [i for i in range(25) if i != 7]
    assert got[1][3] == {"score": "0.5", "tags": "[a, b]"}
    assert seen[-1] == (25, 25) and len(seen) >= 3


@pytest.fixture(scope="module")
def hf_dataset():
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    return datasets, datasets.Dataset.from_dict(
        {"sentence": ["good", "bad", None, "fine"], "label": [1, 0, 0, 1]}, features=features)


def test_hf_save_to_disk_dataset(store: Store, tmp_path: Path, hf_dataset) -> None:
    _, ds = hf_dataset
    ds.save_to_disk(str(tmp_path / "hf"))
    prev = preview_source(store, tmp_path / "hf")
    assert prev.fmt == "hf" and prev.columns == ["sentence", "label"]
    report = import_dataset(store, tmp_path / "hf", text_column="sentence", attribute_columns=["label"])
    assert (report.n_rows, report.n_failed) == (3, 1)
    assert [(r[2], r[3]["label"]) for r in rows(store, report.dataset_id)] == [("good", "pos"), ("bad", "neg"), ("fine", "pos")]


def test_hf_dataset_dict_adds_split(store: Store, tmp_path: Path, hf_dataset) -> None:
    datasets, ds = hf_dataset
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    prev = preview_source(store, tmp_path / "dd")
    assert "split" in prev.columns
    report = import_dataset(store, tmp_path / "dd", text_column="sentence", attribute_columns=["label", "split"])
    got = rows(store, report.dataset_id)
    assert [r[3]["split"] for r in got] == ["train", "train", "train", "test"]


def test_hf_parquet_shards(store: Store, tmp_path: Path, hf_dataset) -> None:
    _, ds = hf_dataset
    (tmp_path / "repo" / "data").mkdir(parents=True)
    ds.select([0, 1]).to_parquet(str(tmp_path / "repo" / "data" / "train-00000-of-00002.parquet"))
    ds.select([3]).to_parquet(str(tmp_path / "repo" / "data" / "train-00001-of-00002.parquet"))
    ds.select([1]).to_parquet(str(tmp_path / "repo" / "data" / "validation-00000-of-00001.parquet"))
    report = import_dataset(store, tmp_path / "repo", text_column="sentence", attribute_columns=["label", "split"])
    got = rows(store, report.dataset_id)
    assert [(r[2], r[3]["split"]) for r in got] == [("good", "train"), ("bad", "train"), ("fine", "train"), ("bad", "validation")]


def test_not_a_dataset_folder(store: Store, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hi")
    with pytest.raises(DatasetImportError, match="not a Hugging Face dataset folder"):
        import_dataset(store, tmp_path / "junk", text_column="text")


def test_upload_is_staged_imported_and_removed(store: Store) -> None:
    data = b'{"text": "a"}\n{"text": "b"}\n'
    prev = preview_upload(store, "my file.jsonl", data)
    assert prev.columns == ["text"]
    report = import_upload(store, "my file.jsonl", data, text_column="text")
    assert report.name == "my file" and report.n_rows == 2
    assert store.scalar("SELECT source FROM datasets") == "my file.jsonl"
    assert not list(uploads_dir(store).iterdir())


def test_imported_rows_appear_in_the_wide_view(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "v.jsonl"
    src.write_text('{"text": "a", "lang": "en"}\n{"text": "b", "lang": "fr"}\n')
    import_dataset(store, src, text_column="text", attribute_columns=["lang"], name="langs")
    refresh_views(store)  # the SQL page does this after an import: views belong to the sql package
    assert store.query("SELECT dataset_name, text, lang FROM dataset_rows_wide ORDER BY text") == [
        ("langs", "a", "en"), ("langs", "b", "fr")]
    assert len(list_datasets(store)) == 1
    delete_dataset(store, list_datasets(store)["dataset_id"][0])
    assert store.scalar("SELECT count(*) FROM dataset_rows") == 0


def test_server_paths_must_lie_inside_the_import_folders(tmp_path: Path) -> None:
    from services.data.importer import server_path

    inside = tmp_path / "imports"
    (inside / "hf").mkdir(parents=True)
    (inside / "a.jsonl").write_text('{"text": "x"}\n')
    assert server_path(str(inside / "a.jsonl"), [inside.resolve()]) == (inside / "a.jsonl").resolve()
    assert server_path(str(inside / "hf"), [inside.resolve()]) == (inside / "hf").resolve()
    for bad in ("/etc/passwd", str(inside / ".." / "x"), str(tmp_path)):
        with pytest.raises(DatasetImportError, match="outside the folders|does not exist"):
            server_path(bad, [inside.resolve()])
    with pytest.raises(DatasetImportError, match="does not exist"):
        server_path(str(inside / "missing.csv"), [inside.resolve()])


def test_jsonl_bad_lines_in_a_large_file_are_named_and_the_rest_keep_their_numbers(store: Store, tmp_path: Path) -> None:
    # Bad lines scattered through 30,000 rows, with blank and CRLF lines around them: DuckDB's
    # one pass skips them, the scan names them by their line in the file.
    src = tmp_path / "big.jsonl"
    lines, bad_lines = [], {}
    for i in range(30_000):
        if i % 7_000 == 3:
            lines.append(b'{"text": oops}')
            bad_lines[len(lines)] = "invalid JSON"
        elif i % 9_000 == 5:
            lines.append(b'{"label": "x"}')
            bad_lines[len(lines)] = "missing column"
        else:
            lines.append(json.dumps({"text": f"t{i}", "label": str(i % 3)}).encode() + (b"\r" if i % 11 == 0 else b""))
        if i % 5_000 == 0:
            lines.append(b"   ")
    src.write_bytes(b"\n".join(lines) + b"\n")
    report = import_dataset(store, src, text_column="text", attribute_columns=["label"])
    assert report.n_failed == len(bad_lines) == 9
    assert {e.line: e.reason.split(":")[0].split(" '")[0] for e in report.errors} == bad_lines
    assert report.n_rows == 30_000 - 9
    got = rows(store, report.dataset_id)
    good = [i for i in range(30_000) if not (i % 7_000 == 3 or i % 9_000 == 5)]
    assert [r[0] for r in got] == good  # each row's number is its record's, whichever others fail
    assert all(r[1] == f"{report.dataset_id}:{r[0]}" for r in got)
    assert [r[2] for r in got] == [f"t{i}" for i in good]
    assert got[-1][3] == {"label": str(29_999 % 3)}


def test_jsonl_duckdb_cannot_read_falls_back_to_line_by_line(store: Store, tmp_path: Path, monkeypatch) -> None:
    import duckdb

    from services.data import importer

    def refuse(*args, **kwargs):
        raise duckdb.InvalidInputException("cannot read")

    monkeypatch.setattr(importer, "_import_jsonl_fast", refuse)
    src = tmp_path / "f.jsonl"
    src.write_text('{"text": "a"}\n{bad\n{"text": "b"}\n')
    report = import_dataset(store, src, text_column="text", chunk_rows=1)
    assert (report.n_rows, report.n_failed) == (2, 1) and report.errors[0].line == 2
    assert [r[2] for r in rows(store, report.dataset_id)] == ["a", "b"]


def test_csv_many_empty_texts_are_listed_with_their_lines(store: Store, tmp_path: Path) -> None:
    body = "".join(("" if i % 1000 == 0 else f"t{i}") + f",{i}\n" for i in range(5000))
    (tmp_path / "e.csv").write_text("text,n\n" + body)
    report = import_dataset(store, tmp_path / "e.csv", text_column="text", attribute_columns=["n"])
    assert report.n_failed == 5 and [e.line for e in report.errors] == [2, 1002, 2002, 3002, 4002]
    got = rows(store, report.dataset_id)
    assert [r[0] for r in got] == [i for i in range(5000) if i % 1000] and got[0][2] == "t1" and got[-1][3] == {"n": "4999"}


def _big_file(path: Path, n: int, fmt: str) -> None:
    if fmt == "csv":
        path.write_text("text,k\n" + "".join(f"row {i} with a few more words in it,{i % 4}\n" for i in range(n)))
    else:
        path.write_text("".join(json.dumps({"text": f"row {i} with a few more words in it", "k": i % 4}) + "\n" for i in range(n)))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_progress_is_reported_while_duckdb_reads(store: Store, tmp_path: Path, monkeypatch, fmt: str) -> None:
    # DuckDB's own progress of the one statement, read from the calling thread while it runs.
    from services.data import importer

    monkeypatch.setattr(importer, "POLL_S", 0.005)
    src = tmp_path / f"big.{fmt}"
    _big_file(src, 300_000, fmt)
    seen, threads = [], set()

    def on_progress(done: int, total: int | None) -> None:
        seen.append((done, total))
        threads.add(threading.get_ident())

    report = import_dataset(store, src, text_column="text", attribute_columns=["k"], progress=on_progress)
    assert report.n_rows == 300_000 and seen[0] == (0, seen[1][1]) and seen[-1] == (300_000, 300_000)
    middle = seen[1:-1]
    assert middle, "no report while DuckDB read the file"
    assert all(0 < d < t for d, t in middle) and [d for d, _ in middle] == sorted(d for d, _ in middle)
    assert abs(middle[0][1] - 300_000) < 30_000  # the total is estimated from the first lines' length
    assert threads == {threading.get_ident()}  # the page's thread, where a Streamlit bar may be drawn


def test_a_callback_that_raises_mid_statement_interrupts_it_and_leaves_nothing(store: Store, tmp_path: Path,
                                                                               monkeypatch) -> None:
    from services.data import importer

    monkeypatch.setattr(importer, "POLL_S", 0.005)
    src = tmp_path / "big.csv"
    _big_file(src, 300_000, "csv")
    calls = []

    def rerun(done: int, total: int | None) -> None:
        calls.append(done)
        if done > 0:
            raise RuntimeError("page rerun")

    with pytest.raises(RuntimeError, match="page rerun"):
        import_dataset(store, src, text_column="text", progress=rerun)
    assert 0 < calls[-1] < 300_000  # raised while DuckDB was still reading
    assert store.scalar("SELECT count(*) FROM dataset_row_values") == 0
    assert store.scalar("SELECT count(*) FROM datasets") == 0
    report = import_dataset(store, src, text_column="text")  # the store is usable again
    assert report.n_rows == 300_000


def test_the_database_memory_limit_comes_from_the_setting(tmp_path: Path, monkeypatch) -> None:
    from services.core.store import MemoryLimitError

    monkeypatch.delenv("STUDIO_DB_MEMORY_LIMIT", raising=False)
    s = Store(tmp_path / "a.duckdb")
    assert s.scalar("SELECT current_setting('memory_limit')") == "1.8 GiB"  # the default, 2GB
    s.close()
    monkeypatch.setenv("STUDIO_DB_MEMORY_LIMIT", "300MB")
    s = Store(tmp_path / "a.duckdb")
    assert s.scalar("SELECT current_setting('memory_limit')") == "286.1 MiB"
    s.close()
    monkeypatch.setenv("STUDIO_DB_MEMORY_LIMIT", "lots")
    with pytest.raises(MemoryLimitError, match="STUDIO_DB_MEMORY_LIMIT='lots' is not a memory size"):
        Store(tmp_path / "a.duckdb")
    monkeypatch.setenv("STUDIO_DB_MEMORY_LIMIT", "1GB")
    Store(tmp_path / "a.duckdb").close()  # the refused open left the file free


def test_an_import_past_the_memory_limit_says_so_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DB_MEMORY_LIMIT", "16MB")
    s = Store(tmp_path / "small.duckdb")
    try:
        src = tmp_path / "rows.jsonl"
        _big_file(src, 20_000, "jsonl")
        with pytest.raises(DatasetImportError, match="more memory than the database may use.*STUDIO_DB_MEMORY_LIMIT=16MB"):
            import_dataset(s, src, text_column="text")
        assert s.scalar("SELECT count(*) FROM dataset_row_values") == 0 and s.scalar("SELECT count(*) FROM datasets") == 0
    finally:
        s.close()


def test_csv_that_duckdb_cannot_sniff_strictly_is_read_leniently(store: Store, tmp_path: Path) -> None:
    # Windows line ends, and one ragged line with a Unix one: DuckDB's sniffer gives up on the
    # strict dialect, so the file is read with strict_mode = false; the ragged line is still listed.
    src = tmp_path / "mixed.csv"
    body = [b"id,text,label"] + [b"%d,text number %d with words,%s" % (i, i, b"ab"[i % 2:i % 2 + 1]) for i in range(6)]
    src.write_bytes(b"\r\n".join(body[:3]) + b"\r\nbad,row\n" + b"\r\n".join(body[3:]) + b"\r\n")
    prev = preview_source(store, src)
    assert prev.columns == ["id", "text", "label"] and len(prev.rows) == 6
    report = import_dataset(store, src, text_column="text", attribute_columns=["label"])
    assert (report.n_rows, report.n_failed) == (6, 1)
    assert report.errors[0].line == 4 and "ragged" in report.errors[0].reason
    assert [r[2] for r in rows(store, report.dataset_id)] == [f"text number {i} with words" for i in range(6)]



@pytest.mark.parametrize("fmt,n", [("jsonl", 700_000), ("csv", 800_000)])
def test_records_keep_their_numbers_when_duckdb_reads_the_file_on_several_threads(store: Store, tmp_path: Path,
                                                                                   monkeypatch, fmt: str, n: int) -> None:
    # A file large enough that DuckDB splits it between threads (shown first: read without
    # preserving order, its rows come back shuffled); each row is still numbered by its record.
    import duckdb

    from services.data import importer

    src = tmp_path / f"wide.{fmt}"
    bad = {n // 3, n // 2 + 1, n - 7}
    if fmt == "csv":
        src.write_text("text,k\n" + "".join(("" if i in bad else f"row {i} with a few more words in it") + f",{i % 4}\n"
                                            for i in range(n)))
        reader = f"read_csv('{src}')"
    else:
        src.write_text("".join(('{"text": oops}' if i in bad else json.dumps({"text": f"row {i} with a few more words in it",
                                                                               "k": i % 4})) + "\n" for i in range(n)))
        reader = f"read_json('{src}', ignore_errors = true)"
    plain = duckdb.connect()
    plain.execute("SET preserve_insertion_order = false")
    shuffled = 0
    for _ in range(5):  # on a busy machine one thread may happen to read every part in order
        plain.execute(f"CREATE OR REPLACE TABLE t AS SELECT text FROM {reader}")
        shuffled = plain.execute("SELECT count(*) FROM (SELECT text, rowid - min(rowid) OVER () AS pos FROM t)"
                                 " WHERE text <> 'row ' || pos || ' with a few more words in it'").fetchone()[0]
        if shuffled:
            break
    plain.close()
    assert shuffled > 0, "the file was read on one thread: make it larger"
    staged = []
    parallel = importer._parallel
    monkeypatch.setattr(importer, "_parallel", lambda *a: staged.append(parallel(*a)) or staged[-1])
    report = import_dataset(store, src, text_column="text", attribute_columns=["k"])
    assert staged == [True]  # numbered in the stage
    assert (report.n_rows, report.n_failed) == (n - 3, 3)
    assert [e.line for e in report.errors] == sorted(i + 1 + (fmt == "csv") for i in bad)
    assert store.scalar("SELECT count(*) FROM dataset_rows WHERE dataset_id = ? AND"
                        " (text <> 'row ' || row_idx || ' with a few more words in it' OR attributes['k'] <> (row_idx % 4)::VARCHAR)",
                        [report.dataset_id]) == 0
    assert store.scalar("SELECT count(*) FROM dataset_rows WHERE dataset_id = ?", [report.dataset_id]) == n - 3
