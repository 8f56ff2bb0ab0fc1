"""Start-up time of the `clgate` command, as a ratio to a bare `python -c pass` measured in the same run.

Goals (issue: a light core): ledger commands at most 5x a bare interpreter, `clgate --help` at most
10x. Each command runs `--repeat` times in a fresh process; the median counts. By default the
`clgate` beside this interpreter is timed; `--venv DIR` times another install (the core alone).

    python benchmarks/cli_startup.py [--venv DIR] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clgate.ledger import Ledger, Trust, TrustedKey, generate_key, save_trust
from clgate.ledger.export import write_bundle

ENTRIES = 100


def build_bundle(folder: Path) -> tuple[Path, Path]:
    """A 100-entry ledger (two keys, 98 notes) exported as a bundle, and its signed trust file."""
    admin, pipeline = generate_key(), generate_key()
    anchors = Trust(
        keys=[
            TrustedKey.of(admin.public_key(), ["admin"], "admin"),
            TrustedKey.of(pipeline.public_key(), ["pipeline"], "pipeline"),
        ]
    )
    trust, bundle = folder / "trust.toml", folder / "bundle.json"
    with Ledger.init(folder / "ledger.db", admin, anchors) as ledger:
        save_trust(anchors.bound_to(ledger.log_id()), trust, admin)
        while len(ledger) < ENTRIES:
            ledger.append({"type": "note", "body": {"text": f"note {len(ledger)}"}}, pipeline)
        write_bundle(ledger, bundle)
    return bundle, trust


def median_seconds(argv: list[str], repeat: int, env: dict[str, str], cwd: Path) -> float:
    """Median wall time of `argv` in fresh processes, run from `cwd` (not a checkout, whose `clgate/`
    folder would shadow the installed package for `python -c`)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="time this install's python and clgate")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    bindir = args.venv / "bin" if args.venv else Path(sys.executable).parent
    python, clgate = str(bindir / "python"), str(bindir / "clgate")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bundle, trust = build_bundle(folder)
        env = {**os.environ, "CLGATE_STATE_DIR": str(folder / "state")}
        commands = {
            "clgate --help": ([clgate, "--help"], 10.0),
            "clgate ledger verify --help": ([clgate, "ledger", "verify", "--help"], 5.0),
            f"clgate ledger verify --bundle ({ENTRIES} entries)": (
                [clgate, "ledger", "verify", "--bundle", str(bundle), "--trust", str(trust)],
                5.0,
            ),
        }
        # what is left once no model library loads: the CLI library, the pydantic it parses options with
        # (typer >= 0.29, for any command it runs, `--help` of a subcommand included), the records
        floor = {
            "python -c 'import typer'": ([python, "-c", "import typer"], env),
            "python -c 'import typer._adapters'": ([python, "-c", "import typer._adapters"], env),
            "python -c 'import clgate.ledger.entries'": ([python, "-c", "import clgate.ledger.entries"], env),
        }
        baseline = median_seconds([python, "-c", "pass"], args.repeat, env, folder)
        print(f"install: {bindir.parent}")
        print(f"{'python -c pass':46s} {baseline * 1000:7.0f} ms")
        for name, (argv, goal) in commands.items():
            seconds = median_seconds(argv, args.repeat, env, folder)
            ratio = seconds / baseline
            verdict = "met" if ratio <= goal else "NOT met"
            print(
                f"{name:46s} {seconds * 1000:7.0f} ms  ratio {ratio:5.1f}x  (goal <= {goal:.0f}x: {verdict})"
            )
        print("where the rest goes:")
        for name, (argv, run_env) in floor.items():
            seconds = median_seconds(argv, args.repeat, run_env, folder)
            print(f"{name:46s} {seconds * 1000:7.0f} ms  ratio {seconds / baseline:5.1f}x")


if __name__ == "__main__":
    main()
