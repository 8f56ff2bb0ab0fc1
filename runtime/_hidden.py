"""Hidden states at named hook points, read from a plain forward pass of the decoder stack.

Hook points are named as TransformerLens names them: `blocks.{l}.hook_resid_post` is the output of
decoder layer `l` (before the final norm), `ln_final.hook_normalized` the output of the final norm.
They are read with forward hooks on the layers rather than `output_hidden_states`, which keeps
every layer's states alive at once and puts the final norm's output where the last block's is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clgate.errors import InputError

FINAL = "ln_final.hook_normalized"
_RESID = re.compile(r"blocks\.(\d+)\.hook_resid_post")


def resid_post(layer: int) -> str:
    """The hook point after decoder layer `layer`."""
    return f"blocks.{layer}.hook_resid_post"


@dataclass
class HiddenStates:
    """The final norm's output over every position, and each requested hook point's states."""

    last: Any
    at: dict[str, Any] = field(default_factory=dict)


def decoder_layers(module: Any) -> Any:
    inner = module.base_model
    for attr in ("layers", "h", "blocks", "decoder.layers"):
        obj = inner
        for part in attr.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            return obj
    raise InputError(f"cannot find the decoder layers of {type(module).__name__}")


def final_norm(module: Any) -> Any:
    inner = module.base_model
    for attr in ("norm", "ln_f", "final_layernorm", "final_layer_norm"):
        if hasattr(inner, attr):
            return getattr(inner, attr)
    raise InputError(f"cannot find the final norm of {type(module).__name__}")


def _layer_index(name: str, n_layers: int) -> int:
    match = _RESID.fullmatch(name)
    if match is None or int(match[1]) >= n_layers:
        raise InputError(
            f"unknown hook point {name!r} (blocks.N.hook_resid_post for N < {n_layers}, or {FINAL})"
        )
    return int(match[1])


def hidden_states(
    module: Any,
    input_ids: Any,
    attention_mask: Any,
    hooks: Sequence[str] = (),
    past_key_values: Any = None,
) -> HiddenStates:
    """One forward pass of the decoder stack (no LM head), keeping the hook points asked for."""
    layers = decoder_layers(module)
    wanted = {name: _layer_index(name, len(layers)) for name in hooks if name != FINAL}
    captured: dict[str, Any] = {}
    handles = [
        layers[index].register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(
                name, out[0] if isinstance(out, tuple) else out
            )
        )
        for name, index in wanted.items()
    ]
    cached = {"cache": past_key_values, "use_cache": True} if past_key_values is not None else {}
    try:
        out = module.base_model(input_ids=input_ids, attention_mask=attention_mask, **cached)
    finally:
        for handle in handles:
            handle.remove()
    if FINAL in hooks:
        captured[FINAL] = out.last_hidden_state
    return HiddenStates(out.last_hidden_state, captured)
