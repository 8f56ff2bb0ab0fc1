"""kill -9 in the middle of appending leaves the ledger exactly as its last committed append."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from clgate.ledger import Ledger, save_private_key

APPENDER = """
import sys
from clgate.ledger import Ledger, load_private_key
key = load_private_key(sys.argv[2])
with Ledger.open(sys.argv[1]) as led:
    print("ready", flush=True)
    i = 0
    while True:
        led.append({"type": "note", "body": {"text": "x" * 2000 + str(i)}}, key)
        i += 1
"""


def test_kill_9_mid_append_leaves_prior_state_intact(ledger: Ledger, keys, trust, tmp_path: Path) -> None:
    key_file = save_private_key(keys["pipeline"], tmp_path / "pipeline.key")
    target = ledger.store.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", APPENDER, target, str(key_file)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    start, deadline = len(ledger), time.monotonic() + 60
    while len(ledger) < start + 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # lands mid-append: the appender never pauses
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    size = len(ledger)
    assert size >= start + 20
    assert [e.index for e in ledger.entries()] == list(range(size))
    assert ledger.verify(trust) == []
    after = ledger.append({"type": "note", "body": {"text": "still appendable"}}, keys["pipeline"])
    assert after.index == size
    assert ledger.verify(trust) == []


def test_a_verify_racing_another_writer_finds_nothing_wrong(
    ledger: Ledger, keys, trust, tmp_path: Path
) -> None:
    """Fleet jobs open (and so verify) the ledger while others append: a verify that read the entries before an
    append and the Merkle nodes or head after it reported the new entry's node as forged."""
    key_file = save_private_key(keys["pipeline"], tmp_path / "pipeline.key")
    target = ledger.store.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", APPENDER, target, str(key_file)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        verified, deadline = 0, time.monotonic() + 5
        while time.monotonic() < deadline:
            assert ledger.verify(trust) == []
            verified += 1
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert verified >= 3 and len(ledger) > verified
