"""What clgate audits: model checkpoints, adapters, memory stores, datasets; their files, loaders and manifests.

Models are loaded and run by `clgate.runtime`; here they are files: found, checked, digested.
"""

import lazy_loader

# Names are imported from their modules on first use: one command does not load what only others need.
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_cache": ["CACHE_ENV", "default_cache_dir"],
        "_datasets": ["ChatMessage", "DatasetRecord", "iter_dataset", "load_dataset", "write_dataset"],
        "_embedded": ["embedded_gguf_path", "embedded_model_dir", "embedder_dir"],
        "_embedder": ["SentenceEmbedder"],
        "_gguf": ["Seal", "dequantised_dir", "gguf_architecture"],
        "_jsonl": ["iter_jsonl", "write_jsonl"],
        "_kinds": ["detect_kind"],
        "_loading": ["MODEL_LOADING"],
        "_lora": ["LoraAdapter", "LoraFactors", "check_adapter_fits", "load_lora_adapter"],
        "_manifest": ["artifact_files", "artifact_ref", "compute_manifest", "model_digest", "root_digest"],
        "_memory": ["MemoryEntry", "MemoryStore", "load_memory_store", "write_memory_store"],
        "_models": ["load_tokenizer", "model_weight_files", "resolve_model_dir"],
        "_oms": [
            "OmsSigned",
            "load_oms_private_key",
            "oms_key_fingerprint",
            "oms_mismatch",
            "parse_oms_public_key",
            "path_inside",
            "sign_oms",
            "verify_oms",
        ],
        "_records": ["ArtifactKind", "ArtifactRef", "FileDigest", "Manifest", "TensorDigest"],
        "_safetensors_header": ["SafetensorsHeader", "TensorSpan", "read_safetensors_header"],
    },
)
