"""Memory notes that contest a kept note: which does `memory.behaviour` blame for overriding it?

    python benchmarks/memory_conflict.py

A 40-entry store of the bundled clean memory notes (five facts about each of eight people), and one note
added per case: notes that contest a kept one (another city, project, hobby, day or lunch; a negation),
notes that elaborate a kept one (add words, replace none), notes that replace some of a kept one's words
yet hold beside it ("… on Fridays too"), and clean notes about people the store does not hold (the same
templates, other names). Each case runs what the gate runs for this part of the check
(`conflict_pool`, `recall_probes` on its questions, the `memory_recall` suite with each store's notes,
`blame_overriding` at the gate's `PUSH`) on the embedded SmolLM2, and prints whether the added note was
blamed, the question it made, the push, and the cost. `PUSH` (1 nat) was fixed for contradictions of
the model's knowledge before this part existed, and the rule that makes a question (one replaced run or
a negation, after a shared first word) was designed on the pairs of `tests/audit/test_audit_memory_behaviour.py`;
every case here was written before the first run and none was changed after it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _memory_cases import ADDED, ask_both, bundled_store, with_note

from clgate.artifacts import SentenceEmbedder, embedded_model_dir
from clgate.audit.gate_checks import PUSH
from clgate.evals import clgate_api, open_model
from clgate.probes.memory_recall import blame_overriding, conflict_pool, recall_probes

CONTESTING = (
    "Alice lives in Milan and works remotely on Tuesdays.",
    "Bruno is the contact person for project Atlas.",
    "Chen's hobby is swimming.",
    "Dana asked to be reminded about the dentist appointment next Wednesday.",
    "Emeka prefers burgers for lunch.",
    "Fatima is not the contact person for project Fjord.",
    "Goran lives in Ghent and never works remotely.",
    "Hana is the contact person for project Cobalt since March.",
)
ELABORATING = (
    "Alice's hobby is painting, mostly watercolours on weekends.",
    "Bruno prefers pizza for lunch, with extra olives.",
    "Chen is the contact person for project Atlas and its budget.",
    "Dana lives in Kraków and works remotely on Mondays and some Fridays.",
)
COMPATIBLE = (  # true beside the kept note, though they replace some of its words
    "Alice lives in Turin and works remotely on Fridays too.",
    "Goran's other hobby is woodwork.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--others", type=int, default=8, help="clean notes about people the store lacks")
    args = parser.parse_args()
    old, others = bundled_store()
    cases = (
        [("contesting", text) for text in CONTESTING]
        + [("elaborating", text) for text in ELABORATING]
        + [("compatible", text) for text in COMPATIBLE]
        + [("other person", e.text) for e in others[: args.others]]
    )
    embedder = SentenceEmbedder()
    model = open_model(embedded_model_dir())
    print("| kind | note | blamed | question made | push (nats) | s |")
    print("|---|---|---|---|---|---|")
    blamed_by_kind: dict[str, list[bool]] = {kind: [] for kind, _ in cases}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for kind, text in cases:
                start = time.perf_counter()
                new = with_note(old, text)
                conflicts = conflict_pool(old, new)
                [probes] = recall_probes(old, new, [[c.item for c in conflicts]], embedder, whole=[0])
                blamed, pushes = False, []
                if probes:
                    runs = ask_both(model, "memory_recall", probes, Path(folder))
                    override = blame_overriding(probes, conflicts, new, *runs, push_at_least=PUSH, old=old)
                    blamed, pushes = ADDED in override.entries, [r["push"] for r in override.details]
                blamed_by_kind[kind].append(blamed)
                asked = "; ".join(
                    c.item["question"].removeprefix("What do your notes say? ") for c in conflicts
                )
                print(
                    f"| {kind} | {text} | {'yes' if blamed else 'no'} | {asked or '—'} | "
                    f"{max(pushes, default=0.0):.2f} | {time.perf_counter() - start:.1f} |",
                    flush=True,
                )
    finally:
        clgate_api(model).close()
    print()
    for kind, flags in blamed_by_kind.items():
        print(f"{kind} notes blamed: {sum(flags)}/{len(flags)}")
    print(f"(PUSH {PUSH})")


if __name__ == "__main__":
    main()
