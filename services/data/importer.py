"""Import external datasets (CSV, JSONL, Parquet, Hugging Face folders) as texts with attributes.

A dataset row is a text with attributes, like a sample is a text with its condition: rows go to
``dataset_rows(dataset_id, row_idx, row_key, text, attributes MAP)`` (migration m004), so the map,
metrics and filters take either. An import is one write transaction: the valid rows land, the
failing rows (bad encoding, ragged CSV rows, invalid JSON lines, missing text) are counted and
listed with their line numbers, and nothing is half-written if anything else goes wrong.

Speed and memory: JSONL and CSV are parsed by DuckDB itself (``read_json``/``read_csv``) in one
streaming statement straight into ``dataset_rows`` (no staging table, so memory stays bounded at a
million rows), which needs the file inside the store's allowed directories, so files elsewhere are
staged under ``store.work_dir``. Bad lines do not stop that pass: DuckDB skips them (``ignore_errors``)
and the few failing lines are then named by a Python scan that parses only those lines. A JSONL file
DuckDB cannot read at all is re-read line by line in Python. Parquet and Hugging Face layouts stream
through pyarrow in chunks.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Iterator, Sequence
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
    detect_format,
    hf_shards,
    preview_source,
    shard_batches,
    shard_rows,
    shard_schema,
)
from services.data.staging import stage_upload, staged_copy, uploads_dir

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
    if fmt == "jsonl":
        n_rows, errors, n_failed = _import_jsonl(job, p)
    elif fmt == "csv":
        n_rows, errors, n_failed = _import_csv(job, p)
    else:
        shards = hf_shards(p) if fmt == "hf" else [Shard(p, "parquet", None)]
        n_rows, errors, n_failed = _import_arrow(job, shards)
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
    with staged_copy(job.store, path) as staged:
        try:
            return _import_jsonl_fast(job, staged, path)
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
    """One streaming DuckDB pass; failing lines are found afterwards and named by a Python scan.

    ``ignore_errors`` turns a line DuckDB cannot parse into a row of NULLs (blank lines are skipped,
    as the line-by-line path skips them), so every row whose text is NULL is a failing line: those
    rows are deleted and the valid rows renumbered, inside the same transaction, and only then is
    the file re-read in Python, for those lines alone, to say why each one fails.
    """
    cols = [job.text_column, *job.attrs]
    spec = "{" + ", ".join(f"{quote_literal(c)}: 'VARCHAR'" for c in cols) + "}"
    text = quote_ident(job.text_column)
    attrs = _map_sql(job.attrs, [quote_ident(a) for a in job.attrs])
    total_bytes = staged.stat().st_size
    job.progress(0, None)
    with job.store.write() as cur:
        n_all = done_bytes = 0
        for piece, size in _pieces(job.store, staged):
            (n,) = cur.execute(
                f"INSERT INTO dataset_rows SELECT ?, (? + ordinality - 1)::INTEGER AS i, ? || i, {text}, {attrs}"
                f" FROM read_json(?, format = 'newline_delimited', columns = {spec}, ignore_errors = true) WITH ORDINALITY",
                [job.dataset_id, n_all, job.dataset_id + ":", str(piece)],
            ).fetchone()
            n_all, done_bytes = n_all + n, done_bytes + size
            if done_bytes < total_bytes:
                job.progress(n_all, int(n_all * total_bytes / max(done_bytes, 1)))  # total: estimated from bytes
        bad = _drop_rows_without_text(cur, job)
        errors = _jsonl_reasons(original, job, [i + 1 for i in bad]) if bad else []
        n_rows = n_all - len(bad)
        _finish(cur, job, n_rows, errors, len(bad))
        job.progress(n_rows, n_rows)  # inside the transaction: a callback that raises leaves nothing
    return n_rows, errors, len(bad)


# A JSONL file above this size is read in pieces of about this size, cut at line ends: one
# statement per piece, so the page's progress bar moves (DuckDB reports no progress to a cursor
# whose configuration is locked) and each statement's memory stays bounded. Copying the pieces
# cost about 5 % of the import at 10^6 rows (bench/import_jsonl.py).
PIECE_BYTES = 64 << 20


def _pieces(store: Any, path: Path, piece_bytes: int | None = None) -> Iterator[tuple[Path, int]]:
    """The file itself if small, else temporary pieces of it (complete lines), each removed after use."""
    piece_bytes = piece_bytes or PIECE_BYTES
    size = path.stat().st_size
    if size <= piece_bytes * 1.5:
        yield path, size
        return
    with open(path, "rb") as f:
        tail = b""
        while True:
            block = f.read(piece_bytes)
            data = tail + block
            if not block:
                if not data:
                    return
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one line longer than a piece: read on to its end
                    tail = data
                    continue
            piece = uploads_dir(store) / f"piece-{uuid.uuid4().hex[:8]}.jsonl"
            piece.write_bytes(data[:cut])
            tail = data[cut:]
            try:
                yield piece, cut
            finally:
                piece.unlink(missing_ok=True)
            if not block:
                return


def _drop_rows_without_text(cur: duckdb.DuckDBPyConnection, job: _Job) -> list[int]:
    """Delete this import's rows whose text is NULL and renumber the rest 0..n-1; returns the
    deleted rows' former row_idx (their order in the file), ascending."""
    bad = [i for (i,) in cur.execute(
        "SELECT row_idx FROM dataset_rows WHERE dataset_id = ? AND text IS NULL ORDER BY row_idx",
        [job.dataset_id]).fetchall()]
    if not bad:
        return bad
    cur.execute("DELETE FROM dataset_rows WHERE dataset_id = ? AND text IS NULL", [job.dataset_id])
    # Only rows after the first failing one move; an UPDATE joined on a numbering of the survivors.
    cur.execute(
        "UPDATE dataset_rows AS d SET row_idx = r.i, row_key = ? || r.i"
        " FROM (SELECT row_idx AS old, (row_number() OVER (ORDER BY row_idx) - 1 + ?)::INTEGER AS i"
        "       FROM dataset_rows WHERE dataset_id = ? AND row_idx > ?) AS r"
        " WHERE d.dataset_id = ? AND d.row_idx = r.old",
        [job.dataset_id + ":", bad[0], job.dataset_id, bad[0], job.dataset_id],
    )
    return bad


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


def _jsonl_reasons(path: Path, job: _Job, records: list[int]) -> list[RowError]:
    """Line numbers and reasons of the given non-blank records (1-based, ascending), the first
    ones listed. Reads the file in blocks; blank lines are told apart by C-level map/accumulate,
    not a Python loop per line, and only the listed lines are parsed."""
    wanted = records[:MAX_ERRORS_LISTED]
    out: list[RowError] = []
    ti = record = line_base = 0
    tail = b""
    with open(path, "rb") as f:
        while ti < len(wanted):
            block = f.read(1 << 24)
            if block:
                lines = (tail + block).split(b"\n")
                tail = lines.pop()
            else:
                lines, tail = ([tail] if tail else []), b""
            if not lines:
                break
            upto = list(itertools.accumulate(map(bool, map(bytes.strip, lines)), initial=record))[1:]
            while ti < len(wanted) and wanted[ti] <= upto[-1]:
                j = bisect.bisect_left(upto, wanted[ti])
                out.append(RowError(line_base + j + 1, _jsonl_reason(lines[j], job.text_column)))
                ti += 1
            record, line_base = upto[-1], line_base + len(lines)
    return out


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
    """One streaming pass straight into dataset_rows (no staging table, so memory stays bounded):
    ragged and badly encoded lines are skipped by DuckDB and listed from ``reject_errors``; rows
    with an empty text land as NULL, are deleted and the rest renumbered, in the same transaction."""
    with staged_copy(job.store, path) as staged, job.store.write() as cur:
        source = "read_csv(?, header = true, all_varchar = true, ignore_errors = true, store_rejects = true)"
        header = [r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {source}", [str(staged)]).fetchall()]
        _missing_columns([job.text_column, *job.attrs], header, path.name)
        job.progress(0, None)
        text = quote_ident(job.text_column)
        attrs = _map_sql(job.attrs, [quote_ident(a) for a in job.attrs])
        try:
            (n_all,) = cur.execute(
                f"INSERT INTO dataset_rows SELECT ?, (ordinality - 1)::INTEGER AS i, ? || i, {text}, {attrs}"
                f" FROM {source} WITH ORDINALITY",
                [job.dataset_id, job.dataset_id + ":", str(staged)],
            ).fetchone()
            rejected = cur.execute(
                "SELECT line, string_agg(error_type || ': ' || error_message, '; ') FROM reject_errors"
                " GROUP BY line ORDER BY line"
            ).fetchall()
        finally:
            cur.execute("DROP TABLE IF EXISTS reject_errors")
            cur.execute("DROP TABLE IF EXISTS reject_scans")
        empty_recs = [i + 1 for i in _drop_rows_without_text(cur, job)]
        errors = [RowError(int(line), _csv_reason(msg)) for line, msg in rejected]
        errors += [RowError(line, f"no text (empty '{job.text_column}')")
                   for line in _csv_lines_of(empty_recs, [e.line for e in errors])]
        errors.sort(key=lambda e: e.line)
        n_rows = n_all - len(empty_recs)
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

def _import_arrow(job: _Job, shards: list[Shard]) -> tuple[int, list[RowError], int]:
    schema = shard_schema(shards[0])
    with_split = any(s.split for s in shards)
    present = list(schema.names) + ([SPLIT_ATTRIBUTE] if with_split else [])
    _missing_columns([job.text_column, *job.attrs], present, shards[0].path.parent.name or str(shards[0].path))
    totals = [shard_rows(s) for s in shards]
    total = sum(totals) if all(t is not None for t in totals) else None
    errors: list[RowError] = []
    n_failed = n_rows = seen = 0
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
