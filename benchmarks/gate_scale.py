"""The model work of a gate at any size: clgate's runtime against plain transformers calls, one run.

    python benchmarks/gate_scale.py                                # the 8B Llama shape (a GPU box)
    python benchmarks/gate_scale.py --layers 2 --hidden 256 --eval-limit 8 --device cpu   # here

Builds a Llama-shaped model with random weights (default: 32 layers, hidden 4096, 32 heads, GQA with
8 KV heads, MLP 14336, vocab 128256), written shard by shard in the target dtype (a bf16 model never
exists in fp32 on the host), and a rank-16 LoRA on q/k/v/o. Then, in one process:

1. gate: the default policy's checks for an adapter update (weights, activations, evals, trigger
   sweep) through one `ModelPool`, as the gate runs them; every score, generation and hidden-state
   request the runtime serves is recorded;
2. bare: the same requests through plain transformers calls (one padded forward per batch of
   context+option sequences, `generate` on the same prompts, plain forwards for the hidden states),
   after loading the parent and the candidate with `from_pretrained` and a peft merge.

Prints seconds (total, inside forward passes, loading weights), peak host RSS and peak device memory
of each phase, and the ratios gate / (bare + load) and peak host RSS / one model's weights.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from _timing import ForwardTimer, PeakMemory

from clgate.artifacts import compute_manifest
from clgate.demo import tiny_tokenizer
from clgate.probes.activations import activation_prompts
from clgate.runtime import ModelPool, RuntimeModel, chat_ids, plan_load, resolve_placement, weights_bytes
from clgate.runtime import _model as runtime_model

GIB = 1024**3


# --- building the checkpoint ----------------------------------------------------------------


def build_model(path: Path, args: argparse.Namespace, dtype: torch.dtype, shard_bytes: int) -> Path:
    """A random Llama checkpoint written tensor by tensor: at most one shard is ever on the host."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate or int(3.5 * args.hidden),
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in AutoModelForCausalLM.from_config(config).state_dict().items()}
    path.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size, index = 0, {}
    for name, shape in shapes.items():
        if len(shape) == 1:  # norm weights
            tensor = torch.ones(shape, dtype=dtype)
        else:
            tensor = _randn_in_chunks(shape, generator, dtype)
        if size and size + tensor.nbytes > shard_bytes:
            _save_shard(shards, path, save_file, index)
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += tensor.nbytes
    _save_shard(shards, path, save_file, index)
    total = sum(math.prod(s) for s in shapes.values()) * torch.finfo(dtype).bits // 8
    (path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": index})
    )
    config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _randn_in_chunks(shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """A large random tensor filled row block by row block, so no fp32 copy of it exists at once."""
    out = torch.empty(shape, dtype=dtype)
    for start in range(0, shape[0], 1024):
        block = out[start : start + 1024]
        block.copy_(torch.randn(block.shape, generator=generator) * 0.02)
    return out


def _save_shard(shards: list[dict[str, torch.Tensor]], path: Path, save_file: Callable, index: dict) -> None:
    name = f"model-{len(shards):05d}.safetensors"
    save_file(shards[-1], str(path / name), metadata={"format": "pt"})
    index.update(dict.fromkeys(shards[-1], name))
    shards[-1].clear()


def build_lora(base: Path, path: Path, args: argparse.Namespace, rank: int = 16) -> Path:
    """A peft LoRA config and random, non-zero factors for q/k/v/o of every layer."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    targets = ("q_proj", "k_proj", "v_proj", "o_proj")
    head = args.hidden // args.heads
    dims = {
        "q_proj": (args.hidden, args.hidden),
        "k_proj": (args.hidden, args.kv_heads * head),
        "v_proj": (args.hidden, args.kv_heads * head),
        "o_proj": (args.hidden, args.hidden),
    }
    LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=list(targets),
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        base_model_name_or_path=str(base),
    ).save_pretrained(str(path))
    generator = torch.Generator().manual_seed(1)
    factors = {}
    for layer in range(args.layers):
        for target in targets:
            fan_in, fan_out = dims[target]
            key = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            factors[f"{key}.lora_A.weight"] = torch.randn((rank, fan_in), generator=generator) / math.sqrt(
                fan_in
            )
            factors[f"{key}.lora_B.weight"] = torch.randn((fan_out, rank), generator=generator) * 0.01
    save_file(factors, str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
    return path


# --- recording what the runtime serves --------------------------------------------------------


@dataclass
class Recorded:
    """Per model (parent, candidate): the requests the runtime served, replayed by the bare phase."""

    scores: list[tuple[list[int], list[list[int]]]] = field(default_factory=list)
    generations: list[tuple[list[list[int]], int]] = field(default_factory=list)
    sequences: list[list[int]] = field(default_factory=list)  # hidden-state passes, head included


def record(models: dict[str, Recorded]) -> Callable[[], None]:
    """Wrap the runtime's entry points to log every request; returns the undo."""
    cls = RuntimeModel
    originals = {name: getattr(cls, name) for name in ("score", "greedy", "head_cache", "hidden")}

    def key(model: RuntimeModel) -> Recorded:
        return models["candidate" if model.adapter else "parent"]

    def score(self, requests, batching=None):
        for r in requests:
            key(self).scores.append(
                (self.encode_prompt(r.context), [self.encode_text(c) for c in r.continuations])
            )
        return originals["score"](self, requests, batching)

    def greedy(self, prompts, max_new_tokens, batch_size=64):
        ids = [self.encode_prompt(p) if isinstance(p, str) else list(p) for p in prompts]
        key(self).generations.append((ids, max_new_tokens))
        return originals["greedy"](self, prompts, max_new_tokens, batch_size)

    def head_cache(self, head, rows):
        self._recorded_head = list(head)
        return originals["head_cache"](self, head, rows)

    def hidden(self, input_ids, attention_mask, hooks=(), cache=None):
        head = getattr(self, "_recorded_head", []) if cache is not None else []
        width = attention_mask.shape[1] - input_ids.shape[1]
        for row, mask in zip(input_ids.tolist(), attention_mask[:, width:].tolist(), strict=True):
            key(self).sequences.append(head + [t for t, m in zip(row, mask, strict=True) if m])
        return originals["hidden"](self, input_ids, attention_mask, hooks, cache)

    for name, fn in (("score", score), ("greedy", greedy), ("head_cache", head_cache), ("hidden", hidden)):
        setattr(cls, name, fn)
    return lambda: [setattr(cls, name, fn) for name, fn in originals.items()]


# --- the two phases --------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float = 0.0
    forward: float = 0.0
    load: float = 0.0
    host_start: int = 0
    host_peak: int = 0
    device_peak: int = 0
    parts: dict[str, float] = field(default_factory=dict)


def run_gate_checks(
    parent: Path, adapter: Path, cache: Path, device: str, dtype: str, eval_limit: int | None
) -> Phase:
    """The default policy's checks for an adapter update, as the gate runs them, on one model pool."""
    from clgate.audit.check_inputs import GateInputs
    from clgate.audit.gate_checks import GATE_CHECKS
    from clgate.audit.policy import load_policy

    policy = load_policy()
    options = {name: dict(policy.options_for(name)) for name in GATE_CHECKS}
    if eval_limit is not None:
        options["evals"]["limit"] = eval_limit
    phase, loading = Phase(), [0.0]
    original = runtime_model.load_module

    def timed_load(*a: Any, **k: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            loading[0] += time.perf_counter() - start

    runtime_model.load_module = timed_load
    memory, timer, start = PeakMemory(), ForwardTimer(), time.perf_counter()
    try:
        with ModelPool(cache) as pool:
            inputs = GateInputs(
                parent=parent,
                adapter=adapter,
                cache_dir=cache,
                manifests={"parent": compute_manifest(parent), "adapter": compute_manifest(adapter)},
                options=options,
                models=pool,
                device=device,
                dtype=dtype,
            )
            phase.parts["manifests"] = time.perf_counter() - start
            for name in policy.required_for("adapter"):
                began = time.perf_counter()
                GATE_CHECKS[name].run(inputs)
                phase.parts[name] = time.perf_counter() - began
            phase.parts["loads"] = float(pool.loads)
            phase.host_peak, phase.device_peak = memory.host_bytes, memory.device_bytes
            phase.host_start = memory.start_bytes
    finally:
        runtime_model.load_module = original
        timer.close()
    phase.seconds, phase.forward, phase.load = time.perf_counter() - start, timer.seconds, loading[0]
    return phase


def bare_load(parent: Path, adapter: Path | None, dtype: torch.dtype, device_map: Any) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(parent), dtype=dtype, device_map=device_map)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model.eval()


@torch.inference_mode()
def bare_work(model: Any, work: Recorded, pad: int, tokens_per_batch: int = 2048) -> None:
    """The recorded requests through plain transformers calls: no shared heads, no option packing."""
    device = model.get_input_embeddings().weight.device
    scored = [(ctx + opt, len(ctx), len(opt)) for ctx, opts in work.scores for opt in opts]
    for batch in _length_batches([s for s, _, _ in scored], tokens_per_batch):
        ids, mask = _padded(batch, pad, device, left=False)
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), -1)
        logp.gather(-1, ids[:, 1:, None].clamp(max=logp.shape[-1] - 1))
    for prompts, max_new in work.generations:
        for batch in _length_batches(prompts, 64 * max(map(len, prompts)), rows=64):
            ids, mask = _padded(batch, pad, device, left=True)
            model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
            )
    for batch in _length_batches(work.sequences, tokens_per_batch):
        ids, mask = _padded(batch, pad, device, left=False)
        model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)


def _length_batches(seqs: Sequence[list[int]], tokens: int, rows: int = 1 << 30) -> list[list[list[int]]]:
    order = sorted(seqs, key=len, reverse=True)
    batches, i = [], 0
    while i < len(order):
        n = max(1, min(rows, tokens // max(1, len(order[i]))))
        batches.append(order[i : i + n])
        i += n
    return batches


def _padded(batch: list[list[int]], pad: int, device: Any, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, batch))
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, s in enumerate(batch):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[r, span], mask[r, span] = torch.tensor(s), 1
    return ids.to(device), mask.to(device)


def run_bare(
    parent: Path, adapter: Path, recorded: dict[str, Recorded], dtype: torch.dtype, device_map: Any
) -> Phase:
    phase = Phase()
    pad = tiny_tokenizer().pad_token_id
    memory, timer, start = PeakMemory(), ForwardTimer(), time.perf_counter()
    try:
        for role, lora in (("parent", None), ("candidate", adapter)):
            began = time.perf_counter()
            model = bare_load(parent, lora, dtype, device_map)
            phase.load += time.perf_counter() - began
            began = time.perf_counter()
            bare_work(model, recorded[role], pad)
            phase.parts[role] = time.perf_counter() - began
            del model
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        phase.host_peak, phase.device_peak = memory.host_bytes, memory.device_bytes
        phase.host_start = memory.start_bytes
    finally:
        timer.close()
    phase.seconds, phase.forward = time.perf_counter() - start, timer.seconds
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=None, help="default: hidden / 128")
    parser.add_argument("--kv-heads", type=int, default=None, help="default: heads / 4")
    parser.add_argument(
        "--intermediate", type=int, default=None, help="default: 3.5 x hidden (14336 at 4096)"
    )
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    parser.add_argument("--dtype", default="auto", help="auto|float32|bfloat16|float16")
    parser.add_argument(
        "--eval-limit", type=int, default=None, help="items per eval suite (default: policy's)"
    )
    parser.add_argument("--shard-gib", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the checkpoint here (default: temp)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.heads = args.heads or max(1, args.hidden // 128)
    args.kv_heads = args.kv_heads or max(1, args.heads // 4)
    if args.threads:
        torch.set_num_threads(args.threads)
    placement = resolve_placement(args.device, args.dtype)
    if args.build_only:
        build_model(args.workdir / "model", args, placement.torch_dtype, int(args.shard_gib * GIB))
        build_lora(args.workdir / "model", args.workdir / "lora", args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        started = time.perf_counter()
        parent, adapter = work / "model", work / "lora"
        if not (parent / "config.json").is_file():  # built in a child process: its memory is not this one's
            argv = [a for a in sys.argv[1:] if not a.startswith("--workdir")]
            subprocess.run(
                [sys.executable, __file__, *argv, "--workdir", str(work), "--build-only"], check=True
            )
        built = time.perf_counter() - started
        one_model = weights_bytes(parent, placement.dtype)
        print(
            f"Llama shape: {args.layers} layers, hidden {args.hidden}, {args.heads} heads ({args.kv_heads} KV), "
            f"MLP {args.intermediate or int(3.5 * args.hidden)}, vocab {args.vocab}; rank-16 LoRA on q/k/v/o"
        )
        print(
            f"placement {placement.device} {placement.dtype}; weights {one_model / GIB:.2f} GiB per model; "
            f"built in {built:.1f} s; torch threads {torch.get_num_threads()}"
        )
        recorded = {"parent": Recorded(), "candidate": Recorded()}
        undo = record(recorded)
        try:
            gate = run_gate_checks(parent, adapter, work / "cache", args.device, args.dtype, args.eval_limit)
        finally:
            undo()
        probes = [
            chat_ids(tiny_tokenizer(), [{"role": "user", "content": p}])[-128:]
            for p in activation_prompts().texts
        ]
        for role in recorded.values():  # the activation diff's passes (through the bridge, not recorded)
            role.sequences.extend(probes)
        device_map = plan_load(parent, placement).device_map
        bare = run_bare(parent, adapter, recorded, placement.torch_dtype, device_map)
    counts = {
        r: (len(w.scores), sum(len(g) for g, _ in w.generations), len(w.sequences))
        for r, w in recorded.items()
    }
    print(f"requests (scored contexts, generations, hidden-state sequences): {counts}")
    print(
        f"\n{'phase':6s} {'seconds':>8s} {'forward':>8s} {'load':>6s} {'host at start':>14s} {'host peak':>10s} {'device peak':>12s}"
    )
    for name, p in (("gate", gate), ("bare", bare)):
        print(
            f"{name:6s} {p.seconds:8.1f} {p.forward:8.1f} {p.load:6.2f} {p.host_start / GIB:10.2f} GiB "
            f"{p.host_peak / GIB:6.2f} GiB {p.device_peak / GIB:8.2f} GiB"
        )
    print("gate parts: " + ", ".join(f"{k} {v:.1f}" for k, v in gate.parts.items()))
    print("bare parts: " + ", ".join(f"{k} {v:.1f}" for k, v in bare.parts.items()))
    print(f"\ngate / (bare work + load): {gate.seconds / bare.seconds:.2f}  (goal on a GPU: <= 1.5)")
    print(
        f"gate forward share: {gate.forward / gate.seconds:.0%}; weight loads in the gate: {int(gate.parts['loads'])}"
    )
    print(
        f"gate peak host RSS / one model's weights: {gate.host_peak / one_model:.2f}  (goal on a GPU: < 1.3)"
    )
    print(
        "gate peak host RSS above its start / one model's weights: "
        f"{(gate.host_peak - gate.host_start) / one_model:.2f}  (the rest is the interpreter and its libraries)"
    )


if __name__ == "__main__":
    main()
