"""Import external datasets (CSV, JSONL, Parquet, Hugging Face folders) as texts with attributes.

A dataset row is a text with attributes, like a sample is a text with its condition: rows go to
``dataset_rows(dataset_id, row_idx, row_key, text, attributes MAP)`` (migration m004), so the map,
metrics and filters take either. An import is one write transaction: the valid rows land, the
failing rows (bad encoding, ragged CSV rows, invalid JSON lines, missing text) are counted and
listed with their line numbers, and nothing is half-written if anything else goes wrong.

Speed: JSONL and CSV are parsed by DuckDB itself (``read_json``/``read_csv``), which needs the
file inside the store's allowed directories, so files elsewhere are staged under
``store.work_dir``. A JSONL file DuckDB cannot read cleanly is re-read line by line in Python to
say which lines fail and why. Parquet and Hugging Face layouts stream through pyarrow in chunks.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from services.sql_views import quote_ident, quote_literal

FORMATS = ("csv", "jsonl", "parquet", "hf")
MAX_ERRORS_LISTED = 1000
DEFAULT_CHUNK_ROWS = 20_000
SPLIT_ATTRIBUTE = "split"

Progress = Callable[[int, int | None], None]


class DatasetImportError(ValueError):
    """The file cannot be imported at all (empty, unknown format, missing column, no valid row)."""

    def __init__(self, message: str, errors: Sequence[RowError] = (), n_failed: int = 0) -> None:
        super().__init__(message)
        self.errors = list(errors)
        self.n_failed = n_failed


@dataclass(frozen=True)
class RowError:
    line: int        # 1-based line (JSONL, CSV as counted by DuckDB: header is line 1) or row number
    reason: str


@dataclass
class ImportReport:
    dataset_id: str
    name: str
    n_rows: int
    n_failed: int
    errors: list[RowError] = field(default_factory=list)   # the first MAX_ERRORS_LISTED
    seconds: float = 0.0

    @property
    def errors_df(self) -> pd.DataFrame:
        return pd.DataFrame([(e.line, e.reason) for e in self.errors], columns=["line", "reason"])


@dataclass
class SourcePreview:
    fmt: str
    columns: list[str]
    rows: pd.DataFrame


# -- formats -------------------------------------------------------------------------------

def detect_format(path: str | Path) -> str:
    """csv, jsonl, parquet or hf (a folder in Hugging Face datasets layout, or one .arrow file)."""
    p = Path(path)
    if p.is_dir():
        return "hf"
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffixes and suffixes[-1] == ".parquet":
        return "parquet"
    if suffixes and suffixes[-1] == ".arrow":
        return "hf"
    raise DatasetImportError(f"Unknown file type '{p.name}': import a .csv, .jsonl, .parquet file or a Hugging Face dataset folder.")


def _check_not_empty(path: Path) -> None:
    if not path.exists():
        raise DatasetImportError(f"{path} does not exist.")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(4096)
        if not head.strip():
            raise DatasetImportError(f"The file {path.name} is empty: nothing to import.")


# -- Hugging Face layouts --------------------------------------------------------------------

@dataclass
class _Shard:
    path: Path
    kind: str          # 'arrow' or 'parquet'
    split: str | None


def _hf_shards(folder: Path) -> list[_Shard]:
    """The data files of a save_to_disk folder (Dataset or DatasetDict) or of Parquet shards."""
    if folder.is_file():
        return [_Shard(folder, "arrow" if folder.suffix == ".arrow" else "parquet", None)]
    if (folder / "dataset_dict.json").exists():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        shards = []
        for split in splits:
            shards += [_Shard(s.path, s.kind, split) for s in _hf_shards(folder / split)]
        return shards
    if (folder / "state.json").exists():
        state = json.loads((folder / "state.json").read_text())
        return [_Shard(folder / f["filename"], "arrow", None) for f in state.get("_data_files", [])]
    parquet = sorted(folder.rglob("*.parquet"))
    if parquet:
        return [_Shard(p, "parquet", _split_of(p, folder)) for p in parquet]
    arrow = sorted(folder.rglob("*.arrow"))
    if arrow:
        return [_Shard(p, "arrow", _split_of(p, folder)) for p in arrow]
    raise DatasetImportError(
        f"{folder} is not a Hugging Face dataset folder: no dataset_dict.json, state.json, .parquet or .arrow files."
    )


def _split_of(path: Path, root: Path) -> str | None:
    # train-00000-of-00002.parquet -> train; data/test/0000.parquet -> test
    stem = path.stem.split("-")[0]
    if stem and not stem.isdigit() and stem not in ("data", "part"):
        return stem
    parent = path.parent
    return parent.name if parent != root and parent.name not in ("data", "") else None


def _open_arrow(path: Path) -> Iterator[pa.RecordBatch] | pa.RecordBatchReader:
    # `datasets` writes the Arrow IPC stream format; accept the file format too.
    try:
        return pa.ipc.open_stream(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        return _FileBatches(reader)


class _FileBatches:
    def __init__(self, reader: pa.ipc.RecordBatchFileReader) -> None:
        self.schema = reader.schema
        self._reader = reader

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return (self._reader.get_batch(i) for i in range(self._reader.num_record_batches))


def _shard_schema(shard: _Shard) -> pa.Schema:
    if shard.kind == "parquet":
        return pq.ParquetFile(shard.path).schema_arrow
    return _open_arrow(shard.path).schema


def _shard_batches(shard: _Shard, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    if shard.kind == "parquet":
        yield from pq.ParquetFile(shard.path).iter_batches(batch_size=chunk_rows, columns=columns)
        return
    for batch in _open_arrow(shard.path):
        for start in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(start, chunk_rows).select(columns)


def _shard_rows(shard: _Shard) -> int | None:
    if shard.kind == "parquet":
        return pq.ParquetFile(shard.path).metadata.num_rows
    return None


def _class_labels(schema: pa.Schema) -> dict[str, list[str]]:
    """ClassLabel names stored by `datasets` in the schema metadata: label ints become their names."""
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return {}
    with contextlib.suppress(ValueError, KeyError, TypeError):
        features = json.loads(meta)["info"]["features"]
        return {k: v["names"] for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "ClassLabel"}
    return {}


# -- preview ---------------------------------------------------------------------------------

def preview(store: Any, path: str | Path, fmt: str | None = None, n: int = 20) -> SourcePreview:
    """Column names and the first rows, so the user can choose the text and attribute columns."""
    p = Path(path)
    _check_not_empty(p)
    fmt = fmt or detect_format(p)
    if fmt == "hf" or fmt == "parquet":
        shards = _hf_shards(p) if fmt == "hf" else [_Shard(p, "parquet", None)]
        schema = _shard_schema(shards[0])
        first = next(_shard_batches(shards[0], schema.names, n), None)
        rows = first.to_pandas() if first is not None else pd.DataFrame(columns=schema.names)
        columns = list(schema.names)
        if any(s.split for s in shards) and SPLIT_ATTRIBUTE not in columns:
            columns.append(SPLIT_ATTRIBUTE)
        return SourcePreview(fmt, columns, rows.head(n))
    if fmt == "jsonl":
        keys: list[str] = []
        records = []
        with open(p, "rb") as f:
            for raw in f:
                if len(records) >= n:
                    break
                with contextlib.suppress(ValueError):
                    obj = json.loads(raw.decode("utf-8"))
                    if isinstance(obj, dict):
                        records.append(obj)
                        keys += [k for k in obj if k not in keys]
        if not records:
            raise DatasetImportError(f"No JSON object found in the first lines of {p.name}: is it JSON Lines?")
        return SourcePreview(fmt, keys, pd.DataFrame.from_records(records, columns=keys))
    with _staged(store, p) as staged, contextlib.closing(store.fresh_cursor()) as cur:
        df = cur.execute(
            "SELECT * FROM read_csv(?, header = true, all_varchar = true, ignore_errors = true) LIMIT ?", [str(staged), n]
        ).df()
    return SourcePreview(fmt, [str(c) for c in df.columns], df)


# -- staging ---------------------------------------------------------------------------------

def uploads_dir(store: Any) -> Path:
    d = Path(store.work_dir) / "uploads"
    d.mkdir(parents=True, exist_ok=True)
    return d


def stage_upload(store: Any, filename: str, data: bytes) -> Path:
    """Write uploaded bytes under the store's work directory (where DuckDB may read them)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(filename).name) or "upload"
    path = uploads_dir(store) / f"{uuid.uuid4().hex[:8]}-{safe}"
    path.write_bytes(data)
    return path


def _readable_by_duckdb(store: Any, path: Path) -> bool:
    roots = [Path(store.path).parent.resolve(), Path(store.work_dir).resolve()]
    target = path.resolve()
    return any(target.is_relative_to(r) for r in roots)


@contextlib.contextmanager
def _staged(store: Any, path: Path) -> Iterator[Path]:
    """The path itself if DuckDB may read it, else a temporary copy under the work directory."""
    if _readable_by_duckdb(store, path):
        yield path
        return
    copy = uploads_dir(store) / f"{uuid.uuid4().hex[:8]}-{path.name}"
    shutil.copyfile(path, copy)
    try:
        yield copy
    finally:
        copy.unlink(missing_ok=True)


# -- import ----------------------------------------------------------------------------------

def import_dataset(
    store: Any,
    path: str | Path,
    *,
    text_column: str,
    attribute_columns: Sequence[str] = (),
    name: str | None = None,
    purpose: str = "audit",
    fmt: str | None = None,
    progress: Progress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
) -> ImportReport:
    """Import a file or folder as a dataset; returns what landed and which rows failed.

    Raises DatasetImportError (with ``errors`` listed) when nothing can be imported.
    """
    p = Path(path)
    _check_not_empty(p)
    fmt = fmt or detect_format(p)
    if fmt not in FORMATS:
        raise DatasetImportError(f"Unknown format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    attrs = [a for a in dict.fromkeys(attribute_columns) if a != text_column]
    if not text_column:
        raise DatasetImportError("Choose the text column.")
    dataset_id = "ds_" + uuid.uuid4().hex[:10]
    name = (name or p.stem or dataset_id).strip()
    started = time.perf_counter()
    job = _Job(store, dataset_id, name, source or str(p), purpose, text_column, attrs,
               progress or (lambda done, total: None), max(1, chunk_rows))
    if fmt == "jsonl":
        n_rows, errors, n_failed = _import_jsonl(job, p)
    elif fmt == "csv":
        n_rows, errors, n_failed = _import_csv(job, p)
    else:
        shards = _hf_shards(p) if fmt == "hf" else [_Shard(p, "parquet", None)]
        n_rows, errors, n_failed = _import_arrow(job, shards)
    from services.sql_views import refresh_views

    with contextlib.suppress(duckdb.Error):
        refresh_views(store)  # dataset_rows_wide gains this dataset's attribute columns
    return ImportReport(dataset_id, name, n_rows, n_failed, errors[:MAX_ERRORS_LISTED], time.perf_counter() - started)


@dataclass
class _Job:
    store: Any
    dataset_id: str
    name: str
    source: str
    purpose: str
    text_column: str
    attrs: list[str]
    progress: Progress
    chunk_rows: int


def _finish(cur: duckdb.DuckDBPyConnection, job: _Job, n_rows: int, errors: list[RowError], n_failed: int) -> None:
    """Inside the import's transaction: refuse an import with no valid row, else record the dataset."""
    if n_rows == 0:
        if n_failed == 0:
            raise DatasetImportError(f"{Path(job.source).name} holds no rows: nothing to import.")
        first = "; ".join(f"line {e.line}: {e.reason}" for e in errors[:3])
        raise DatasetImportError(f"No valid row: {n_failed} row(s) failed ({first}). Nothing was imported.",
                                 errors[:MAX_ERRORS_LISTED], n_failed)
    cur.execute(
        "INSERT INTO datasets (dataset_id, name, source, purpose, text_column, attribute_columns, n_rows, n_failed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [job.dataset_id, job.name, job.source, job.purpose, job.text_column, job.attrs, n_rows, n_failed],
    )


def _map_sql(keys: Sequence[str], values: Sequence[str]) -> str:
    # The MAP {k: v} literal form measured about twice as fast as MAP([keys], [values]) here.
    if not keys:
        return "MAP {}::MAP(VARCHAR, VARCHAR)"
    return "MAP {" + ", ".join(f"{quote_literal(k)}: CAST({v} AS VARCHAR)" for k, v in zip(keys, values, strict=True)) + "}"


def _missing_columns(wanted: Sequence[str], present: Sequence[str], where: str) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DatasetImportError(
            f"{where} has no column {', '.join(repr(c) for c in missing)}. Its columns: {', '.join(map(str, present)) or '(none)'}."
        )


# -- JSONL -----------------------------------------------------------------------------------

def _import_jsonl(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    preview_keys = _jsonl_keys(path)
    _missing_columns([job.text_column], preview_keys, path.name)
    with _staged(job.store, path) as staged:
        try:
            return _import_jsonl_fast(job, staged)
        except duckdb.Error:
            pass  # DuckDB found a problem: re-read line by line to say which lines fail
    return _import_jsonl_lines(job, path)


def _jsonl_keys(path: Path, n: int = 200) -> list[str]:
    keys: list[str] = []
    with open(path, "rb") as f:
        for i, raw in enumerate(f):
            if i >= n:
                break
            with contextlib.suppress(ValueError):
                obj = json.loads(raw.decode("utf-8"))
                if isinstance(obj, dict):
                    keys += [k for k in obj if k not in keys]
    return keys


def _import_jsonl_fast(job: _Job, staged: Path) -> tuple[int, list[RowError], int]:
    cols = [job.text_column, *job.attrs]
    spec = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in cols) + "}"
    text = quote_ident(job.text_column)
    attrs = _map_sql(job.attrs, [quote_ident(a) for a in job.attrs])
    job.progress(0, None)
    with job.store.write() as cur:
        # One statement: DuckDB parses, numbers (WITH ORDINALITY keeps file order) and inserts. A row
        # without text raises, which sends the file to the line-by-line path that names the line.
        (n_rows,) = cur.execute(
            f"INSERT INTO dataset_rows SELECT ?, (ordinality - 1)::INTEGER AS i, ? || i,"
            f" CASE WHEN {text} IS NULL THEN error('row without text') ELSE {text} END, {attrs}"
            f" FROM read_json(?, format = 'newline_delimited', columns = {spec}) WITH ORDINALITY",
            [job.dataset_id, job.dataset_id + ":", str(staged)],
        ).fetchone()
        _finish(cur, job, n_rows, [], 0)
    job.progress(n_rows, n_rows)
    return n_rows, [], 0


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _import_jsonl_lines(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    """Line by line: every failing line is counted and (the first ones) listed with its number."""
    errors: list[RowError] = []
    n_failed = 0
    n_rows = 0
    texts: list[str] = []
    values: list[list[str | None]] = [[] for _ in job.attrs]
    total = path.stat().st_size

    def fail(line: int, reason: str) -> None:
        nonlocal n_failed
        n_failed += 1
        if len(errors) < MAX_ERRORS_LISTED:
            errors.append(RowError(line, reason))

    with job.store.write() as cur:
        done_bytes = 0
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                done_bytes += len(raw)
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    fail(line_no, f"not valid UTF-8 (byte {exc.start + 1}): wrong encoding?")
                    continue
                except ValueError as exc:
                    fail(line_no, f"invalid JSON: {getattr(exc, 'msg', str(exc))} (column {getattr(exc, 'colno', '?')})")
                    continue
                if not isinstance(obj, dict):
                    fail(line_no, f"not a JSON object (a {type(obj).__name__})")
                    continue
                if job.text_column not in obj:
                    fail(line_no, f"missing column '{job.text_column}'")
                    continue
                if obj[job.text_column] is None:
                    fail(line_no, f"no text ('{job.text_column}' is null)")
                    continue
                texts.append(_as_text(obj[job.text_column]))
                for vals, a in zip(values, job.attrs, strict=True):
                    vals.append(_as_text(obj.get(a)))
                if len(texts) >= job.chunk_rows:
                    n_rows = _insert_columns(cur, job, n_rows, texts, values)
                    texts, values = [], [[] for _ in job.attrs]
                    job.progress(n_rows, None if not total else int(n_rows * total / max(done_bytes, 1)))
        if texts:
            n_rows = _insert_columns(cur, job, n_rows, texts, values)
        _finish(cur, job, n_rows, errors, n_failed)
    job.progress(n_rows, n_rows)
    return n_rows, errors, n_failed


def _insert_columns(cur: duckdb.DuckDBPyConnection, job: _Job, offset: int, texts: list[str],
                    values: list[list[str | None]]) -> int:
    table = pa.table({
        "row_idx": pa.array(range(offset, offset + len(texts)), pa.int32()),
        "text": pa.array(texts, pa.string()),
        **{f"a{i}": pa.array(v, pa.string()) for i, v in enumerate(values)},
    })
    _insert_arrow(cur, job, table)
    return offset + len(texts)


def _insert_arrow(cur: duckdb.DuckDBPyConnection, job: _Job, table: pa.Table) -> None:
    """Insert an Arrow table with columns row_idx, text, a0..aN (attributes in job.attrs order)."""
    view = "import_chunk_" + uuid.uuid4().hex[:8]
    cur.register(view, table)
    try:
        attrs = _map_sql(job.attrs, [f"a{i}" for i in range(len(job.attrs))])
        cur.execute(
            f"INSERT INTO dataset_rows SELECT ?, row_idx, ? || row_idx, CAST(text AS VARCHAR), {attrs} FROM {view}",
            [job.dataset_id, job.dataset_id + ":"],
        )
    finally:
        cur.unregister(view)


# -- CSV -------------------------------------------------------------------------------------

def _import_csv(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    with _staged(job.store, path) as staged, job.store.write() as cur:
        source = "read_csv(?, header = true, all_varchar = true, ignore_errors = true, store_rejects = true)"
        header = [r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {source}", [str(staged)]).fetchall()]
        _missing_columns([job.text_column, *job.attrs], header, path.name)
        job.progress(0, None)
        stage = "import_stage_" + uuid.uuid4().hex[:8]
        cols = ", ".join(quote_ident(c) for c in [job.text_column, *job.attrs])
        cur.execute(f"CREATE TEMP TABLE {stage} AS SELECT ordinality AS rec, {cols} FROM {source} WITH ORDINALITY",
                    [str(staged)])
        try:
            rejected = cur.execute(
                "SELECT line, string_agg(error_type || ': ' || error_message, '; ') FROM reject_errors"
                " GROUP BY line ORDER BY line"
            ).fetchall()
            empty_recs = [r for (r,) in cur.execute(
                f"SELECT rec FROM {stage} WHERE {quote_ident(job.text_column)} IS NULL ORDER BY rec").fetchall()]
            errors = [RowError(int(line), _csv_reason(msg)) for line, msg in rejected]
            errors += [RowError(line, f"no text (empty '{job.text_column}')")
                       for line in _csv_lines_of(empty_recs, [e.line for e in errors])]
            errors.sort(key=lambda e: e.line)
            text = quote_ident(job.text_column)
            attrs = _map_sql(job.attrs, [quote_ident(a) for a in job.attrs])
            cur.execute(
                f"INSERT INTO dataset_rows SELECT ?, (row_number() OVER (ORDER BY rec) - 1)::INTEGER AS i, ? || i, {text}, {attrs}"
                f" FROM {stage} WHERE {text} IS NOT NULL",
                [job.dataset_id, job.dataset_id + ":"],
            )
            n_rows = cur.execute("SELECT count(*) FROM dataset_rows WHERE dataset_id = ?", [job.dataset_id]).fetchone()[0]
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {stage}")
            cur.execute("DROP TABLE IF EXISTS reject_errors")
            cur.execute("DROP TABLE IF EXISTS reject_scans")
        _finish(cur, job, n_rows, errors, len(errors))
    job.progress(n_rows, n_rows)
    return n_rows, errors, len(errors)


def _csv_reason(message: str) -> str:
    if "INVALID" in message and ("UNICODE" in message or "ENCODING" in message):
        return "not valid UTF-8: wrong encoding?"
    if message.startswith("TOO MANY COLUMNS"):
        return "ragged row: " + message.split(": ", 1)[1]
    if message.startswith("MISSING COLUMNS"):
        return "ragged row: " + message.split(": ", 1)[1]
    return message


def _csv_lines_of(valid_recs: list[int], rejected_lines: list[int]) -> list[int]:
    """Line numbers (header = 1) of the valid records numbered 1.. in read order, skipping rejected lines."""
    out = []
    rejected = sorted(set(rejected_lines))
    targets = iter(valid_recs)
    want = next(targets, None)
    line, valid, ri = 1, 0, 0
    while want is not None:
        line += 1
        while ri < len(rejected) and rejected[ri] < line:
            ri += 1
        if ri < len(rejected) and rejected[ri] == line:
            continue
        valid += 1
        if valid == want:
            out.append(line)
            want = next(targets, None)
    return out


# -- Parquet and Hugging Face ------------------------------------------------------------------

def _import_arrow(job: _Job, shards: list[_Shard]) -> tuple[int, list[RowError], int]:
    schema = _shard_schema(shards[0])
    with_split = any(s.split for s in shards)
    present = list(schema.names) + ([SPLIT_ATTRIBUTE] if with_split else [])
    _missing_columns([job.text_column, *job.attrs], present, shards[0].path.parent.name or str(shards[0].path))
    totals = [_shard_rows(s) for s in shards]
    total = sum(totals) if all(t is not None for t in totals) else None
    errors: list[RowError] = []
    n_failed = n_rows = seen = 0
    with job.store.write() as cur:
        job.progress(0, total)
        for shard in shards:
            shard_schema = _shard_schema(shard)
            _missing_columns([c for c in [job.text_column, *job.attrs] if c != SPLIT_ATTRIBUTE or not with_split],
                             list(shard_schema.names), str(shard.path.name))
            labels = _class_labels(shard_schema)
            read = [c for c in dict.fromkeys([job.text_column, *job.attrs]) if c in shard_schema.names]
            for batch in _shard_batches(shard, read, job.chunk_rows):
                cols = {}
                for c in read:
                    col = batch.column(c)
                    if c in labels and pa.types.is_integer(col.type):
                        col = pc.take(pa.array(labels[c], pa.string()), col)
                    cols[c] = col
                if with_split:
                    cols[SPLIT_ATTRIBUTE] = pa.array([shard.split] * batch.num_rows, pa.string())
                valid = pc.is_valid(cols[job.text_column])
                if not pc.all(valid).as_py():
                    bad = [i for i, ok in enumerate(valid.to_pylist()) if not ok]
                    n_failed += len(bad)
                    errors += [RowError(seen + i + 1, f"no text ('{job.text_column}' is null)")
                               for i in bad[: max(0, MAX_ERRORS_LISTED - len(errors))]]
                    cols = {k: pc.filter(v, valid) for k, v in cols.items()}
                n = len(cols[job.text_column])
                table = pa.table({
                    "row_idx": pa.array(range(n_rows, n_rows + n), pa.int32()),
                    "text": cols[job.text_column],
                    **{f"a{i}": cols[a] for i, a in enumerate(job.attrs)},
                })
                _insert_arrow(cur, job, table)
                n_rows += n
                seen += batch.num_rows
                job.progress(seen, total)
        _finish(cur, job, n_rows, errors, n_failed)
    return n_rows, errors, n_failed


def import_upload(store: Any, filename: str, data: bytes, **kwargs: Any) -> ImportReport:
    """Stage uploaded bytes under the work directory, import them, and remove the staged copy."""
    staged = stage_upload(store, filename, data)
    try:
        kwargs.setdefault("name", Path(filename).stem)
        kwargs.setdefault("fmt", detect_format(Path(filename)))
        return import_dataset(store, staged, source=filename, **kwargs)
    finally:
        staged.unlink(missing_ok=True)


def preview_upload(store: Any, filename: str, data: bytes) -> SourcePreview:
    staged = stage_upload(store, filename, data)
    try:
        return preview(store, staged, detect_format(Path(filename)))
    finally:
        staged.unlink(missing_ok=True)


# -- listing ---------------------------------------------------------------------------------

def list_datasets(store: Any) -> pd.DataFrame:
    return store.query_df(
        "SELECT dataset_id, name, purpose, n_rows, n_failed, text_column, attribute_columns, source, created_at"
        " FROM datasets ORDER BY created_at DESC"
    )


def delete_dataset(store: Any, dataset_id: str) -> None:
    with store.write() as cur:
        cur.execute("DELETE FROM dataset_rows WHERE dataset_id = ?", [dataset_id])
        cur.execute("DELETE FROM datasets WHERE dataset_id = ?", [dataset_id])
