"""docs/architecture.md stays true: it names every services module, component and page there is,
and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _stems(folder: str) -> set[str]:
    return {p.stem for p in (ROOT / folder).rglob("*.py")
            if p.stem not in ("__init__", "__main__") and "migrations" not in p.parts}


def test_every_module_and_component_is_on_the_map():
    missing = sorted(s for s in _stems("services") | _stems("components") if f"`{s}`" not in DOC and f"{s}`" not in DOC)
    assert missing == [], f"add these to docs/architecture.md: {missing}"


def test_every_package_named_on_the_map_exists():
    named = set(re.findall(r"^\| `(\w+)/` \|", DOC, re.M))  # the rows of the package table
    assert named, "the package table is gone"
    assert sorted(p for p in named if not (ROOT / "services" / p).is_dir()) == []
    assert {p.name for p in (ROOT / "services").iterdir() if p.is_dir() and p.name != "__pycache__"} <= named
