"""Staging: uploaded bytes and files outside the allowed directories get a copy where DuckDB may read them."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
def staged_copy(store: Any, path: Path) -> Iterator[Path]:
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
