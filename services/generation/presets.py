"""Backend presets: the built-in model and the common OpenAI-compatible servers, and where their keys live.

Kept apart from the client code so that pages listing presets (the home page) do not import openai.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

LOCAL = "local"


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    base_url: str
    model: str
    key_env: str | None = None  # environment variable / secret name holding the key
    needs_key: bool = False
    note: str = ""


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(LOCAL, "Built-in local model (offline)", "", "SmolLM2-135M-Instruct",
               note="SmolLM2-135M via llama.cpp on this machine: for demos and smoke tests only."),
        Preset("openai", "OpenAI", "https://api.openai.com/v1", "gpt-4o-mini", "OPENAI_API_KEY", True),
        Preset("anthropic", "Anthropic (OpenAI-compatible endpoint)", "https://api.anthropic.com/v1/", "claude-3-5-haiku-20241022",
               "ANTHROPIC_API_KEY", True,
               note="Claude through Anthropic's OpenAI-compatible chat endpoint, which Anthropic describes as a compatibility "
                    "layer: some OpenAI parameters are ignored there. Also the live side of an Anthropic batch run."),
        Preset("vllm", "vLLM", "http://127.0.0.1:8000/v1", "", "VLLM_API_KEY"),
        Preset("ollama", "Ollama", "http://127.0.0.1:11434/v1", "llama3.2"),
        Preset("llamacpp", "llama.cpp server", "http://127.0.0.1:8080/v1", "default", "LLAMACPP_API_KEY"),
        Preset("custom", "Custom (any base_url)", "http://127.0.0.1:8000/v1", "", "OPENAI_API_KEY"),
    ]
}


def key_from(preset: Preset, secrets: dict[str, Any] | None = None) -> str | None:
    """The key for a preset from st.secrets (passed in by the page) or the environment."""
    if not preset.key_env:
        return None
    if secrets and secrets.get(preset.key_env):
        return str(secrets[preset.key_env])
    return os.environ.get(preset.key_env) or None
