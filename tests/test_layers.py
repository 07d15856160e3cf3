"""The package layout is the architecture: each folder of `agent/` is one layer (README, Layout).

Read from the source with `ast`, so a wrong import fails here before it can fail on a board:
- `everest/` and `model/` are pure: no process, settings, outputs or dev code, no gmqtt, no asyncio;
- `outputs/` receive views: they never reach into `process/`;
- `dev/` (simulators, demos, the test broker) is imported only by `dev/` itself and `cli.py`;
- no two modules import each other, directly or through others.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

REPO: Final = Path(__file__).resolve().parent.parent
AGENT: Final = REPO / "agent"

PURE_FORBIDDEN: Final = ("agent.process", "agent.settings", "agent.outputs", "agent.dev",
                         "agent.pricing", "gmqtt", "asyncio", "uvloop")
# The station core takes messages and `now` and returns effects (issue 26): no event loop,
# thread, socket, process, file or clock of its own, nothing of the shell or the outputs.
CORE_FORBIDDEN: Final = ("agent.process", "agent.outputs", "agent.dev", "agent.lanes",
                         "agent.atomic", "gmqtt", "asyncio", "uvloop", "threading", "socket",
                         "subprocess", "concurrent", "os", "time", "select", "selectors")
FORBIDDEN: Final = {
    "agent.everest": PURE_FORBIDDEN,
    "agent.model": PURE_FORBIDDEN,
    "agent.core": CORE_FORBIDDEN,
    "agent.outputs": ("agent.process", "agent.dev"),
}
DEV_IMPORTERS: Final = ("agent.dev", "agent.cli")


def module_name(path: Path) -> str:
    """`agent/model/display.py` -> `agent.model.display` (a package is its `__init__`)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, name: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import statement, relative ones resolved."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base
            for alias in node.names:  # `from agent.model import display` imports a module
                yield node.lineno, f"{base}.{alias.name}"


def inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def graph(root: Path) -> dict[str, list[tuple[int, str]]]:
    """Every module under `root` with what it imports."""
    out: dict[str, list[tuple[int, str]]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path)
        out[name] = list(imports(path.read_text(encoding="utf-8"), name,
                                 path.name == "__init__.py"))
    return out


def violations(modules: dict[str, list[tuple[int, str]]]) -> list[str]:
    """The broken layer rules, one line each."""
    found: dict[tuple[str, int, str], str] = {}  # one line per statement and rule
    for name, deps in modules.items():
        for line, dep in deps:
            for layer, banned in FORBIDDEN.items():
                for b in banned:
                    if inside(name, layer) and inside(dep, b):
                        rule = f"{layer} must not import {b}"
                        found.setdefault((name, line, b), f"{name}:{line} imports {dep} ({rule})")
            if inside(dep, "agent.dev") and not any(inside(name, d) for d in DEV_IMPORTERS):
                found.setdefault((name, line, "agent.dev"),
                                 f"{name}:{line} imports {dep} (only agent.dev and agent.cli may)")
    return list(found.values())


def cycles(modules: dict[str, list[tuple[int, str]]]) -> list[list[str]]:
    """Import cycles between the project's modules (each found once, from its first module)."""
    edges = {name: sorted({d for _, d in deps if d in modules and d != name})
             for name, deps in modules.items()}
    # A package's __init__ is not an edge of its submodules' own imports; keep it plain.
    found: list[list[str]] = []
    seen: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = path[path.index(node):]
            if not any(set(cycle) == set(c) for c in found):
                found.append([*cycle, node])
            return
        if node in seen:
            return
        for nxt in edges[node]:
            visit(nxt, [*path, node])
        seen.add(node)

    for start in edges:
        visit(start, [])
    return found


def test_layers_import_only_downwards() -> None:
    assert violations(graph(AGENT)) == []


def test_no_import_cycles() -> None:
    assert cycles(graph(AGENT)) == []


@pytest.mark.parametrize(("module", "source", "rule"), [
    ("agent.model.fake", "import asyncio\n", "agent.model must not import asyncio"),
    ("agent.model.fake", "from agent.process import runtime\n",
     "agent.model must not import agent.process"),
    ("agent.everest.fake", "import gmqtt.client\n", "agent.everest must not import gmqtt"),
    ("agent.everest.fake", "from ..settings.config import Config\n",
     "agent.everest must not import agent.settings"),
    ("agent.outputs.fake", "from agent.process.workers import OutputWorker\n",
     "agent.outputs must not import agent.process"),
    ("agent.process.fake", "from agent.dev.broker import Mosquitto\n",
     "only agent.dev and agent.cli may"),
])
def test_a_wrong_import_is_named(module: str, source: str, rule: str) -> None:
    modules = {module: list(imports(source, module, is_package=False))}
    found = violations(modules)
    assert len(found) == 1 and rule in found[0] and found[0].startswith(f"{module}:1 ")


def test_a_cycle_is_found() -> None:
    modules = {
        "agent.a": list(imports("from agent import b\n", "agent.a", False)),
        "agent.b": list(imports("import agent.c\n", "agent.b", False)),
        "agent.c": list(imports("from .a import x\n", "agent.c", False)),
        "agent.d": list(imports("import agent.a\n", "agent.d", False)),
    }
    assert cycles(modules) == [["agent.a", "agent.b", "agent.c", "agent.a"]]


LOADED = """
import sys
import agent.model, agent.model.display, agent.model.render, agent.model.routing, agent.model.view
import agent.everest.session_cost, agent.everest.evse_manager
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {"gmqtt", "asyncio", "uvloop"}
                      or m.startswith(("agent.process", "agent.settings", "agent.outputs")))))
"""


def test_the_model_loads_no_mqtt_client_or_event_loop() -> None:
    result = subprocess.run([sys.executable, "-c", LOADED], capture_output=True, text=True,
                            cwd=REPO, check=True, timeout=60)
    assert result.stdout.split() == []


def test_every_test_file_is_in_the_index_of_what_it_specifies() -> None:
    index = (REPO / "tests" / "README.md").read_text(encoding="utf-8")
    missing = sorted(p.name for p in (REPO / "tests").glob("test_*.py")
                     if f"`{p.name}`" not in index)
    assert not missing, f"add them to tests/README.md: {missing}"
