"""OpenSSF model signatures: releases clgate signs verify with model_signing itself (its Python API and
its CLI) until one byte changes; upstream signatures are verified before a proposal records them."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import model_signing.verifying
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from clgate.audit.cli import main
from clgate.audit.journal import Journal

MODEL_SIGNING = Path(sys.executable).parent / "model_signing"  # the dev extra installs its CLI here


def ec_key(
    folder: Path, name: str, curve: ec.EllipticCurve | None = None, passphrase: str = ""
) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    private = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    public = folder / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def flip_a_byte(folder: Path, pattern: str) -> None:
    weights = next(folder.glob(pattern))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))


def cli_verify(signature: Path, public_key: Path, model: Path) -> subprocess.CompletedProcess:
    argv = [
        str(MODEL_SIGNING),
        "verify",
        "key",
        "--signature",
        str(signature),
        "--public_key",
        str(public_key),
    ]
    return subprocess.run([*argv, str(model)], capture_output=True, text=True, timeout=120)


def entries(world) -> int:
    with Journal.open(world.boot.ledger, None, world.boot.trust) as journal:
        return len(journal.ledger)


@pytest.fixture
def release(world, tiny_model: Path, tmp_path: Path):
    """A promoted base model (a copy: tests tamper with it) and an OMS key pair."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    assert world.gate("--candidate", str(model)) == 0
    update_id = next(iter(world.state().updates))
    assert world.run("promote", update_id, key="approver") == 0
    key, public = ec_key(tmp_path, "oms")
    return SimpleNamespace(
        model=model, update_id=update_id, key=key, public=public, sig=tmp_path / "model.sig"
    )


def sign(world, release, *args: str, key: str = "approver", artifact: Path | None = None) -> int:
    target = artifact or release.model
    return world.run(
        "sign", str(target), "--oms-key", str(release.key), "--signature", str(release.sig), *args, key=key
    )


def test_a_signed_release_verifies_with_model_signing_until_one_byte_changes(world, release, capsys) -> None:
    assert sign(world, release) == 0
    assert f"signed update {release.update_id}" in capsys.readouterr().out
    bundle = json.loads(release.sig.read_text())
    ((index, entry),) = world.state().updates[release.update_id].signed.items()
    assert entry.signature.digest == "sha256:" + hashlib.sha256(release.sig.read_bytes()).hexdigest()
    assert entry.signature.key == "sha256:" + bundle["verificationMaterial"]["publicKey"]["hint"]
    assert entry.artifact == world.state().updates[release.update_id].candidate_digest

    verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=release.public)
    verifier.verify(release.model, release.sig)
    checked = cli_verify(release.sig, release.public, release.model)
    assert checked.returncode == 0 and "Verification succeeded" in checked.stdout

    ledger_args = ["--ledger", str(world.boot.ledger), "--trust", str(world.boot.trust)]
    assert main(["ledger", "verify", *ledger_args]) == 0
    assert f"signed release: update {release.update_id}" in capsys.readouterr().out
    assert main(["status", *ledger_args]) == 0
    assert f"signed releases: update {release.update_id}" in capsys.readouterr().out
    assert f"at entry {index}" in release_line(world)
    signed_bytes, before = release.sig.read_bytes(), entries(world)  # a rerun neither replaces nor repeats
    assert sign(world, release) == 2
    assert "exists; refusing to overwrite a signature" in capsys.readouterr().err
    again = release.sig.with_name("again.sig")
    code = world.run(
        "sign", str(release.model), "--oms-key", str(release.key), "--signature", str(again), key="approver"
    )
    assert code == 2 and "was already signed with this key; nothing recorded" in capsys.readouterr().err
    assert release.sig.read_bytes() == signed_bytes and entries(world) == before and not again.exists()

    flip_a_byte(release.model, "*.safetensors")
    with pytest.raises(ValueError, match=r"Hash mismatch for 'model\.safetensors'"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=release.public).verify(
            release.model, release.sig
        )
    assert cli_verify(release.sig, release.public, release.model).returncode == 1

    before = entries(world)
    release.sig.unlink()
    assert sign(world, release) == 1  # the tampered files re-hash to another digest
    err = capsys.readouterr().err
    assert f"is not what update {release.update_id} promoted" in err and "model.safetensors" in err
    assert len(err.strip().splitlines()) == 1 and entries(world) == before and not release.sig.exists()


def release_line(world) -> str:
    from clgate.ledger import release_lines

    (line,) = release_lines(world.state().governance)
    return line


def test_bad_sign_input_is_one_line_and_records_nothing(
    world, release, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = world.adapter("audited", 0.0)
    assert world.gate("--adapter", str(adapter)) == 0  # audited, never promoted
    secp256k1, _ = ec_key(tmp_path, "k1", ec.SECP256K1())
    locked, _ = ec_key(tmp_path, "locked", passphrase="s3cret")
    before = entries(world)
    capsys.readouterr()
    cases = [
        ((), {"artifact": tmp_path / "missing"}, 2, "no such file or directory"),
        (("--oms-key", str(world.boot.keys["admin"])), {}, 2, "not an EC private key (Ed25519PrivateKey)"),
        (("--oms-key", str(secp256k1)), {}, 2, "an EC key on secp256k1"),
        (("--oms-key", str(locked)), {}, 2, "key is encrypted; give its passphrase"),
        ((), {"key": "gate"}, 2, "may not sign artifact.signed (needs approver)"),
        ((), {"key": "pipeline"}, 2, "may not sign artifact.signed"),
        ((), {"artifact": adapter}, 2, "was never promoted; only a promoted artifact is signed"),
        (("--signature", str(release.model / "model.sig")), {}, 2, "would change the promoted files"),
    ]
    for args, kw, code, message in cases:
        assert sign(world, release, *args, **kw) == code, message
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert (
            entries(world) == before
            and not release.sig.exists()
            and not (release.model / "model.sig").exists()
        )

    monkeypatch.setenv("OMS_PASSPHRASE", "s3cret")
    assert sign(world, release, "--oms-key", str(locked), "--oms-passphrase-env", "OMS_PASSPHRASE") == 0
    assert entries(world) == before + 1 and release.sig.is_file()


def test_a_rolled_back_release_is_not_signed(world, release, capsys) -> None:
    first, second = world.adapter("first", 0.0), world.adapter("second", 0.5)
    for path in (first, second):
        assert world.gate("--adapter", str(path)) == 0
    ids = list(world.state().updates)[1:]
    for update_id in ids:
        assert world.run("promote", update_id, key="approver") == 0
    assert world.run("rollback", "--to", ids[0], "--reason", "regression", key="approver") == 0
    capsys.readouterr()
    assert sign(world, release, artifact=second) == 2
    assert f"signing refused: update {ids[1]} was rolled back at entry" in capsys.readouterr().err
    assert sign(world, release, artifact=first) == 0  # the update the rollback restored


def upstream_sign(private_key: Path, folder: Path, *extra: str, signature: Path | None = None) -> Path:
    """As the weights' producer would, with model_signing's CLI: by default the signature inside the
    folder, git's files left out."""
    signature = signature or folder / "model.sig"
    argv = [
        str(MODEL_SIGNING),
        "sign",
        "key",
        "--private_key",
        str(private_key),
        "--signature",
        str(signature),
    ]
    subprocess.run([*argv, *extra, str(folder)], check=True, capture_output=True, timeout=120)
    return signature


def test_a_proposal_records_an_upstream_signature_only_if_it_verifies_and_covers_every_file(
    world, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    producer, producer_public = ec_key(tmp_path, "producer")
    _, stranger_public = ec_key(tmp_path, "stranger")

    def propose(folder: Path, signature: Path, public: Path) -> int:
        return world.run(
            "propose", "--parent", str(tiny_model), "--adapter", str(folder),
            "--oms-signature", str(signature), "--oms-public-key", str(public),
        )  # fmt: skip

    good = world.adapter("good", 0.0)
    signature = upstream_sign(producer, good)
    capsys.readouterr()
    assert propose(good, signature, producer_public) == 0
    update_id = capsys.readouterr().out.strip()
    record = world.state().updates[update_id].proposal.signatures["adapter"]
    assert record.digest == "sha256:" + hashlib.sha256(signature.read_bytes()).hexdigest()
    assert (
        record.key.removeprefix("sha256:")
        == json.loads(signature.read_text())["verificationMaterial"]["publicKey"]["hint"]
    )
    assert record.excluded == ["model.sig"]  # the one file clgate digests that the signature cannot cover

    tampered = world.adapter("tampered", 0.0)
    tampered_sig = upstream_sign(producer, tampered)
    flip_a_byte(tampered, "*.safetensors")
    partial = world.adapter("partial", 0.0)
    partial_sig = upstream_sign(producer, partial, "--ignore-paths", str(partial / "score.txt"))
    before = entries(world)
    for folder, sig, public, code, message in [
        (good, signature, stranger_public, 1, "does not verify with"),
        (tampered, tampered_sig, producer_public, 1, "Hash mismatch for 'adapter_model.safetensors'"),
        (
            partial,
            partial_sig,
            producer_public,
            1,
            "the signature does not cover score.txt, which clgate digests",
        ),
        (good, tmp_path / "none.sig", producer_public, 2, "signature file not found"),
    ]:
        assert propose(folder, sig, public) == code, message
        err = capsys.readouterr().err  # after the progress lines of hashing, one error line
        assert message in err and err.strip().splitlines()[-1].startswith("error:"), err
        assert err.count("error:") == 1 and "Traceback" not in err
    assert (
        world.run("propose", "--parent", str(tiny_model), "--adapter", str(good), "--oms-signature", "x") == 2
    )
    assert "--oms-signature and --oms-public-key go together" in capsys.readouterr().err
    assert entries(world) == before


PRODUCER = ec.derive_private_key(0x5EED_CAFE_F00D, ec.SECP256R1())
"""The producer the policy below pins: a fixed key, so the policy text is known before the ledger is made."""
PRODUCER_PEM = (
    PRODUCER.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
PINNED = f"""
name = "pinned-producers"
required_checks = ["score"]

[[rules]]
id = "score"
check = "score"
metric = "score"
reason = "Score too high"
fail_above = 5.0

[producers]
required_for = ["adapter"]

[[producers.keys]]
name = "acme-release"
public_key = '''{PRODUCER_PEM}'''
"""


@pytest.fixture
def producer_key(tmp_path: Path) -> Path:
    path = tmp_path / "acme-release.pem"
    path.write_bytes(
        PRODUCER.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _gate_signed(
    world,
    tiny_model: Path,
    adapter: Path,
    signature: Path | None,
    public: Path | None,
    capsys,
    role: str = "--adapter",
) -> int:
    """Propose the adapter (or model) with the producer's signature, if any, and gate it; the gate's exit code."""
    signed = ["--oms-signature", str(signature), "--oms-public-key", str(public)] if signature else []
    capsys.readouterr()
    assert world.run("propose", "--parent", str(tiny_model), role, str(adapter), *signed) == 0
    update_id = capsys.readouterr().out.strip()
    out = world.policy.parent / "out"
    return world.run("gate", update_id, "--policy", str(world.policy), "--out", str(out), key="gate")


@pytest.mark.parametrize("world", [PINNED], indirect=True)
def test_a_policy_pins_whose_signature_an_update_must_carry(
    world, producer_key: Path, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    report = tmp_path / "out" / "report.md"
    producer_public = tmp_path / "acme-release.pub"
    producer_public.write_text(PRODUCER_PEM)
    stranger, stranger_public = ec_key(tmp_path, "stranger")

    signed = world.adapter("signed", 0.0)
    assert (
        _gate_signed(world, tiny_model, signed, upstream_sign(producer_key, signed), producer_public, capsys)
        == 0
    )
    assert "signed by pinned producer acme-release, verified again by the gate" in report.read_text()

    unsigned = world.adapter("unsigned", 0.0)
    assert _gate_signed(world, tiny_model, unsigned, None, None, capsys) == 20
    assert "carries no producer signature; policy requires one by acme-release for adapter updates" in (
        report.read_text()
    )

    # the pipeline names its own key: the signature verifies with it, but the policy pins another
    own = world.adapter("own-key", 0.0)
    assert _gate_signed(world, tiny_model, own, upstream_sign(stranger, own), stranger_public, capsys) == 20
    assert "which the policy does not pin as a producer (acme-release)" in report.read_text()

    # a signature kept outside the artifact: verified again from the copy kept at proposal
    outside = world.adapter("signed-outside", 0.0)
    signature = upstream_sign(producer_key, outside, signature=tmp_path / "outside.sig")
    assert _gate_signed(world, tiny_model, outside, signature, producer_public, capsys) == 0
    assert "signed by pinned producer acme-release, verified again by the gate" in report.read_text()

    # a kind the policy does not require a signature for, signed by an unpinned key: review, not block
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    signed_model = upstream_sign(stranger, model, signature=tmp_path / "model.sig")
    assert _gate_signed(world, tiny_model, model, signed_model, stranger_public, capsys, "--candidate") == 10
    assert "which the policy does not pin as a producer" in report.read_text()


@pytest.mark.parametrize("world", [PINNED], indirect=True)
def test_a_forged_record_of_a_pinned_producers_signature_is_caught_by_the_gate(
    world, tiny_model: Path, tmp_path: Path
) -> None:
    """One who holds the pipeline key (and can write the evidence folder) records the pinned producer's
    fingerprint over a signature made with a key of its own. The proposal verifies as signed by the
    pipeline; the gate verifies the signature itself with the pinned key, and blocks."""
    from clgate.artifacts import compute_manifest, oms_key_fingerprint
    from clgate.audit.gate import GateRequest, build_proposal
    from clgate.audit.policy import parse_policy
    from clgate.ledger import OmsSignature, load_private_key

    stranger, _ = ec_key(tmp_path, "stranger")
    adapter = world.adapter("forged", 0.0)
    signature = upstream_sign(stranger, adapter, signature=tmp_path / "forged.sig")
    fingerprint = oms_key_fingerprint(PRODUCER.public_key())  # what the proposal records for the pinned key
    producers = parse_policy(PINNED).producers
    assert producers is not None and [k.fingerprint for k in producers.keys] == [fingerprint]
    request = GateRequest(parent=tiny_model, adapter=adapter)
    manifests = {role: compute_manifest(path) for role, path in request.paths().items()}
    with Journal.open(
        world.boot.ledger, load_private_key(world.boot.keys["pipeline"]), world.boot.trust
    ) as journal:
        kept = journal.evidence.put_file(signature)
        forged = OmsSignature(digest="sha256:" + kept, key=fingerprint)
        index = journal.propose(build_proposal(request, manifests, signatures={"adapter": forged}))
    update = next(u for u in world.state().updates.values() if u.proposed_index == index)
    assert (
        world.run(
            "gate",
            update.update_id,
            "--policy",
            str(world.policy),
            "--out",
            str(tmp_path / "out"),
            key="gate",
        )
        == 20
    )
    reason = "the signature by producer acme-release the proposal records does not verify with the pinned key"
    assert reason in (tmp_path / "out" / "report.md").read_text()


def test_a_producer_key_that_cannot_verify_oms_signatures_is_refused_with_the_policy(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from clgate.audit.policy import parse_policy
    from clgate.errors import PolicyError

    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    ed_pem = ed.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    for key, message in [
        ("not a key", "producer 'acme-release': not a PEM public key"),
        (ed_pem, "producer 'acme-release': not an EC public key"),
    ]:
        with pytest.raises(PolicyError, match=message):
            parse_policy(PINNED.replace(PRODUCER_PEM, key))
    assert parse_policy(PINNED).producers is not None
