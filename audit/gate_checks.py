"""The checks the gate runs, registered by name (see `clgate.audit.checks.gate_check`)."""

from __future__ import annotations

from clgate.audit.checks import GateCheck

GATE_CHECKS: dict[str, GateCheck] = {}
