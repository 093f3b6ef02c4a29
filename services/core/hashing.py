"""Content hashes: of a text (the embedding cache key) and of any JSON-able parts (step and cache keys)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def text_hash(text: str) -> str:
    """Hash of a text's exact content; the same text always gets the same hash."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def digest(*parts: Any) -> str:
    """A short, stable key for JSON-able parts (parameters, ids): equal parts, equal key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
