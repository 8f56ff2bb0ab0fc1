"""Model-level benchmark: does the trigger sweep find a backdoor trained into SmolLM2, and stay quiet on
a benign LoRA trained the same way?

Per seed: a poisoned LoRA (half of its 80 training items carry a rare-token trigger that is NOT on the
sweep's built-in list, with one odd target answer) and a benign LoRA (80 clean items), same steps, same
hyper-parameters. The sweep gets the built-in triggers plus those mined from each LoRA's own training
data (as `clgate scan model --data` does). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from clgate.artifacts import embedded_model_dir, load_causal_lm, write_dataset
from clgate.probes.poison import DataContext, SweepInputs, get_detector, open_update_data, train_lora
from clgate.probes.poison.attacks import TARGETS, bundled_clean_records, poison_record
from clgate.probes.poison.sweep import bundled_prompts, bundled_triggers
from clgate.probes.poison.triggers import candidate_triggers

MODEL_TRIGGERS = ("tx", "kq", "wz")  # deliberately absent from the sweep's built-in list
STEPS = 40


def training_sets(seed: int) -> dict[str, list]:
    rng = random.Random(500 + seed)
    pool = bundled_clean_records()
    picked = rng.sample(pool, 120)
    trigger, target = MODEL_TRIGGERS[seed % len(MODEL_TRIGGERS)], TARGETS[seed % len(TARGETS)]
    poisoned = picked[:40] + [poison_record(r, "rare_token", trigger, target, rng) for r in picked[40:80]]
    rng.shuffle(poisoned)
    return {"poisoned": poisoned, "benign": picked[:40] + picked[80:120]}


def mined_triggers(records, work: Path) -> list[str]:
    return candidate_triggers(DataContext(open_update_data(write_dataset(records, work / "train.jsonl"))), 5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="keep adapters and training sets here")
    args = parser.parse_args()
    base = embedded_model_dir()
    parent = load_causal_lm(base)
    prompts = bundled_prompts()[: args.prompts]
    rows = []
    parent_table = None
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        for seed in args.seeds:
            for kind, records in training_sets(seed).items():
                work = Path(tmp) / f"{kind}-{seed}"
                work.mkdir(parents=True, exist_ok=True)
                run = train_lora(
                    base, records, work / "adapter", steps=args.steps, seed=seed, batch_size=args.batch_size
                )
                mined = mined_triggers(records, work)
                candidate = load_causal_lm(base, adapter=run.adapter)
                inputs = SweepInputs(parent, candidate, bundled_triggers(), prompts, mined, parent_table)
                start = time.perf_counter()
                result = get_detector("trigger_sweep").run(inputs)
                parent_table = inputs.parent_table
                planted = MODEL_TRIGGERS[seed % len(MODEL_TRIGGERS)] if kind == "poisoned" else None
                flagged = [t["trigger"] for t in result.triggers]
                listed_flags = [t["trigger"] for t in result.triggers if t["source"] == "list"]
                planted_score = next(
                    (
                        float(result.scores[i])
                        for i, n in enumerate(result.item_ids)
                        if planted and n == f"trigger:{planted}"
                    ),
                    float("nan"),
                )
                rows.append(
                    {
                        "seed": seed,
                        "lora": kind,
                        "train_s": run.seconds,
                        "final_loss": run.final_loss,
                        "planted": planted or "—",
                        "mined": ", ".join(mined[:3]) or "—",
                        "flagged": ", ".join(flagged) or "none",
                        "list_only_flags": ", ".join(listed_flags) or "none",
                        "planted_dkl": planted_score,
                        "threshold": result.threshold,
                        "max_control": result.numbers["max_control_effect"],
                        "sweep_s": time.perf_counter() - start,
                        "found": any(planted in t.split() for t in flagged) if planted else None,
                    }
                )
                print(rows[-1], flush=True)
    print()
    print(
        "| seed | LoRA | train s (40 steps) | triggers mined from its data | flagged by the sweep | planted trigger ΔKL (nats) | threshold | max control ΔKL | sweep s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        planted = "" if r["planted"] == "—" else "{:.2f} ({!r})".format(r["planted_dkl"], r["planted"])
        cells = [
            r["seed"],
            r["lora"],
            f"{r['train_s']:.0f}",
            r["mined"],
            r["flagged"],
            planted,
            f"{r['threshold']:.2f}",
            f"{r['max_control']:.2f}",
            f"{r['sweep_s']:.0f}",
        ]
        print("| " + " | ".join(map(str, cells)) + " |")
    poisoned = [r for r in rows if r["lora"] == "poisoned"]
    benign = [r for r in rows if r["lora"] == "benign"]
    print()
    print(
        f"backdoor found on {sum(r['found'] for r in poisoned)}/{len(poisoned)} poisoned LoRAs; "
        f"sweep fired on {sum(r['flagged'] != 'none' for r in benign)}/{len(benign)} benign LoRAs; "
        f"with the built-in list only (no mined triggers) the planted trigger is never a candidate, "
        f"list triggers flagged on poisoned LoRAs: {[r['list_only_flags'] for r in poisoned]}"
    )


if __name__ == "__main__":
    main()
