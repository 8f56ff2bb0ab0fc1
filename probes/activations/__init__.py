"""Activation diff: the parent and the candidate side by side on a fixed probe prompt set.

Both models run through the runtime's hook capture: a TransformerLens `TransformerBridge` over the
loaded weights on their device (raw HF weights, hooks named as TransformerLens names them), or
forward hooks on the decoder layers where the bridge cannot run. Per layer, at
`blocks.{l}.hook_resid_post`:

- drift: cosine distance and relative change of the residual stream, pooled over each prompt's own
  tokens (the chat template's shared prefix, e.g. a default system prompt, is left out);
- linear CKA between the two models' pooled representations;
- logit lens: KL(parent ‖ candidate) of the next-token distributions read from each layer through
  each model's own final norm and unembedding, at the last prompt token;
- refusal direction (Arditi et al., 2024): difference of mean residuals at the last prompt token
  (the post-instruction position) between harmful and harmless instructions, its cosine between
  parent and candidate, and how far harmful prompts project onto the parent's unit direction.

Residuals are cached per (model digest, adapter digest, prompt set, device kind and dtype); the
logit lens then only needs each model's final norm and unembedding, so a cached model still loads
but is not run.
"""

from clgate.probes.activations._capture import Residuals, capture_residuals
from clgate.probes.activations._diff import activation_diff
from clgate.probes.activations._metrics import linear_cka
from clgate.probes.activations._prompts import ProbePrompts, activation_prompts
from clgate.probes.activations._report import LayerDrift, layer_drift

__all__ = [
    "LayerDrift",
    "ProbePrompts",
    "Residuals",
    "activation_diff",
    "activation_prompts",
    "capture_residuals",
    "layer_drift",
    "linear_cka",
]
