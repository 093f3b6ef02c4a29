"""The one way to reach a backend: a preset's defaults, the built-in server started when needed, a client.

Every caller (a run's worker, the judge, a connection test, value proposals) goes through
:func:`backend_factory` or :func:`connect`, so "built-in preset → start the server → set the
base_url" lives here only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.generation.backends import BackendConfig, ChatBackend, ConnectionResult, OpenAIBackend, check_connection
from services.generation.local_server import LocalModelServer
from services.generation.presets import LOCAL, PRESETS, key_from

T = TypeVar("T")


def preset_config(preset: str, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                  secrets: dict | None = None, timeout_s: float = 60.0, max_retries: int = 2) -> BackendConfig:
    """A backend config from a preset's defaults, overridden where given; the key, if not given,
    comes from st.secrets (passed in) or the environment."""
    p = PRESETS.get(preset, PRESETS["custom"])
    return BackendConfig(preset, base_url or p.base_url, model or p.model, api_key or key_from(p, secrets),
                         timeout_s=timeout_s, max_retries=max_retries)


def connect(cfg: BackendConfig, local: LocalModelServer | None) -> BackendConfig:
    """The config with a base_url that answers: for the built-in preset, start its server (seconds
    on first use) and point at it."""
    if cfg.preset != LOCAL:
        return cfg
    if local is None:
        raise RuntimeError("the built-in model server is not available in this process")
    return cfg.with_base_url(local.ensure_running())


def backend_factory(cfg: BackendConfig, local: LocalModelServer | None, *, max_connections: int = 8,
                    on_connected: Callable[[BackendConfig], None] | None = None) -> Callable[[], ChatBackend]:
    """A no-argument function that builds the backend where it is used (an async client belongs to
    the event loop it first runs in); ``on_connected`` sees the resolved config, never called with a key
    to store."""

    def make() -> ChatBackend:
        resolved = connect(cfg, local)
        if on_connected is not None:
            on_connected(resolved)
        return OpenAIBackend(resolved, max_connections=max_connections)

    return make


def check(cfg: BackendConfig, local: LocalModelServer | None) -> ConnectionResult:
    """Start what needs starting, then list the models; every failure is a sentence for the user."""
    try:
        resolved = connect(cfg, local)
    except Exception as exc:  # the server's own words (missing model, build failed, port)
        return ConnectionResult(False, f"The built-in model server did not start: {exc}")
    return check_connection(resolved)


def call(cfg: BackendConfig, local: LocalModelServer | None, work: Callable[[ChatBackend], Awaitable[T]]) -> T:
    """Run one async piece of work against the backend from synchronous code, closing the client after."""

    async def go() -> T:
        backend = backend_factory(cfg, local, max_connections=2)()
        try:
            return await work(backend)
        finally:
            await backend.aclose()

    return asyncio.run(go())
