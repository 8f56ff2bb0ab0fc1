"""Hook-point capture for interpretability probes: a TransformerLens `TransformerBridge` over the loaded
weights, or forward hooks on the decoder layers where the bridge cannot run.

The bridge rewires the module tree it is given (its blocks replace the model's layers, attention
becomes eager), so it gets a clone of the tree that shares every weight tensor: no memory is
copied, and the other checks keep running the model as it was loaded. A model spread over several
GPUs is read through forward hooks, which need no rewiring.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from clgate.runtime._hidden import final_norm, hidden_states
from clgate.runtime._prefix import head_cache

if TYPE_CHECKING:
    from clgate.runtime._model import RuntimeModel

log = logging.getLogger(__name__)


class HookedModel(Protocol):
    """Runs a model while keeping named hook points; `backend` says which kind of capture it is."""

    backend: str

    def head_cache(self, head: list[int]) -> Any:
        """The one-row KV cache of a shared prompt head."""

    def run(
        self, input_ids: Any, attention_mask: Any, names: Sequence[str], cache: Any = None
    ) -> dict[str, Any]:
        """The states at `names` over every input position."""

    def lens(self, resid: Any) -> Any:
        """Next-token log-probabilities read from a residual through the final norm and unembedding."""


class BridgeHooks:
    backend = "transformer_lens"

    def __init__(self, model: RuntimeModel) -> None:
        from transformer_lens.model_bridge import TransformerBridge

        module = model.module
        self.device, self.dtype = model.device, module.dtype
        self.bridge = TransformerBridge.boot_transformers(
            str(model.path),
            hf_model=_sharing_clone(module),
            tokenizer=model.tokenizer,
            device=str(model.device),
            dtype=module.dtype,
        )
        _pass_kv_cache(self.bridge)

    def head_cache(self, head: list[int]) -> Any:
        import torch

        ids = torch.tensor([head], device=self.device)
        return self.bridge(ids, return_type="logits_and_cache", use_cache=True)[1]

    def run(
        self, input_ids: Any, attention_mask: Any, names: Sequence[str], cache: Any = None
    ) -> dict[str, Any]:
        wanted = set(names)
        kwargs: dict[str, Any] = {"attention_mask": attention_mask.to(self.device), "logits_to_keep": 1}
        if cache is not None:
            kwargs["cache"] = cache
        _, states = self.bridge.run_with_cache(
            input_ids.to(self.device), names_filter=lambda n: n in wanted, **kwargs
        )
        return {name: states[name] for name in names}

    def lens(self, resid: Any) -> Any:
        import torch

        logits = self.bridge.unembed(self.bridge.ln_final(resid.to(self.device, self.dtype)))
        return torch.log_softmax(logits.float(), dim=-1)


class ForwardHooks:
    backend = "hf_decoder_layers"

    def __init__(self, model: RuntimeModel) -> None:
        self.module = model.module
        self.device, self.dtype = model.device, self.module.dtype

    def head_cache(self, head: list[int]) -> Any:
        return head_cache(self.module, head, 1, self.device)

    def run(
        self, input_ids: Any, attention_mask: Any, names: Sequence[str], cache: Any = None
    ) -> dict[str, Any]:
        states = hidden_states(
            self.module, input_ids.to(self.device), attention_mask.to(self.device), names, cache
        )
        return states.at

    def lens(self, resid: Any) -> Any:
        import torch

        norm = final_norm(self.module)
        logits = self.module.get_output_embeddings()(norm(resid.to(self.device, self.dtype)))
        return torch.log_softmax(logits.float(), dim=-1)


def hooked(model: RuntimeModel) -> HookedModel:
    """The bridge where TransformerLens supports the architecture and the model sits on one device."""
    if model.spread:
        return ForwardHooks(model)
    try:
        return BridgeHooks(model)
    except Exception as exc:  # an architecture TransformerLens has no adapter for
        log.warning(
            "TransformerBridge unavailable (%s); reading the HF decoder layers through forward hooks", exc
        )
        return ForwardHooks(model)


def _pass_kv_cache(bridge: Any) -> None:
    """Hand the bridge's attention the KV cache under the name it reads.

    transformers 5 passes the cache to attention as `cache`; TransformerLens's attention reads
    `past_key_values`, so without this a prompt head's cache is neither filled nor read and
    every continuation would attend to its own tokens only.
    """
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    def rename(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs = {**kwargs, "past_key_values": kwargs["cache"]}
        return args, kwargs

    for module in bridge.modules():
        if isinstance(module, AttentionBridge):
            module.register_forward_pre_hook(rename, with_kwargs=True)


def _sharing_clone(module: Any) -> Any:
    """A copy of the module tree whose parameters and buffers are the original tensors."""
    shared = {id(t): t for t in itertools.chain(module.parameters(), module.buffers())}
    return copy.deepcopy(module, shared)
