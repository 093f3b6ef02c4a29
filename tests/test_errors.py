"""Every error the services raise for a user derives from one base with a title."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import services
from services.core.errors import StudioError


def _service_modules():
    for info in pkgutil.walk_packages(services.__path__, "services."):
        if ".migrations." in info.name or info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def test_every_service_error_is_a_studio_error_with_a_title():
    found = {}
    for mod in _service_modules():
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ == mod.__name__ and issubclass(cls, Exception) and not issubclass(cls, (StopIteration,)):
                found[f"{mod.__name__}.{name}"] = cls
    assert len(found) >= 10
    loose = [n for n, c in found.items() if c is not StudioError and not issubclass(c, StudioError)]
    assert loose == [], f"errors outside the StudioError family: {loose}"
    assert all(c.title != StudioError.title for c in found.values() if c is not StudioError)


def test_a_studio_error_reads_as_its_message_or_its_title():
    class Broken(StudioError, ValueError):
        title = "Broken thing"

    assert str(Broken("the template on line 3 is unclosed")) == "the template on line 3 is unclosed"
    assert str(Broken()) == "Broken thing"
    assert isinstance(Broken(), ValueError)
