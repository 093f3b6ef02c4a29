"""Runs llama.cpp's OpenAI-compatible server and exits when the studio that started it is gone.

The server lives in its own process group (so stopping it never signals the studio), which
also means a SIGKILLed studio would leave it running. A watcher thread notices the parent
going away (the child is re-parented) and exits.

    python -m services.generation.llama_child PARENT_PID --model model.gguf --port 8000 ...
"""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time


def _watch(parent: int, interval_s: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(interval_s)
    os._exit(0)


def main() -> None:
    parent = int(sys.argv[1])
    sys.argv = ["llama_cpp.server", *sys.argv[2:]]
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
