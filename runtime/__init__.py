"""The one place that loads and runs a model: device, dtype, chat rendering, prefix cache, batched
generation and scoring, hidden-state capture at named hook points, and a model pool per gate.

A check asks a `ModelPool` for a `ModelSpec` (path, adapter, device, dtype) and gets a
`RuntimeModel`: loaded once, on its device, in its dtype, with a LoRA merged there. A model served
by an inference engine (`ModelPool.serve`) is a `ServedModel` to the checks that need only its
outputs. Probes and evals run models through these and nothing else.
"""

from clgate.runtime._chat import assistant_turn, chat_ids, encode_prompt, has_chat_template, render_chat
from clgate.runtime._fit import LoadPlan, plan_load, weights_bytes
from clgate.runtime._hidden import FINAL, HiddenStates, resid_post
from clgate.runtime._hooks import HookedModel
from clgate.runtime._loading import merge_adapter
from clgate.runtime._model import RuntimeModel
from clgate.runtime._placement import Placement, resolve_placement
from clgate.runtime._pool import ModelPool, load_model
from clgate.runtime._prefix import common_prefix, repeat_cache, shared_head
from clgate.runtime._refusals import COMPLIANCE_OPENINGS, REFUSAL_MARKERS, REFUSAL_OPENINGS, is_refusal
from clgate.runtime._scoring import Batching, ContinuationRequest, ContinuationScore
from clgate.runtime._served import (
    API_KEY_ENV,
    Endpoint,
    Scoring,
    ServedClient,
    ServedError,
    ServedIdentity,
    ServedModel,
    ServedPair,
)
from clgate.runtime._spec import DEVICES, DTYPES, ModelSpec, check_device, check_dtype
from clgate.runtime._triggers import PLACEMENTS, insert_trigger

__all__ = [
    "API_KEY_ENV",
    "COMPLIANCE_OPENINGS",
    "DEVICES",
    "DTYPES",
    "FINAL",
    "PLACEMENTS",
    "REFUSAL_MARKERS",
    "REFUSAL_OPENINGS",
    "Batching",
    "ContinuationRequest",
    "ContinuationScore",
    "Endpoint",
    "HiddenStates",
    "HookedModel",
    "LoadPlan",
    "ModelPool",
    "ModelSpec",
    "Placement",
    "RuntimeModel",
    "Scoring",
    "ServedClient",
    "ServedError",
    "ServedIdentity",
    "ServedModel",
    "ServedPair",
    "assistant_turn",
    "chat_ids",
    "check_device",
    "check_dtype",
    "common_prefix",
    "encode_prompt",
    "has_chat_template",
    "insert_trigger",
    "is_refusal",
    "load_model",
    "merge_adapter",
    "plan_load",
    "render_chat",
    "repeat_cache",
    "resid_post",
    "resolve_placement",
    "shared_head",
    "weights_bytes",
]
