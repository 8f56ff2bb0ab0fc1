"""The `--device` and `--dtype` options every model-running command takes, and the `--served-*` ones.

Plain strings checked by the runtime, so a bad value is clgate's one-line error (exit 2), as
every other bad input is, rather than a usage screen.
"""

from __future__ import annotations

import typer

from clgate.runtime._spec import DEVICES, DTYPES

DEVICE = typer.Option(
    "auto", "--device", help=f"where models run: {'|'.join(DEVICES)} (auto: CUDA when present, else cpu)"
)
DTYPE = typer.Option(
    "auto", "--dtype", help=f"weights dtype: {'|'.join(DTYPES)} (auto: bfloat16 on CUDA, float32 on cpu)"
)

SERVED_PARENT = typer.Option(
    None, "--served-parent", help="where the parent is served: URL[#MODEL] of an OpenAI-compatible server"
)
SERVED_CANDIDATE = typer.Option(
    None, "--served-candidate", help="where the candidate is served: URL[#MODEL] (vLLM: URL#LORA_NAME)"
)
SERVED_CONCURRENCY = typer.Option(8, "--served-concurrency", help="requests in flight per served model")
SERVED_TIMEOUT = typer.Option(120.0, "--served-timeout", help="seconds one request may take (then retried)")
