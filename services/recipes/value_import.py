"""Reading dimension values and demonstrations from pasted text and uploaded files.

Every parse returns what it could read plus a list of problems with line numbers, so a
bad line is reported and the good ones are kept.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePath

from services.core.errors import StudioError
from services.recipes.recipe import Demo, Value

SUPPORTED = (".txt", ".csv", ".jsonl")


class UploadError(StudioError, ValueError):
    """A file that cannot be read at all (wrong format, encoding, or empty)."""

    title = "The file cannot be read"


@dataclass
class Parsed:
    values: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def decode_text(data: bytes, filename: str = "file") -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UploadError(
            f"{filename} is not UTF-8 text (byte {data[exc.start]:#04x} at position {exc.start}); save it as UTF-8 and upload again"
        ) from None
    if "\x00" in text:
        raise UploadError(f"{filename} looks like a binary file, not text")
    if not text.strip():
        raise UploadError(f"{filename} is empty")
    return text


LABEL_SEP = " :: "


def _labelled(line: str, **kw) -> Value:
    """``label :: full text`` gives a value shown as its label and rendered as its text."""
    label, sep, text = line.partition(LABEL_SEP.strip())
    if sep and label.strip() and text.strip():
        return Value(label=label.strip(), text=text.strip(), **kw)
    return Value(text=line.strip(), **kw)


def parse_value_lines(text: str) -> Parsed:
    """One value per line, optionally ``label :: full text`` and/or ``value | weight``. Blank lines are skipped."""
    out = Parsed()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        value, sep, weight = line.rpartition("|") if "|" in line else (line, "", "")
        if not sep:
            out.values.append(_labelled(line))
            continue
        try:
            w = float(weight)
        except ValueError:
            out.problems.append(f"line {n}: weight {weight.strip()!r} is not a number")
            continue
        out.values.append(_labelled(value, weight=w))
    return out


def format_value_lines(values: list[Value]) -> str:
    return "\n".join((f"{v.label}{LABEL_SEP}{v.text}" if v.label else v.text) + (f" | {v.weight:g}" if v.weight != 1.0 else "")
                     for v in values)


def split_at_colon(values: list[Value]) -> tuple[list[Value], int]:
    """``Name: description`` values get ``Name`` as their short label (the text stays whole, so the
    prompt is unchanged); values without a colon, or already labelled, are kept. Also the count split."""
    out, n = [], 0
    for v in values:
        head, sep, rest = v.text.partition(":")
        if v.label or not sep or not head.strip() or not rest.strip():
            out.append(v)
            continue
        out.append(Value(label=head.strip(), text=v.text, weight=v.weight))
        n += 1
    return out, n


def values_have_colons(values: list[Value]) -> bool:
    """Whether most values look like ``Name: description`` (worth offering the split)."""
    with_colon = sum(1 for v in values if not v.label and ":" in v.text.strip(":"))
    return bool(values) and with_colon * 2 >= len(values)


def parse_values_file(filename: str, data: bytes) -> Parsed:
    """Values from a .txt (one per line), .csv (column 'value' or the first; optional 'weight' and
    'label') or .jsonl file (strings, or objects with 'value' or 'text' and optional 'weight', 'label')."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise UploadError(f"{filename}: unsupported file type {suffix or '(none)'}; use {', '.join(SUPPORTED)}")
    text = decode_text(data, filename)
    if suffix == ".txt":
        return parse_value_lines(text)
    out = Parsed()
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        header = [h.strip().lower() for h in rows[0]]
        has_header = "value" in header or "text" in header
        col = header.index("value") if "value" in header else header.index("text") if "text" in header else 0
        wcol = header.index("weight") if "weight" in header else None
        lcol = header.index("label") if "label" in header and has_header else None
        for n, row in enumerate(rows[1:] if has_header else rows, 2 if has_header else 1):
            if not row or not any(c.strip() for c in row):
                continue
            if col >= len(row):
                out.problems.append(f"line {n}: has {len(row)} columns, expected at least {col + 1}")
                continue
            _append(out, n, row[col], row[wcol] if wcol is not None and wcol < len(row) else None,
                    row[lcol] if lcol is not None and lcol < len(row) else "")
        return out
    for n, obj in _json_lines(text, out):
        if isinstance(obj, str | int | float) and not isinstance(obj, bool):
            _append(out, n, str(obj), None)
        elif isinstance(obj, dict) and ("value" in obj or "text" in obj):
            _append(out, n, str(obj.get("value", obj.get("text"))), obj.get("weight"), str(obj.get("label") or ""))
        else:
            out.problems.append(f"line {n}: expected a string or an object with a 'value' field")
    return out


def _json_lines(text: str, out: Parsed):
    """(line number, parsed value) for each non-blank JSON line; bad lines go to out.problems."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(f"line {n}: invalid JSON ({exc.msg})")


def _append(out: Parsed, n: int, text: str, weight, label: str = "") -> None:
    if weight in (None, ""):
        out.values.append(Value(text=text.strip(), label=label.strip()))
        return
    try:
        out.values.append(Value(text=text.strip(), weight=float(weight), label=label.strip()))
    except (TypeError, ValueError):
        out.problems.append(f"line {n}: weight {weight!r} is not a number")


def parse_demos(filename: str, data: bytes | str, text_field: str = "text") -> Parsed:
    """Demonstrations from .txt (one per line), .csv or .jsonl (a text column; other columns become attributes)."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUPPORTED:
        raise UploadError(f"{filename}: unsupported file type {suffix or '(none)'}; use {', '.join(SUPPORTED)}")
    text = decode_text(data, filename) if isinstance(data, bytes) else data
    out = Parsed()
    records: list[tuple[int, dict]] = []
    if suffix == ".txt":
        records = [(n, {text_field: line.strip()}) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    elif suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or text_field not in reader.fieldnames:
            raise UploadError(f"{filename}: no '{text_field}' column (columns: {', '.join(reader.fieldnames or [])})")
        for n, row in enumerate(reader, 2):
            if None in row:
                out.problems.append(f"line {n}: more fields than the header has")
                continue
            records.append((n, row))
    else:
        for n, obj in _json_lines(text, out):
            if not isinstance(obj, dict):
                out.problems.append(f"line {n}: expected a JSON object")
                continue
            records.append((n, obj))
    for n, rec in records:
        body = rec.get(text_field)
        if body is None or not str(body).strip():
            out.problems.append(f"line {n}: no '{text_field}'")
            continue
        demo_id = str(rec.get("id") or f"demo-{n}")
        attrs = {k: str(v) for k, v in rec.items() if k not in (text_field, "id") and v is not None}
        out.values.append(Demo(id=demo_id, text=str(body), attributes=attrs))
    return out


def parse_parent_values(filename: str, data: bytes) -> tuple[dict[str, list[Value]], list[str]]:
    """A dependent dimension's values from a ``parent,value`` CSV: values grouped by parent value,
    and the bad lines. As in a one-dimension file, a value may carry a short label, written
    ``label :: full text`` in its cell or given in a third column (``label`` in a header row whose
    first cell is ``parent``, which may also name a ``weight`` column; without a header, the third
    column is the label)."""
    text = decode_text(data, filename)
    groups: dict[str, list[Value]] = {}
    problems: list[str] = []
    vcol, lcol, wcol = 1, 2, None
    for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not any(c.strip() for c in row):
            continue
        if n == 1 and row[0].strip().lower() == "parent":
            header = [h.strip().lower() for h in row]
            vcol = header.index("value") if "value" in header else header.index("text") if "text" in header else 1
            lcol = header.index("label") if "label" in header else None
            wcol = header.index("weight") if "weight" in header else None
            continue
        if len(row) <= vcol or not row[0].strip() or not row[vcol].strip():
            problems.append(f"line {n}: expected two cells, parent,value; got {row!r}")
            continue
        label = row[lcol].strip() if lcol is not None and lcol < len(row) else ""
        weight = row[wcol].strip() if wcol is not None and wcol < len(row) else ""
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            problems.append(f"line {n}: weight {weight!r} is not a number")
            continue
        value = Value(text=row[vcol].strip(), label=label, weight=w) if label else _labelled(row[vcol], weight=w)
        groups.setdefault(row[0].strip(), []).append(value)
    return groups, problems
