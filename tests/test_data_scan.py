"""The numpy line scans of services.data.scan, against a plain Python reading of the same bytes."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from services.data.scan import estimate_rows, record_lines


def _naive(data: bytes) -> list[tuple[int, bytes]]:
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return [(i + 1, line) for i, line in enumerate(lines) if line.strip()]


def _file(tmp_path: Path, rnd: random.Random, blank: bool, trailing_newline: bool) -> tuple[Path, bytes]:
    parts = []
    for i in range(3_000):
        parts.append(b'{"text": "row %d%s"}' % (i, b"x" * rnd.randint(0, 300)) + (b"\r" if i % 13 == 0 else b""))
        if blank and i % 97 == 5:
            parts.append(rnd.choice([b"", b"   ", b"\t", b"\r", b" \x0c "]))
    data = b"\n".join(parts) + (b"\n" if trailing_newline else b"")
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize("blank", [False, True])
@pytest.mark.parametrize("trailing_newline", [False, True])
def test_record_lines_match_a_plain_reading(tmp_path: Path, blank: bool, trailing_newline: bool) -> None:
    rnd = random.Random(f"{blank}{trailing_newline}")
    path, data = _file(tmp_path, rnd, blank, trailing_newline)
    expected = _naive(data)
    wanted = sorted(rnd.sample(range(1, len(expected) + 1), 60) + [1, len(expected)])
    want = [expected[r - 1] for r in dict.fromkeys(wanted)]
    records = list(dict.fromkeys(wanted))
    # small windows, so that lines straddle windows and some lines are longer than one
    assert record_lines(path, records, window=200) == want
    assert record_lines(path, records, n_records=len(expected)) == want  # the counting pass (or its fallback)
    assert record_lines(path, records + [len(expected) + 5]) == want  # a record past the end is left out


def test_counting_pass_falls_back_when_counts_differ(tmp_path: Path, monkeypatch) -> None:
    from services.data import scan

    monkeypatch.setattr(scan, "COUNT_BYTES", 1_000)  # many count windows
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"a\n\nb\nc\n" * 500)
    expected = _naive(path.read_bytes())
    records = [1, 2, 700, 1_500]
    # DuckDB read 1,500 records but the file has 2,000 lines: one in four is blank
    assert record_lines(path, records, n_records=1_500) == [expected[r - 1] for r in records]
    path.write_bytes(b"a\nb\nc\n" * 500)
    assert record_lines(path, [1, 999, 1_500], n_records=1_500) == [(1, b"a"), (999, b"c"), (1_500, b"c")]


def test_estimate_rows(tmp_path: Path) -> None:
    small = tmp_path / "s.csv"
    small.write_text("h\n" + "row\n" * 10)
    assert estimate_rows(small, header=True) == 10
    big = tmp_path / "b.jsonl"
    big.write_bytes(b'{"t": "0123456789"}\n' * 200_000)
    assert abs(estimate_rows(big, sample_bytes=1 << 16) - 200_000) < 200
    assert estimate_rows(tmp_path / "s.csv", sample_bytes=1) is None  # no newline in the sample


def test_lines_at_counts_newlines_across_blocks(tmp_path: Path) -> None:
    from services.data.scan import COUNT_BYTES, lines_at

    src = tmp_path / "f.txt"
    lines = [b"x" * (i % 97) for i in range(60_000)]
    src.write_bytes(b"\n".join(lines) + b"\n")
    data = src.read_bytes()
    assert len(data) > 2 * COUNT_BYTES
    starts = [0, *[i + 1 for i in range(len(data)) if data[i] == 10][:-1]]
    wanted = [0, 1, 59_999, 12_345, COUNT_BYTES // 50, 40_000]  # not in order, some lines empty
    assert lines_at(src, [starts[k] for k in wanted]) == [k + 1 for k in wanted]


def test_csv_record_lines_follow_quoted_newlines_blank_lines_and_skipped_records(tmp_path: Path) -> None:
    from services.data.scan import csv_record_lines

    src = tmp_path / "f.csv"
    src.write_text("a;b\n'x\ny';1\n\n2;3\nbad;bad;bad\n'it''s';4\n5;6\n")
    assert csv_record_lines(src, (";", "'", "'"), [1, 2, 3, 4], {6}) == [2, 5, 7, 8]
    assert csv_record_lines(src, (";", "'", ""), [3], set()) == [6]
