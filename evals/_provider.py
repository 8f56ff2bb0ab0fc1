"""The `clgate` inspect-ai model provider: clgate's local models (HF dir, GGUF, adapter merged).

`get_model("clgate/PATH", adapter=ADAPTER)` serves a model from disk with no network. Besides
inspect's `generate` (short greedy completions, batched across samples), it offers `score`:
exact log-likelihoods of continuations, which clgate's multiple-choice solvers use instead of
generating and parsing a letter. Both go through an on-disk result cache keyed by the model's
manifest digest and the exact request.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelAPI, ModelOutput, get_model, modelapi
from inspect_ai.tool import ToolChoice, ToolInfo

from clgate.artifacts import (
    LoadedModel,
    check_adapter_fits,
    load_causal_lm,
    load_tokenizer,
    model_digest,
    resolve_model_dir,
)
from clgate.errors import InputError
from clgate.evals._batcher import MicroBatcher
from clgate.evals._cache import ResultCache, default_eval_cache_dir, request_key
from clgate.evals._engine import (
    ENGINE_VERSION,
    ContinuationRequest,
    ContinuationScore,
    ScoringEngine,
    render_chat,
)

PROVIDER = "clgate"
MAX_NEW_TOKENS = 48
MAX_CONNECTIONS = 4096
"""Requests are batched here, not rate-limited: every sample of a suite may call at once."""


class ClgateModelAPI(ModelAPI):
    """One local model; validates everything a run needs up front, loads weights on first use."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        adapter: str | None = None,
        digest: str | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        **engine_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        self.model_dir = resolve_model_dir(Path(model_name))
        self.adapter = Path(adapter) if adapter else None
        if self.adapter is not None:
            check_adapter_fits(self.adapter, self.model_dir)
        self.tokenizer = load_tokenizer(self.model_dir)
        if not getattr(self.tokenizer, "chat_template", None):
            raise InputError(
                f"{self.model_dir}: tokenizer has no chat template (clgate's eval suites prompt models as chat)"
            )
        self.digest = digest or model_digest(self.model_dir, self.adapter)
        cache_path = Path(cache_dir or default_eval_cache_dir()) / "results.sqlite" if cache else None
        self.cache = ResultCache(cache_path)
        self._engine_args = engine_args
        self._engine: ScoringEngine | None = None
        self._load_lock = threading.Lock()
        self._scores = MicroBatcher(self._score_batch)
        self._generations = MicroBatcher(self._generate_batch)
        self.stats = {"scored": 0, "generated": 0, "cache_hits": 0, "batches": 0}

    # --- inspect-ai ModelAPI -------------------------------------------------------------

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        prompt = self.render([{"role": m.role, "content": m.text} for m in input])
        max_tokens = min(config.max_tokens or MAX_NEW_TOKENS, 4 * MAX_NEW_TOKENS)
        key = request_key(self.digest, "generate", [ENGINE_VERSION, prompt, max_tokens])
        hit = self.cache.get_many([key])
        if key in hit:
            self.stats["cache_hits"] += 1
            text = hit[key]
        else:
            text = await self._generations.submit((key, prompt, max_tokens))
        return ModelOutput.from_content(model=self.model_name, content=text)

    def max_tokens(self) -> int | None:
        return MAX_NEW_TOKENS

    def max_connections(self) -> int:
        return MAX_CONNECTIONS

    def connection_key(self) -> str:
        return f"{PROVIDER}:{self.digest}"

    def close(self) -> None:
        self._engine = None
        self.cache.close()

    # --- clgate scoring ------------------------------------------------------------------

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return render_chat(self.tokenizer, messages)

    async def score(self, requests: Sequence[ContinuationRequest]) -> list[list[ContinuationScore]]:
        """Log-likelihoods of each request's continuations; batched with other samples' requests."""
        keys = [
            request_key(self.digest, "score", [ENGINE_VERSION, r.context, list(r.continuations)])
            for r in requests
        ]
        hits = self.cache.get_many(keys)
        self.stats["cache_hits"] += len(hits)
        missing = [(k, r) for k, r in zip(keys, requests, strict=True) if k not in hits]
        if missing:
            fresh = await self._scores.submit(missing)
            hits.update(fresh)
        return [[ContinuationScore(*s) for s in hits[k]] for k in keys]

    @property
    def engine(self) -> ScoringEngine:
        with self._load_lock:
            if self._engine is None:
                loaded: LoadedModel = load_causal_lm(self.model_dir, adapter=self.adapter)
                self._engine = ScoringEngine(loaded.model, self.tokenizer, **self._engine_args)
            return self._engine

    def _score_batch(self, batch: list[list[tuple[str, ContinuationRequest]]]) -> list[dict[str, list]]:
        flat = [pair for group in batch for pair in group]
        scores = self.engine.score([r for _, r in flat])
        values = {
            k: [[s.logprob, s.n_tokens, s.greedy] for s in ss]
            for (k, _), ss in zip(flat, scores, strict=True)
        }
        self.cache.put_many(values.items())
        self.stats["scored"] += len(flat)
        self.stats["batches"] += 1
        return [{k: values[k] for k, _ in group} for group in batch]

    def _generate_batch(self, batch: list[tuple[str, str, int]]) -> list[str]:
        texts: dict[str, str] = {}
        for max_tokens in sorted({m for _, _, m in batch}):
            todo = {k: p for k, p, m in batch if m == max_tokens and k not in texts}
            outputs = self.engine.generate(list(todo.values()), max_tokens)
            texts.update(zip(todo, outputs, strict=True))
        self.cache.put_many(texts.items())
        self.stats["generated"] += len(texts)
        self.stats["batches"] += 1
        return [texts[k] for k, _, _ in batch]


@modelapi(name=PROVIDER)
def clgate_provider() -> type[ModelAPI]:
    return ClgateModelAPI


def open_model(
    path: Path | str,
    adapter: Path | str | None = None,
    *,
    digest: str | None = None,
    cache: bool = True,
    cache_dir: Path | str | None = None,
    **engine_args: Any,
) -> Model:
    """An inspect-ai `Model` for a local model; bad paths, adapters or tokenizers raise InputError."""
    args: dict[str, Any] = {"cache": cache, **engine_args}
    if adapter is not None:
        args["adapter"] = str(adapter)
    if digest is not None:
        args["digest"] = digest
    if cache_dir is not None:
        args["cache_dir"] = str(cache_dir)
    # Set on the model, not left to `max_connections()`: inspect-ai's adaptive concurrency (on by
    # default) ignores that and admits 20 samples at a time, so a suite would generate in batches of 20.
    config = GenerateConfig(max_connections=MAX_CONNECTIONS)
    return get_model(f"{PROVIDER}/{Path(path)}", config=config, memoize=False, **args)


def clgate_api(model: Model | None = None) -> ClgateModelAPI:
    """The clgate provider behind `model` (default: the model being evaluated)."""
    api = (model or get_model()).api
    if not isinstance(api, ClgateModelAPI):
        raise InputError(
            f"clgate's log-likelihood solvers need a model served by the clgate provider "
            f"(clgate/PATH), not {type(api).__name__}"
        )
    return api
