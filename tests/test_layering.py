"""The house's layering (docs/architecture.md), checked on the source: every import, including
imports inside functions, must point leftwards along core ← recipes ← generation ← explore ←
curation; data and sql use core only; demo uses core, recipes and explore; cli may use anything.
Streamlit stays out of services/, duckdb and openai stay out of components/ and app_pages/, and
no two services modules import each other in a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ORDER = ("core", "recipes", "generation", "explore", "curation")
ALLOWED: dict[str, set[str]] = {pkg: set(ORDER[:i]) for i, pkg in enumerate(ORDER)}
ALLOWED |= {"data": {"core"}, "sql": {"core"}, "demo": {"core", "recipes", "explore"}, "cli": {"*"}}
ALLOWED["evaluation"] = set(ORDER)  # the last stage: core, recipes, generation, explore, curation
# Where each third-party package may not be imported at all.
FORBIDDEN = {"services": {"streamlit"}, "components": {"duckdb", "openai"}, "app_pages": {"duckdb", "openai"}}


@dataclass(frozen=True)
class Edge:
    source: str      # dotted module that imports
    target: str      # dotted module (or package) imported
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path, root: Path) -> list[Edge]:
    """Every import in the file, at any depth (functions, classes, branches)."""
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    edges: list[Edge] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            edges += [Edge(module, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            edges.append(Edge(module, target, node.lineno))
            # `from services.curation import export` imports the module services.curation.export
            for a in node.names:
                candidate = f"{target}.{a.name}"
                if (root / Path(*candidate.split("."))).with_suffix(".py").exists() or (root / Path(*candidate.split("."))).is_dir():
                    edges.append(Edge(module, candidate, node.lineno))
    return edges


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "services":
        return None
    if len(parts) == 1 or parts[1] in ("__main__",):
        return "cli"  # `python -m services` is the command line
    return parts[1]


def violations(root: Path) -> list[str]:
    """Every broken rule under root, as 'file:line: what' (empty when the house is in order)."""
    problems: list[str] = []
    graph: dict[str, set[str]] = {}
    files = [p for top in FORBIDDEN for p in sorted((root / top).rglob("*.py"))]
    for path in files:
        rel = path.relative_to(root)
        top = rel.parts[0]
        for e in imports_of(path, root):
            first = e.target.split(".")[0]
            if first in FORBIDDEN[top]:
                problems.append(f"{rel}:{e.line}: {top}/ imports {e.target}")
            if top != "services":
                continue
            src, dst = stage_of(e.source), stage_of(e.target)
            if dst is None:
                continue
            if e.target.count(".") >= 2:
                graph.setdefault(e.source, set()).add(e.target)
            if src != dst and dst not in ALLOWED.get(src, set()) and "*" not in ALLOWED.get(src, set()):
                problems.append(f"{rel}:{e.line}: services.{src} may not import services.{dst} ({e.target})")
    for s in sorted({stage_of(module_name(p, root)) for p in (root / "services").rglob("*.py")} - {None}):
        if s not in ALLOWED:
            problems.append(f"services/{s}: a package the layering does not know: add it to ALLOWED and docs/architecture.md")
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), each closed on its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group) + [sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_house_keeps_its_layering():
    assert violations(ROOT) == []


def test_services_hold_only_stage_packages():
    loose = sorted(p.name for p in (ROOT / "services").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == [], f"modules directly under services/: {loose}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, body in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(body))
    for top in FORBIDDEN:
        (tmp_path / top).mkdir(exist_ok=True)
    return tmp_path


def test_a_rightward_import_inside_a_function_is_caught(tmp_path):
    root = _tree(tmp_path, {
        "services/__init__.py": "",
        "services/core/__init__.py": "",
        "services/core/store.py": "def f():\n    from services.curation.pipeline import Pipeline\n",
        "services/curation/__init__.py": "",
        "services/curation/pipeline.py": "from services.core.store import f\n",
    })
    found = violations(root)
    assert any("services/core/store.py:2: services.core may not import services.curation" in p for p in found), found
    assert any(p.startswith("import cycle: services.core.store -> services.curation.pipeline") for p in found), found


def test_forbidden_packages_and_side_packages_are_caught(tmp_path):
    root = _tree(tmp_path, {
        "services/__init__.py": "",
        "services/data/__init__.py": "",
        "services/data/reader.py": "import streamlit as st\nfrom ..sql import views\n",
        "services/sql/__init__.py": "",
        "services/sql/views.py": "",
        "services/newstage/__init__.py": "",
        "components/table.py": "import duckdb\n",
        "app_pages/home.py": "from openai import OpenAI\n",
    })
    found = "\n".join(violations(root))
    assert "services/data/reader.py:1: services/ imports streamlit" in found
    assert "services.data may not import services.sql" in found
    assert "components/table.py:1: components/ imports duckdb" in found
    assert "app_pages/home.py:1: app_pages/ imports openai" in found
    assert "services/newstage: a package the layering does not know" in found


def test_cli_may_use_every_stage(tmp_path):
    root = _tree(tmp_path, {
        "services/__init__.py": "",
        "services/__main__.py": "from services.cli.main import main\n",
        "services/cli/__init__.py": "",
        "services/cli/main.py": "from services.curation.pipeline import P\nfrom services.sql.console import q\n",
        "services/curation/__init__.py": "",
        "services/curation/pipeline.py": "",
        "services/sql/__init__.py": "",
        "services/sql/console.py": "",
    })
    assert violations(root) == []


def test_importing_every_service_leaves_streamlit_out():
    modules = sorted(module_name(p, ROOT) for p in (ROOT / "services").rglob("*.py")
                     if p.name != "__main__.py" and "migrations" not in p.parts)
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(sorted(k for k in sys.modules if k == 'streamlit' or k.startswith('streamlit.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
