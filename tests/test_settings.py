"""Settings: one list of STUDIO_* variables, the same in the code and in the README."""

from __future__ import annotations

import re
from pathlib import Path

from services.core import settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_variable_the_code_reads_is_listed_and_documented():
    used = set()
    for path in [ROOT / "app.py", ROOT / "resources.py", *ROOT.glob("services/**/*.py"), *ROOT.glob("app_pages/*.py"),
                 *ROOT.glob("components/*.py")]:
        used |= set(re.findall(r"\bSTUDIO_[A-Z_]+\b", path.read_text()))
    assert used <= set(settings.SETTINGS), f"read but not in core/settings.py: {sorted(used - set(settings.SETTINGS))}"
    readme = (ROOT / "README.md").read_text()
    assert [n for n in settings.SETTINGS if f"`{n}`" not in readme] == []


def test_get_falls_back_to_the_default_and_flag_reads_words(monkeypatch):
    monkeypatch.delenv("STUDIO_WARMUP", raising=False)
    assert settings.flag("STUDIO_WARMUP") is True
    for off in ("0", "false", "No", " off "):
        monkeypatch.setenv("STUDIO_WARMUP", off)
        assert settings.flag("STUDIO_WARMUP") is False
    monkeypatch.setenv("STUDIO_EMBEDDER", "")
    assert settings.get("STUDIO_EMBEDDER") == "full"  # empty means unset
    monkeypatch.setenv("STUDIO_EMBEDDER", "static")
    assert settings.get("STUDIO_EMBEDDER") == "static"
