"""Runs the gate's checks: cached by input digests, bounded by timeouts, errors kept as outcomes.

Checks that run model forward passes go one after another in one lane (they use every core);
the others (hashing, diffs of files, memory scans) run in a second lane beside them.
A check that raises or outlives its timeout becomes an outcome with an error, which the
judge turns into a blocking finding: nothing here can make a verdict more lenient.

A check sees only the inputs it declares (`GateInputs.only`), so its cache key (the digests of
exactly those inputs, its version, seed and options) covers everything it read. A cached result
is stored with that key material and signed by the gate's key; on use both are checked, so a
stale, mismatched or planted cache file is recomputed, never trusted. Its measurement is the one in
the ledger's evidence store, found by digest.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clgate.atomic import write_text_atomic
from clgate.audit.check_inputs import CHECK_PACKAGES, LAZY_MODEL_CLASSES, GateCheck, GateInputs
from clgate.audit.evidence import EvidenceStore
from clgate.audit.judge import CheckOutcome
from clgate.errors import InputError, IntegrityError
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import verify_signature
from clgate.ledger.keys import public_bytes
from clgate.measurement import Measurement
from clgate.progress import Advance

Progress = Callable[[str, str], None]
_CACHE_DOMAIN = b"clgate check cache v2\n"


def cache_material(check: GateCheck, inputs: GateInputs) -> dict[str, Any]:
    """Everything a check's result depends on: its version and those of what it runs, its seed, options and
    every input it reads."""
    material: dict[str, Any] = {
        "check": check.name,
        "version": check.version,
        "seed": inputs.seed,
        "options": inputs.options_for(check.name),
    }
    if check.options_from:
        material["options_from"] = {name: inputs.options_for(name) for name in check.options_from}
    if beneath := check.beneath():
        material["beneath"] = beneath
    material.update({role: inputs.digest(role) for role in check.roles(inputs)})
    if check.forward_passes:  # a CPU fp32 result is not a GPU bf16 one, nor a server's
        material["numerics"] = inputs.numerics(check.name)
        if inputs.served:
            material["served"] = list(inputs.served)
    return json.loads(json.dumps(material, sort_keys=True, default=str))


def cache_key(check: GateCheck, inputs: GateInputs) -> str:
    return hashlib.sha256(canonical_json(cache_material(check, inputs))).hexdigest()


class CheckCache:
    """Which measurement a check's key material gave, signed by the gate's key.

    The measurement itself is kept once, in the ledger's evidence store (by its digest), not in a second
    copy beside the cache; evidence an erasure removed (it removes what no audit recorded too) is never
    served again from a cache.
    """

    def __init__(self, folder: Path, signer: Ed25519PrivateKey, evidence: EvidenceStore) -> None:
        self.folder = Path(folder)
        self.signer = signer
        self.public = public_bytes(signer.public_key())
        self.evidence = evidence

    def _path(self, check: GateCheck, material: dict[str, Any]) -> Path:
        return self.folder / f"{check.name}-{hashlib.sha256(canonical_json(material)).hexdigest()}.json"

    @staticmethod
    def _signed(material: dict[str, Any], digest: str) -> bytes:
        return _CACHE_DOMAIN + canonical_json({"material": material, "measurement": digest})

    def get(self, check: GateCheck, material: dict[str, Any]) -> Measurement | None:
        path = self._path(check, material)
        if not path.is_file():
            return None
        measurement = None
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            signature = base64.b64decode(stored["signature"], validate=True)
            if stored["material"] == material and verify_signature(
                self.public, signature, self._signed(material, stored["measurement"])
            ):
                measurement = self.evidence.get(stored["measurement"])
        except (ValueError, KeyError, TypeError, InputError, IntegrityError):
            measurement = None
        if measurement is None:  # stale, mismatched, corrupt, not signed by this gate, or its evidence gone
            path.unlink(missing_ok=True)
        return measurement

    def put(self, check: GateCheck, material: dict[str, Any], measurement: Measurement) -> None:
        digest = self.evidence.put(measurement)
        signature = self.signer.sign(self._signed(material, digest))
        record = {
            "material": material,
            "measurement": digest,
            "signature": base64.b64encode(signature).decode(),
        }
        write_text_atomic(self._path(check, material), json.dumps(record))


class KeySeal:
    """The gate's key vouching for model folders the gate built in its cache (a GGUF dequantised): a
    folder someone else planted under the same cache key is built again, not judged."""

    def __init__(self, signer: Ed25519PrivateKey) -> None:
        self.signer = signer
        self.public = public_bytes(signer.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(message)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        return verify_signature(self.public, signature, message)


def _with_timeout(fn: Callable[[], Measurement], timeout_s: float) -> Measurement:
    """Run fn in a daemon thread; a hung check cannot hold the gate (or the process) hostage."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except Exception as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"timed out after {timeout_s:g}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "result" not in box:
        raise RuntimeError("check ended without a result")
    return box["result"]  # type: ignore[return-value]


def _steps(name: str, progress: Progress) -> Advance:
    """A long check's steps as a line at each quarter: a log sees it move without a line per batch."""
    shown = 0

    def report(done: int, total: int) -> None:
        nonlocal shown
        quarter = 4 * done // total if total else 0
        if shown < quarter < 4:  # the last quarter is the runner's own "done in …" line
            shown = quarter
            progress(name, f"{25 * quarter}%")

    return report


def run_check(
    check: GateCheck,
    inputs: GateInputs,
    timeout_s: float,
    cache: CheckCache | None,
    progress: Progress | None = None,
) -> CheckOutcome:
    inputs = inputs.only(check.roles(inputs))
    if progress:
        inputs = replace(inputs, advance=_steps(check.name, progress))
    material = cache_material(check, inputs)
    cache = cache if check.cacheable else None
    cached = cache.get(check, material) if cache is not None else None
    if cached is not None:
        if progress:
            progress(check.name, "cached")
        return CheckOutcome(check.name, cached, cached=True)
    if progress:
        progress(check.name, "running")
    start = time.perf_counter()
    try:
        measurement = _with_timeout(lambda: check.run(inputs), timeout_s)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if progress:
            progress(check.name, "error")
        return CheckOutcome(
            check.name,
            None,
            error=f"{type(exc).__name__}: {message}"[:500],
            seconds=time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    if cache is not None:
        cache.put(check, material, measurement)
    if progress:
        progress(check.name, f"done in {seconds:.1f}s")
    return CheckOutcome(check.name, measurement, seconds=seconds)


def run_checks(
    checks: list[GateCheck],
    inputs: GateInputs,
    timeout_for: Callable[[str], float],
    cache: CheckCache | None,
    progress: Progress | None = None,
) -> dict[str, CheckOutcome]:
    for package in CHECK_PACKAGES:
        importlib.import_module(package)
    if importlib.util.find_spec("transformers") is not None:
        transformers = importlib.import_module("transformers")
        for name in LAZY_MODEL_CLASSES:
            getattr(transformers, name)
    lanes = [[c for c in checks if c.forward_passes], [c for c in checks if not c.forward_passes]]

    def run_lane(lane: list[GateCheck]) -> list[CheckOutcome]:
        return [run_check(c, inputs, timeout_for(c.name), cache, progress) for c in lane]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [outcome for lane_outcomes in pool.map(run_lane, lanes) for outcome in lane_outcomes]
    return {o.name: o for o in results}
