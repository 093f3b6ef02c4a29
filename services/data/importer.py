"""Import external datasets (CSV, JSONL, Parquet, Hugging Face folders) as texts with attributes.

A dataset row is a text with attributes, like a sample is a text with its condition. Rows go to
``dataset_row_values(dataset_id, row_idx, text, attribute_values)`` (migration m009): the values
follow the dataset's ``attribute_columns``, which are stored once, and the ``dataset_rows`` view
rebuilds each row's ``attributes`` MAP. An import is one write transaction: the valid rows land,
the failing rows (bad encoding, ragged CSV rows, invalid JSON lines, missing text) are counted and
listed with their line numbers, and nothing is half-written if anything else goes wrong.

``row_idx`` is a row's place among the records read from the file (0-based: JSONL's non-blank
lines, the CSV rows DuckDB can parse, Parquet's rows), so the rows of ``dataset_rows`` skip the
numbers of failed records: renumbering inside the import's transaction cost more than the rest of
the import (bench/import_jsonl.py). JSONL and CSV records are numbered by their place in a
temporary stage that DuckDB fills in parallel, in the file's order, and every record is copied: a
failed one is kept in ``dataset_row_values`` without text (migration m011), which every reader,
the views first, leaves out; ``datasets.n_rows`` does not count it.

Speed, memory and progress: JSONL and CSV are parsed by DuckDB itself (``read_json``/``read_csv``)
into the stage, then copied into the table, within the database's memory limit
(``STUDIO_DB_MEMORY_LIMIT``). Each statement runs on the store's progress cursor in a worker thread
while the calling thread reports DuckDB's ``query_progress()`` (so a Streamlit page's bar moves,
and a page rerun interrupts the statement and rolls the import back). The file must be inside the
store's allowed directories, so files elsewhere are staged under ``store.work_dir``. Bad lines do
not stop that pass: DuckDB skips them (``ignore_errors``) and the few failing lines are then named
by a scan that parses only those lines. A JSONL file DuckDB cannot read at all is re-read line by
line in Python. Parquet and Hugging Face layouts stream through pyarrow in chunks.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from services.core import settings
from services.core.sql_text import quote_ident, quote_literal
from services.data.readers import (
    DEFAULT_CHUNK_ROWS,
    FORMATS,
    MAX_ERRORS_LISTED,
    SPLIT_ATTRIBUTE,
    DatasetImportError,
    ImportReport,
    OnProgress,
    RowError,
    Shard,
    SourcePreview,
    check_not_empty,
    class_labels,
    csv_source,
    detect_format,
    hf_shards,
    preview_source,
    shard_batches,
    shard_rows,
    shard_schema,
)
from services.data.scan import NewlineCounts, csv_record_lines, estimate_rows, lines_at, record_lines
from services.data.staging import stage_upload, staged_copy

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
    progress: OnProgress | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    source: str | None = None,
) -> ImportReport:
    """Import a file or folder as a dataset; returns what landed and which rows failed.

    Raises DatasetImportError (with ``errors`` listed) when nothing can be imported.
    """
    p = Path(path)
    check_not_empty(p)
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
    try:
        if fmt == "jsonl":
            n_rows, errors, n_failed = _import_jsonl(job, p)
        elif fmt == "csv":
            n_rows, errors, n_failed = _import_csv(job, p)
        else:
            shards = hf_shards(p) if fmt == "hf" else [Shard(p, "parquet", None)]
            n_rows, errors, n_failed = _import_arrow(job, shards)
    except duckdb.OutOfMemoryException as exc:
        limit = store.scalar("SELECT current_setting('memory_limit')")
        raise DatasetImportError(
            f"Importing {p.name} needs more memory than the database may use ({limit}, set by STUDIO_DB_MEMORY_LIMIT="
            f"{settings.get('STUDIO_DB_MEMORY_LIMIT')}). Nothing was imported: raise STUDIO_DB_MEMORY_LIMIT (a million short rows import"
            f" within 128MB) and import again. DuckDB said: {str(exc).split(chr(10))[0]}") from None
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
    progress: OnProgress
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


def _values_sql(exprs: Sequence[str]) -> str:
    """The attribute values of a row as one VARCHAR[], in the order of the dataset's attribute_columns."""
    return "[" + ", ".join(f"CAST({e} AS VARCHAR)" for e in exprs) + "]::VARCHAR[]"


def _missing_columns(wanted: Sequence[str], present: Sequence[str], where: str) -> None:
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DatasetImportError(
            f"{where} has no column {', '.join(repr(c) for c in missing)}. Its columns: {', '.join(map(str, present)) or '(none)'}."
        )


# The share of an import's progress bar given to parsing the file into the stage; the rest is
# the copy into dataset_row_values (about as long, measured at 10^6 rows).
PARSE_SHARE = 0.5
# Below about these sizes DuckDB 2.0 reads a file on one thread (measured), so a stage would
# only add a copy: the records are numbered in the one statement that inserts them.
PARALLEL_BYTES = {"jsonl": 32 << 20, "csv": 16 << 20}


def _insert_numbered(job: _Job, cur: duckdb.DuckDBPyConnection, source: str, params: list[Any], total: int | None,
                     parallel: bool, meanwhile: Callable[[], bool] | None = None) -> tuple[int, int, list[int]]:
    """Insert the records of ``source`` (a table function with the text and attribute columns),
    each numbered by its place in the file; returns the rows with text, the number of records
    without (a line DuckDB could not read, or no text: failed) and the first of their numbers.

    Every record is inserted, the failed ones too (text NULL, which the readers leave out):
    leaving them out, by a filter or a delete, made DuckDB re-pack the rows it writes in order,
    and cost a third of the import (bench/import_jsonl.py).

    Numbering with ``WITH ORDINALITY`` makes DuckDB parse the file on one thread. So a file
    DuckDB would read in ``parallel`` goes first, on every thread, into a temporary stage created
    in this transaction: with ``preserve_insertion_order`` (DuckDB's default, which the store
    never changes) the records keep the file's order, and the rowids of a transaction's new rows
    run consecutively, so a record's number is its rowid less the first. Memory stays within the
    database's limit: the stage spills to disk like any temporary table."""
    text = quote_ident(job.text_column)
    values = _values_sql([quote_ident(a) for a in job.attrs])
    if not parallel:
        _execute_with_progress(
            job, cur, f"INSERT INTO dataset_row_values SELECT ?, (ordinality - 1)::INTEGER, {text}, {values}"
            f" FROM {source} WITH ORDINALITY", [job.dataset_id, *params], total, meanwhile=meanwhile)
        return _count_failed(cur, "SELECT row_idx AS n, text FROM dataset_row_values WHERE dataset_id = ?", [job.dataset_id])
    stage = "import_stage_" + uuid.uuid4().hex[:8]
    _execute_with_progress(job, cur, f"CREATE TEMP TABLE {stage} AS SELECT {text} AS text, {values} AS attribute_values"
                           f" FROM {source}", params, total, meanwhile=meanwhile, share=(0.0, PARSE_SHARE))
    try:
        first = cur.execute(f"SELECT min(rowid) FROM {stage}").fetchall()[0][0]
        _execute_with_progress(
            job, cur, f"INSERT INTO dataset_row_values SELECT ?, (rowid - ?)::INTEGER, text, attribute_values FROM {stage}",
            [job.dataset_id, first], total, share=(PARSE_SHARE, 1.0))
        return _count_failed(cur, f"SELECT (rowid - ?)::INTEGER AS n, text FROM {stage}", [first])
    finally:
        with contextlib.suppress(duckdb.TransactionException):  # aborted: the rollback drops it
            cur.execute(f"DROP TABLE IF EXISTS {stage}")


def _parallel(cur: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> bool:
    """Whether DuckDB would read this file on more than one thread."""
    return path.stat().st_size >= PARALLEL_BYTES[fmt] and int(cur.execute("SELECT current_setting('threads')").fetchall()[0][0]) > 1


def _count_failed(cur: duckdb.DuckDBPyConnection, numbered: str, params: list[Any]) -> tuple[int, int, list[int]]:
    """Rows with text, records without, and the first numbers of those, from a query of (n, text)."""
    ((n_records, n_failed),) = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE text IS NULL) FROM ({numbered})", params).fetchall()
    failed = cur.execute(f"SELECT n FROM ({numbered}) WHERE text IS NULL ORDER BY n LIMIT ?",
                         [*params, MAX_ERRORS_LISTED]).fetchall() if n_failed else []
    return n_records - n_failed, n_failed, [n for (n,) in failed]


# How often the calling thread reads the running statement's progress.
POLL_S = 0.25


def _execute_with_progress(job: _Job, cur: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
                           total: int | None, meanwhile: Callable[[], bool] | None = None,
                           share: tuple[float, float] = (0.0, 1.0)) -> list[tuple]:
    """Run one statement on the store's progress cursor in a worker thread, and report its progress
    from this thread, as rows done of about ``total`` (DuckDB tells a percentage, not rows); a
    statement that is one step of several fills its ``share`` (from, to) of the total.

    The callback runs here, not in the worker, so a Streamlit page may draw from it; if it raises
    (a page rerun stops the script that way), the statement is interrupted and the error raised
    for the caller's transaction to roll back. ``meanwhile`` is called between polls, for short
    steps of other work, until it returns False."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["rows"] = cur.execute(sql, params).fetchall()
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="studio-import", daemon=True)
    worker.start()
    try:
        last, polled = -1, time.monotonic()
        while True:
            if meanwhile is None or not meanwhile():
                meanwhile = None
                worker.join(POLL_S)
            if not worker.is_alive():
                break
            if time.monotonic() - polled < POLL_S:
                continue
            polled = time.monotonic()
            pct = cur.query_progress()
            if total and 0 < pct < 100 and int(pct) != last:
                last = int(pct)
                job.progress(int(total * (share[0] + (share[1] - share[0]) * pct / 100)), total)
    except BaseException:
        cur.interrupt()
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome["rows"]


# -- JSONL -----------------------------------------------------------------------------------

def _import_jsonl(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    preview_keys = _jsonl_keys(path)
    _missing_columns([job.text_column], preview_keys, path.name)
    with staged_copy(job.store, path) as staged:
        try:
            return _import_jsonl_fast(job, staged, path)
        except duckdb.OutOfMemoryException:
            raise  # not a file DuckDB cannot read: said as such by import_dataset
        except duckdb.Error:
            pass  # DuckDB cannot read it even skipping bad lines: re-read line by line in Python
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


def _import_jsonl_fast(job: _Job, staged: Path, original: Path) -> tuple[int, list[RowError], int]:
    """DuckDB parses the file into a numbered stage; failing lines are then named by a scan.

    ``ignore_errors`` turns a line DuckDB cannot parse into a record of NULLs (blank lines are
    skipped, as the line-by-line path skips them), so every record whose text is NULL is a failing
    line: it is counted (and kept without text), and only those lines are re-read, to say why each
    one fails.
    """
    cols = [job.text_column, *job.attrs]
    spec = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in cols) + "}"
    total = estimate_rows(staged)
    job.progress(0, total)
    # Lines are counted while DuckDB reads (the thread would only wait): naming failed lines
    # then costs almost nothing more, and a clean file a little CPU beside DuckDB's.
    newlines = NewlineCounts(original)
    source = f"read_json(?, format = 'newline_delimited', columns = {spec}, ignore_errors = true)"
    with job.store.write(progress=True) as cur:
        n_rows, n_bad, bad = _insert_numbered(job, cur, source, [str(staged)], total, _parallel(cur, staged, "jsonl"),
                                              meanwhile=newlines.step)
        errors = [RowError(line, _jsonl_reason(raw, job.text_column))
                  for line, raw in record_lines(original, [i + 1 for i in bad], n_rows + n_bad, counts=newlines)]
        _finish(cur, job, n_rows, errors, n_bad)
        job.progress(n_rows, n_rows)  # inside the transaction: a callback that raises leaves nothing
    return n_rows, errors, n_bad


def _jsonl_reason(raw: bytes, text_column: str) -> str:
    """Why one JSONL line cannot be a row (the same wording as the line-by-line path)."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start + 1}): wrong encoding?"
    except ValueError as exc:
        return f"invalid JSON: {getattr(exc, 'msg', str(exc))} (column {getattr(exc, 'colno', '?')})"
    if not isinstance(obj, dict):
        return f"not a JSON object (a {type(obj).__name__})"
    if text_column not in obj:
        return f"missing column '{text_column}'"
    if obj[text_column] is None:
        return f"no text ('{text_column}' is null)"
    return "DuckDB could not read this line (too long, or a value it cannot read as text)"


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _import_jsonl_lines(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    """Line by line: every failing line is counted and (the first ones) listed with its number;
    rows are numbered by their record, as in the fast path."""
    errors: list[RowError] = []
    n_failed = 0
    n_rows = 0
    record = -1
    numbers: list[int] = []
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
                record += 1
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    fail(line_no, f"not valid UTF-8 (byte {exc.start + 1}): wrong encoding?")
                except ValueError as exc:
                    fail(line_no, f"invalid JSON: {getattr(exc, 'msg', str(exc))} (column {getattr(exc, 'colno', '?')})")
                else:
                    if not isinstance(obj, dict):
                        fail(line_no, f"not a JSON object (a {type(obj).__name__})")
                    elif job.text_column not in obj:
                        fail(line_no, f"missing column '{job.text_column}'")
                    elif obj[job.text_column] is None:
                        fail(line_no, f"no text ('{job.text_column}' is null)")
                    else:
                        numbers.append(record)
                        texts.append(_as_text(obj[job.text_column]))
                        for vals, a in zip(values, job.attrs, strict=True):
                            vals.append(_as_text(obj.get(a)))
                if len(texts) >= job.chunk_rows:
                    n_rows = _insert_columns(cur, job, n_rows, numbers, texts, values)
                    numbers, texts, values = [], [], [[] for _ in job.attrs]
                    job.progress(n_rows, None if not total else int(n_rows * total / max(done_bytes, 1)))
        if texts:
            n_rows = _insert_columns(cur, job, n_rows, numbers, texts, values)
        _finish(cur, job, n_rows, errors, n_failed)
        job.progress(n_rows, n_rows)
    return n_rows, errors, n_failed


def _insert_columns(cur: duckdb.DuckDBPyConnection, job: _Job, n_rows: int, numbers: list[int], texts: list[str],
                    values: list[list[str | None]]) -> int:
    table = pa.table({
        "row_idx": pa.array(numbers, pa.int32()),
        "text": pa.array(texts, pa.string()),
        **{f"a{i}": pa.array(v, pa.string()) for i, v in enumerate(values)},
    })
    _insert_arrow(cur, job, table)
    return n_rows + len(texts)


def _insert_arrow(cur: duckdb.DuckDBPyConnection, job: _Job, table: pa.Table) -> None:
    """Insert an Arrow table with columns row_idx, text, a0..aN (attributes in job.attrs order)."""
    view = "import_chunk_" + uuid.uuid4().hex[:8]
    cur.register(view, table)
    try:
        values = _values_sql([f"a{i}" for i in range(len(job.attrs))])
        cur.execute(f"INSERT INTO dataset_row_values SELECT ?, row_idx, CAST(text AS VARCHAR), {values} FROM {view}",
                    [job.dataset_id])
    finally:
        cur.unregister(view)


# -- CSV -------------------------------------------------------------------------------------

def _import_csv(job: _Job, path: Path) -> tuple[int, list[RowError], int]:
    """One streaming pass straight into the table, with progress: ragged and badly encoded lines
    are skipped by DuckDB and listed from ``reject_errors``; a row with an empty text is left out,
    counted, and listed by its line."""
    with staged_copy(job.store, path) as staged:
        with contextlib.closing(job.store.fresh_cursor()) as sniff:
            source, header = csv_source(sniff, staged, path.name)
        _missing_columns([job.text_column, *job.attrs], header, path.name)
        return _import_csv_rows(job, path, staged, source[:-1] + ", store_rejects = true)")


def _import_csv_rows(job: _Job, path: Path, staged: Path, source: str) -> tuple[int, list[RowError], int]:
    newlines = NewlineCounts(staged)  # counted while DuckDB reads, to name the failing lines
    with job.store.write(progress=True) as cur:
        total = estimate_rows(staged, header=True)
        job.progress(0, total)
        try:
            n_rows, n_empty, empty = _insert_numbered(job, cur, source, [str(staged)], total, _parallel(cur, staged, "csv"),
                                                      meanwhile=newlines.step)
            rejected = cur.execute(
                "SELECT min(line_byte_position), min(line), string_agg(error_type || ': ' || error_message, '; ')"
                " FROM reject_errors GROUP BY line ORDER BY line"
            ).fetchall()
        finally:
            with contextlib.suppress(duckdb.TransactionException):  # aborted: the rollback drops them
                cur.execute("DROP TABLE IF EXISTS reject_errors")
                cur.execute("DROP TABLE IF EXISTS reject_scans")
        # DuckDB's own line number counts a record as one line: the byte where it starts tells its line.
        at = iter(lines_at(staged, [pos for pos, _, _ in rejected if pos is not None], newlines))
        reject_lines = [next(at) if pos is not None else int(line) for pos, line, _ in rejected]
        errors = [RowError(line, _csv_reason(msg)) for line, (_, _, msg) in zip(reject_lines, rejected, strict=True)]
        errors += [RowError(line, f"no text (empty '{job.text_column}')")
                   for line in _csv_empty_lines(cur, staged, source, newlines, [i + 1 for i in empty], reject_lines,
                                                n_rows + n_empty)]
        errors.sort(key=lambda e: e.line)
        _finish(cur, job, n_rows, errors, len(rejected) + n_empty)
        job.progress(n_rows, n_rows)
    return n_rows, errors, len(rejected) + n_empty


def _csv_empty_lines(cur: duckdb.DuckDBPyConnection, staged: Path, source: str, newlines: NewlineCounts, records: list[int],
                     reject_lines: list[int], n_records: int) -> list[int]:
    """The lines of the given records (1-based among those DuckDB kept). Where every line of the
    file is a record (kept or rejected), counting lines is enough; else (blank lines, a quoted
    field with a newline) the file is read again as CSV, with DuckDB's dialect, up to the last."""
    if not records:
        return []
    newlines.finish()
    if sum(newlines.counts) + int(newlines.last_byte != 10) == 1 + n_records + len(reject_lines):
        return _csv_lines_of(records, reject_lines)
    sniff = source.replace("read_csv(", "sniff_csv(", 1)
    found = cur.execute(f"SELECT Delimiter, Quote, Escape FROM {sniff}", [str(staged)]).fetchall()[0]
    dialect = tuple("" if v == "(empty)" else str(v) for v in found)
    return csv_record_lines(staged, dialect, records, set(reject_lines))


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

def _import_arrow(job: _Job, shards: list[Shard]) -> tuple[int, list[RowError], int]:
    """pyarrow batches of each shard, with progress per batch; a row without text is left out
    (listed by its row number), and the others keep their row number in the files."""
    schema = shard_schema(shards[0])
    with_split = any(s.split for s in shards)
    present = list(schema.names) + ([SPLIT_ATTRIBUTE] if with_split else [])
    _missing_columns([job.text_column, *job.attrs], present, shards[0].path.parent.name or str(shards[0].path))
    totals = [shard_rows(s) for s in shards]
    total = sum(totals) if all(t is not None for t in totals) else None
    errors: list[RowError] = []
    n_failed = seen = 0
    with job.store.write() as cur:
        job.progress(0, total)
        for shard in shards:
            schema_of_shard = shard_schema(shard)
            _missing_columns([c for c in [job.text_column, *job.attrs] if c != SPLIT_ATTRIBUTE or not with_split],
                             list(schema_of_shard.names), str(shard.path.name))
            labels = class_labels(schema_of_shard)
            read = [c for c in dict.fromkeys([job.text_column, *job.attrs]) if c in schema_of_shard.names]
            for batch in shard_batches(shard, read, job.chunk_rows):
                cols = {}
                for c in read:
                    col = batch.column(c)
                    if c in labels and pa.types.is_integer(col.type):
                        col = pc.take(pa.array(labels[c], pa.string()), col)
                    cols[c] = col
                if with_split:
                    cols[SPLIT_ATTRIBUTE] = pa.array([shard.split] * batch.num_rows, pa.string())
                table = pa.table({
                    "row_idx": pa.array(range(seen, seen + batch.num_rows), pa.int32()),
                    "text": cols[job.text_column],
                    **{f"a{i}": cols[a] for i, a in enumerate(job.attrs)},
                })
                nulls = cols[job.text_column].null_count
                if nulls:
                    bad = pc.indices_nonzero(pc.is_null(cols[job.text_column])).to_pylist()
                    n_failed += nulls
                    errors += [RowError(seen + i + 1, f"no text ('{job.text_column}' is null)")
                               for i in bad[: max(0, MAX_ERRORS_LISTED - len(errors))]]
                    table = table.filter(pc.is_valid(table["text"]))
                _insert_arrow(cur, job, table)
                seen += batch.num_rows
                job.progress(seen, total)  # rows read, of the rows the files hold
        n_rows = seen - n_failed
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
        return preview_source(store, staged, detect_format(Path(filename)))
    finally:
        staged.unlink(missing_ok=True)


def import_roots() -> list[Path]:
    """The folders whose files may be imported by path from the studio (``STUDIO_IMPORT_DIRS``)."""
    return settings.paths("STUDIO_IMPORT_DIRS")


def server_path(text: str, roots: Sequence[Path] | None = None) -> Path:
    """A path typed into the studio, checked: it must exist and lie inside one of the import folders
    (after following links), so a studio opened to others cannot be made to read any file the process
    can. Raises DatasetImportError naming the folders that are allowed."""
    allowed = list(roots) if roots is not None else import_roots()
    raw = Path(text.strip()).expanduser()
    try:
        target = raw.resolve(strict=True)
    except (OSError, RuntimeError):
        raise DatasetImportError(f"{raw} does not exist.") from None
    if not any(target == r or target.is_relative_to(r) for r in allowed):
        where = ", ".join(str(r) for r in allowed) or "none configured"
        raise DatasetImportError(f"{raw} is outside the folders the studio imports from ({where}). "
                                 "Put the file in one of them, upload it instead, or set STUDIO_IMPORT_DIRS.")
    return target
