"""A real gate's verdicts exported as attestations and checked with generic tools; a proposal whose file
listing leaves a file out (what the attestations' subjects come from) is blocked by the gate."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import SSlibKey

from clgate.audit.cli import main
from clgate.ledger import (
    Ledger,
    Proposal,
    ProposalContent,
    key_id,
    load_private_key,
    load_public_key,
    load_trust,
)
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_a_gated_adapter_verifies_with_securesystemslib_and_hashlib(world, tmp_path: Path, capsys) -> None:
    adapter = world.adapter("bad", 9.0)
    assert world.gate("--adapter", str(adapter)) == 20
    att = tmp_path / "att"
    assert (
        world.run(
            "ledger", "export", "--out", str(tmp_path / "b.json"), "--attestations", str(att), key="gate"
        )
        == 0
    )
    public = load_public_key(world.boot.keys["gate"])
    files = sorted(att.iterdir())
    assert [f.name.split(".", 1)[1] for f in files] == ["test-result.intoto.json", "vsa.intoto.json"]
    for path in files:
        envelope = SslibEnvelope.from_dict(json.loads(path.read_bytes()))
        envelope.verify([SSlibKey.from_crypto(public, keyid=key_id(public))], threshold=1)
        statement = json.loads(envelope.payload)
        assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == _digests(adapter)
    vsa = json.loads(SslibEnvelope.from_dict(json.loads(files[1].read_bytes())).payload)["predicate"]
    assert (vsa["verificationResult"], vsa["verifiedLevels"]) == ("FAILED", ["FAILED"])
    capsys.readouterr()
    verify = ["ledger", "verify-attestation", str(att), "--public-key", str(world.boot.keys["gate"])]
    assert main([*verify, "--artifact", str(adapter)]) == 1  # valid, but the audit blocked it: no `&& deploy`
    assert "2 attestation(s) valid but not PASSED" in capsys.readouterr().err
    verify.append("--allow-failed")
    assert main([*verify, "--artifact", str(adapter)]) == 0
    assert capsys.readouterr().out.count(f"files match {adapter}") == 2
    resigned = sign_envelope(
        SslibEnvelope.from_dict(json.loads(files[1].read_bytes())).payload,
        INTOTO_PAYLOAD_TYPE,
        load_private_key(world.boot.keys["pipeline"]),
    )  # another ledger key re-signs the gate's VSA
    (tmp_path / "resigned.intoto.json").write_text(json.dumps(resigned.to_dict()))
    forged = ["ledger", "verify-attestation", str(tmp_path / "resigned.intoto.json"), "--allow-failed"]
    assert main([*forged, "--public-key", str(world.boot.keys["pipeline"])]) == 1
    assert "only the key that made the audit may attest it" in capsys.readouterr().err
    swapped = shutil.copytree(adapter, tmp_path / "swapped")
    (swapped / "score.txt").write_text("0.0")
    assert main([*verify, "--artifact", str(swapped)]) == 1
    assert "score.txt does not match its subject" in capsys.readouterr().err

    in_log = ["--bundle", str(tmp_path / "b.json"), "--trust", str(world.boot.trust)]
    assert main([*verify, *in_log]) == 0
    assert capsys.readouterr().out.count("agrees with update ") == 2
    statement = json.loads(SslibEnvelope.from_dict(json.loads(files[1].read_bytes())).payload)
    statement["predicate"].update(verificationResult="PASSED", verifiedLevels=["CLGATE_POLICY_PASSED"])
    lie = sign_envelope(
        canonical_json(statement), INTOTO_PAYLOAD_TYPE, load_private_key(world.boot.keys["gate"])
    )
    (tmp_path / "lie.intoto.json").write_text(json.dumps(lie.to_dict()))  # the gate key alone can say so
    lying = [
        "ledger",
        "verify-attestation",
        str(tmp_path / "lie.intoto.json"),
        "--public-key",
        str(world.boot.keys["gate"]),
    ]
    assert main(lying) == 0
    assert main([*lying, *in_log]) == 1  # but not against the ledger's audit
    assert "states PASSED, but the audit at entry" in capsys.readouterr().err


def test_a_proposal_that_lists_a_subset_of_the_files_is_blocked(
    world, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    adapter = world.adapter("subset", 0.0)
    capsys.readouterr()
    assert world.run("propose", "--parent", str(tiny_model), "--adapter", str(adapter)) == 0
    honest = world.state().updates[capsys.readouterr().out.strip()].proposal
    content = honest.model_dump(mode="json", exclude={"update_id"})
    content["nonce"] = "0" * 16
    del content["artifacts"]["adapter"]["files"]["score.txt"]  # the same root, one file left unlisted
    proposal = Proposal.of(ProposalContent.model_validate(content))
    with Ledger.open(world.boot.ledger, load_trust(world.boot.trust)) as ledger:
        ledger.append(proposal, load_private_key(world.boot.keys["pipeline"]), proposal.candidate.digest)
    args = ("gate", proposal.update_id, "--policy", str(world.policy), "--out", str(tmp_path / "o"))
    assert world.run(*args, key="gate") == 20
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    reasons = [f["reason"] for f in report["verdict"]["findings"] if f["rule"] == "proposed-artifacts"]
    assert reasons == [
        "the adapter's file digests in the proposal are not those of its files; propose the update again"
    ]
