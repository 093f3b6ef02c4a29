"""The report as one self-contained file: Markdown or HTML, figures included.

HTML figures are bars drawn with inline CSS and maps drawn as inline SVG (no script, no external
file); Markdown gets the same figures as tables, and the maps as SVG data URIs (with a note: some
renderers block those). Every sample text and name is escaped: model output is untrusted, so
``<script>`` in a sample stays text in both formats.

The maps: one panel per set on the report's one projection, the other sets grey underneath,
the set's own points coloured by cluster and the largest clusters named at their centres
(c-TF-IDF keywords). A panel draws at most ``SVG_POINTS`` points of each kind (a fixed random
sample, and the panel says so), which keeps the file small: each point is a few bytes of one
SVG path per colour.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.evaluation.report import Report
from services.explore.cluster_keywords import name_positions, short_names
from services.explore.map_view import NOISE_COLOUR, PALETTE

SVG_POINTS = 3_000
SVG_W, SVG_H, SVG_PAD = 420, 320, 12
OTHER_COLOUR = "#dddddd"


@dataclass
class ReportMap:
    """The report's one projection, for the export: coordinates, each set's mask, clusters, names."""

    xy: np.ndarray
    masks: dict[str, np.ndarray]
    clusters: np.ndarray
    method: str = "UMAP"
    names: list[tuple[float, float, str]] = field(default_factory=list)
    caption: str = ""


def report_map(xy: np.ndarray, masks: dict[str, np.ndarray], clusters: np.ndarray | None, texts: list[str], *,
               method: str = "UMAP", caption: str = "", max_names: int = 8) -> ReportMap:
    """The export's map: names from the clusters' keywords (no model call in an export)."""
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.full(len(xy), -1) if clusters is None else np.asarray(clusters)
    names = (name_positions(xy, labels, short_names(texts, labels), max_names=max_names, size_px=(SVG_W, SVG_H))
             if (labels >= 0).any() else [])
    return ReportMap(xy, masks, labels, method, names, caption)


def _thin(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))


def svg_panel(m: ReportMap, name: str, *, limit: int = SVG_POINTS) -> tuple[str, str]:
    """One set's panel as an inline SVG, and a note when points were thinned ("" otherwise)."""
    xy = m.xy
    lo, span = xy.min(axis=0), np.ptp(xy, axis=0)
    span = np.where(span > 0, span, 1.0)
    px = SVG_PAD + (xy[:, 0] - lo[0]) / span[0] * (SVG_W - 2 * SVG_PAD)
    py = SVG_H - SVG_PAD - (xy[:, 1] - lo[1]) / span[1] * (SVG_H - 2 * SVG_PAD)  # y up, as on the page
    mask = m.masks[name]
    mine, others = np.flatnonzero(mask), np.flatnonzero(~mask)
    drawn_mine, drawn_others = _thin(mine, limit, 0), _thin(others, limit, 1)

    def path(rows: np.ndarray, colour: str, width: float) -> str:
        if not len(rows):
            return ""
        d = "".join(f"M{px[i]:.1f} {py[i]:.1f}h0" for i in rows)
        return f"<path d='{d}' stroke='{colour}' stroke-width='{width}' stroke-linecap='round' fill='none'/>"

    parts = [path(drawn_others, OTHER_COLOUR, 3.5)]
    labels = m.clusters[drawn_mine]
    for c in sorted(set(labels.tolist())):
        colour = NOISE_COLOUR if c < 0 else PALETTE[int(c) % len(PALETTE)]
        parts.append(path(drawn_mine[labels == c], colour, 4.5))
    for x, y, text in m.names:
        tx = SVG_PAD + (x - lo[0]) / span[0] * (SVG_W - 2 * SVG_PAD)
        ty = SVG_H - SVG_PAD - (y - lo[1]) / span[1] * (SVG_H - 2 * SVG_PAD)
        parts.append(f"<text x='{tx:.1f}' y='{ty:.1f}' text-anchor='middle' font-family='sans-serif' font-size='11' paint-order='stroke' "
                     f"stroke='white' stroke-width='3' fill='#222'>{html.escape(text)}</text>")
    svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{SVG_W}' height='{SVG_H}' viewBox='0 0 {SVG_W} {SVG_H}' "
           f"role='img'><title>{html.escape(name)}</title><rect width='100%' height='100%' fill='white' stroke='#ddd'/>"
           + "".join(parts) + "</svg>")
    note = ""
    if len(drawn_mine) < len(mine) or len(drawn_others) < len(others):
        note = (f"Drawn: {len(drawn_mine):,} of this set's {len(mine):,} points and {len(drawn_others):,} of the other "
                f"{len(others):,} (a fixed random sample, to keep the file small).")
    return svg, note


def _map_intro(m: ReportMap) -> str:
    return (f"One {m.method} projection of all {len(m.xy):,} texts, one panel per set; the other sets are grey "
            "underneath, this set's points coloured by cluster (grey: noise), the largest clusters named by their keywords. "
            + m.caption).strip()


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


def to_markdown(r: Report, title: str = "Evaluation report", maps: ReportMap | None = None) -> str:
    out = [f"# {_md_cell(title)}\n", f"Sets: {', '.join(_md_cell(s) for s in r.sets)}; baseline: {_md_cell(r.baseline)}.\n"]
    if maps is not None:
        out.append("## Maps\n")
        out.append(f"> {_md_cell(_map_intro(maps))} Each map is an SVG data URI; a renderer that blocks those "
                   "shows only the alt text, and the HTML export has the same maps inline.\n")
        for name in maps.masks:
            svg, note = svg_panel(maps, name)
            uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
            out.append(f"![map of {_md_cell(name).replace(']', '')}]({uri})\n")
            if note:
                out.append(f"> {_md_cell(note)}\n")
    for name, table, notes, _ in _sections(r):
        out.append(f"## {name}\n")
        out += [f"> {_md_cell(n)}\n" for n in notes]
        out.append(md_table(table))
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "td,th{border:1px solid #ddd;padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}"
        ".bar{background:#4c78a8;height:10px;display:inline-block;margin-right:4px}.note{color:#555;font-size:13px}"
        ".maps{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:13px;max-width:420px}")


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


def to_html(r: Report, title: str = "Evaluation report", maps: ReportMap | None = None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>Sets: {html.escape(', '.join(r.sets))}; baseline: {html.escape(r.baseline)}.</p>"]
    if maps is not None:
        parts.append(f"<h2>Maps</h2><p class='note'>{html.escape(_map_intro(maps))}</p><div class='maps'>")
        for name in maps.masks:
            svg, note = svg_panel(maps, name)
            parts.append(f"<figure>{svg}<figcaption>{html.escape(name)}"
                         + (f"<br><span class='note'>{html.escape(note)}</span>" if note else "") + "</figcaption></figure>")
        parts.append("</div>")
    for name, table, notes, bar in _sections(r):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes]
        parts.append(_html_table(table, bar))
    parts.append("</body></html>")
    return "".join(parts)
