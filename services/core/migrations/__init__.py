"""Versioned schema migrations.

Each module ``mNNN_*.py`` in this package defines ``VERSION``, ``NAME`` and ``STATEMENTS``;
they are discovered and applied in version order and recorded in ``schema_migrations``.
One module per feature keeps parallel work from colliding in one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _discover() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(mod.VERSION, mod.NAME, tuple(mod.STATEMENTS)))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


MIGRATIONS: list[Migration] = _discover()
