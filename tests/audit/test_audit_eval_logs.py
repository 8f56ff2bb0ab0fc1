"""Eval logs placed in the report folder: a cached check's come from the gate's own copies, never through
a link someone planted in a report or cache folder."""

from __future__ import annotations

from pathlib import Path

from clgate.audit.eval_logs import place_logs
from clgate.measurement import Measurement


def _measurement(log: Path) -> Measurement:
    return Measurement(name="evals", version="1", evidence=[str(log)], meta={"logs": [str(log)]})


def test_a_cached_check_takes_its_log_from_the_gates_copy_and_replaces_a_planted_link(tmp_path: Path) -> None:
    secret = tmp_path / "gate.pem"
    secret.write_text("PRIVATE KEY")
    earlier = tmp_path / "old-report" / "inspect-logs" / "retention.eval"
    earlier.parent.mkdir(parents=True)
    earlier.symlink_to(secret)  # the earlier report folder now points at the gate's key
    kept, out = tmp_path / "cache" / "inspect-logs", tmp_path / "report" / "inspect-logs"
    kept.mkdir(parents=True)
    out.mkdir(parents=True)
    (kept / "retention.eval").write_bytes(b"the real log")
    (out / "retention.eval").symlink_to(secret)  # and so does the new report folder

    placed = place_logs(_measurement(earlier), out, kept, cached=True)

    target = out / "retention.eval"
    assert not target.is_symlink() and target.read_bytes() == b"the real log"
    assert placed.evidence == [str(target)] and placed.meta["logs"] == [str(target)]
    assert secret.read_text() == "PRIVATE KEY"


def test_a_link_is_never_copied_into_the_report_or_the_cache(tmp_path: Path) -> None:
    secret = tmp_path / "gate.pem"
    secret.write_text("PRIVATE KEY")
    kept, out = tmp_path / "cache" / "inspect-logs", tmp_path / "report" / "inspect-logs"
    kept.mkdir(parents=True)
    out.mkdir(parents=True)
    (kept / "retention.eval").symlink_to(secret)
    (out / "retention.eval").symlink_to(secret)

    for cached in (True, False):
        placed = place_logs(_measurement(out / "retention.eval"), out, kept, cached=cached)
        assert placed.evidence == [str(out / "retention.eval")]  # named as it was, nothing copied
    copies = [p for p in (*kept.iterdir(), *out.iterdir()) if not p.is_symlink()]
    assert copies == []


def test_a_fresh_checks_log_is_kept_for_a_later_cache_hit(tmp_path: Path) -> None:
    kept, out = tmp_path / "cache" / "inspect-logs", tmp_path / "report" / "inspect-logs"
    out.mkdir(parents=True)
    (out / "retention.eval").write_bytes(b"written by this run")
    placed = place_logs(_measurement(out / "retention.eval"), out, kept, cached=False)
    assert (kept / "retention.eval").read_bytes() == b"written by this run"
    assert placed.evidence == [str(out / "retention.eval")]
