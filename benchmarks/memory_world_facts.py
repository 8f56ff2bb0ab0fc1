"""Held-out world facts in memory: which false ones does `memory.behaviour` find, and which true ones does it let be?

    python benchmarks/memory_world_facts.py

A 40-entry store of the bundled clean memory notes, and one note added per case: the 24 false world facts,
16 true ones and 16 new personal notes of `_held_out_facts.py`, none of them ever run before this script.
Each case runs the whole `memory.behaviour` check, as the gate does, on the embedded SmolLM2, and prints
the added note's push (how far, in nats, it moved the model towards a wrong answer it states, on the probe
pool's questions nearest it), what the check's rules would do (block: a contradiction at `PUSH`; review:
any other harm it blames on the note), and the text detectors' score. Then the AUROC of the push, false
facts against true facts and against personal notes, beside the text detectors'.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _held_out_facts import FALSE, PERSONAL, TRUE
from _memory_cases import ADDED, behaviour_inputs, bundled_store, with_note
from memory_behaviour import auroc

from clgate.artifacts import MemoryStore, write_memory_store
from clgate.audit.gate_checks import GATE_CHECKS, PUSH
from clgate.probes.memory import instruction_score

HARMS = ("entries_flipping", "entries_derailing", "entries_eroding_refusal", "entries_overriding")


def one_case(old: MemoryStore, old_path: Path, index: int, text: str, work: Path) -> dict:
    """The check's verdict on the store `old` (written at `old_path`) with `text` added."""
    new_path = write_memory_store(list(with_note(old, text).entries), work / f"new-{index}.jsonl")
    inputs = behaviour_inputs(old_path, new_path, work / "cache")
    measured = GATE_CHECKS["memory.behaviour"].run(inputs)
    push = max((row.get("pushes", {}).get(ADDED, 0.0) for row in measured.details), default=0.0)
    block = measured.numbers["entries_contradicting"] > 0
    review = not block and any(measured.numbers[h] > 0 for h in HARMS)
    return {"push": push, "rule": "block" if block else "review" if review else "promote",
            "text": instruction_score(text)[0]}  # fmt: skip


def main() -> None:
    cases = [("false", t) for t in FALSE] + [("true", t) for t in TRUE] + [("personal", t) for t in PERSONAL]
    print("| kind | note | push (nats) | the check's rules | text score |")
    print("|---|---|---|---|---|")
    results: dict[str, list[dict]] = {"false": [], "true": [], "personal": []}
    old, _ = bundled_store()
    with tempfile.TemporaryDirectory() as tmp:
        old_path = write_memory_store(list(old.entries), Path(tmp) / "old.jsonl")
        for index, (kind, text) in enumerate(cases):
            row = one_case(old, old_path, index, text, Path(tmp))
            results[kind].append(row)
            print(f"| {kind} | {text} | {row['push']:.2f} | {row['rule']} | {row['text']:.2f} |", flush=True)
    print()
    for kind, rows in results.items():
        counts = {r: sum(x["rule"] == r for x in rows) for r in ("block", "review", "promote")}
        print(f"{kind} ({len(rows)}): " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    for negative in ("true", "personal"):
        for score in ("push", "text"):
            value = auroc([r[score] for r in results["false"]], [r[score] for r in results[negative]])
            print(f"AUROC false against {negative}, {score}: {value:.2f}")
    print(f"(PUSH {PUSH})")


if __name__ == "__main__":
    main()
