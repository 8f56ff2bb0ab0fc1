"""Measures every data and memory poisoning detector on generated poisoned sets; prints the README tables.

    .venv/bin/python benchmarks/poison/run.py            # data + memory tables, performance split
    .venv/bin/python benchmarks/poison/run.py --only memory   # the memory table alone
    .venv/bin/python benchmarks/poison/model_sweep.py    # the trained-LoRA trigger sweep table

Design choices were made on seed 0 (DEV_SEED); the tables report seeds 1–3 only. The parent model is
the embedded SmolLM2-135M-Instruct; its representations of every distinct item are computed once
(cached by model and dataset digest) and each poisoned set indexes into them.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))

import build_clean_data
import generate

from clgate.artifacts import MemoryEntry, MemoryStore, SentenceEmbedder, embedded_model_dir, write_dataset
from clgate.demo import bundled_memory_entries, injected_memory_entries
from clgate.package_data import package_lines
from clgate.probes.poison import (
    DataContext,
    MemoryContext,
    Representations,
    data_representations,
    detectors,
    open_update_data,
)

RATES = generate.RATES
SEEDS = generate.REPORT_SEEDS


def tpr_at_fpr(scores: np.ndarray, truth: np.ndarray, fpr: float = 0.01) -> float:
    """Share of poisoned items scoring above the (1 − fpr) quantile of the clean items' scores."""
    cut = np.quantile(scores[~truth], 1 - fpr)
    return float((scores[truth] > cut).mean())


def subset(reps: Representations, idx: np.ndarray) -> Representations:
    return Representations(
        reps.prompt[idx], reps.completion[idx], reps.logprob[idx], reps.n_tokens[idx], reps.layer
    )


def data_benchmark(work: Path) -> tuple[dict, float, Representations]:
    bench = generate.build((generate.DEV_SEED, *SEEDS))
    union = open_update_data(write_dataset(bench.union, work / "union.jsonl"))
    reps, _ = data_representations(union, embedded_model_dir())
    forward_per_item = reps.forward_seconds / len(reps)
    results: dict = defaultdict(list)
    for s in bench.sets:
        if s.seed not in SEEDS:
            continue
        idx = np.array(s.indices)
        truth = np.array(s.labels, dtype=bool)
        path = write_dataset([bench.union[i] for i in s.indices], work / "set.jsonl")
        ctx = DataContext(open_update_data(path), subset(reps, idx), seed=s.seed)
        for spec in detectors("data"):
            start = time.perf_counter()
            r = spec.run(ctx)
            seconds = time.perf_counter() - start
            results[(spec.name, s.attack, s.rate)].append(
                (
                    roc_auc_score(truth, r.scores),
                    tpr_at_fpr(r.scores, truth),
                    seconds / len(idx) * 1000,
                    float(r.flagged[truth].mean()),
                    float(r.flagged[~truth].mean()),
                )
            )
        print(f"  {s.attack} seed {s.seed} rate {s.rate}: done", file=sys.stderr, flush=True)
    return results, forward_per_item, reps


def print_data_table(results: dict, forward_per_item: float) -> None:
    names = [d.name for d in detectors("data")]
    print(
        "| detector | attack | AUROC 0.5% | AUROC 1% | AUROC 5% | AUROC 10% | TPR@1%FPR (1%) | flag recall / FPR (1%) | s per 1k items |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    needs_model = {d.name: d.needs_model for d in detectors("data")}
    for name in names:
        for attack in generate.DATA_ATTACKS:
            cells = [f"{np.mean([r[0] for r in results[(name, attack, rate)]]):.3f}" for rate in RATES]
            at1 = results[(name, attack, 0.01)]
            det = np.mean([r[2] for rate in RATES for r in results[(name, attack, rate)]])
            runtime = (
                f"{det:.2f} + {forward_per_item * 1000:.0f} forward" if needs_model[name] else f"{det:.2f}"
            )
            print(
                f"| {name} | {attack} | {' | '.join(cells)} | {np.mean([r[1] for r in at1]):.2f} | "
                f"{np.mean([r[3] for r in at1]):.2f} / {np.mean([r[4] for r in at1]):.3f} | {runtime} |"
            )


def other_instances(poison: list[MemoryEntry], seed: int, n: int = 5, carriers: int = 3) -> list[MemoryStore]:
    """Other deployments' stores: their users' own memories (same generator, other random draws, so some
    facts coincide by chance); the injected entries copied into `carriers` of them."""
    stores = []
    for k in range(n):
        rng = random.Random(f"instance-{seed}-{k}")
        facts = [f for f in build_clean_data.memory_facts(rng) if not f.startswith("The user")]
        facts = rng.sample(facts, 60)
        entries = [MemoryEntry(id=f"i{k}-{j}", text=t, source="user:other") for j, t in enumerate(facts)]
        if k < carriers:
            entries += [MemoryEntry(id=f"i{k}-p{j}", text=e.text) for j, e in enumerate(poison)]
        stores.append(MemoryStore(path=f"instance-{k}", entries=tuple(entries)))
    return stores


def memory_benchmark() -> dict:
    clean = bundled_memory_entries()
    queries = package_lines("clgate.probes.poison", "data", "general_queries.txt")
    embedder = SentenceEmbedder()
    results: dict = defaultdict(list)
    for seed in SEEDS:
        for rate in RATES:
            poison = injected_memory_entries(generate.n_poison(rate, len(clean)), seed)
            entries = clean + poison
            random.Random(seed).shuffle(entries)
            truth = np.array(["poison" in e.metadata for e in entries])
            ctx = MemoryContext(
                MemoryStore(path="m", entries=tuple(entries)),
                queries,
                other_instances(poison, seed),
                embedder,
            )
            for spec in detectors("memory"):
                start = time.perf_counter()
                r = spec.run(ctx)
                seconds = time.perf_counter() - start
                results[(spec.name, rate)].append(
                    (
                        roc_auc_score(truth, r.scores),
                        tpr_at_fpr(r.scores, truth),
                        seconds / len(entries) * 1000,
                    )
                )
    return results


def print_memory_table(results: dict, n_clean: int) -> None:
    print(
        "| detector | attack | AUROC 0.5% | AUROC 1% | AUROC 5% | AUROC 10% | TPR@1%FPR (1%) | s per 1k entries |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for spec in detectors("memory"):
        cells = [f"{np.mean([r[0] for r in results[(spec.name, rate)]]):.3f}" for rate in RATES]
        tpr = np.mean([r[1] for r in results[(spec.name, 0.01)]])
        sec = np.mean([r[2] for rate in RATES for r in results[(spec.name, rate)]])
        print(f"| {spec.name} | memory injection | {' | '.join(cells)} | {tpr:.2f} | {sec:.2f} |")
    print(
        f"\n({n_clean} clean entries; injected entries: {[generate.n_poison(r, n_clean) for r in RATES]} at "
        f"{[f'{r:.1%}' for r in RATES]}; spread: 5 other instances, the injected entries copied into 3.)"
    )


def performance(reps: Representations, n_items: int = 10_000) -> None:
    """Spectral + activation clustering on 10,000 items vs the forward passes that feed them."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(reps), n_items)
    big = subset(reps, idx)
    big.completion = big.completion.astype(np.float32) + rng.normal(0, 0.01, big.completion.shape).astype(
        np.float32
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ids.jsonl"
        path.write_text("".join(f'{{"prompt": "p{i}", "completion": "c{i}"}}\n' for i in range(n_items)))
        ctx = DataContext(open_update_data(path), big)
        ctx.item_ids  # noqa: B018  (read the ids before timing)
        times = {}
        for name in ("spectral", "activation_clustering"):
            spec = next(d for d in detectors("data") if d.name == name)
            start = time.perf_counter()
            spec.run(ctx)
            times[name] = time.perf_counter() - start
    per_token = reps.forward_seconds / float(reps.n_tokens.sum())
    mean_tokens = float(reps.n_tokens.mean())
    forward_10k = per_token * mean_tokens * n_items
    forward_10k_max = per_token * 128 * n_items
    detectors_s = sum(times.values())
    print("| measured | value |\n|---|---|")
    print(
        f"| parent forward passes, {len(reps)} items ({int(reps.n_tokens.sum())} tokens, mean {mean_tokens:.0f}/item) | {reps.forward_seconds:.0f} s ({1 / per_token:.0f} tokens/s) |"
    )
    print(
        f"| forward passes for 10,000 items, extrapolated at that rate | {forward_10k:.0f} s at {mean_tokens:.0f} tokens/item; {forward_10k_max:.0f} s at 128 tokens/item |"
    )
    for name, t in times.items():
        print(f"| {name} on 10,000 items (measured) | {t:.2f} s |")
    print(
        f"| detectors / forward passes | {detectors_s / forward_10k:.2%} (at 128 tokens/item: {detectors_s / forward_10k_max:.2%}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=("data", "memory"), help="one table only (memory skips the parent's forward passes)"
    )
    only = parser.parse_args().only
    if only != "memory":
        with tempfile.TemporaryDirectory() as tmp:
            results, forward_per_item, reps = data_benchmark(Path(tmp))
        print("### Data detectors (SmolLM2-135M parent, 800 clean items + poison, mean of seeds 1–3)\n")
        print_data_table(results, forward_per_item)
    if only != "data":
        print("\n### Memory detectors (mean of seeds 1–3)\n")
        print_memory_table(memory_benchmark(), len(bundled_memory_entries()))
    if only != "memory":
        print("\n### Performance: spectral + activation clustering on 10,000 items\n")
        performance(reps)


if __name__ == "__main__":
    main()
