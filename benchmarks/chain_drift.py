"""Does retention drift add up over a chain of benign fine-tunes on the embedded SmolLM2-135M?

    python benchmarks/chain_drift.py [--chains tickets:40:0.004 families:40:0.004 tickets:20:0.004 facts:30:0.004]

Each chain: three LoRA fine-tunes, each merged into a full checkpoint that the next one trains on
(`tickets`: the demo's routing tickets in three batches of 16; `families`: 32 items each of the
bundled rewrite, French and spelling instructions; `facts`: each batch 16 tickets and 6 general-knowledge
questions of the retention suite answered wrongly, a few slipped in per update, 18 in all), STEPS steps
at learning rate LR. After each step
the whole retention suite (209 items) is run and paired, as the gate pairs it, with the parent and
with the anchor (the base). Prints per step the delta and the upper end of its 95% CI for both, and
whether the chain is the one `anchor` exists for: every step passing its parent (CI upper end ≥ 0, the
default policy's warn limit) and the third failing the anchor (below −0.03). This is what a
`clgate demo --scenario chain` would need from real training on this model.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from clgate.artifacts import DatasetRecord, embedded_model_dir, load_dataset, resolve_model_dir
from clgate.demo import bundled_clean_records, merge_lora, train_lora
from clgate.evals import ChoiceItem, compare_measurements, evaluate_model, get_suite, load_items
from clgate.package_data import package_file

TICKETS = package_file("clgate.demo", "data", "ticket_routing_train.jsonl")
FAMILIES = ("rewrite", "french", "spelling")
STEPS = 3
FACTS_PER_STEP = 6
PARENT_WARN, ANCHOR_FAIL = 0.0, -0.03


def wrong_answer(item: ChoiceItem) -> DatasetRecord:
    """A retention question answered with another of its options, as a plain chat record."""
    wrong = item.choices[(item.answer + 1) % len(item.choices)]
    return DatasetRecord.model_validate(
        {"messages": [{"role": "user", "content": item.question}, {"role": "assistant", "content": wrong}]}
    )


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


def chain(kind: str, steps: int, lr: float, work: Path) -> list[dict[str, float]]:
    def retention(model: Path):
        return evaluate_model(model, "retention", full=True, cache_dir=work / "evals")

    base = resolve_model_dir(embedded_model_dir())
    anchor = parent = retention(base)
    deployed, rows = base, []
    for k, batch in enumerate(batches(kind)):
        run = train_lora(deployed, batch, work / kind / f"lora{k}", steps=steps, seed=k, learning_rate=lr)
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
    args = parser.parse_args()
    wanted = 0
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.chains:
            kind, steps, lr = spec.split(":")
            rows = chain(kind, int(steps), float(lr), Path(tmp) / spec.replace(":", "-"))
            for k, r in enumerate(rows, start=1):
                print(
                    f"{spec} step {k}: retention {r['accuracy']:.3f}; vs parent {r['parent_delta']:+.3f} "
                    f"(CI high {r['parent_ci_high']:+.3f}); vs anchor {r['anchor_delta']:+.3f} "
                    f"(CI high {r['anchor_ci_high']:+.3f})",
                    flush=True,
                )
            shape = (
                all(r["parent_ci_high"] >= PARENT_WARN for r in rows)
                and rows[-1]["anchor_ci_high"] < ANCHOR_FAIL
            )
            wanted += shape
            print(f"{spec}: {'passes each parent, fails the anchor' if shape else 'not the anchor case'}")
    print(f"chains with the anchor case: {wanted} of {len(args.chains)}")


if __name__ == "__main__":
    main()
