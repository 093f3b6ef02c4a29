"""Format readers: which format a file is, its Hugging Face shards, and a preview of its first rows."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from services.core.errors import StudioError
from services.data.staging import staged_copy

FORMATS = ("csv", "jsonl", "parquet", "hf")
MAX_ERRORS_LISTED = 1000
DEFAULT_CHUNK_ROWS = 20_000
SPLIT_ATTRIBUTE = "split"

OnProgress = Callable[[int, int | None], None]


class DatasetImportError(StudioError, ValueError):
    """The file cannot be imported at all (empty, unknown format, missing column, no valid row)."""

    title = "The dataset cannot be imported"

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


def check_not_empty(path: Path) -> None:
    if not path.exists():
        raise DatasetImportError(f"{path} does not exist.")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(4096)
        if not head.strip():
            raise DatasetImportError(f"The file {path.name} is empty: nothing to import.")


# -- Hugging Face layouts --------------------------------------------------------------------

@dataclass
class Shard:
    path: Path
    kind: str          # 'arrow' or 'parquet'
    split: str | None


def hf_shards(folder: Path) -> list[Shard]:
    """The data files of a save_to_disk folder (Dataset or DatasetDict) or of Parquet shards."""
    if folder.is_file():
        return [Shard(folder, "arrow" if folder.suffix == ".arrow" else "parquet", None)]
    if (folder / "dataset_dict.json").exists():
        splits = json.loads((folder / "dataset_dict.json").read_text())["splits"]
        shards = []
        for split in splits:
            shards += [Shard(s.path, s.kind, split) for s in hf_shards(folder / split)]
        return shards
    if (folder / "state.json").exists():
        state = json.loads((folder / "state.json").read_text())
        return [Shard(folder / f["filename"], "arrow", None) for f in state.get("_data_files", [])]
    parquet = sorted(folder.rglob("*.parquet"))
    if parquet:
        return [Shard(p, "parquet", _split_of(p, folder)) for p in parquet]
    arrow = sorted(folder.rglob("*.arrow"))
    if arrow:
        return [Shard(p, "arrow", _split_of(p, folder)) for p in arrow]
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


def shard_schema(shard: Shard) -> pa.Schema:
    if shard.kind == "parquet":
        return pq.ParquetFile(shard.path).schema_arrow
    return _open_arrow(shard.path).schema


def shard_batches(shard: Shard, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    if shard.kind == "parquet":
        yield from pq.ParquetFile(shard.path).iter_batches(batch_size=chunk_rows, columns=columns)
        return
    for batch in _open_arrow(shard.path):
        for start in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(start, chunk_rows).select(columns)


def shard_rows(shard: Shard) -> int | None:
    if shard.kind == "parquet":
        return pq.ParquetFile(shard.path).metadata.num_rows
    return None


def class_labels(schema: pa.Schema) -> dict[str, list[str]]:
    """ClassLabel names stored by `datasets` in the schema metadata: label ints become their names."""
    meta = (schema.metadata or {}).get(b"huggingface")
    if not meta:
        return {}
    with contextlib.suppress(ValueError, KeyError, TypeError):
        features = json.loads(meta)["info"]["features"]
        return {k: v["names"] for k, v in features.items() if isinstance(v, dict) and v.get("_type") == "ClassLabel"}
    return {}


# -- preview ---------------------------------------------------------------------------------

def preview_source(store: Any, path: str | Path, fmt: str | None = None, n: int = 20) -> SourcePreview:
    """Column names and the first rows, so the user can choose the text and attribute columns."""
    p = Path(path)
    check_not_empty(p)
    fmt = fmt or detect_format(p)
    if fmt == "hf" or fmt == "parquet":
        shards = hf_shards(p) if fmt == "hf" else [Shard(p, "parquet", None)]
        schema = shard_schema(shards[0])
        first = next(shard_batches(shards[0], schema.names, n), None)
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
    with staged_copy(store, p) as staged, contextlib.closing(store.fresh_cursor()) as cur:
        source, _ = csv_source(cur, staged, p.name)
        df = cur.execute(f"SELECT * FROM {source} LIMIT ?", [str(staged), n]).df()
    return SourcePreview(fmt, [str(c) for c in df.columns], df)


CSV_OPTIONS = "header = true, all_varchar = true, ignore_errors = true"


def csv_source(cur: Any, staged: Path, name: str) -> tuple[str, list[str]]:
    """The ``read_csv(?, ...)`` call that reads this file, and its header.

    DuckDB's dialect sniffer gives up on a file with a ragged row among its first rows; such a
    file is read with ``strict_mode = false``, which still rejects the ragged rows themselves.
    Files that read strictly are read as before. Run outside a transaction: a failed sniff aborts it."""
    error = ""
    for extra in ("", ", strict_mode = false"):
        source = f"read_csv(?, {CSV_OPTIONS}{extra})"
        try:
            header = [r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {source}", [str(staged)]).fetchall()]
        except duckdb.InvalidInputException as exc:
            error = str(exc).split("\n")[0]
            continue
        return source, header
    raise DatasetImportError(f"DuckDB cannot read {name} as CSV: {error}")
