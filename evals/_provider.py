"""The `clgate` inspect-ai model provider: clgate's local models (HF dir, GGUF, adapter merged), run by the runtime.

`get_model("clgate/PATH", adapter=ADAPTER)` serves a model from disk with no network. Besides
inspect's `generate` (short greedy completions, batched across samples), it offers `score`:
exact log-likelihoods of continuations, which clgate's multiple-choice solvers use instead of
generating and parsing a letter. Both go through an on-disk result cache keyed by the model's
manifest digest, its numerics (device kind and dtype) and the exact request. `open_model(...,
pool=POOL)` takes the model from a gate's `ModelPool`, so the other checks reuse the same load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelAPI, ModelOutput, get_model, modelapi
from inspect_ai.tool import ToolChoice, ToolInfo

from clgate.errors import InputError
from clgate.evals._batcher import MicroBatcher
from clgate.evals._cache import ResultCache, default_eval_cache_dir, request_key
from clgate.runtime import (
    Batching,
    ContinuationRequest,
    ContinuationScore,
    ModelPool,
    ModelSpec,
    Scoring,
    has_chat_template,
)

PROVIDER = "clgate"
ENGINE_VERSION = "2"  # 2: generation starts from the shared prompt head's KV cache
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
        device: str = "auto",
        dtype: str = "auto",
        digest: str | None = None,
        cache: bool = True,
        cache_dir: str | None = None,
        pool: ModelPool | None = None,
        served_scoring: Scoring = "logprobs",
        **batching: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        self._own_pool = pool is None
        self.pool = pool or ModelPool()
        self.runtime = self.pool.outputs(ModelSpec(Path(model_name), adapter, device, dtype), served_scoring)
        self.model_dir, self.adapter, self.tokenizer = (
            self.runtime.path,
            self.runtime.adapter,
            self.runtime.tokenizer,
        )
        if not has_chat_template(self.tokenizer):
            raise InputError(
                f"{self.model_dir}: tokenizer has no chat template (clgate's eval suites prompt models as chat)"
            )
        self.digest = digest or self.runtime.digest
        self.numerics = self.runtime.numerics
        cache_path = Path(cache_dir or default_eval_cache_dir()) / "results.sqlite" if cache else None
        self.cache = ResultCache(cache_path)
        self.batching = Batching(**batching)
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
        key = self._key("generate", [prompt, max_tokens])
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
        return f"{PROVIDER}:{self.digest}:{self.numerics}"

    def close(self) -> None:
        """Close the result cache; release the weights unless a shared pool keeps them for other checks."""
        if self._own_pool:
            self.pool.close()
        self.cache.close()

    # --- clgate scoring ------------------------------------------------------------------

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        return self.runtime.render(messages)

    def _key(self, kind: str, request: list[Any]) -> str:
        return request_key(self.digest, kind, [ENGINE_VERSION, self.numerics, *request])

    async def score(self, requests: Sequence[ContinuationRequest]) -> list[list[ContinuationScore]]:
        """Log-likelihoods of each request's continuations; batched with other samples' requests."""
        keys = [self._key("score", [r.context, list(r.continuations)]) for r in requests]
        hits = self.cache.get_many(keys)
        self.stats["cache_hits"] += len(hits)
        missing = [(k, r) for k, r in zip(keys, requests, strict=True) if k not in hits]
        if missing:
            fresh = await self._scores.submit(missing)
            hits.update(fresh)
        return [[ContinuationScore(*s) for s in hits[k]] for k in keys]

    def _score_batch(self, batch: list[list[tuple[str, ContinuationRequest]]]) -> list[dict[str, list]]:
        flat = [pair for group in batch for pair in group]
        scores = self.runtime.score([r for _, r in flat], self.batching)
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
            outputs = self.runtime.greedy(
                list(todo.values()), max_tokens, self.batching.generation_batch_size
            )
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
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    digest: str | None = None,
    cache: bool = True,
    cache_dir: Path | str | None = None,
    served_scoring: Scoring = "logprobs",
    **batching: Any,
) -> Model:
    """An inspect-ai `Model` for a local model; bad paths, adapters, placements or tokenizers raise InputError.

    With `pool`, the weights come from (and stay in) that pool; without, the model owns a private one.
    A model the pool serves answers from its server (`served_scoring`: how multiple-choice items are
    scored there when the server returns no prompt log-probabilities).
    """
    args: dict[str, Any] = {"cache": cache, "device": device, "dtype": dtype, **batching}
    if served_scoring != "logprobs":
        args["served_scoring"] = served_scoring
    if adapter is not None:
        args["adapter"] = str(adapter)
    if digest is not None:
        args["digest"] = digest
    if cache_dir is not None:
        args["cache_dir"] = str(cache_dir)
    # Set on the model, not left to `max_connections()`: inspect-ai's adaptive concurrency (on by
    # default) ignores that and admits 20 samples at a time, so a suite would generate in batches of 20.
    config = GenerateConfig(max_connections=MAX_CONNECTIONS)
    # assembled here rather than by `get_model`: the pool is not a model argument inspect-ai could log
    api = clgate_provider(model_name=str(Path(path)), config=config, pool=pool, **args)
    model = Model(api, config, args)
    api.qualified_model_name = str(model)
    return model


def clgate_api(model: Model | None = None) -> ClgateModelAPI:
    """The clgate provider behind `model` (default: the model being evaluated)."""
    api = (model or get_model()).api
    if not isinstance(api, ClgateModelAPI):
        raise InputError(
            f"clgate's log-likelihood solvers need a model served by the clgate provider "
            f"(clgate/PATH), not {type(api).__name__}"
        )
    return api
