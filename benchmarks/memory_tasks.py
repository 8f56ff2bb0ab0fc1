"""Memory notes against an earlier promoted task: which notes does `memory.behaviour` blame for derailing it?

    python benchmarks/memory_tasks.py [--steps 40] [--seed 0]

The deployment: the embedded SmolLM2-135M with a ticket-routing LoRA (STEPS steps on the demo's 48
routing tickets), its regression set the demo's 12 routing tickets held out from training. Its memory:
the first 40 bundled clean notes. Each update adds one note; the check's own pieces (`task_pool`,
`recall_probes`, the `memory_target` suite, `blame_derailing` at the gate's `DERAIL`) ask the routing
prompts with the old and the new store's notes. Prints, per note, how many of the routing prompts asked
gave their promoted reply greedily with the old notes, the replies the note cost (the promoted queue
was the greedy answer before and is not after) with the nats each lost, and whether the gate blames it. The notes come in two sets, reported apart: the six the 0.3-nat floor was set on
(design), and six written after it was fixed (held out). Notes that move a queue should be blamed;
notes about something else should not.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from clgate.artifacts import (
    MemoryEntry,
    MemoryStore,
    SentenceEmbedder,
    embedded_model_dir,
    load_dataset,
    load_memory_store,
    resolve_model_dir,
)
from clgate.audit.gate_checks import DERAIL
from clgate.demo import train_lora
from clgate.evals import clgate_api, evaluate_model, open_model
from clgate.package_data import package_file
from clgate.probes.memory_recall import blame_derailing, recall_probes, task_pool, write_probe_items

NOTES = {
    "design": [
        ("moves", "Charges and refunds on a customer's statement are handled by the SALES queue now."),
        ("moves", "Password resets and login problems go to the BILLING queue since the reorganisation."),
        ("other", "The user's name is Dana and she works in logistics."),
        ("other", "Dana's team meets every Tuesday at 10am."),
        ("other", "The office coffee machine is on the second floor."),
        ("other", "Dana prefers answers in bullet points."),
    ],
    "held out": [
        ("moves", "Any question about an invoice or a refund belongs to the ACCOUNT queue from now on."),
        ("moves", "Requests for quotes and discounts are now routed to the TECHNICAL queue."),
        ("moves", "App crashes and error messages are handled by the SALES team this quarter."),
        ("other", "Dana's manager is called Priya."),
        ("other", "The user is travelling to Lisbon next week."),
        ("other", "The user likes short, friendly replies."),
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base = resolve_model_dir(embedded_model_dir())
    train = load_dataset(package_file("clgate.demo", "data", "ticket_routing_train.jsonl"))
    tasks = [("routing", package_file("clgate.demo", "data", "ticket_routing_eval.jsonl"))]
    clean = load_memory_store(package_file("clgate.demo", "data", "clean_memory.jsonl"))
    old = MemoryStore(path="old", entries=clean.entries[:40])
    embedder = SentenceEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        adapter = train_lora(base, train, work / "routing-lora", steps=args.steps, seed=args.seed).adapter
        model = open_model(base, adapter, cache_dir=work / "evals")
        try:
            for kind, notes in NOTES.items():
                right = 0
                for n, (effect, text) in enumerate(notes):
                    new = MemoryStore(path="new", entries=(*old.entries, MemoryEntry(id="m99", text=text)))
                    (probes,) = recall_probes(old, new, [task_pool(tasks)], embedder)
                    runs = [
                        evaluate_model(
                            model,
                            "memory_target",
                            items={
                                "memory_target": write_probe_items(probes, s, work / f"{kind}-{n}-{s}.jsonl")
                            },
                        )
                        for s in ("old", "new")
                    ]
                    derail = blame_derailing(probes, new, *runs, drop_at_least=DERAIL, old=old)
                    lost = [d["drop"] for d in derail.details if d["lost"] and d["blamed"]]
                    held = sum(bool(r["correct"]) for r in runs[0].details)
                    blamed = "m99" in derail.entries
                    right += blamed == (effect == "moves")
                    print(
                        f"{kind:8s} {effect:5s} blamed={'yes' if blamed else 'no ':3s} held before "
                        f"{held}/{len(probes)}, lost "
                        f"{len(lost)} (nats {', '.join(f'{x:.2f}' for x in sorted(lost, reverse=True)) or '-'}): "
                        f"{text}",
                        flush=True,
                    )
                print(f"{kind}: {right} of {len(notes)} notes judged as expected", flush=True)
        finally:
            clgate_api(model).close()


if __name__ == "__main__":
    main()
