"""`clgate report`: what a compliance officer hands over, checked the way a reader would check it."""

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clgate.audit.cli import main
from clgate.audit.compliance import build_report
from clgate.audit.gate_checks import GATE_CHECKS
from clgate.audit.journal import Journal
from clgate.demo import bootstrap_ledger
from clgate.errors import IntegrityError
from clgate.ledger import Ledger, Note, Proposal, ProposalContent, generate_key, load_private_key, merkle
from clgate.ledger.checkpoint import cosign, sign_checkpoint

TODAY = datetime.now(UTC).date()
SECTIONS = (
    "1. Summary",
    "2. Updates",
    "3. Scheduled audits",
    "4. Ledger verification",
    "5. Compliance mapping",
)


def report(boot, fmt: str, out: Path, start=TODAY, end=TODAY) -> int:
    return main(
        ["report", "--ledger", str(boot.ledger), "--trust", str(boot.trust), "--from", str(start), "--to", str(end),
         "--format", fmt, "--out", str(out)]
    )  # fmt: skip


@pytest.fixture
def history(world, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Base promoted, one update promoted then rolled back, one awaiting review, one blocked, a scheduled run."""
    for name in [n for n in GATE_CHECKS if n != "score"]:  # only the stand-in check: fast and exact
        monkeypatch.delitem(GATE_CHECKS, name)
    assert world.gate("--candidate", str(tiny_model)) == 0
    base = world.state().find(world.state().updates.popitem()[0]).update_id
    assert world.run("promote", base, key="approver") == 0
    ids = {}
    for name, score, code in (("good", 0.0, 0), ("better", 0.5, 0), ("review", 2.0, 10), ("bad", 9.0, 20)):
        assert world.gate("--adapter", str(world.adapter(name, score))) == code
        ids[name] = json.loads((tmp_path / "out" / "report.json").read_text())["update_id"]
    assert world.run("promote", ids["good"], key="approver") == 0
    assert world.run("promote", ids["better"], key="approver") == 0
    assert (
        world.run("rollback", "--to", ids["good"], "--reason", "regression in production", key="approver")
        == 0
    )
    assert world.run("approve", ids["review"], key="auditor") == 0
    assert (
        world.run("audit", "run", "--deployed", str(tiny_model), "--policy", str(world.policy), key="gate")
        == 0
    )
    with Ledger.open(world.boot.ledger) as ledger:
        ledger.checkpoint(load_private_key(world.boot.keys["gate"]))
    assert world.run("approve", ids["review"], key="approver2") == 0  # the ledger grows past the checkpoint
    return world, base, ids


def test_json_report_holds_every_decision_with_evidence_and_proofs(history, tmp_path: Path, capsys) -> None:
    world, base, ids = history
    capsys.readouterr()
    assert report(world.boot, "json", tmp_path / "r.json") == 0
    assert capsys.readouterr().out.strip() == (
        f"{tmp_path / 'r.json'}: 5 update(s), 5 audit(s), 1 blocked, 3 promoted, 1 rolled back, 1 scheduled audit(s)"
    )
    r = json.loads((tmp_path / "r.json").read_text())
    status = {u["update_id"]: u["status"] for u in r["updates"]}
    assert status == {
        base: "deployed",
        ids["good"]: "deployed",
        ids["better"]: "rolled back",
        ids["review"]: "awaiting approval (2 of 2)",
        ids["bad"]: "blocked",
    }
    bad = next(u for u in r["updates"] if u["update_id"] == ids["bad"])
    assert bad["decision"] == "block" and bad["evidence"][0]["numbers"] == {"score": 9.0}
    assert [f["rule"] for f in bad["findings"] if f["status"] == "fail"] == ["score"]
    assert [e["type"] for e in bad["events"]] == ["update.proposed", "audit.completed", "promotion.blocked"]
    review = next(u for u in r["updates"] if u["update_id"] == ids["review"])
    assert [e["signer"] for e in review["events"] if e["type"] == "promotion.approved"] == [
        "auditor",
        "approver2",
    ]
    assert r["scheduled"][0]["decision"] == "promote"

    v = r["verification"]
    with Ledger.open(world.boot.ledger) as ledger:
        assert v["size"] == len(ledger) and v["root"] == ledger.root().hex()
        for index, proof in v["inclusion_proofs"].items():
            leaf = ledger.get(int(index)).leaf
            assert merkle.verify_inclusion(
                leaf, int(index), v["size"], [bytes.fromhex(h) for h in proof], ledger.root()
            )
    cp = v["checkpoint"]
    assert cp["size"] == v["size"] - 1
    consistency = [bytes.fromhex(h) for h in cp["consistency_proof"]]
    assert merkle.verify_consistency(
        cp["size"], v["size"], bytes.fromhex(cp["root"]), bytes.fromhex(v["root"]), consistency
    )

    rows = {(m["framework"], m["clause"]): m for m in r["mapping"]}
    assert rows[("EU AI Act", "Art. 12")]["status"] == "evidence"
    assert rows[("EU AI Act", "Art. 72")]["status"] == "evidence"
    assert str(r["scheduled"][0]["index"]) in rows[("EU AI Act", "Art. 72")]["evidence"]
    assert rows[("EU AI Act", "Art. 15")]["status"] == "partial"  # no poisoning scan in this world
    assert "no poisoning scan" in rows[("EU AI Act", "Art. 15")]["evidence"]
    assert rows[("ISO/IEC 42001", "Clauses 5, 6.1.4, 8.4")]["status"] == "none"
    assert rows[("NIST AI RMF", "Map")]["status"] == "partial"


def test_a_proposal_dated_by_a_clock_set_to_2099_is_not_left_out_of_its_block(
    history, tmp_path: Path, tiny_model: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each signer's clock dates its entries: a pipeline key proposing with its clock set to 2099 would
    have today's report count the block of its update but show no section (its proposal fell outside a
    replay by date). The period is a run of entries and the state a prefix, so the block is shown."""
    world, _, _ = history
    with monkeypatch.context() as future:
        future.setattr("clgate.ledger.log.utc_now", lambda: "2099-01-01T00:00:00.000000Z")
        capsys.readouterr()
        assert (
            world.run("propose", "--parent", str(tiny_model), "--adapter", str(world.adapter("late", 9.0)))
            == 0
        )
        update = capsys.readouterr().out.strip()
    out = str(tmp_path / "o")
    assert world.run("gate", update, "--policy", str(world.policy), "--out", out, key="gate") == 20
    assert report(world.boot, "json", tmp_path / "r.json") == 0
    r = json.loads((tmp_path / "r.json").read_text())
    late = next(u for u in r["updates"] if u["update_id"] == update)
    assert late["status"] == "blocked" and [f["rule"] for f in late["findings"]] == ["score"]
    # and the report names the entry the wrong clock dated, so the auditor sees why it is there
    proposal = next(e for e in late["events"] if e["type"] == "update.proposed")
    assert [(e["index"], e["timestamp"][:10], e["signer"]) for e in r["dated_outside"]] == [
        (proposal["index"], "2099-01-01", "pipeline")
    ]
    assert report(world.boot, "html", tmp_path / "r.html") == 0
    assert (
        f"entry {proposal['index']} (update.proposed, signed by pipeline) dated 2099-01-01"
        in (tmp_path / "r.html").read_text()
    )


def test_html_and_pdf_have_the_sections_and_the_pdf_renders(history, tmp_path: Path) -> None:
    world, _, ids = history
    assert report(world.boot, "html", tmp_path / "r.html") == 0
    html = (tmp_path / "r.html").read_text()
    assert all(s in html for s in SECTIONS) and "<svg" in html and ids["bad"] in html
    assert report(world.boot, "pdf", tmp_path / "r.pdf") == 0
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
    text = subprocess.run(
        ["pdftotext", "-layout", tmp_path / "r.pdf", "-"], capture_output=True, text=True, check=True
    ).stdout
    assert all(s in text for s in SECTIONS)
    assert "Art. 72" in text and "A.6.2.8" in text and f"Update {ids['bad']}" in text
    subprocess.run(["pdftoppm", "-png", "-r", "40", tmp_path / "r.pdf", tmp_path / "page"], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(
        p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 2000 for p in pages
    )


def test_no_scheduled_audit_is_said_plainly(tmp_path: Path) -> None:
    boot = bootstrap_ledger(tmp_path / "ledger")
    assert report(boot, "json", tmp_path / "r.json") == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["updates"] == [] and r["verification"]["checkpoint"] is None
    art72 = next(m for m in r["mapping"] if m["clause"] == "Art. 72")
    assert art72["status"] == "none" and art72["evidence"] == "no scheduled audit in the period"
    assert report(boot, "html", tmp_path / "r.html") == 0
    assert "There is no post-market monitoring evidence" in (tmp_path / "r.html").read_text().replace(
        "there", "There"
    )


def test_a_period_with_no_entries_is_an_error(tmp_path: Path, capsys) -> None:
    boot = bootstrap_ledger(tmp_path / "ledger")
    old = TODAY - timedelta(days=400)
    assert report(boot, "html", tmp_path / "r.html", old, old + timedelta(days=30)) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"error: no ledger entries between {old} and {old + timedelta(days=30)} (the ledger spans {TODAY} to {TODAY})"
    )
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "yesterday"), "error: --from 'yesterday' is not a date like 2025-01-31"),
        (("--to", "2020-01-01"), f"error: --to 2020-01-01 is before --from {TODAY}"),
        (
            ("--format", "docx"),
            "Error: Invalid value for '--format': Value error, 'docx' is not one of 'json', 'html', 'pdf'.",
        ),
    ],
)
def test_bad_report_arguments(tmp_path: Path, capsys, args: tuple[str, str], message: str) -> None:
    boot = bootstrap_ledger(tmp_path / "ledger")
    defaults = {"--from": str(TODAY), "--to": str(TODAY), "--format": "json"}
    defaults[args[0]] = args[1]
    argv = ["report", "--ledger", str(boot.ledger), "--trust", str(boot.trust), "--out", str(tmp_path / "r")]
    assert main([*argv, *(x for kv in defaults.items() for x in kv)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message


def test_missing_and_tampered_ledgers_are_refused(tmp_path: Path, capsys) -> None:
    boot = bootstrap_ledger(tmp_path / "ledger")
    con = sqlite3.connect(boot.ledger)
    con.execute("DELETE FROM ledger_entries WHERE idx = 2")
    con.commit()
    con.close()
    assert report(boot, "json", tmp_path / "r.json") == 1
    assert "fails verification" in capsys.readouterr().err
    argv = [
        "report",
        "--ledger",
        str(tmp_path / "none.db"),
        "--from",
        str(TODAY),
        "--to",
        str(TODAY),
        "--out",
        "x",
        "--trust",
        str(boot.trust),
    ]
    assert main(argv) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: {tmp_path / 'none.db'}: no such ledger (create one with `clgate ledger init`)"
    )


def test_a_report_holds_only_what_verified(tmp_path: Path) -> None:
    """A database writer racing a report: an entry appended after its verification, or a checkpoint with a
    witness nobody verified, is not in it; stored proofs or an entry changed after it stop it (exit 1)."""
    boot = bootstrap_ledger(tmp_path / "ledger")
    pipeline = load_private_key(boot.keys["pipeline"])
    digest = "sha256:" + "1" * 64
    artifacts = {"parent": {"kind": "model", "uri": "/p", "digest": "sha256:" + "f" * 64},
                 "candidate": {"kind": "model", "uri": "/c", "digest": digest}}  # fmt: skip
    body = {"kind": "model", "base": digest, "artifacts": artifacts, "nonce": "0" * 16, "pipeline": {}}
    with Ledger.open(boot.ledger) as ledger:
        proposed = ledger.append(Proposal.of(ProposalContent.model_validate(body)), pipeline, digest).index
    with Journal.open(boot.ledger, None, boot.trust) as journal:
        size = journal.verified_size
        with Ledger.open(boot.ledger) as other:  # another writer, after the verification
            other.append(Note(text="appended after the report verified"), pipeline)
            rogue = generate_key()
            forged = cosign(
                sign_checkpoint(other.log_id(), size, b"\x42" * 32, rogue), rogue, "witness.example"
            )
            other.store.add_checkpoint(forged.size, forged.to_bytes())
        r = build_report(journal, TODAY, TODAY, str(boot.ledger)).verification
        assert (r.size, len(journal.ledger), r.checkpoint) == (size, size + 1, None)
        leaves = [e.leaf for e in journal.verified_entries()]
        assert r.root == journal.verified_root.hex() == merkle.root(leaves).hex()
        assert list(r.inclusion_proofs) == [proposed]
        con = sqlite3.connect(boot.ledger)
        con.execute("UPDATE ledger_nodes SET hash = zeroblob(32)")
        con.commit()
        with pytest.raises(IntegrityError, match="stored proofs changed after it verified"):
            build_report(journal, TODAY, TODAY, str(boot.ledger))
        con.execute(
            "UPDATE ledger_entries SET envelope = CAST(replace(CAST(envelope AS TEXT), 'a', 'b') AS BLOB) "
            "WHERE idx = 1"
        )
        con.commit()
        con.close()
        with pytest.raises(IntegrityError, match=f"first {size} entries changed after they verified"):
            build_report(journal, TODAY, TODAY, str(boot.ledger))
