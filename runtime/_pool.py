"""`ModelPool`: the models of one gate run, each loaded once and handed to every check that asks for it.

Keyed by (model directory, adapter, device, dtype). A model that does not fit beside the ones the
pool already holds makes the pool release those first (they load again if asked for again, and
`loads` says so); one that does not fit even alone is refused when it is asked for, before any
check runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from clgate.artifacts import check_adapter_fits, resolve_model_dir
from clgate.runtime._fit import plan_load
from clgate.runtime._model import RuntimeModel
from clgate.runtime._placement import resolve_placement
from clgate.runtime._spec import ModelSpec

PoolKey = tuple[Path, Path | None, str, str]


class ModelPool:
    """Holds `RuntimeModel`s for one run; `close()` (or leaving a `with` block) releases them all."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._models: dict[PoolKey, RuntimeModel] = {}
        self._asked: dict[ModelSpec, RuntimeModel] = {}
        self._lock = threading.Lock()

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
                model = RuntimeModel(spec, path, placement, plan, make_room=self._make_room)
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

    def models(self) -> list[RuntimeModel]:
        return list(self._models.values())

    def close(self) -> None:
        for model in self._models.values():
            model.release()
        self._models.clear()
        self._asked.clear()

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
