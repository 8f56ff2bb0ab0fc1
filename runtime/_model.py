"""`RuntimeModel`: one loaded model and everything the checks do with it.

Files are checked and the tokenizer loaded when it is created; the weights load on first use,
once, so a check that only needs the model's digest or its prompts costs no load.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from clgate.artifacts import load_tokenizer, model_digest
from clgate.errors import InputError
from clgate.runtime._chat import ChatPrompts
from clgate.runtime._fit import LoadPlan, plan_load
from clgate.runtime._generation import greedy_generate, stop_ids
from clgate.runtime._hidden import HiddenStates, hidden_states
from clgate.runtime._hooks import HookedModel, hooked
from clgate.runtime._loading import load_module
from clgate.runtime._placement import Placement
from clgate.runtime._prefix import head_cache
from clgate.runtime._scoring import Batching, ContinuationRequest, ContinuationScore, score_continuations
from clgate.runtime._spec import ModelSpec


class RuntimeModel(ChatPrompts):
    """A model as the checks run it: `path` (an HF directory) under `adapter`, placed per `placement`.

    `plan` is where it would go when it was asked for; the load plans again with the memory free
    then, and when short calls `make_room` (the pool releasing its other models) once.
    """

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        placement: Placement,
        plan: LoadPlan,
        make_room: Callable[[RuntimeModel], bool] | None = None,
        files_digest: Callable[[Path, Path | None], str] = model_digest,
    ) -> None:
        from transformers import AutoConfig

        self.spec = spec
        self.path = Path(path)
        self.adapter = spec.adapter
        self.placement = placement
        self.plan = plan
        self.tokenizer = load_tokenizer(self.path)
        try:  # the library's config class, never the folder's code
            self.config = AutoConfig.from_pretrained(
                str(self.path), local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: cannot read its config ({str(exc).splitlines()[0]})") from None
        self.loads = 0
        self._module: Any = None
        self._hooked: HookedModel | None = None
        self._make_room = make_room
        self._files_digest = files_digest
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        adapter = f" + {self.adapter}" if self.adapter else ""
        return f"RuntimeModel({self.path}{adapter}, {self.placement.device}, {self.placement.dtype})"

    # --- the weights ------------------------------------------------------------------------

    @property
    def module(self) -> Any:
        """The torch module, loaded on first use (thread-safe: concurrent callers share one load)."""
        with self._lock:
            if self._module is None:
                self._module = load_module(self.path, self.adapter, self.placement, self._plan_now())
                self.loads += 1
            return self._module

    def _plan_now(self) -> LoadPlan:
        try:
            return plan_load(self.path, self.placement)
        except InputError:
            if self._make_room is None or not self._make_room(self):
                raise
            return plan_load(self.path, self.placement)

    @property
    def loaded(self) -> bool:
        return self._module is not None

    def release(self) -> None:
        """Drop the weights (a later use loads them again)."""
        self._module = self._hooked = None
        gc.collect()
        if self.placement.on_cuda:
            import torch

            torch.cuda.empty_cache()

    @property
    def device(self) -> Any:
        """Where inputs go: the device of the input embeddings."""
        return self.module.get_input_embeddings().weight.device

    @property
    def spread(self) -> bool:
        """Spread over several devices by accelerate."""
        return len(set(getattr(self.module, "hf_device_map", {}).values())) > 1

    served = False

    @property
    def numerics(self) -> str:
        """What its outputs depend on besides its bytes (`cpu-float32`, `cuda-bfloat16`): keys caches."""
        return self.placement.tag

    @cached_property
    def digest(self) -> str:
        """The digest of the model as it runs (its files, and the adapter's): what caches of its answers use."""
        return self._files_digest(self.path, self.adapter)

    # --- prompts ----------------------------------------------------------------------------

    @property
    def pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    @property
    def max_length(self) -> int:
        return int(getattr(self.config, "max_position_embeddings", 2048) or 2048)

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def stop_ids(self) -> list[int]:
        return stop_ids(self.tokenizer, self.module)

    # --- running it -------------------------------------------------------------------------

    def score(
        self, requests: Sequence[ContinuationRequest], batching: Batching | None = None
    ) -> list[list[ContinuationScore]]:
        """Log-likelihood of every continuation of every request, in request order."""
        return score_continuations(self, requests, batching or Batching())

    def greedy(
        self, prompts: Sequence[str] | Sequence[list[int]], max_new_tokens: int, batch_size: int = 64
    ) -> list[str]:
        """Greedy replies (end of turn or `max_new_tokens`) to rendered prompts or their ids, in order."""
        room = self.max_length - max_new_tokens
        encoded = [(self.encode_prompt(p) if isinstance(p, str) else list(p))[-room:] for p in prompts]
        return greedy_generate(
            self.module, self.tokenizer, encoded, max_new_tokens, self.pad_id, self.device, batch_size
        )

    def head_cache(self, head: list[int], rows: int) -> Any:
        """The KV cache of a prompt head every row of a batch starts with."""
        return head_cache(self.module, head, rows, self.device)

    def hidden(
        self, input_ids: Any, attention_mask: Any, hooks: Sequence[str] = (), cache: Any = None
    ) -> HiddenStates:
        """The decoder stack's output and the states at `hooks` (TransformerLens names), no LM head."""
        device = self.device
        return hidden_states(self.module, input_ids.to(device), attention_mask.to(device), hooks, cache)

    def unembed(self, hidden: Any) -> Any:
        """Logits from final hidden states (the LM head alone)."""
        return self.module.get_output_embeddings()(hidden)

    def hooked(self) -> HookedModel:
        """Hook-point capture for the interpretability probes (booted once per loaded model)."""
        with self._lock:
            if self._hooked is None:
                self._hooked = hooked(self)
            return self._hooked
