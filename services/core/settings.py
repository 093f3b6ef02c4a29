"""Every ``STUDIO_*`` environment variable the studio reads, with its default and what it does.

Read them through :func:`get` or :func:`flag` so that one place lists them all; a test checks that
the README's table and the code name the same variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.core.paths import DATA_DIR


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("STUDIO_DB", str(DATA_DIR / "studio.duckdb"), "the DuckDB file that holds everything (a CLI's --db overrides it)"),
    Setting("STUDIO_DB_MEMORY_LIMIT", "2GB", "DuckDB's memory limit for the studio's database (a size such as 2GB or a "
            "share of RAM such as 25%): imports stream within it, larger sorts and joins spill to a folder next to the file"),
    Setting("STUDIO_EMBEDDER", "full", "the default embedder on Explore and Compare Filters: full, static, fake, or a sentence-transformers path"),
    Setting("STUDIO_WARMUP", "1", "0 turns off the background warm-up of the embedder and UMAP at start"),
    Setting("STUDIO_BATCH_POLL_S", "60", "seconds before the first background check of an open provider batch; later checks "
            "wait longer (up to 15 min), failed ones back off (up to 30 min)"),
    Setting("STUDIO_IMPORT_DIRS", os.pathsep.join([str(DATA_DIR), str(DATA_DIR / "imports")]),
            "folders (separated by the OS path separator) whose files the SQL page may import by path; uploads are not limited"),
)}


def get(name: str) -> str:
    """The variable's value, or its default when unset or empty."""
    return os.environ.get(name) or SETTINGS[name].default


def paths(name: str) -> list[Path]:
    """A list-of-folders setting, resolved (links followed), empty entries skipped."""
    return [Path(p).expanduser().resolve() for p in get(name).split(os.pathsep) if p.strip()]


def flag(name: str) -> bool:
    """A yes/no setting: anything but 0, false, no or off is yes."""
    return get(name).strip().lower() not in ("0", "false", "no", "off")
