"""What clgate audits: model checkpoints, adapters, memory stores, datasets; their files, loaders and manifests.

Models are loaded and run by `clgate.runtime`; here they are files: found, checked, digested.
"""

from clgate.artifacts._cache import CACHE_ENV, default_cache_dir
from clgate.artifacts._datasets import ChatMessage, DatasetRecord, iter_dataset, load_dataset, write_dataset
from clgate.artifacts._embedded import embedded_gguf_path, embedded_model_dir, embedder_dir
from clgate.artifacts._embedder import SentenceEmbedder
from clgate.artifacts._gguf import dequantised_dir, gguf_architecture
from clgate.artifacts._jsonl import iter_jsonl, write_jsonl
from clgate.artifacts._kinds import detect_kind
from clgate.artifacts._loading import MODEL_LOADING
from clgate.artifacts._lora import (
    LoraAdapter,
    LoraFactors,
    check_adapter_fits,
    load_lora_adapter,
)
from clgate.artifacts._manifest import (
    artifact_files,
    artifact_ref,
    compute_manifest,
    model_digest,
    root_digest,
)
from clgate.artifacts._memory import MemoryEntry, MemoryStore, load_memory_store, write_memory_store
from clgate.artifacts._models import load_tokenizer, model_weight_files, resolve_model_dir
from clgate.artifacts._records import ArtifactKind, ArtifactRef, FileDigest, Manifest, TensorDigest
from clgate.artifacts._safetensors_header import SafetensorsHeader, TensorSpan, read_safetensors_header

__all__ = [
    "CACHE_ENV",
    "MODEL_LOADING",
    "ArtifactKind",
    "ArtifactRef",
    "ChatMessage",
    "DatasetRecord",
    "FileDigest",
    "LoraAdapter",
    "LoraFactors",
    "Manifest",
    "MemoryEntry",
    "MemoryStore",
    "SafetensorsHeader",
    "SentenceEmbedder",
    "TensorDigest",
    "TensorSpan",
    "artifact_files",
    "artifact_ref",
    "check_adapter_fits",
    "compute_manifest",
    "default_cache_dir",
    "dequantised_dir",
    "detect_kind",
    "embedded_gguf_path",
    "embedded_model_dir",
    "embedder_dir",
    "gguf_architecture",
    "iter_dataset",
    "iter_jsonl",
    "load_dataset",
    "load_lora_adapter",
    "load_memory_store",
    "load_tokenizer",
    "model_digest",
    "model_weight_files",
    "read_safetensors_header",
    "resolve_model_dir",
    "root_digest",
    "write_dataset",
    "write_jsonl",
    "write_memory_store",
]
