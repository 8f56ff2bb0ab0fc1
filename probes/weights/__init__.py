"""Weight diff: what an update changed in a checkpoint, tensor by tensor, layer by layer, module by module.

Both checkpoints are streamed one tensor at a time through safetensors' lazy `safe_open` (sharded
checkpoints included). Tensors whose manifest digests match are skipped unread; the gate computes
those manifests anyway and can pass them in, so nothing is hashed twice. A LoRA adapter is analysed
from its factors (see `clgate.probes._spectrum`): its ΔW is never formed in full.
"""

from clgate.probes.weights._diff import lora_diff, weight_diff
from clgate.probes.weights._names import layer_index, module_type
from clgate.probes.weights._report import ChangeGrid, change_grid

__all__ = ["ChangeGrid", "change_grid", "layer_index", "lora_diff", "module_type", "weight_diff"]
