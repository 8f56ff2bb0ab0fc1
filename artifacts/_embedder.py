"""Sentence embeddings (MiniLM, mean pooling, unit norm) for memory drift and retrieval checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clgate.artifacts._embedded import embedder_dir
from clgate.artifacts._loading import MODEL_LOADING


class SentenceEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it, on transformers alone."""

    def __init__(self, model_dir: Path | None = None, max_length: int = 256) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = str(model_dir or embedder_dir())
        with MODEL_LOADING:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.max_length = max_length

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        out = []
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [texts[i] for i in order[start : start + batch_size]]
                enc = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        if not out:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        embeddings = np.concatenate(out)
        result = np.empty_like(embeddings)
        result[order] = embeddings
        return result
