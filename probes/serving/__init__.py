"""What an update ships besides its weights that changes what a server makes of them.

A model folder is more than its tensors. Its chat template is put around every prompt, its tokenizer
decides what the model reads and what text its ids become, its `generation_config.json` is the decoding a
server applies by default (biases, suppressed tokens, penalties), and a Python file named by `auto_map` is
the model class a server that trusts remote code runs instead of the library's. None of them moves a
weight, and the scoring evals apply none of the decoding rules, so an update that changes only these
looks like no update at all. Each is compared with the parent's as transformers loads it, not byte for
byte, where transformers reads it (files saved by another library version differ in bytes and mean the
same); the files only other servers read are compared as they are.
"""

from clgate.probes.serving._diff import serving_diff
from clgate.probes.serving._tokenizer import tokenizer_changes

__all__ = ["serving_diff", "tokenizer_changes"]
