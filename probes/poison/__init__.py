"""Poisoning detectors for update data, updated models and memory stores.

Every detector scores each item (a training example, a candidate trigger, a memory entry) with a
suspicion score and a reason, so it can be measured by ROC; a calibrated threshold gives the flag.
Detectors register by name (`detectors()`, `get_detector()`); `scan_data`, `scan_model` and
`scan_memory` run a family and return `Measurement` records through `ScanReport.measurements()`.
"""

from clgate.probes.instructions import injection_score
from clgate.probes.poison import (  # noqa: F401  (importing registers the detectors)
    clustering,
    duplicates,
    hubness,
    injection,
    loss,
    payloads,
    provenance,
    spectral,
    spread,
    sweep,
    triggers,
)
from clgate.probes.poison._registry import DetectorSpec, detector, detectors, get_detector
from clgate.probes.poison._registry import select as select_detectors
from clgate.probes.poison.calibration import reference_threshold, robust_threshold, robust_z
from clgate.probes.poison.context import DataContext
from clgate.probes.poison.items import UpdateData, UpdateItem, open_update_data
from clgate.probes.poison.memory_context import MemoryContext
from clgate.probes.poison.representations import Representations, compute_representations
from clgate.probes.poison.result import DetectorResult
from clgate.probes.poison.scan import ScanReport, data_representations, scan_data, scan_memory, scan_model
from clgate.probes.poison.sweep import ProbeTable, SweepInputs, probe_table
from clgate.probes.poison.triggers import MinedTrigger, mine

__all__ = [
    "DataContext",
    "DetectorResult",
    "DetectorSpec",
    "MemoryContext",
    "MinedTrigger",
    "ProbeTable",
    "Representations",
    "ScanReport",
    "SweepInputs",
    "UpdateData",
    "UpdateItem",
    "compute_representations",
    "data_representations",
    "detector",
    "detectors",
    "get_detector",
    "injection_score",
    "mine",
    "open_update_data",
    "probe_table",
    "reference_threshold",
    "robust_threshold",
    "robust_z",
    "scan_data",
    "scan_memory",
    "scan_model",
    "select_detectors",
]
