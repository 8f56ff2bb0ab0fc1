"""The inspect-ai logs of a gate's evals, kept in its report folder (`OUT/inspect-logs`).

Fresh checks write their logs there. A check served from the signed cache names logs an earlier
run wrote, perhaps to a report folder since deleted: the cache keeps a copy of each (its folder
`inspect-logs`), so that copy is copied into this run's report folder and the measurement is made to
point at it. Links are never followed. Either way `inspect view --log-dir OUT/inspect-logs` opens every suite the verdict rests on.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from clgate.atomic import atomic_path
from clgate.measurement import Measurement

LOG_FOLDER = "inspect-logs"


def _logs(measurement: Measurement) -> list[Path]:
    """The inspect-ai logs a measurement names as evidence (`.eval` files, or any file in a log folder)."""
    paths = (Path(e) for e in measurement.evidence)
    return [p for p in paths if p.suffix == ".eval" or p.parent.name == LOG_FOLDER]


def _copy(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def _replace(value: Any, moved: dict[str, str]) -> Any:
    if isinstance(value, str):
        return moved.get(value, value)
    if isinstance(value, list):
        return [_replace(v, moved) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, moved) for k, v in value.items()}
    return value


def _regular_file(path: Path) -> bool:
    """A file itself, not a link: a link planted in a report or cache folder must not pull another file
    (a key, say) into the report that CI uploads."""
    return path.is_file() and not path.is_symlink()


def place_logs(measurement: Measurement, log_dir: Path, kept: Path, cached: bool) -> Measurement:
    """Every log the measurement names, in `log_dir` and in `kept` (for a later cache hit); the
    measurement pointing at the copies in `log_dir`.

    A fresh check's logs were written to `log_dir` by this run; a cached check's come only from `kept`,
    the gate's own copies, never from where an earlier run left them. A log found nowhere (or only as a
    link) stays named as it was."""
    moved: dict[str, str] = {}
    for path in _logs(measurement):
        target, copy = log_dir / path.name, kept / path.name
        source = copy if cached else target
        if not _regular_file(source):
            continue
        if source != target:
            _copy(source, target)
        if not _regular_file(copy):
            _copy(target, copy)
        moved[str(path)] = str(target)
    if not moved or all(k == v for k, v in moved.items()):
        return measurement
    return Measurement.model_validate(_replace(measurement.model_dump(), moved))
