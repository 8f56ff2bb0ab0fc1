"""Eval throughput on the embedded SmolLM2-135M, all ratios measured in one run.

    python benchmarks/eval_throughput.py [--hf-limit 40] [--skip-gate] [--threads 2]

1. Multiple-choice log-likelihood scoring of retention questions (the first 60) by clgate's
   runtime, against a bare batched torch forward (no log-softmax, no bookkeeping) over
     a) the same (context + option) sequences a scorer without prefix sharing must run, and
     b) only the unique tokens (each context once, each option once).
   Throughput is counted in the tokens of (a) for the first ratio and of (b) for the second.
2. The retention suite end to end through `inspect_ai.eval`: clgate's provider and
   log-likelihood solver, against inspect-ai's built-in `hf` provider (pointed at the same local
   directory, offline) with its generation-based `multiple_choice` solver and `choice` scorer.
3. A gate-sized run: every suite at its default size (`clgate eval list`) (plus target on the ticket-routing data
   and triggers with its default triggers) on the parent (SmolLM2) and a candidate (SmolLM2
   with a small random LoRA), cold cache; then the same again warm. Breakdown by suite.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from clgate.artifacts import embedded_model_dir
from clgate.demo import make_tiny_lora
from clgate.evals import compare_models, get_suite, open_model, run_suite
from clgate.evals._items import DATA_DIR, ChoiceItem, load_items
from clgate.package_data import package_file
from clgate.runtime import ContinuationRequest, load_model, render_chat

TARGET_DATA = package_file("clgate.demo", "data", "ticket_routing_eval.jsonl")


def retention_requests(tokenizer) -> list[ContinuationRequest]:
    items = load_items(DATA_DIR / "retention.jsonl", ChoiceItem)
    return [
        ContinuationRequest(
            render_chat(
                tokenizer,
                [{"role": "user", "content": i.prompt}],
            ),
            tuple(i.choices),
        )
        for i in items
    ]


@torch.inference_mode()
def bare_forward(model, sequences: list[list[int]], pad_id: int, tokens_per_batch: int = 2048) -> float:
    """Seconds for length-sorted, padded batched forward passes over `sequences` (logits only)."""
    order = sorted(sequences, key=len, reverse=True)
    start = time.perf_counter()
    i = 0
    while i < len(order):
        width = len(order[i])
        rows = max(1, tokens_per_batch // width)
        batch = order[i : i + rows]
        ids = torch.full((len(batch), width), pad_id)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, s in enumerate(batch):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        model(input_ids=ids, attention_mask=mask)
        i += rows
    return time.perf_counter() - start


def bench_engine(model_dir: Path, n_items: int) -> None:
    loaded = load_model(model_dir, device="cpu")
    tok = loaded.tokenizer
    requests = retention_requests(tok)[:n_items]
    enc = lambda text: tok(text, add_special_tokens=False).input_ids  # noqa: E731
    pairs = [(enc(r.context), [enc(c) for c in r.continuations]) for r in requests]
    full = [ctx + opt for ctx, opts in pairs for opt in opts]
    unique = [ctx for ctx, _ in pairs] + [opt for _, opts in pairs for opt in opts]
    full_tokens, unique_tokens = sum(map(len, full)), sum(map(len, unique))
    loaded.score(requests[:8])  # warm-up
    bare_forward(loaded.module, full[:32], tok.pad_token_id)
    t_full = bare_forward(loaded.module, full, tok.pad_token_id)
    t_engine = _timed(lambda: loaded.score(requests))
    t_unique = bare_forward(loaded.module, unique, tok.pad_token_id)
    print(f"retention: {len(requests)} questions, {len(full)} options")
    print(f"  tokens: {full_tokens} as (context+option) sequences, {unique_tokens} unique")
    print(f"  bare forward, (context+option) sequences  {full_tokens / t_full:8.0f} tok/s  ({t_full:.2f} s)")
    print(
        f"  bare forward, unique tokens only          {unique_tokens / t_unique:8.0f} tok/s  ({t_unique:.2f} s)"
    )
    print(
        f"  clgate log-likelihood scoring             {full_tokens / t_engine:8.0f} tok/s  ({t_engine:.2f} s)"
    )
    print(f"  ratio vs bare forward, same sequences:    {t_full / t_engine:.2f}x")
    print(f"  ratio vs bare forward, unique tokens:     {t_unique / t_engine:.2f}x")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_inspect(model_dir: Path, limit: int, log_dir: Path) -> None:
    import inspect_ai
    from inspect_ai import Task
    from inspect_ai.scorer import NOANSWER, choice
    from inspect_ai.solver import multiple_choice

    suite = get_suite("retention")
    model = open_model(model_dir, cache=False)
    run_suite(model, suite, limit=4, log_dir=log_dir)  # warm-up: model load, inspect start-up
    ours = run_suite(model, suite, limit=limit, log_dir=log_dir)
    start = time.perf_counter()
    generation_based = Task(
        dataset=suite.task().dataset, solver=multiple_choice(), scorer=choice(), name="retention_hf"
    )
    [log] = inspect_ai.eval(
        generation_based,
        model="hf/smollm2-local",
        model_args={"model_path": str(model_dir), "device": "cpu", "do_sample": False},
        limit=limit,
        max_tokens=32,
        display="none",
        log_level="error",
        log_dir=str(log_dir),
        max_samples=limit,
        ctl_server=False,
    )
    t_hf = time.perf_counter() - start
    if log.status != "success":
        raise SystemExit(f"hf provider run failed: {log.error.message if log.error else log.status}")
    hf_correct = sum(s.scores["choice"].value == "C" for s in log.samples)
    unparsed = sum(s.scores["choice"].value == NOANSWER or not s.scores["choice"].answer for s in log.samples)
    acc = sum(r["correct"] for r in ours.rows) / len(ours.rows)
    print(f"retention through inspect_ai.eval, {limit} items (hf: greedy, max_tokens=32)")
    print(f"  clgate provider, log-likelihood   {ours.seconds:7.1f} s   accuracy {acc:.3f}   unparsed 0")
    print(
        f"  inspect hf provider, generation   {t_hf:7.1f} s   accuracy {hf_correct / limit:.3f}   unparsed {unparsed}"
    )
    print(f"  clgate is {t_hf / ours.seconds:.1f}x faster")


def bench_gate(model_dir: Path, log_dir: Path, work: Path, save: Path | None) -> None:
    adapter = make_tiny_lora(model_dir, work / "lora", rank=4, targets=("q_proj", "v_proj"))
    names = [
        "retention",
        "honesty",
        "sycophancy",
        "refusal",
        "over_refusal",
        "prompt_injection",
        "target",
        "triggers",
    ]
    for label, cache_dir in (("cold cache", work / "cache"), ("warm cache", work / "cache")):
        times: dict[str, float] = {}

        def on_suite(name: str, result, times=times) -> None:
            if result is not None:
                times[name] = result.seconds

        start, cpu_start = time.perf_counter(), time.process_time()
        m = compare_models(
            model_dir,
            model_dir,
            names,
            candidate_adapter=adapter,
            dataset=TARGET_DATA,
            log_dir=log_dir,
            cache_dir=cache_dir,
            on_suite=on_suite,
        )
        total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(
            f"gate-sized run, parent + candidate, {label}: {total:.1f} s wall, {cpu:.1f} s CPU (all threads)"
        )
        print(
            f"  {'suite':18s} {'n':>4s} {'parent s':>9s} {'cand. s':>8s} {'parent':>7s} {'cand.':>7s} {'p':>7s}"
        )
        for name in names:
            n = m.numbers
            print(
                f"  {name:18s} {int(n[f'{name}.n']):4d} {times[f'parent:{name}']:9.1f} {times[f'candidate:{name}']:8.1f}"
                f" {n[f'{name}.parent_accuracy']:7.3f} {n[f'{name}.accuracy']:7.3f} {n[f'{name}.mcnemar_p']:7.3f}"
            )
        suite_time = sum(times.values())
        print(
            f"  suites {suite_time:.1f} s; model loading, digests and inspect start-up {total - suite_time:.1f} s"
        )
        if save is not None:
            m.write(save)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mc-items", type=int, default=60, help="retention questions for the engine ratios")
    parser.add_argument("--hf-limit", type=int, default=40, help="items for the inspect hf comparison")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is 2 cores)")
    parser.add_argument("--skip-gate", action="store_true")
    parser.add_argument("--save", type=Path, help="write the gate-sized comparison Measurement here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = embedded_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bench_engine(model_dir, args.mc_items)
        bench_inspect(model_dir, args.hf_limit, work / "logs")
        if not args.skip_gate:
            bench_gate(model_dir, work / "logs", work, args.save)


if __name__ == "__main__":
    main()
