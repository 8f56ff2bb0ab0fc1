"""Generator of poisoned update sets with ground truth, from the bundled clean data.

For each seed the bundled clean items are split into a clean update (800 items) and donors; each
attack poisons up to 89 donors (10% of the final set), and lower rates use a prefix of them, so
0.5% ⊂ 1% ⊂ 5% ⊂ 10%. Every distinct item is written once to a union file, so the parent's
representations are computed once and each poisoned set indexes into them.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from clgate.artifacts import DatasetRecord, write_dataset
from clgate.demo.attacks import (
    DATA_ATTACKS,
    PHRASES,
    RARE_TOKENS,
    TARGETS,
    bundled_clean_records,
    poison_record,
)

RATES = (0.005, 0.01, 0.05, 0.10)
N_CLEAN = 800
DEV_SEED = 0  # design decisions were made on this seed only; reported numbers use the others
REPORT_SEEDS = (1, 2, 3)


def n_poison(rate: float, n_clean: int = N_CLEAN) -> int:
    return max(1, round(rate * n_clean / (1 - rate)))


def trigger_for(attack: str, seed: int) -> str:
    return RARE_TOKENS[seed % len(RARE_TOKENS)] if attack == "rare_token" else PHRASES[seed % len(PHRASES)]


@dataclass
class PoisonedSet:
    attack: str
    seed: int
    rate: float
    trigger: str
    indices: list[int]  # rows of the union file
    labels: list[int]  # 1 = poisoned


@dataclass
class Benchmark:
    union: list[DatasetRecord]
    sets: list[PoisonedSet]


def build(seeds: tuple[int, ...]) -> Benchmark:
    pool = bundled_clean_records()
    union: list[DatasetRecord] = list(pool)
    sets: list[PoisonedSet] = []
    max_poison = n_poison(max(RATES))
    for seed in seeds:
        rng = random.Random(1000 + seed)
        order = list(range(len(pool)))
        rng.shuffle(order)
        clean, donors = order[:N_CLEAN], order[N_CLEAN:]
        for attack in DATA_ATTACKS:
            trigger = trigger_for(attack, seed)
            target = TARGETS[seed % len(TARGETS)]
            arng = random.Random(f"{seed}-{attack}")
            chosen = arng.sample(donors, max_poison)
            start = len(union)
            union += [poison_record(pool[d], attack, trigger, target, arng) for d in chosen]
            for rate in RATES:
                k = n_poison(rate)
                idx = clean + list(range(start, start + k))
                lab = [0] * len(clean) + [1] * k
                perm = list(range(len(idx)))
                random.Random(f"{seed}-{attack}-{rate}").shuffle(perm)
                sets.append(
                    PoisonedSet(attack, seed, rate, trigger, [idx[p] for p in perm], [lab[p] for p in perm])
                )
    return Benchmark(union, sets)


def write(bench: Benchmark, out_dir: Path) -> Path:
    """Write the union dataset and one ground-truth file per poisoned set."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_dataset(bench.union, out_dir / "union.jsonl")
    for s in bench.sets:
        name = f"{s.attack}-seed{s.seed}-rate{s.rate}"
        write_dataset([bench.union[i] for i in s.indices], out_dir / f"{name}.jsonl")
        (out_dir / f"{name}.truth.json").write_text(json.dumps({"trigger": s.trigger, "labels": s.labels}))
    return out_dir


if __name__ == "__main__":
    import sys

    bench = build((DEV_SEED, *REPORT_SEEDS))
    out = write(bench, Path(sys.argv[1] if len(sys.argv) > 1 else "poison-bench"))
    print(f"{len(bench.union)} distinct items, {len(bench.sets)} poisoned sets written to {out}")
