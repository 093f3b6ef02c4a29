"""Fast scans of a text file's lines, in numpy: which lines hold given records, and about how many rows.

A JSONL record is a line that is not blank (DuckDB's ``read_json`` skips lines of whitespace), so
the Nth record is not always line N. Finding the line of a few failing records in a file of a
million lines must not cost a Python step per line: the file is memory-mapped and its newlines
found by numpy, a window of 64 MB at a time (bounded memory); only the lines asked for are copied.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

WINDOW_BYTES = 64 << 20
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.strip() removes, and DuckDB skips as blank


def record_lines(path: Path, records: list[int], n_records: int | None = None,
                 window: int = WINDOW_BYTES) -> list[tuple[int, bytes]]:
    """(line number, line without its newline) of each given record (1-based, ascending), where a
    record is a non-blank line. Records past the end of the file are left out.

    ``n_records``, the number of records DuckDB read, allows a quicker pass: when the file has as
    many lines, none is blank, record N is line N, and newlines need only be counted, not found,
    except in the windows that hold a wanted line."""
    if not records or path.stat().st_size == 0:
        return []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        data = np.frombuffer(mm, dtype=np.uint8)
        try:
            found = _lines_if_none_blank(data, mm, records, n_records) if n_records is not None else None
            return found if found is not None else _scan(data, mm, records, window)
        finally:
            del data  # the map cannot close while numpy holds a view of it


COUNT_BYTES = 1 << 20


def _lines_if_none_blank(data: np.ndarray, mm: mmap.mmap, records: list[int], n_records: int) -> list[tuple[int, bytes]] | None:
    size = len(data)
    counts = np.array([np.count_nonzero(data[lo:lo + COUNT_BYTES] == 10) for lo in range(0, size, COUNT_BYTES)])
    n_newlines = int(counts.sum())
    if n_newlines + int(data[-1] != 10) != n_records:
        return None  # some line is blank (or DuckDB counted otherwise): find each record's line
    upto = np.cumsum(counts)
    held: tuple[int, np.ndarray] = (-1, np.empty(0, dtype=np.int64))

    def newline(k: int) -> int:  # the position of the k-th newline (1-based)
        nonlocal held
        w = int(np.searchsorted(upto, k))
        if held[0] != w:
            held = (w, np.flatnonzero(data[w * COUNT_BYTES:(w + 1) * COUNT_BYTES] == 10) + w * COUNT_BYTES)
        return int(held[1][k - (int(upto[w - 1]) if w else 0) - 1])

    out = []
    for line in records:
        if line > n_records:
            break
        start = newline(line - 1) + 1 if line > 1 else 0
        end = mm.find(b"\n", start)
        out.append((line, bytes(mm[start:end if end >= 0 else size])))
    return out


def _scan(data: np.ndarray, mm: mmap.mmap, records: list[int], window: int) -> list[tuple[int, bytes]]:
    """Every line's start and end, a window at a time, blank lines told apart."""
    out: list[tuple[int, bytes]] = []
    want = np.asarray(records, dtype=np.int64)
    size, lo, record_base, line_base, wi = len(data), 0, 0, 0, 0
    while lo < size and wi < len(want):
        hi = min(size, lo + window)
        nl = np.flatnonzero(data[lo:hi] == 10) + lo
        if hi < size:
            if not len(nl):  # one line longer than a window: take it whole
                rest = np.flatnonzero(data[hi:] == 10)
                nl = rest[:1] + hi if len(rest) else nl
            hi = int(nl[-1]) + 1 if len(nl) else size
        starts = np.concatenate(([lo], nl + 1))
        ends = np.concatenate((nl, [hi]))
        if starts[-1] >= hi:  # the window ends with a newline: no line after it
            starts, ends = starts[:-1], ends[:-1]
        blank = _blank(data, mm, starts, ends)
        upto = record_base + np.cumsum(~blank)
        take = want[wi:][want[wi:] <= (upto[-1] if len(upto) else record_base)]
        for j in np.searchsorted(upto, take):
            s, e = int(starts[j]), int(ends[j])
            out.append((line_base + int(j) + 1, bytes(mm[s:e])))
        wi += len(take)
        record_base = int(upto[-1]) if len(upto) else record_base
        line_base += len(starts)
        lo = hi
    return out


def _blank(data: np.ndarray, mm: mmap.mmap, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines are blank: empty, or whitespace only (checked one by one: few lines start with a space)."""
    lengths = ends - starts
    first = np.where(lengths > 0, data[np.minimum(starts, len(data) - 1)], 10)
    blank = _SPACE[first]
    for j in np.flatnonzero(blank):
        if lengths[j] > 0 and bytes(mm[int(starts[j]):int(ends[j])]).strip():
            blank[j] = False
    return blank


def estimate_rows(path: Path, header: bool = False, sample_bytes: int = 1 << 20) -> int | None:
    """About how many lines the file holds (less a header), from the length of its first lines;
    exact for a file shorter than the sample. None for a file without a newline in the sample."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(sample_bytes)
    lines = head.count(b"\n") + (1 if head and not head.endswith(b"\n") and len(head) == size else 0)
    if len(head) >= size:
        return max(0, lines - header)
    if not lines:
        return None
    return max(1, round(size * lines / len(head)) - header)
