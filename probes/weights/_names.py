"""What a tensor's name says: the layer it sits in and the kind of module it belongs to."""

from __future__ import annotations

import re

_LAYER = re.compile(r"(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.")
# First match wins: norms before attention (post_attention_layernorm), fused before split projections.
MODULE_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("norm", r"(norm|(^|\.)ln(_[a-z0-9]+)?)\.(weight|bias)$"),
        (
            "embeddings",
            r"(embed_tokens|wte|wpe|word_embeddings|position_embeddings|embed_positions|tok_embeddings|embed_in)\.",
        ),
        ("lm_head", r"(^|\.)(lm_head|embed_out|output)\.weight$"),
        ("attn_qkv", r"(qkv_proj|c_attn|query_key_value|wqkv)\."),
        ("attn_q", r"(q_proj|q_lin|(^|\.)(query|wq))\."),
        ("attn_k", r"(k_proj|k_lin|(^|\.)(key|wk))\."),
        ("attn_v", r"(v_proj|v_lin|(^|\.)(value|wv))\."),
        (
            "attn_o",
            r"(o_proj|out_proj|out_lin|attn\.c_proj|attention\.dense|attention\.output\.dense|(^|\.)wo)\.",
        ),
        ("mlp_gate_up", r"gate_up_proj\."),
        ("mlp_gate", r"(gate_proj|(^|\.)w1)\."),
        ("mlp_up", r"(up_proj|fc1|c_fc|dense_h_to_4h|fc_in|(^|\.)w3)\."),
        ("mlp_down", r"(down_proj|fc2|mlp\.c_proj|dense_4h_to_h|fc_out|(^|\.)w2)\."),
    )
)


def module_type(tensor: str) -> str:
    """attn_q/k/v/o (or attn_qkv), mlp_gate/up/down, embeddings, norm, lm_head, or other."""
    name = tensor.lower()
    return next((kind for kind, rx in MODULE_TYPES if rx.search(name)), "other")


def layer_index(tensor: str) -> int | None:
    m = _LAYER.search(tensor)
    return int(m.group(1)) if m else None


def module_name(tensor: str) -> str:
    """The module a tensor belongs to: its name without the parameter suffix."""
    return tensor.rsplit(".", 1)[0] if "." in tensor else tensor
