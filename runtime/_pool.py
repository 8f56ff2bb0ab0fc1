"""`ModelPool`: the models of one gate run, each loaded once and handed to every check that asks for it.

Keyed by (model directory, adapter, device, dtype). A model that does not fit beside the ones the
pool already holds makes the pool release those first (they load again if asked for again, and
`loads` says so); one that does not fit even alone is refused when it is asked for, before any
check runs.

A model can also be served (`serve`): checks that need only its outputs (`outputs`) then ask the
server, and checks that need its weights or activations (`get`) still load it from its files.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from clgate.artifacts import check_adapter_fits, model_digest, resolve_model_dir
from clgate.runtime._fit import plan_load
from clgate.runtime._model import RuntimeModel
from clgate.runtime._placement import resolve_placement
from clgate.runtime._served import Endpoint, Scoring, ServedModel, ServedPair
from clgate.runtime._spec import ModelSpec

PoolKey = tuple[Path, Path | None, str, str]
FilesKey = tuple[Path, Path | None]


def _files(path: Path, adapter: Path | None) -> FilesKey:
    return Path(path).resolve(), Path(adapter).resolve() if adapter else None


class ModelPool:
    """Holds `RuntimeModel`s for one run; `close()` (or leaving a `with` block) releases them all."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._models: dict[PoolKey, RuntimeModel] = {}
        self._asked: dict[ModelSpec, RuntimeModel] = {}
        self._endpoints: dict[FilesKey, Endpoint] = {}
        self._served: dict[tuple[FilesKey, Scoring], ServedModel] = {}
        self._digests: dict[FilesKey, str] = {}
        self._lock = threading.Lock()
        self._digest_lock = threading.Lock()

    def files_digest(self, path: Path, adapter: Path | None) -> str:
        """`model_digest` of these files, hashed once per pool: a gate's local and served models of
        one checkpoint (the parent under every check, a model both loaded and served) share it."""
        key = _files(path, adapter)
        with self._digest_lock:
            if key not in self._digests:
                self._digests[key] = model_digest(path, adapter)
            return self._digests[key]

    def serve(self, path: Path, adapter: Path | None, endpoint: Endpoint) -> ServedModel:
        """From now on `outputs` of the model `path` (+ `adapter`) come from `endpoint`: checked now."""
        self._endpoints[_files(path, adapter)] = endpoint
        return self.outputs(ModelSpec(path, adapter))

    def serve_pair(
        self, parent: Path, candidate: Path | None, adapter: Path | None, served: ServedPair | None
    ) -> None:
        """Serve an update's parent and candidate (`candidate`, or the parent under `adapter`) from `served`."""
        if served is not None:
            self.serve(parent, None, served.parent)
            self.serve(candidate or parent, adapter, served.candidate)

    def outputs(self, spec: ModelSpec, scoring: Scoring = "logprobs") -> RuntimeModel | ServedModel:
        """The model for a check that needs only its outputs: the server's when it is served, else `get`."""
        files = _files(spec.path, spec.adapter)
        endpoint = self._endpoints.get(files)
        if endpoint is None:
            return self.get(spec)
        with self._lock:
            model = self._served.get((files, scoring))
            if model is None:
                path = resolve_model_dir(spec.path, self.cache_dir, "float32")  # its tokenizer and digest
                model = self._served[(files, scoring)] = ServedModel(
                    spec, path, endpoint, scoring, self.files_digest
                )
            return model

    def get(self, spec: ModelSpec) -> RuntimeModel:
        """The pool's model for `spec`: files, adapter fit, placement and memory checked; weights load on first use."""
        with self._lock:
            if spec in self._asked:
                return self._asked[spec]
            placement = resolve_placement(spec.device, spec.dtype)
            path = resolve_model_dir(spec.path, self.cache_dir, placement.dtype)
            if spec.adapter is not None:
                check_adapter_fits(spec.adapter, path)
            adapter = spec.adapter.resolve() if spec.adapter else None
            key = (path.resolve(), adapter, placement.device, placement.dtype)
            model = self._models.get(key)
            if model is None:
                held = sum(m.plan.weights_bytes for m in self._models.values() if m.loaded)
                plan = plan_load(path, placement, reclaimable=held)
                model = RuntimeModel(
                    spec, path, placement, plan, make_room=self._make_room, files_digest=self.files_digest
                )
                self._models[key] = model
            self._asked[spec] = model
            return model

    def _make_room(self, keep: RuntimeModel) -> bool:
        """Release every other loaded model; False when there was none to release."""
        others = [m for m in self._models.values() if m is not keep and m.loaded]
        for model in others:
            model.release()
        return bool(others)

    @property
    def loads(self) -> int:
        """Weight loads so far, over every model."""
        return sum(m.loads for m in self._models.values())

    def served_traffic(self) -> tuple[int, float]:
        """Requests its servers answered, and seconds with one of them in flight (summed per model)."""
        clients = [m.client for m in self._served.values()]
        return sum(c.requests for c in clients), sum(c.busy_s for c in clients)

    def models(self) -> list[RuntimeModel]:
        return list(self._models.values())

    def close(self) -> None:
        for model in self._models.values():
            model.release()
        for served in self._served.values():
            served.close()
        self._models.clear()
        self._asked.clear()
        self._served.clear()

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def load_model(
    path: Path, adapter: Path | None = None, *, device: str = "auto", dtype: str = "auto"
) -> RuntimeModel:
    """One model outside any gate (a pool of its own), for scripts and tests; weights load on first use."""
    return ModelPool().get(ModelSpec(Path(path), adapter, device, dtype))
