"""What a box or lasso selection on the Explore map can do: tag, drop in review, export.

A selection is row numbers of the map's frame (``services.explore.items``): samples of runs
(``run_id`` set, ``id`` = sample key) and dataset rows (no run; ``id`` = ``dataset:row``). Only
samples can be tagged or reviewed; every action says how many rows it left out and why. Each
returns its counts, so the page can say what it did ("tagged 37 samples 'off-topic'").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from services.core.clock import utc_now
from services.core.errors import StudioError
from services.core.store import Store
from services.curation.export import samples_frame
from services.curation.review_store import restore_reviews, review_rows, set_review
from services.explore.items import NONE

DROP_NOTE = "dropped from map selection"
TAG_MAX = 60


class TagError(StudioError, ValueError):
    """A tag name that cannot be stored."""

    title = "That tag cannot be used"


@dataclass(frozen=True)
class Selection:
    """The selected rows, split: samples (their keys) and dataset rows (their ids)."""

    sample_keys: list[str]
    dataset_ids: list[str]
    rows: list[int]  # the map rows, in the order given

    @property
    def n(self) -> int:
        return len(self.rows)

    def left_out(self, action: str) -> str:
        """A sentence on the dataset rows an action on samples leaves out ('' when none)."""
        k = len(self.dataset_ids)
        if not k:
            return ""
        return (f"{k} selected dataset row(s) cannot be {action}: only generated samples can "
                f"(export them with the selection's dataset rows below, or query dataset_rows on the SQL page).")


def split_selection(frame: pd.DataFrame, rows: Sequence[int]) -> Selection:
    """Split map rows (positions in the items frame) into sample keys and dataset row ids."""
    rows = [int(r) for r in rows if 0 <= int(r) < len(frame)]
    sub = frame.iloc[rows]
    is_sample = sub["run_id"].notna().to_numpy()
    ids = sub["id"].astype(str).to_numpy()
    return Selection(ids[is_sample].tolist(), ids[~is_sample].tolist(), rows)


# -- tags ------------------------------------------------------------------------------------

def clean_tag(tag: str) -> str:
    """A tag is a short name: spaces collapsed, at most TAG_MAX characters, not empty."""
    t = re.sub(r"\s+", " ", tag or "").strip()
    if not t:
        raise TagError("Name the tag first (for example 'off-topic').")
    if len(t) > TAG_MAX:
        raise TagError(f"A tag has at most {TAG_MAX} characters; this one has {len(t)}.")
    return t


@dataclass(frozen=True)
class TagResult:
    tag: str
    tagged: int  # samples that got the tag now
    already: int  # samples that had it before
    left_out: str = ""

    def summary(self) -> str:
        text = f"Tagged {self.tagged} sample(s) '{self.tag}'"
        text += f" ({self.already} already had it)." if self.already else "."
        return f"{text} {self.left_out}".strip()


def tag_samples(store: Store, selection: Selection, tag: str) -> TagResult:
    """Put ``tag`` on the selected samples (dataset rows are left out, and said so)."""
    t = clean_tag(tag)
    keys = list(dict.fromkeys(selection.sample_keys))
    with store.write() as cur:
        before = cur.execute("SELECT count(*) FROM sample_tags WHERE tag = ? AND sample_key IN (SELECT unnest(?::VARCHAR[]))",
                             [t, keys]).fetchone()[0] if keys else 0
        if keys:  # one statement over the key list (executemany is row by row: minutes at 10^5)
            cur.execute("INSERT INTO sample_tags (sample_key, tag, tagged_at) SELECT unnest(?::VARCHAR[]), ?, ?"
                        " ON CONFLICT DO NOTHING", [keys, t, utc_now()])
    return TagResult(t, len(keys) - int(before), int(before), selection.left_out("tagged"))


def untag_samples(store: Store, selection: Selection, tag: str) -> int:
    """Take ``tag`` off the selected samples; returns how many had it."""
    t = clean_tag(tag)
    keys = list(dict.fromkeys(selection.sample_keys))
    if not keys:
        return 0
    with store.write() as cur:
        n = cur.execute("SELECT count(*) FROM sample_tags WHERE tag = ? AND sample_key IN (SELECT unnest(?::VARCHAR[]))",
                        [t, keys]).fetchone()[0]
        cur.execute("DELETE FROM sample_tags WHERE tag = ? AND sample_key IN (SELECT unnest(?::VARCHAR[]))", [t, keys])
    return int(n)


def list_tags(store: Store) -> pd.DataFrame:
    """tag, samples: every tag in use, most used first."""
    return store.query_df("SELECT tag, count(*) AS samples FROM sample_tags GROUP BY tag ORDER BY samples DESC, tag")


def tags_of_runs(store: Store, run_ids: Sequence[str]) -> dict[str, str]:
    """sample_key -> its tags, sorted and joined with ', ' (the map's "tag" colour), for the
    samples of these runs that have any."""
    if not run_ids:
        return {}
    rows = store.query(
        """SELECT t.sample_key, string_agg(t.tag, ', ' ORDER BY t.tag)
           FROM sample_tags t JOIN samples s ON s.sample_key = t.sample_key
           WHERE s.run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY t.sample_key""",
        [list(run_ids)],
    )
    return dict(rows)


# -- drop in review --------------------------------------------------------------------------

@dataclass(frozen=True)
class DropResult:
    """What a drop did, and what its undo needs: each sample's decision before it."""

    dropped: int  # samples marked 'drop' now
    were_dropped: int  # of those, already dropped before
    were_kept: int  # of those, kept by a reviewer before
    keys: list[str] = field(default_factory=list)
    previous: Mapping[str, tuple] = field(default_factory=dict)
    left_out: str = ""

    def summary(self) -> str:
        text = f"Dropped {self.dropped} sample(s) in review ('{DROP_NOTE}')"
        before = [f"{n} {w}" for n, w in ((self.were_dropped, "were already dropped"), (self.were_kept, "had been kept")) if n]
        text += f"; {' and '.join(before)}." if before else "."
        return f"{text} {self.left_out}".strip()


def drop_in_review(store: Store, selection: Selection) -> DropResult:
    """Mark the selected samples 'drop' in the review store with the note DROP_NOTE; the result
    remembers their earlier decisions for ``undo_drop``."""
    keys = list(dict.fromkeys(selection.sample_keys))
    previous = review_rows(store, keys)
    if keys:
        set_review(store, keys, "drop", note=DROP_NOTE)
    decisions = [v[0] for v in previous.values()]
    return DropResult(len(keys), decisions.count("drop"), decisions.count("keep"), keys, previous, selection.left_out("reviewed"))


def undo_drop(store: Store, result: DropResult) -> int:
    """Put back each sample's decision from before the drop (none, keep or drop); a sample
    reviewed again since is left as it is now. Returns how many were put back."""
    return restore_reviews(store, result.keys, dict(result.previous), only_if_note=DROP_NOTE)


# -- export ----------------------------------------------------------------------------------

def selection_samples(store: Store, selection: Selection) -> pd.DataFrame:
    """The selected samples with condition and provenance (the curated export's columns)."""
    return samples_frame(store, list(dict.fromkeys(selection.sample_keys)))


def selection_dataset_rows(frame: pd.DataFrame, selection: Selection, dimensions: Sequence[str],
                           names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The selected dataset rows: id, dataset, text and the attributes they have (by their own names)."""
    sub = frame[frame["id"].astype(str).isin(set(selection.dataset_ids))]
    out = pd.DataFrame({"id": sub["id"].astype(str), "dataset": sub["source"].astype(str).str.split(":", n=1).str[-1],
                        "text": sub["text"].astype(str)})
    for d in dimensions:
        if d in sub and (sub[d] != NONE).any():
            out[(names or {}).get(d, d)] = pd.Series([None if v == NONE else v for v in sub[d]], index=out.index, dtype=object)
    return out.reset_index(drop=True)
