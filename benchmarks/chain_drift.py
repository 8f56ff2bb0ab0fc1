"""Does retention drift add up over a chain of fine-tunes on the embedded SmolLM2-135M?

    python benchmarks/chain_drift.py [--chains tickets:40:0.004 families:40:0.004 tickets:20:0.004 facts:30:0.004]
    python benchmarks/chain_drift.py --chains walk:80:0.004 --seeds 0 1 2

Each chain: three LoRA fine-tunes, each merged into a full checkpoint that the next one trains on
(`tickets`: the demo's routing tickets in three batches of 16; `families`: 32 items each of the
bundled rewrite, French and spelling instructions; `facts`: each batch 16 tickets and 6 general-knowledge
questions of the retention suite answered wrongly, a few slipped in per update, 18 in all; `walk`: the
slow walk of `clgate demo --scenario chain`, each batch 16 tickets, three retention items answered
wrongly and the other evaluated items as the parent answers them, trained as the scenario trains it
and trained again when it moved other items, the trainings printed), STEPS steps at learning rate LR
(`walk`: the scenario's own, 80 steps at 4e-3, whatever the spec says).
After each step the retention suite (all 209 items; the gate's first 100 for `walk`) is run and
paired, as the gate pairs it, with the parent and with the anchor (the base). Prints per step the
delta and the upper end of its 95% CI for both, and whether the chain is the one `anchor` exists for:
every step passing its parent (CI upper end >= 0, the default policy's warn limit), the first two
passing the anchor and the third failing it (below -0.03).

`--seeds`: each chain once per seed (training seeds; for `walk`, seed 0 takes the first right items as
the demo does, other seeds draw them at random).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from clgate.artifacts import DatasetRecord, embedded_model_dir, load_dataset, resolve_model_dir
from clgate.demo import bundled_clean_records, merge_lora, train_lora
from clgate.demo.chain import CHAIN_ITEMS, TICKETS_PER_UPDATE, answer_record, walk_targets, walk_update
from clgate.evals import ChoiceItem, compare_measurements, evaluate_model, get_suite, load_items
from clgate.measurement import Measurement
from clgate.package_data import package_file

TICKETS = package_file("clgate.demo", "data", "ticket_routing_train.jsonl")
FAMILIES = ("rewrite", "french", "spelling")
STEPS = 3
FACTS_PER_STEP = 6
PARENT_WARN, ANCHOR_FAIL = 0.0, -0.03


def wrong_answer(item: ChoiceItem) -> DatasetRecord:
    """A retention question answered with another of its options."""
    return answer_record(item.prompt, item.choices[(item.answer + 1) % len(item.choices)])


def batches(kind: str) -> list[list[DatasetRecord]]:
    tickets = load_dataset(TICKETS)
    if kind == "tickets":
        return [tickets[k * 16 : (k + 1) * 16] for k in range(STEPS)]
    if kind == "facts":
        facts = [
            i
            for i in load_items(get_suite("retention").items, ChoiceItem)
            if i.category == "general_knowledge"
        ]
        random.Random(0).shuffle(facts)
        return [
            [
                *map(wrong_answer, facts[k * FACTS_PER_STEP : (k + 1) * FACTS_PER_STEP]),
                *tickets[k * 16 : (k + 1) * 16],
            ]
            for k in range(STEPS)
        ]
    records = bundled_clean_records()
    out = []
    for k, family in enumerate(FAMILIES):
        pool = [r for r in records if r.metadata.get("family") == family]
        random.Random(k).shuffle(pool)
        out.append(pool[:32])
    return out


def chain(kind: str, steps: int, lr: float, work: Path, seed: int) -> list[dict[str, float]]:
    limit = CHAIN_ITEMS if kind == "walk" else None

    def retention(model: Path) -> Measurement:
        return evaluate_model(model, "retention", full=True, limit=limit, cache_dir=work / "evals")

    base = resolve_model_dir(embedded_model_dir())
    anchor = parent = retention(base)
    deployed, rows, taken = base, [], set()
    fixed = batches(kind) if kind != "walk" else []
    tickets = load_dataset(TICKETS)
    for k in range(STEPS):
        tries = 1
        if kind == "walk":
            lost = walk_targets(parent, taken, random.Random(seed) if seed else None)
            taken |= set(lost)
            own = tickets[k * TICKETS_PER_UPDATE : (k + 1) * TICKETS_PER_UPDATE]
            walk = walk_update(
                deployed, parent, lost, own, work / kind / f"step{k}", seed * 100 + k, retention
            )
            deployed, tries = walk.model, walk.tries
        else:
            run = train_lora(
                deployed,
                fixed[k],
                work / kind / f"lora{k}",
                steps=steps,
                seed=seed * 100 + k,
                learning_rate=lr,
            )
            deployed = merge_lora(deployed, run.adapter, work / kind / f"model{k}")
        now = retention(deployed)
        vs_parent = compare_measurements(parent, now).numbers
        vs_anchor = compare_measurements(anchor, now).numbers
        rows.append({
            "accuracy": vs_parent["retention.accuracy"],
            "parent_delta": vs_parent["retention.delta"],
            "parent_ci_high": vs_parent["retention.delta_ci_high"],
            "anchor_delta": vs_anchor["retention.delta"],
            "anchor_ci_high": vs_anchor["retention.delta_ci_high"],
            "tries": tries,
        })  # fmt: skip
        parent = now
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chains",
        nargs="+",
        default=["tickets:40:0.004", "families:40:0.004", "tickets:20:0.004", "facts:30:0.004"],
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    wanted = runs = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.chains:
            kind, steps, lr = spec.split(":")
            for seed in args.seeds:
                name = f"{spec} seed {seed}"
                rows = chain(
                    kind, int(steps), float(lr), Path(tmp) / f"{spec.replace(':', '-')}-{seed}", seed
                )
                for k, r in enumerate(rows, start=1):
                    print(
                        f"{name} step {k}: retention {r['accuracy']:.3f}; vs parent {r['parent_delta']:+.3f} "
                        f"(CI high {r['parent_ci_high']:+.3f}); vs anchor {r['anchor_delta']:+.3f} "
                        f"(CI high {r['anchor_ci_high']:+.3f}); trained {r['tries']}x",
                        flush=True,
                    )
                shape = (
                    all(r["parent_ci_high"] >= PARENT_WARN for r in rows)
                    and all(r["anchor_ci_high"] >= ANCHOR_FAIL for r in rows[:-1])
                    and rows[-1]["anchor_ci_high"] < ANCHOR_FAIL
                )
                wanted += shape
                runs += 1
                print(f"{name}: {'passes each parent, fails the anchor' if shape else 'not the anchor case'}")
    print(f"chains with the anchor case: {wanted} of {runs}")


if __name__ == "__main__":
    main()
