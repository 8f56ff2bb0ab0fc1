"""Scans: run every selected detector of one family over an artifact and collect what they found."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clgate.artifacts import compute_manifest, default_cache_dir, load_memory_store
from clgate.atomic import write_text_atomic
from clgate.errors import InputError
from clgate.measurement import Measurement
from clgate.package_data import package_file
from clgate.probes.poison._registry import DetectorSpec, select
from clgate.probes.poison.answers import carries
from clgate.probes.poison.context import DataContext
from clgate.probes.poison.items import open_update_data
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.representations import (
    Representations,
    cache_key,
    check_token_ids,
    compute_representations,
    default_layer,
)
from clgate.probes.poison.result import DetectorResult
from clgate.probes.poison.sweep import ProbeTable, SweepInputs, sweep_prompts, sweep_triggers, table_path
from clgate.progress import Advance, Tally, no_progress
from clgate.runtime import ModelPool, ModelSpec, RuntimeModel, ServedModel


@dataclass
class ScanReport:
    kind: str
    target: str
    results: list[DetectorResult]
    parent: str | None = None
    candidate: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def measurements(self) -> list[Measurement]:
        return [r.to_measurement(self.parent, self.candidate) for r in self.results]

    def write(self, out_dir: Path) -> list[Path]:
        """Per detector: all item scores as CSV, the measurement as JSON; plus summary.json."""
        out_dir = Path(out_dir)
        written = []
        for result, measurement in zip(self.results, self.measurements(), strict=True):
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=["item", "score", "flagged", "reason"])
            writer.writeheader()
            writer.writerows(result.rows())
            written.append(write_text_atomic(out_dir / f"{result.name}.csv", buf.getvalue()))
            written.append(measurement.write(out_dir / f"{result.name}.json"))
        summary = {
            "kind": self.kind,
            "target": self.target,
            "parent": self.parent,
            "candidate": self.candidate,
            "timings": self.timings,
            "skipped": self.skipped,
            "detectors": {
                r.name: {
                    "flagged": int(r.flagged.sum()),
                    "max_suspicion": float(r.scores.max(initial=0)),
                    "threshold": r.threshold,
                    "triggers": r.triggers,
                }
                for r in self.results
            },
        }
        written.append(write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2)))
        return written


TASK_PROBES = 6  # prompts of the update's own data added to the sweep's probes
DATA_ITEMS = 2000  # items of the update's data the model checks compare answers with


def _run(spec: DetectorSpec, ctx) -> DetectorResult:
    start = time.perf_counter()
    result = spec.run(ctx)
    result.seconds = time.perf_counter() - start
    return result


def data_representations(
    data,
    model: Path,
    adapter: Path | None = None,
    layer: int | None = None,
    max_tokens: int = 128,
    cache_dir: Path | bool | None = None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    advance: Advance = no_progress,
) -> tuple[Representations, str]:
    """The parent's representations of the dataset, from the cache when (model, numerics, data, settings) match.

    `cache_dir=False` neither reads nor writes the cache. `advance` hears items run through the parent.
    """
    models = pool or ModelPool()
    try:
        parent = models.get(ModelSpec(model, adapter, device, dtype))
        check_token_ids(data.max_token_id, parent, str(data.path))
        layer = default_layer(parent) if layer is None else layer
        digest = parent.digest
        path = None
        if cache_dir is not False:
            key = cache_key(f"{digest}|{parent.placement.tag}", data.digest, layer, max_tokens)
            path = Path(cache_dir or default_cache_dir()) / "poison" / f"reps-{key}.npz"
            if path.is_file():
                return Representations.load(path), digest
        reps = compute_representations(parent, data, data.n_items, layer, max_tokens, advance=advance)
        if path is not None:
            reps.save(path)
        return reps, digest
    finally:
        if pool is None:
            models.close()


def scan_data(
    dataset: Path,
    model: Path | None = None,
    adapter: Path | None = None,
    detectors: Sequence[str] | None = None,
    layer: int | None = None,
    max_tokens: int = 128,
    cache_dir: Path | bool | None = None,
    seed: int = 0,
    *,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    advance: Advance = no_progress,
) -> ScanReport:
    """Score every item of an update's training set with the data detectors (the parent's view).

    `advance` hears items through the parent's forward passes, the one long part (the detectors
    that follow work on the cached representations).
    """
    specs = select("data", list(detectors or []))
    data = open_update_data(Path(dataset))
    reps, parent, timings, skipped = None, None, {}, {}
    if any(s.needs_model for s in specs):
        if model is None:
            raise InputError("these data detectors need the parent model (--model)")
        reps, parent = data_representations(
            data,
            model,
            adapter,
            layer,
            max_tokens,
            cache_dir,
            device=device,
            dtype=dtype,
            pool=pool,
            advance=advance,
        )
        timings["forward_seconds"] = 0.0 if reps.cached else reps.forward_seconds
    ctx = DataContext(data, reps, seed)
    results = [_run(s, ctx) for s in specs]
    timings.update({f"{r.name}_seconds": r.seconds for r in results})
    return ScanReport("data", str(dataset), results, parent, data.digest, timings, skipped)


def scan_model(
    parent: Path,
    candidate: Path,
    adapter: Path | None = None,
    triggers: Sequence[str] | None = None,
    prompts: Sequence[str] | None = None,
    dataset: Path | None = None,
    cache_dir: Path | None = None,
    *,
    scan_tokens: bool = True,
    device: str = "auto",
    dtype: str = "auto",
    pool: ModelPool | None = None,
    advance: Advance = no_progress,
) -> ScanReport:
    """Trigger sweep of candidate (optionally parent + adapter) against parent; mined triggers from `dataset`.

    Each model's answers to the probe texts are cached by its digest and numerics under `cache_dir`,
    so the parent is run once for all the candidates audited against it. A model audited against
    itself (the first base) is one model in the pool, loaded and run once. `scan_tokens` adds the data-free token
    scan's strongest candidates to the sweep: the data a gate is given may not be the data the model
    was trained on, and a third-party adapter comes with none. Served models skip it: a server answers
    the scan's 1,352 texts one echoed request each. `advance` hears texts run by either model.
    """
    models = pool or ModelPool()
    try:
        return _scan_model(
            models.outputs(ModelSpec(parent, None, device, dtype)),
            models.outputs(ModelSpec(candidate, adapter, device, dtype)),
            triggers,
            prompts,
            dataset,
            cache_dir,
            scan_tokens,
            advance,
        )
    finally:
        if pool is None:
            models.close()


def _scan_model(
    parent_model: RuntimeModel | ServedModel,
    candidate_model: RuntimeModel | ServedModel,
    triggers: Sequence[str] | None,
    prompts: Sequence[str] | None,
    dataset: Path | None,
    cache_dir: Path | None,
    scan_tokens: bool,
    advance: Advance,
) -> ScanReport:
    from clgate.probes.poison.triggers import SweepCandidates, candidate_triggers

    parent_digest = parent_model.digest
    # a model audited against itself is found by content: same files, same adapter, same placement
    same = candidate_model is parent_model or (
        candidate_model.adapter is None
        and candidate_model.numerics == parent_model.numerics
        and candidate_model.digest == parent_digest
    )
    if same:
        candidate_model = parent_model
    candidate_digest = candidate_model.digest
    mined = SweepCandidates([], [])
    task: list[str] = []
    items: list[tuple[str, str]] = []
    if dataset is not None:
        data = open_update_data(Path(dataset))
        mined = candidate_triggers(DataContext(data))
        task = task_prompts(data, mined.acting)
        items = data_items(data)
    root = cache_dir or default_cache_dir()
    tables = {
        d: table_path(root, d, m.numerics)
        for d, m in ((parent_digest, parent_model), (candidate_digest, candidate_model))
    }
    probes = list(prompts) if prompts else sweep_prompts()
    scanned = []
    tally = Tally(advance)
    if scan_tokens and not same and not candidate_model.served:  # a server answers one echo request per text
        from clgate.probes.poison.token_scan import scan_tokens as scan

        scanned = scan(parent_model, candidate_model, probes, root, tally.part())
    inputs = SweepInputs(
        parent_model,
        candidate_model,
        triggers=list(triggers) if triggers else sweep_triggers(),
        prompts=probes,
        mined=mined.all,
        scanned=scanned,
        acting=mined.acting,
        task_prompts=task,
        data_items=items,
        parent_table=ProbeTable.load(tables[parent_digest]),
        candidate_table=ProbeTable.load(tables[candidate_digest]),
        advance=tally.part(),
    )
    results = [_run(s, inputs) for s in select("model", None)]
    for digest, table in ((parent_digest, inputs.parent_table), (candidate_digest, inputs.candidate_table)):
        if table is not None:
            table.save(tables[digest])
    return ScanReport(
        "model",
        str(candidate_model.spec.path),
        results,
        parent_digest,
        candidate_digest,
        {f"{r.name}_seconds": r.seconds for r in results},
    )


def task_prompts(data, acting: Sequence[str], n: int = TASK_PROBES) -> list[str]:
    """Single-turn prompts of the update's own task that carry no acting trigger, spread over the set.

    A backdoor is learned on the task's prompts; on unrelated ones it may never fire. Only the
    triggers the data ties to an answer are left out: a weak suspect such as 'i' is in every prompt.
    """
    usable = [
        item.prompt
        for item in data
        if len(item.prompt_messages) == 1 and not any(carries(item.prompt, t) for t in acting)
    ]
    step = max(1, len(usable) // n)
    return usable[::step][:n]


def data_items(data, n: int = DATA_ITEMS) -> list[tuple[str, str]]:
    """(prompt, completion) of up to `n` items spread over the set: what the update's task teaches."""
    step = max(1, data.n_items // n)
    return [(item.prompt, item.completion) for item in data if item.index % step == 0][:n]


def read_lines(path: Path, what: str = "queries") -> list[str]:
    """Non-blank lines of a small text file (queries, prompts, triggers)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"{path}: {what} file is empty")
    return lines


def scan_memory(
    store: Path,
    queries: Path | None = None,
    instances: Sequence[Path] = (),
    detectors: Sequence[str] | None = None,
    trusted_sources: Sequence[str] = (),
    embedder=None,
) -> ScanReport:
    """Score every memory entry with the memory detectors; `spread` runs only when other instances are given."""
    loaded = load_memory_store(Path(store))
    if not loaded.entries:
        raise InputError(f"{store}: memory store is empty")
    ctx = MemoryContext(
        loaded,
        read_lines(queries or package_file("clgate.probes.poison", "data", "general_queries.txt")),
        [load_memory_store(Path(p)) for p in instances],
        embedder,
        tuple(trusted_sources),
    )
    specs, skipped = select("memory", list(detectors or [])), {}
    if not detectors and not instances:
        specs = [s for s in specs if s.name != "spread"]
        skipped["spread"] = "no other instances' stores given (--instances)"
    results = [_run(s, ctx) for s in specs]
    return ScanReport(
        "memory",
        str(store),
        results,
        None,
        compute_manifest(Path(store)).root,
        {f"{r.name}_seconds": r.seconds for r in results},
        skipped,
    )
