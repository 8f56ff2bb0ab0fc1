"""A model served by an inference engine (vLLM, llama.cpp, any OpenAI-compatible server).

`ServedModel` does the output-only half of what a `RuntimeModel` does: render chats (with the
model's own tokenizer and template, from its files), generate greedy replies, score continuations
by the server's prompt log-probabilities (`echo` + `logprobs` on `/v1/completions`, which vLLM and
llama-cpp-python return), and read the first answer token's top log-probabilities. Weights and
activations stay out of reach: checks that need them load the model locally.

Requests go out concurrently up to `Endpoint.concurrency`; 429, 5xx and connection errors are
retried with exponential backoff; every request has a timeout. Whatever still fails raises a
one-line `ServedError`, so the check that asked fails closed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from clgate.artifacts import load_tokenizer, model_digest
from clgate.errors import InputError
from clgate.runtime._chat import ChatPrompts
from clgate.runtime._scoring import Batching, ContinuationRequest, ContinuationScore
from clgate.runtime._spec import ModelSpec

API_KEY_ENV = "CLGATE_SERVED_API_KEY"
Scoring = Literal["logprobs", "generate"]
NO_MATCH = -1e4
"""A continuation the generation fallback did not produce: far below any real log-likelihood."""


class ServedError(InputError):
    """A served model could not answer: unreachable, refused, garbage, or a missing feature."""

    refused: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where a model is served: the server's OpenAI-compatible base URL and the model id it serves.

    `model` None: the one model the server lists. For vLLM with LoRA adapters, the candidate is the
    adapter's name on the same server as the base.
    """

    url: str
    model: str | None = None
    concurrency: int = 8
    timeout_s: float = 120.0
    retries: int = 4

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"served model URL {self.url!r} must start with http:// or https://")
        url = self.url.rstrip("/")
        object.__setattr__(self, "url", url if url.endswith("/v1") else f"{url}/v1")
        if self.concurrency < 1 or self.timeout_s <= 0 or self.retries < 0:
            raise InputError("served model: concurrency ≥ 1, timeout > 0 and retries ≥ 0 are required")

    @classmethod
    def parse(cls, value: str, concurrency: int = 8, timeout_s: float = 120.0) -> Endpoint:
        """`URL` or `URL#MODEL` (the model id on that server)."""
        url, _, model = value.partition("#")
        return cls(url, model or None, concurrency, timeout_s)

    def named(self, model: str | None) -> Endpoint:
        return Endpoint(self.url, model, self.concurrency, self.timeout_s, self.retries)


@dataclass(frozen=True)
class ServedIdentity:
    """What a server says it serves: the model id and a revision digest of its listing."""

    url: str
    model: str
    revision: str


class ServedClient:
    """HTTP to one endpoint: retries with backoff on 429/5xx/connection errors, a timeout per request."""

    def __init__(self, endpoint: Endpoint) -> None:
        import httpx

        self.endpoint = endpoint
        key = os.environ.get(API_KEY_ENV)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(
            timeout=endpoint.timeout_s,
            headers=headers,
            limits=httpx.Limits(max_connections=endpoint.concurrency),
        )
        self.requests = 0
        self.busy_s = 0.0
        """Wall time with at least one request in flight: how long clgate waited on the server."""
        self._in_flight = 0
        self._busy_since = 0.0
        self._lock = threading.Lock()

    def _begin(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._busy_since = time.perf_counter()
            self._in_flight += 1

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self.busy_s += time.perf_counter() - self._busy_since

    def _fail(self, why: str, refused: str | None = None) -> ServedError:
        error = ServedError(f"served model {self.endpoint.model or '?'} at {self.endpoint.url}: {why}")
        error.refused = refused  # the server's own words when it refused the request (4xx)
        return error

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        url = f"{self.endpoint.url}/{path}"
        for attempt in range(self.endpoint.retries + 1):
            why: str | None = None
            self._begin()
            try:
                response = self._http.request(method, url, json=body)
            except httpx.TimeoutException:
                why = f"no answer within {self.endpoint.timeout_s:g}s"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                why = f"unreachable ({type(exc).__name__})"
            finally:
                self._end()
            if why is None:
                if response.status_code < 300:
                    with self._lock:
                        self.requests += 1
                    try:
                        data = response.json()
                    except ValueError:
                        raise self._fail(f"{path} answered with something that is not JSON") from None
                    if not isinstance(data, dict):
                        raise self._fail(f"{path} answered with JSON that is not an object")
                    return data
                why = f"HTTP {response.status_code} on {path}: {_error_text(response)}"
                if response.status_code != 429 and response.status_code < 500:
                    raise self._fail(why, refused=_error_text(response))
            if attempt < self.endpoint.retries:
                time.sleep(min(0.25 * 2**attempt, 8.0))
        raise self._fail(f"{why} (after {self.endpoint.retries + 1} tries)")

    def models(self) -> list[dict[str, Any]]:
        listing = self.call("GET", "models").get("data")
        if not isinstance(listing, list) or not all(isinstance(m, dict) and "id" in m for m in listing):
            raise self._fail("models: the listing has no model ids")
        return listing

    def identify(self) -> ServedIdentity:
        """The model this endpoint names (or the only one listed) and a digest of its listing."""
        listing = self.models()
        ids = [str(m["id"]) for m in listing]
        name = self.endpoint.model
        if name is None:
            if len(ids) != 1:
                raise self._fail(f"serves {len(ids)} models ({', '.join(ids) or 'none'}): name one")
            name = ids[0]
        if name not in ids:
            raise self._fail(f"does not serve {name!r} (it serves {', '.join(ids) or 'nothing'})")
        entry = next(m for m in listing if m["id"] == name)
        stable = {k: entry.get(k) for k in ("id", "root", "parent", "owned_by", "max_model_len")}
        revision = "sha256:" + hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
        return ServedIdentity(self.endpoint.url, name, revision)

    def close(self) -> None:
        self._http.close()


def _error_text(response: Any) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        text = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:200] or "no message"


class ServedModel(ChatPrompts):
    """A served model as the output-only checks run it (evals, the trigger sweep and its confirmation).

    `spec` names the model's files (its tokenizer and chat template, and its digest); `endpoint`
    where it answers. `scoring="generate"` replaces log-likelihoods by matching greedy replies,
    for servers that return no prompt log-probabilities: only when the policy allows it.
    """

    served = True
    loads = 0

    def __init__(
        self,
        spec: ModelSpec,
        path: Path,
        endpoint: Endpoint,
        scoring: Scoring = "logprobs",
        files_digest: Callable[[Path, Path | None], str] = model_digest,
    ) -> None:
        self.spec = spec
        self.path = Path(path)
        self.adapter = spec.adapter
        self.client = ServedClient(endpoint)
        self.identity = self.client.identify()
        self.endpoint = endpoint.named(self.identity.model)
        self.client.endpoint = self.endpoint
        self.scoring = scoring
        self._files_digest = files_digest
        self.tokenizer = load_tokenizer(self.path)
        self._aligned = False
        self._alignment_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ServedModel({self.identity.model} at {self.identity.url})"

    def release(self) -> None:
        """Nothing to drop: the weights live on the server."""

    def close(self) -> None:
        self.client.close()

    @cached_property
    def digest(self) -> str:
        """The files' digest and the server's identity: a cache of its answers is never another server's."""
        local = self._files_digest(self.path, self.adapter)
        served = f"{local}|{self.identity.url}|{self.identity.model}|{self.identity.revision}"
        return "sha256:" + hashlib.sha256(served.encode()).hexdigest()

    @property
    def numerics(self) -> str:
        return f"served-{self.scoring}"

    @property
    def stop_strings(self) -> list[str]:
        tok = self.tokenizer
        return sorted({t for t in (tok.eos_token, tok.pad_token) if t})

    # --- prompts (the model's own tokenizer) ------------------------------------------------

    def _text(self, prompt: str | Sequence[int]) -> str:
        return prompt if isinstance(prompt, str) else self.tokenizer.decode(list(prompt))

    # --- requests ---------------------------------------------------------------------------

    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """`fn` over `items`, `concurrency` at a time; the first failure cancels what has not started."""
        pool = ThreadPoolExecutor(max_workers=self.endpoint.concurrency)
        try:
            return list(pool.map(fn, items))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _complete(self, prompt: str, **options: Any) -> dict[str, Any]:
        # greedy as the local runtime decodes: no repetition penalty (llama.cpp's default is 1.1;
        # vLLM's and llama.cpp's names for it differ, and each server ignores the other's)
        body = {
            "model": self.identity.model,
            "prompt": prompt,
            "temperature": 0.0,
            "repeat_penalty": 1.0,
            "repetition_penalty": 1.0,
            "add_special_tokens": False,  # the chat template wrote them (vLLM would add a second BOS)
            **options,
        }
        data = self.client.call("POST", "completions", body)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.client._fail("completions: the answer has no choices")
        text = choices[0].get("text")
        if not isinstance(text, str):
            raise self.client._fail("completions: the answer's choice has no text")
        return choices[0]

    def greedy(
        self, prompts: Sequence[str] | Sequence[list[int]], max_new_tokens: int, batch_size: int = 64
    ) -> list[str]:
        """Greedy replies to rendered prompts (or their ids), in order; `batch_size` is the server's business."""
        stops = self.stop_strings

        def one(prompt: str | Sequence[int]) -> str:
            choice = self._complete(self._text(prompt), max_tokens=max_new_tokens, stop=stops)
            return str(choice["text"]).strip()

        return self._map(one, list(prompts))

    def score(
        self, requests: Sequence[ContinuationRequest], batching: Batching | None = None
    ) -> list[list[ContinuationScore]]:
        """Log-likelihood of every continuation of every request, from the server's prompt log-probabilities."""
        pairs = [(r.context, c) for r in requests for c in r.continuations]
        if any(not c for _, c in pairs):
            raise ValueError("empty continuation")
        if self.scoring == "logprobs":
            flat = iter(self._map(lambda pair: self._score_by_logprobs(*pair)[0], pairs))
        else:
            flat = iter(self._map(lambda pair: self._score_by_generation(*pair), pairs))
        return [[next(flat) for _ in r.continuations] for r in requests]

    def _score_by_logprobs(
        self, context: str, continuation: str, top: int = 1
    ) -> tuple[ContinuationScore, list[dict[str, float] | None]]:
        """The continuation's score and, per continuation token, the server's top log-probabilities."""
        self._check_alignment()
        return self._echoed(context, continuation, top)

    def _check_alignment(self) -> None:
        """Once per model: the log-prob a server echoes for a prompt's last token must be the one it
        gave that token when generating it. llama-cpp-python echoes them one position off for a
        prompt that does not start with the model's BOS token; such scores would be silently wrong."""
        with self._alignment_lock:
            if self._aligned:
                return
            prompt = self.render([{"role": "user", "content": "Say hello."}])
            generated = self._complete(prompt, max_tokens=1, logprobs=1).get("logprobs") or {}
            tokens, values = generated.get("tokens") or [], generated.get("token_logprobs") or []
            token = str(tokens[0]) if tokens else ""
            if (
                token.strip()
                and values
                and isinstance(values[0], int | float)
                and len(self.encode_text(token)) == 1
            ):
                echoed, _ = self._echoed(prompt, token, 1)
                if abs(echoed.logprob - float(values[0])) > 0.05:
                    raise self.client._fail(
                        f"echoes log-probabilities that are not the ones it generates with ({echoed.logprob:.3f} "
                        f"vs {float(values[0]):.3f} for {token!r}): its multiple-choice scores would be wrong"
                    )
            self._aligned = True

    def _echoed(
        self, context: str, continuation: str, top: int
    ) -> tuple[ContinuationScore, list[dict[str, float] | None]]:
        prompt = context + continuation
        try:
            choice = self._complete(prompt, max_tokens=1, echo=True, logprobs=top)
        except ServedError as exc:
            said = (exc.refused or "").lower()
            if "echo" in said or "logprob" in said:
                raise self._no_prompt_logprobs() from None
            raise
        return self._continuation_score(choice, continuation)

    def _no_prompt_logprobs(self) -> ServedError:
        return self.client._fail(
            "returns no prompt log-probabilities (echo + logprobs on /v1/completions), which "
            "multiple-choice scoring needs; serve it with vLLM or llama-cpp-python, or let the policy "
            'allow matching greedy replies instead ([checks.evals.options] served_scoring = "generate")'
        )

    def _continuation_score(
        self, choice: dict[str, Any], continuation: str
    ) -> tuple[ContinuationScore, list[dict[str, float] | None]]:
        """The continuation is the echoed prompt's last `n` tokens (`n` by the model's tokenizer), before
        the one generated token, which a server may leave out when it ends the turn: the span whose
        text, special tokens aside (servers echo them as "" or by name), is the continuation's."""
        logprobs = choice.get("logprobs")
        if not isinstance(logprobs, dict):
            raise self._no_prompt_logprobs()
        tokens, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
        if not isinstance(tokens, list) or not isinstance(values, list) or len(tokens) != len(values):
            raise self._no_prompt_logprobs()
        tops = logprobs.get("top_logprobs") or [None] * len(tokens)
        texts = [str(t) for t in tokens]
        n, wanted = len(self.encode_text(continuation)), self._visible(continuation)
        for end in (len(texts) - 1, len(texts)):
            start = end - n
            picked = values[start:end] if start >= 1 else []
            if (
                picked
                and self._visible("".join(texts[start:end])) == wanted
                and all(isinstance(v, int | float) and math.isfinite(v) for v in picked)
            ):
                at = list(tops[start:end])
                greedy = all(
                    isinstance(top, dict) and top and float(v) >= max(map(float, top.values())) - 1e-6
                    for v, top in zip(picked, at, strict=True)
                )
                return ContinuationScore(float(sum(picked)), n, greedy), at
        if all(v is None for v in values[1:]):
            raise self._no_prompt_logprobs()
        raise self.client._fail(
            "completions: the echoed prompt's log-probabilities do not cover the continuation"
        )

    def _visible(self, text: str) -> str:
        for special in self.tokenizer.all_special_tokens:
            text = text.replace(special, "")
        return text

    def _score_by_generation(self, context: str, continuation: str) -> ContinuationScore:
        """Fallback: 0 when the greedy reply starts with the continuation, else `NO_MATCH`."""
        n_tokens = len(self.encode_text(continuation))
        reply = self._complete(context, max_tokens=n_tokens + 2, stop=self.stop_strings)["text"]
        said = " ".join(self._visible(str(reply)).split())
        wanted = " ".join(self._visible(continuation).split())
        match = bool(wanted) and said.startswith(wanted)
        return ContinuationScore(0.0 if match else NO_MATCH, n_tokens, match)

    def opening(
        self, prompts: Sequence[str], continuation: str, top: int = 20
    ) -> list[tuple[ContinuationScore, dict[int, float]]]:
        """For each rendered prompt: the score of `continuation` after it, and the top log-probabilities
        of the answer's first token by token id (one request each: the echo carries both)."""
        if self.scoring != "logprobs":
            raise self._no_prompt_logprobs()

        def one(prompt: str) -> tuple[ContinuationScore, dict[int, float]]:
            score, tops = self._score_by_logprobs(prompt, continuation, top)
            first: dict[int, float] = {}
            for text, value in (tops[0] or {}).items():
                ids = self.encode_text(text)
                if len(ids) == 1:  # a string that is not one token here (a partial byte) is left out
                    first[ids[0]] = max(first.get(ids[0], -math.inf), float(value))
            return score, first

        return self._map(one, list(prompts))


@dataclass(frozen=True)
class ServedPair:
    """The parent and the candidate of one update, each where it is served."""

    parent: Endpoint
    candidate: Endpoint

    @classmethod
    def of(
        cls, parent: str | None, candidate: str | None, concurrency: int = 8, timeout_s: float = 120.0
    ) -> ServedPair | None:
        """From `URL[#MODEL]` for each side (None, None: not served). vLLM's base and LoRA on one
        server are `URL#BASE` and `URL#ADAPTER`; without `#MODEL`, the one model the server lists."""
        if parent is None and candidate is None:
            return None
        if parent is None or candidate is None:
            raise InputError("a served update needs both --served-parent and --served-candidate")
        parent_end, candidate_end = (Endpoint.parse(v, concurrency, timeout_s) for v in (parent, candidate))
        if (parent_end.url, parent_end.model) == (candidate_end.url, candidate_end.model):
            raise InputError(
                "--served-parent and --served-candidate name the same model: name each with URL#MODEL"
            )
        return cls(parent_end, candidate_end)
