"""The report as one self-contained file: Markdown or HTML, figures included.

HTML figures are bars drawn with inline CSS (no script, no external file); Markdown gets the
same figures as tables. Every sample text and name is escaped: model output is untrusted, so
``<script>`` in a sample stays text in both formats.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from services.evaluation.report import Report


def _num(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def _md_cell(v: object) -> str:
    text = _num(v)
    # Pipes would split the cell; angle brackets and backticks are escaped so a sample is never markup.
    return html.escape(" ".join(text.split())).replace("|", "\\|").replace("`", "\\`")


def md_table(frame: pd.DataFrame) -> str:
    if frame is None or frame.empty:
        return "_nothing to show_\n"
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _sections(r: Report) -> list[tuple[str, pd.DataFrame | None, list[str], str | None]]:
    """(title, table, notes, bar column) per section, in the report's order."""
    curve = r.tstr.table if r.tstr is not None else None
    return [
        ("Diversity (95% intervals; a difference is named only where intervals do not overlap)", r.diversity_table,
         r.notes.get("diversity", []), None),
        ("Coverage", r.coverage.summary, r.coverage.notes + r.notes.get("coverage", []), None),
        ("Condition shares", r.coverage.shares, [], "share"),
        ("Empty cells", r.coverage.empty.head(50), [], None),
        ("Collapsed cells", r.coverage.collapsed, [], None),
        ("Cost", r.cost, r.notes.get("cost", []), None),
        ("Faithfulness by an embedding classifier (cross-validated accuracy vs chance)", r.faithfulness,
         r.notes.get("faithfulness", []), "accuracy"),
        ("Worst cells, with an example the classifier read as another value", r.worst_cells.head(15), [], "recall"),
        ("Prompt echo", r.echo, r.notes.get("echo", []), "share"),
        ("Prompt echo examples", r.echo_examples, [], None),
        ("Label noise: review queue, least confident first", r.label_queue.head(30), r.notes.get("labels", []), "confidence"),
        ("Train on synthetic, test on real (learning curve)", curve, r.notes.get("tstr", []), "macro_f1"),
    ]


def to_markdown(r: Report, title: str = "Evaluation report") -> str:
    out = [f"# {_md_cell(title)}\n", f"Sets: {', '.join(_md_cell(s) for s in r.sets)}; baseline: {_md_cell(r.baseline)}.\n"]
    for name, table, notes, _ in _sections(r):
        out.append(f"## {name}\n")
        out += [f"> {_md_cell(n)}\n" for n in notes]
        out.append(md_table(table))
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "td,th{border:1px solid #ddd;padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}"
        ".bar{background:#4c78a8;height:10px;display:inline-block;margin-right:4px}.note{color:#555;font-size:13px}")


def _html_table(frame: pd.DataFrame | None, bar: str | None) -> str:
    if frame is None or frame.empty:
        return "<p class='note'>nothing to show</p>"
    cols = list(frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = []
        for c, v in zip(cols, row, strict=True):
            text = html.escape(_num(v))
            if c == bar and isinstance(v, int | float) and not math.isnan(float(v)):
                width = max(0.0, min(1.0, float(v))) * 120
                text = f"<span class='bar' style='width:{width:.0f}px'></span>{text}"
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def to_html(r: Report, title: str = "Evaluation report") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>Sets: {html.escape(', '.join(r.sets))}; baseline: {html.escape(r.baseline)}.</p>"]
    for name, table, notes, bar in _sections(r):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
        parts.append(_html_table(table, bar))
    parts.append("</body></html>")
    return "".join(parts)
