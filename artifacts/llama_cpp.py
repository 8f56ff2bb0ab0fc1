"""llama.cpp's files and server: a GGUF model dequantised to float32, a PEFT LoRA as a GGUF adapter,
and llama-cpp-python's OpenAI-compatible server over them.

A team that serves its models with llama.cpp gates the same update it serves: the base as a GGUF
file and the LoRA as llama.cpp's adapter format. The float32 copy makes the server compute what
clgate's local runtime computes from the same file (it dequantises GGUF to float32), so a gate
through the server and a local gate can be compared item by item. The tests and
`benchmarks/served.py` gate through this server (`LlamaServer`): a real engine on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from clgate.errors import InputError

_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LORA_KEY = re.compile(r"(?:base_model\.model\.)?model\.layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight")


def _copy_metadata(reader: Any, writer: Any, skip: set[str] = frozenset()) -> None:
    import gguf

    for field in reader.fields.values():
        if (
            field.name == gguf.Keys.General.ARCHITECTURE
            or field.name.startswith("GGUF.")
            or field.name in skip
        ):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)


def _architecture(reader: Any) -> str:
    import gguf

    return str(reader.get_field(gguf.Keys.General.ARCHITECTURE).contents())


def dequantized_gguf(source: Path, target: Path) -> Path:
    """`source` with every tensor dequantised to float32 and the same metadata (tokenizer, template)."""
    import gguf

    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(target, _architecture(reader))
    _copy_metadata(reader, writer, skip={gguf.Keys.General.FILE_TYPE})
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype("float32")
        writer.add_tensor(tensor.name, data.reshape([int(d) for d in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(target)


def _permute(rows: Any, heads: int) -> Any:
    """Hugging Face's rotary layout of q/k output rows to llama.cpp's (as its converter does)."""
    return (
        rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def lora_gguf(adapter: Path, base_gguf: Path, target: Path) -> Path:
    """A PEFT LoRA (Llama-family, linear layers) written as a llama.cpp GGUF adapter for `base_gguf`."""
    import gguf
    from safetensors.numpy import load_file

    adapter = Path(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    base = gguf.GGUFReader(base_gguf)
    arch = _architecture(base)
    heads = int(base.get_field(f"{arch}.attention.head_count").contents())
    kv_heads = int(base.get_field(f"{arch}.attention.head_count_kv").contents())
    writer = gguf.GGUFWriter(target, arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config.get("lora_alpha", config["r"])))
    for name, value in sorted(load_file(str(adapter / "adapter_model.safetensors")).items()):
        match = _LORA_KEY.fullmatch(name)
        if match is None or match[2] not in _MODULES:
            raise InputError(
                f"{adapter}: cannot map LoRA tensor {name} to llama.cpp (Llama-family linear layers only)"
            )
        layer, module, factor = match.groups()
        value = value.astype("float32")
        if factor == "B" and module in ("self_attn.q_proj", "self_attn.k_proj"):
            value = _permute(value, heads if module == "self_attn.q_proj" else kv_heads)
        writer.add_tensor(f"blk.{layer}.{_MODULES[module]}.weight.lora_{factor.lower()}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(target)


@dataclass
class LlamaServer:
    """llama-cpp-python's server on 127.0.0.1, one model id per GGUF (with an optional LoRA)."""

    models: dict[str, tuple[Path, Path | None]]
    """model id → (GGUF model, GGUF LoRA adapter or None)"""
    folder: Path
    threads: int = 2
    port: int = 0
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 120.0) -> LlamaServer:
        import httpx

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        models = [
            {
                "model": str(gguf),
                "model_alias": name,
                "n_ctx": 2048,
                "n_threads": self.threads,
                "verbose": False,
            }
            | ({"lora_path": str(lora)} if lora else {})
            for name, (gguf, lora) in self.models.items()
        ]
        config = Path(self.folder) / "llama-server.json"
        config.write_text(json.dumps({"host": "127.0.0.1", "port": self.port, "models": models}))
        log = open(Path(self.folder) / "llama-server.log", "wb")  # noqa: SIM115 (the server's lifetime)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)], stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InputError(
                    f"llama-cpp-python's server exited ({self.process.returncode}): see {log.name}"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise InputError(f"llama-cpp-python's server did not answer within {timeout_s:g}s: see {log.name}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
