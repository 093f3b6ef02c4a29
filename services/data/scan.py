"""Fast scans of a text file's lines, in numpy: which lines hold given records, and about how many rows.

A JSONL record is a line that is not blank (DuckDB's ``read_json`` skips lines of whitespace), so
the Nth record is not always line N. Finding the line of a few failing records in a file of a
million lines must not cost a Python step per line: newlines are found by numpy in blocks read
into one reused buffer (bounded memory: a memory map of the whole file would count the whole file
as resident), and only the lines asked for are copied.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

WINDOW_BYTES = 16 << 20
COUNT_BYTES = 1 << 20
_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(b" \t\n\r\x0b\x0c")] = True  # what bytes.strip() removes, and DuckDB skips as blank


class NewlineCounts:
    """The newlines in each block of a file, counted one block per ``step()``, so that a caller
    waiting on something else (DuckDB reading the same file) can count meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: list[int] = []
        self.last_byte = 10
        self._steps = self._count()

    def _count(self) -> Iterator[None]:
        with open(self.path, "rb") as f:
            for block in _blocks(f, COUNT_BYTES):
                self.counts.append(int(np.count_nonzero(block == 10)))
                self.last_byte = int(block[-1])
                yield

    def step(self) -> bool:
        """Count one more block; False once the whole file is counted."""
        return next(self._steps, False) is None

    def finish(self) -> NewlineCounts:
        for _ in self._steps:
            pass
        return self


def record_lines(path: Path, records: list[int], n_records: int | None = None,
                 window: int = WINDOW_BYTES, counts: NewlineCounts | None = None) -> list[tuple[int, bytes]]:
    """(line number, line without its newline) of each given record (1-based, ascending), where a
    record is a non-blank line. Records past the end of the file are left out.

    ``n_records``, the number of records DuckDB read, allows a quicker pass: when the file has as
    many lines, none is blank, record N is line N, and newlines need only be counted (or taken
    from ``counts``, counted earlier), not found, except in the blocks that hold a wanted line."""
    if not records or path.stat().st_size == 0:
        return []
    with open(path, "rb") as f:
        found = None
        if n_records is not None:
            found = _lines_if_none_blank(f, records, n_records, (counts or NewlineCounts(path)).finish())
        return found if found is not None else _scan(f, records, window)


def lines_at(path: Path, offsets: list[int], counts: NewlineCounts | None = None) -> list[int]:
    """The line number (1-based) of each byte offset: one more than the newlines before it, from
    the counts per block; each block that holds an offset is read once more."""
    newlines = (counts or NewlineCounts(path)).finish()
    before = np.concatenate(([0], np.cumsum(newlines.counts, dtype=np.int64)))
    out = [0] * len(offsets)
    held, found = -1, np.empty(0, dtype=np.int64)
    with open(path, "rb") as f:
        for i in sorted(range(len(offsets)), key=offsets.__getitem__):
            block = offsets[i] // COUNT_BYTES
            if block != held:
                f.seek(block * COUNT_BYTES)
                found = np.flatnonzero(np.frombuffer(f.read(COUNT_BYTES), dtype=np.uint8) == 10) + block * COUNT_BYTES
                held = block
            out[i] = int(before[min(block, len(before) - 1)]) + int(np.searchsorted(found, offsets[i])) + 1
    return out


def csv_record_lines(path: Path, dialect: tuple[str, str, str], records: list[int], skip_lines: set[int]) -> list[int]:
    """The line (1-based) on which each given record of a CSV file starts, where records are
    numbered 1.. after the header as DuckDB keeps them: blank lines and the records that start on
    ``skip_lines`` (those DuckDB rejected) are not records, and a quoted field may hold newlines.

    Python's csv reader, with DuckDB's sniffed (delimiter, quote, escape), up to the last record
    asked for; for files where a line is not always a record, so a count cannot tell."""
    delimiter, quote, escape = dialect
    options: dict = {"delimiter": delimiter or ",", "strict": False}
    if quote:
        options |= {"quotechar": quote, "doublequote": escape in ("", quote), "escapechar": None if escape in ("", quote) else escape}
    else:
        options |= {"quoting": csv.QUOTE_NONE}
    want = iter(records)
    target = next(want, None)
    out: list[int] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, **options)
        next(reader, None)  # the header
        start, number = reader.line_num + 1, 0
        for row in reader:
            if row and start not in skip_lines:
                number += 1
                if number == target:
                    out.append(start)
                    target = next(want, None)
                    if target is None:
                        break
            start = reader.line_num + 1
    return out


def _blocks(f: BinaryIO, size: int) -> Iterator[np.ndarray]:
    """The file from its start in blocks of ``size`` bytes, each read into the same buffer."""
    buf = bytearray(size)
    f.seek(0)
    while n := f.readinto(buf):
        yield np.frombuffer(buf, dtype=np.uint8, count=n)


def _lines_if_none_blank(f: BinaryIO, records: list[int], n_records: int,
                         newlines: NewlineCounts) -> list[tuple[int, bytes]] | None:
    counts = newlines.counts
    if sum(counts) + int(newlines.last_byte != 10) != n_records:
        return None  # some line is blank (or DuckDB counted otherwise): find each record's line
    upto = np.cumsum(counts)
    held: tuple[int, np.ndarray] = (-1, np.empty(0, dtype=np.int64))

    def newline(k: int) -> int:  # the position in the file of the k-th newline (1-based)
        nonlocal held
        w = int(np.searchsorted(upto, k))
        if held[0] != w:
            f.seek(w * COUNT_BYTES)
            held = (w, np.flatnonzero(np.frombuffer(f.read(COUNT_BYTES), dtype=np.uint8) == 10) + w * COUNT_BYTES)
        return int(held[1][k - (int(upto[w - 1]) if w else 0) - 1])

    out = []
    for line in records:
        if line > n_records:
            break
        f.seek(newline(line - 1) + 1 if line > 1 else 0)
        out.append((line, f.readline().removesuffix(b"\n")))
    return out


def _scan(f: BinaryIO, records: list[int], window: int) -> list[tuple[int, bytes]]:
    """Every line's start and end, a window at a time (cut at a line end), blank lines told apart."""
    out: list[tuple[int, bytes]] = []
    want = np.asarray(records, dtype=np.int64)
    record_base = line_base = wi = 0
    tail = b""
    f.seek(0)
    while wi < len(want):
        chunk = f.read(window)
        data = tail + chunk
        if not data:
            break
        if chunk:
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a window: read on to its end
                tail = data
                continue
        else:
            cut = len(data)  # the last line, without a newline after it
        arr = np.frombuffer(data, dtype=np.uint8, count=cut)
        nl = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], nl + 1))
        ends = np.concatenate((nl, [cut]))
        if starts[-1] >= cut:  # the window ends with a newline: no line after it
            starts, ends = starts[:-1], ends[:-1]
        blank = _blank(arr, data, starts, ends)
        upto = record_base + np.cumsum(~blank)
        take = want[wi:][want[wi:] <= (upto[-1] if len(upto) else record_base)]
        for j in np.searchsorted(upto, take):
            out.append((line_base + int(j) + 1, data[int(starts[j]):int(ends[j])]))
        wi += len(take)
        record_base = int(upto[-1]) if len(upto) else record_base
        line_base += len(starts)
        tail = data[cut:]
        if not chunk:
            break
    return out


def _blank(arr: np.ndarray, data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which lines are blank: empty, or whitespace only (checked one by one: few lines start with a space)."""
    lengths = ends - starts
    first = np.where(lengths > 0, arr[np.minimum(starts, len(arr) - 1)], 10)
    blank = _SPACE[first]
    for j in np.flatnonzero(blank):
        if lengths[j] > 0 and data[int(starts[j]):int(ends[j])].strip():
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
