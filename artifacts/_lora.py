"""PEFT LoRA adapters: their config, their factor pairs (read lazily), and applying them to a base."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clgate.artifacts._safetensors_header import read_safetensors_header
from clgate.errors import InputError
from clgate.json_input import read_json

_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


@dataclass(frozen=True)
class LoraFactors:
    """ΔW = scale · B @ A for one module; A is (r, in), B is (out, r)."""

    module: str
    a: Any
    b: Any
    scale: float


@dataclass(frozen=True)
class LoraAdapter:
    path: Path
    config: dict[str, Any]

    @property
    def rank(self) -> int:
        return int(self.config.get("r", 8))

    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path")

    @property
    def weights_file(self) -> Path:
        return self.path / "adapter_model.safetensors"

    def scale_for(self, module: str) -> float:
        rank = _pattern_value(self.config.get("rank_pattern") or {}, module, self.rank)
        alpha = _pattern_value(
            self.config.get("alpha_pattern") or {}, module, self.config.get("lora_alpha", rank)
        )
        return alpha / math.sqrt(rank) if self.config.get("use_rslora") else alpha / rank

    def modules(self) -> list[str]:
        return sorted(_pair_keys(self.weights_file))

    def factors(self) -> Iterator[LoraFactors]:
        """Yield each module's factors, reading one pair of small tensors at a time."""
        from safetensors import safe_open

        pairs = _pair_keys(self.weights_file)
        with safe_open(str(self.weights_file), framework="pt") as fh:
            for module in sorted(pairs):
                key_a, key_b = pairs[module]
                yield LoraFactors(module, fh.get_tensor(key_a), fh.get_tensor(key_b), self.scale_for(module))


def _check_scales(cfg_path: Path, config: dict[str, Any]) -> None:
    """Ranks and alphas are positive numbers, or the scale of every module (alpha / rank) is not a number."""
    values = {"r": config.get("r", 8), "lora_alpha": config.get("lora_alpha", 1)}
    for table in ("rank_pattern", "alpha_pattern"):
        patterns = config.get(table) or {}
        if not isinstance(patterns, dict):
            raise InputError(f"{cfg_path}: {table} is not an object")
        values |= {f"{table}[{k!r}]": v for k, v in patterns.items()}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise InputError(f"{cfg_path}: {name} is {value!r}, not a positive number")


def _pattern_value(patterns: dict[str, Any], module: str, default: Any) -> Any:
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def _pair_keys(weights: Path) -> dict[str, tuple[str, str]]:
    header = read_safetensors_header(weights)
    found: dict[str, dict[str, str]] = {}
    for span in header.tensors:
        m = _KEY.match(span.name)
        if m:
            found.setdefault(m["module"], {})[m["which"]] = span.name
    incomplete = sorted(name for name, ab in found.items() if set(ab) != {"A", "B"})
    if incomplete:
        raise InputError(f"{weights}: LoRA factors incomplete for module {incomplete[0]!r}")
    if not found:
        raise InputError(f"{weights}: holds no LoRA factor tensors")
    return {name: (ab["A"], ab["B"]) for name, ab in found.items()}


def load_lora_adapter(path: Path) -> LoraAdapter:
    path = Path(path)
    cfg_path = path / "adapter_config.json"
    if not cfg_path.is_file():
        raise InputError(f"{path}: not a PEFT adapter directory (no adapter_config.json)")
    config = read_json(cfg_path)
    if not isinstance(config, dict):
        raise InputError(f"{cfg_path}: expected a JSON object, got {type(config).__name__}")
    if config.get("peft_type", "LORA") != "LORA":
        raise InputError(f"{cfg_path}: adapter type {config.get('peft_type')!r} is not LoRA")
    _check_scales(cfg_path, config)
    adapter = LoraAdapter(path=path, config=config)
    if not adapter.weights_file.is_file():
        raise InputError(f"{path}: adapter has no adapter_model.safetensors")
    _pair_keys(adapter.weights_file)
    return adapter


def check_adapter_fits(adapter_path: Path, model_dir: Path) -> None:
    """Refuse an adapter built for another base, reading only safetensors headers (no weights)."""
    shapes = {
        span.name: span.shape
        for weights in sorted(Path(model_dir).glob("*.safetensors"))
        for span in read_safetensors_header(weights).tensors
    }
    adapter = load_lora_adapter(adapter_path)
    header = {span.name: span.shape for span in read_safetensors_header(adapter.weights_file).tensors}
    for module, (key_a, key_b) in sorted(_pair_keys(adapter.weights_file).items()):
        expected = (header[key_b][0], header[key_a][1])
        found = shapes.get(f"{module}.weight")
        if found != expected:
            raise InputError(
                f"{adapter_path}: adapter does not fit base {model_dir} (module {module!r} expects weight "
                f"{expected}, base has {found or 'no such tensor'})"
            )
