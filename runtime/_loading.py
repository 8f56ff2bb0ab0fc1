"""Loading weights: straight into the target dtype on the target device, a LoRA merged where it lands.

`from_pretrained(dtype=..., device_map=...)` reads the safetensors shard by shard into place
(transformers 5 always loads this way, so a GPU load never holds a full fp32 copy on the host),
and peft merges the adapter into the weights on their own device, in their own dtype.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from clgate.artifacts import MODEL_LOADING, load_lora_adapter
from clgate.errors import InputError
from clgate.runtime._fit import LoadPlan
from clgate.runtime._placement import Placement


def load_module(model_dir: Path, adapter: Path | None, placement: Placement, plan: LoadPlan) -> Any:
    """The causal LM of `model_dir` in eval mode, placed as planned, with `adapter` merged."""
    from transformers import AutoModelForCausalLM

    # never the folder's own code (`auto_map`): every check judges the library's class for the architecture
    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "trust_remote_code": False,
        "dtype": placement.torch_dtype,
    }
    if plan.device_map is not None:
        kwargs["device_map"] = plan.device_map
    if plan.max_memory is not None:
        kwargs["max_memory"] = plan.max_memory
    with MODEL_LOADING:
        try:
            module = AutoModelForCausalLM.from_pretrained(str(model_dir), **kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputError(f"{model_dir}: cannot load model ({str(exc).splitlines()[0]})") from None
        if adapter is not None:
            module = merge_adapter(module, adapter)
    module.eval()
    return module


def merge_adapter(module: Any, adapter_path: Path) -> Any:
    """Merge a LoRA into the loaded model on its device; an adapter built for another base is refused by name."""
    from peft import PeftModel

    adapter = load_lora_adapter(adapter_path)
    names = dict(module.named_modules())
    for factors in adapter.factors():
        target = names.get(factors.module) or names.get(factors.module.removeprefix("model."))
        expected = (factors.b.shape[0], factors.a.shape[1])
        if target is None or not hasattr(target, "weight") or tuple(target.weight.shape) != expected:
            raise InputError(
                f"{adapter_path}: adapter does not fit this base model (module {factors.module!r} "
                f"expects weight {expected}, base has "
                f"{tuple(target.weight.shape) if target is not None and hasattr(target, 'weight') else 'none'})"
            )
    device = str(module.get_input_embeddings().weight.device)
    try:
        with warnings.catch_warnings():  # peft probes a property transformers has deprecated
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(
                module, str(adapter_path), is_trainable=False, torch_device=device
            )
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InputError(f"{adapter_path}: cannot apply adapter ({str(exc).splitlines()[0]})") from None
    return peft_model.merge_and_unload()
