"""Personal data in continual updates: found in the update's data and memory (Presidio), and measured in
the updated weights (exposure of each value against look-alikes, candidate against parent)."""

from clgate.probes.privacy._exposure import (
    ALTERNATIVES,
    Canary,
    canaries,
    exposure,
    log_likelihoods,
    look_alikes,
    memorisation,
    memorised,
)
from clgate.probes.privacy._pii import KINDS, NER_KINDS, PiiScanner, PiiSpan, TextItem
from clgate.probes.privacy._scan import data_items, memory_items, privacy_scan

__all__ = [
    "ALTERNATIVES",
    "KINDS",
    "NER_KINDS",
    "Canary",
    "PiiScanner",
    "PiiSpan",
    "TextItem",
    "canaries",
    "data_items",
    "exposure",
    "log_likelihoods",
    "look_alikes",
    "memorisation",
    "memorised",
    "memory_items",
    "privacy_scan",
]
