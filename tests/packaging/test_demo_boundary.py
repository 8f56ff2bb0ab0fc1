"""Production code never imports `clgate.demo`: the attacks, the LoRA trainer and the test factories ship
beside the gate, and a gate that reached for them would judge with material written to fool it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PRODUCTION = ("clgate", "artifacts", "ledger", "runtime", "probes", "evals", "audit", "dashboard")


def _package(path: Path) -> list[str]:
    """The package a source file is in, as installed (`probes/poison/x.py` → clgate.probes.poison)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] != "clgate":
        parts.insert(0, "clgate")
    return parts[:-1]


def demo_imports(source: str, path: Path) -> list[str]:
    """Each module or name under `clgate.demo` that `source` imports, relative imports resolved."""
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = _package(path)
            base = ".".join(package[: len(package) - node.level + 1] if node.level else [])
            module = ".".join(p for p in (base, node.module or "") if p)
            names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value.split(":")[0]]  # a dotted path handed to importlib, package data, the CLI
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {n}"
            for n in names
            if n.split(".")[:2] == ["clgate", "demo"]
        ]
    return found


def production_files() -> list[Path]:
    return sorted(p for top in PRODUCTION for p in (ROOT / top).rglob("*.py"))


CLI_COMMAND = "audit/cli.py"
"""The one place that names the demo: the lazy table of subcommands, which imports it only for `clgate demo`."""


def test_no_production_module_imports_the_demo() -> None:
    files = production_files()
    assert len(files) > 100  # the walk found the packages
    found = [hit for path in files for hit in demo_imports(path.read_text(encoding="utf-8"), path)]
    assert [hit for hit in found if not hit.startswith(f"{CLI_COMMAND}:")] == []
    assert len(found) == 1, found  # `clgate demo` itself, by name


def test_every_spelling_of_a_demo_import_is_found() -> None:
    path = ROOT / "audit" / "gate.py"
    for source in (
        "import clgate.demo.run",
        "import clgate.demo as d",
        "from clgate import demo",
        "from clgate.demo.attacks import poisoned_set",
        "from ..demo import train_lora",
        "def f():\n    from clgate.demo import factories",
        'importlib.import_module("clgate.demo.attacks")',
        'package_file("clgate.demo", "data", "clean_memory.jsonl")',
    ):
        assert demo_imports(source, path), source
    assert demo_imports("from clgate.demography import x\nimport clgate.audit", path) == []
