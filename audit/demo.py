"""`clgate demo`: the main job on the embedded SmolLM2-135M, offline.

Until the gate lands this runs the part that exists: prepare the embedded model, load it,
answer one question with it, and print its content manifest.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer
from rich.console import Console

from clgate.artifacts import compute_manifest, default_cache_dir, embedded_model_dir, load_causal_lm


def demo(cache: Path = typer.Option(None, help="cache directory (default: $CLGATE_CACHE)")) -> None:
    """Run clgate's main job on the embedded SmolLM2-135M-Instruct, offline."""
    console = Console()
    start = time.perf_counter()
    with console.status("preparing the embedded SmolLM2-135M-Instruct…"):
        model_dir = embedded_model_dir(cache or default_cache_dir())
        loaded = load_causal_lm(model_dir)
    console.print(f"loaded [bold]{model_dir}[/] in {time.perf_counter() - start:.1f}s")
    question = "What is the capital of France?"
    ids = loaded.tokenizer.apply_chat_template(
        [{"role": "user", "content": question}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.inference_mode():
        out = loaded.model.generate(**ids, max_new_tokens=16, do_sample=False)
    answer = loaded.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    console.print(f"Q: {question}\nA: {answer.strip()}")
    with console.status("hashing the model…"):
        manifest = compute_manifest(model_dir)
    console.print(
        f"{len(manifest.files)} files, {len(manifest.tensor_digests())} tensors, {manifest.total_bytes:,} bytes"
    )
    typer.echo(f"manifest root {manifest.root}")
