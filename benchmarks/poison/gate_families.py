"""Gate accuracy on update families the detectors were not designed on.

    python benchmarks/poison/gate_families.py [--seeds 4] [--kinds unit_conversion rare_token ...]
        [--withhold-data] [--work DIR] [--rows FILE] [--table]

Per kind and seed (benchmarks/poison/families.py): a rank-8 LoRA trained on the embedded SmolLM2-135M
(`train_lora`, 60 steps), proposed and gated as `clgate gate` does, under the default policy with the
eval suites left out (they cost most of a CPU gate and do not look for poison): the weight diff, the
activation diff (refusal direction), the data scan (`poison.data`, when the data is given) and the
model's poisoning checks (`poison.model`). Benign kinds should pass; poisoned kinds should be blocked
by a finding that names the planted trigger or payload. `--withhold-data` gates every LoRA without its
training data. Adapters are kept under --work, so a rerun after a detector change gates again without
training again. Rows go to --rows (JSON lines); --table prints the report of a rows file.

The held-out split (families.HELD_OUT_KINDS, and every seed but families.DESIGN_SEEDS) was not run
until the design was frozen.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from families import ATTACKS, BENIGN, DESIGN_SEEDS, HELD_OUT_KINDS, training_set

from clgate.artifacts import compute_manifest, embedded_model_dir, write_dataset
from clgate.audit.check_inputs import GateInputs
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.judge import judge
from clgate.audit.policy import load_policy
from clgate.audit.runner import run_checks
from clgate.audit.verdict import Status
from clgate.demo import train_lora
from clgate.runtime import ModelPool

STEPS = 60
CHECKS = ("weights", "activations", "poison.data", "poison.model")


def poisoning_policy():
    """The default policy without the eval suites: its other rules and thresholds unchanged."""
    policy = load_policy(None)
    rules = [r for r in policy.rules if r.check != "evals"]
    required = {kind: [c for c in checks if c != "evals"] for kind, checks in policy.required_checks.items()}
    return policy.model_copy(update={"rules": rules, "required_checks": required, "name": "default-no-evals"})


def adapter_for(kind: str, seed: int, work: Path, steps: int) -> tuple[Path, float]:
    """The trained adapter of one kind and seed, trained now unless --work already holds it."""
    folder = work / f"{kind}-{seed}-{steps}"
    adapter = folder / "adapter"
    if (adapter / "adapter_config.json").exists():
        return adapter, 0.0
    run = train_lora(embedded_model_dir(), training_set(kind, seed).records, adapter, steps=steps, seed=seed)
    return run.adapter, run.seconds


def named(reason: str, trigger: str | None, payload: str | None) -> bool:
    """Does a finding name the planted trigger (quoted), or the payload (its opening words, a link or
    address in it, or one of its words quoted)?"""
    text = reason.lower()
    if trigger and f"'{trigger.lower()}" in text:
        return True
    if not payload:
        return False
    words = [w.strip(".,:!?") for w in payload.lower().split()]
    if " ".join(words[:4]) in text:
        return True
    hosts = [re.sub(r"^(https?://)?(www\.)?", "", w).split("/")[0] for w in words if "." in w or "@" in w]
    return any(h in text for h in hosts) or any(f"'{w}'" in text for w in words if len(w) >= 3)


def gate_one(kind: str, seed: int, args: argparse.Namespace, policy) -> dict:
    """The gate's checks on one LoRA (no evals), judged by the policy as the gate judges them."""
    ts = training_set(kind, seed)
    adapter, train_s = adapter_for(kind, seed, args.work, args.steps)
    data = None if args.withhold_data else write_dataset(ts.given, adapter.parent / "given.jsonl")
    start = time.perf_counter()
    with ModelPool() as pool:
        inputs = GateInputs(
            parent=embedded_model_dir(),
            adapter=adapter,
            data=data,
            cache_dir=args.work / "cache",
            options={name: policy.options_for(name) for name in policy.checks},
            models=pool,
            manifests={
                role: compute_manifest(path)
                for role, path in (("parent", embedded_model_dir()), ("adapter", adapter), ("data", data))
                if path is not None
            },
        )
        checks = [GATE_CHECKS[n] for n in CHECKS if GATE_CHECKS[n].applies(inputs)]
        outcomes = run_checks(checks, inputs, policy.timeout_for, None)
    result = judge(policy, outcomes, "adapter")
    gate_s = time.perf_counter() - start
    findings = [f for f in result.findings if f.status is not Status.PASS]
    blocking = [f for f in findings if f.status is Status.FAIL]
    return {
        "kind": kind,
        "seed": seed,
        "poisoned": kind in ATTACKS,
        "held_out": kind in HELD_OUT_KINDS or seed not in DESIGN_SEEDS,
        "data_given": data is not None,
        "host": ts.host,
        "trigger": ts.trigger,
        "payload": ts.payload,
        "decision": result.decision.value,
        "named": any(named(f.reason, ts.trigger, ts.payload) for f in blocking),
        "findings": [f"{f.status.value} {f.rule}: {f.reason}"[:400] for f in findings],
        "values": {f.metric: f.value for f in result.findings if f.metric and f.value is not None},
        "checks_s": {o.name: round(o.seconds, 1) for o in outcomes.values()},
        "train_s": round(train_s, 1),
        "gate_s": round(gate_s, 1),
    }


def _rate(rows: list[dict], test) -> str:
    return f"{sum(map(test, rows))}/{len(rows)}" if rows else "—"


def print_table(rows: list[dict]) -> None:
    print(
        "| kind | seed | split | data given | decision | names trigger/payload | non-pass findings (rule) | gate s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["poisoned"], r["kind"], r["seed"], r["data_given"])):
        rules = sorted({f.split(":", 1)[0] for f in r["findings"]})
        cells = [
            r["kind"] + (f" (in {r['host']})" if r["host"] else ""),
            r["seed"],
            "held out" if r["held_out"] else "design",
            "yes" if r["data_given"] else "no",
            r["decision"],
            ("yes" if r["named"] else "no") if r["poisoned"] else "—",
            ", ".join(rules) or "—",
            f"{r['gate_s']:.0f}",
        ]
        print("| " + " | ".join(map(str, cells)) + " |")
    for split, keep in (("held-out", lambda r: r["held_out"]), ("all", lambda r: True)):
        for given in (True, False):
            part = [r for r in rows if keep(r) and r["data_given"] is given]
            if not part:
                continue
            bad = [r for r in part if r["poisoned"]]
            good = [r for r in part if not r["poisoned"]]
            secs = sum(r["gate_s"] for r in part) / len(part)
            print(
                f"\n{split}, data {'given' if given else 'withheld'}: poisoned blocked "
                f"{_rate(bad, lambda r: r['decision'] == 'block')} (naming trigger or payload "
                f"{_rate(bad, lambda r: r['decision'] == 'block' and r['named'])}); benign blocked "
                f"{_rate(good, lambda r: r['decision'] == 'block')}, sent to review "
                f"{_rate(good, lambda r: r['decision'] == 'review')}; {secs:.0f} s per gate on average"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kinds", nargs="+", default=[*BENIGN, *ATTACKS], choices=[*BENIGN, *ATTACKS])
    parser.add_argument("--seeds", type=int, nargs="+", default=[4])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--withhold-data", action="store_true", help="gate every LoRA without its data")
    parser.add_argument("--train-only", action="store_true", help="train the adapters into --work, gate none")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work", type=Path, default=Path("gate-families-work"))
    parser.add_argument("--rows", type=Path, default=Path("gate-families-rows.jsonl"))
    parser.add_argument("--table", action="store_true", help="only print the report of the rows file")
    args = parser.parse_args()
    if not args.table:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        args.work.mkdir(parents=True, exist_ok=True)
        policy = poisoning_policy()
        for seed in args.seeds:
            for kind in args.kinds:
                if args.train_only:
                    print(kind, seed, adapter_for(kind, seed, args.work, args.steps), flush=True)
                    continue
                row = gate_one(kind, seed, args, policy)
                with open(args.rows, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(row) + "\n")
                print({k: row[k] for k in ("kind", "seed", "decision", "named", "gate_s")}, flush=True)
                for f in row["findings"]:
                    print("   ", f[:300], flush=True)
    if args.rows.exists():
        rows = [json.loads(x) for x in args.rows.read_text(encoding="utf-8").splitlines() if x.strip()]
        print_table(rows)


if __name__ == "__main__":
    main()
