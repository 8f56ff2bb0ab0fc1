"""clgate never reaches a model hub: every model it runs ships in a package or lives on disk."""

import os

_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")


def force_offline() -> None:
    """Set the Hugging Face offline flags before transformers or huggingface_hub read them."""
    for flag in _OFFLINE_FLAGS:
        os.environ[flag] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
