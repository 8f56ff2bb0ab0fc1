"""clgate's suites and model provider, found by inspect-ai itself through the `inspect_ai` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from inspect_ai._util.registry import registry_find, registry_info, registry_unqualified_name
from inspect_ai.log import read_eval_log

from clgate.evals import list_suites

ENTRY_POINT = "clgate = clgate.evals._inspect_registry"
"""The line pyproject.toml's `[project.entry-points.inspect_ai]` holds."""


def test_the_entry_point_module_registers_every_suite_and_the_provider() -> None:
    import clgate.evals._inspect_registry  # noqa: F401  (what inspect loads)

    tasks = {registry_unqualified_name(registry_info(t)) for t in registry_find(lambda i: i.type == "task")}
    assert {s.name for s in list_suites()} <= tasks
    providers = {registry_info(p).name for p in registry_find(lambda i: i.type == "modelapi")}
    assert providers & {"clgate", "clgate/clgate"}


def test_inspect_eval_runs_a_clgate_suite_by_its_package_name(tiny_model: Path, tmp_path: Path) -> None:
    """`inspect eval clgate/retention --model clgate/PATH`, in a fresh process that knows clgate only
    through the entry point (declared here by a dist-info of its own, as an installed clgate declares it)."""
    dist = tmp_path / "site" / "clgate_inspect_entry-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: clgate-inspect-entry\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[inspect_ai]\n{ENTRY_POINT}\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(dist.parent), os.environ.get("PYTHONPATH")])),
    }
    inspect = Path(sys.executable).parent / "inspect"
    logs = tmp_path / "logs"
    done = subprocess.run(
        [str(inspect), "eval", "clgate/retention", "--model", f"clgate/{tiny_model}", "--limit", "2",
         "--log-dir", str(logs), "--display", "none"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [path] = logs.glob("*.eval")
    log = read_eval_log(str(path))
    assert log.status == "success" and log.eval.task_registry_name == "clgate/retention"
    assert log.eval.metadata["suite"] == "retention" and log.eval.model == f"clgate/{tiny_model}"
    assert len(log.samples or []) == 2
