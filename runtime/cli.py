"""The `--device` and `--dtype` options every model-running command takes.

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
