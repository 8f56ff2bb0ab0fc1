"""DSSE envelopes (checked by securesystemslib), canonical JSON, entry types, keys and trust files."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from clgate.errors import InputError, IntegrityError
from clgate.ledger import (
    ENTRY_TYPES,
    Ledger,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    load_trust,
    roles_for,
    save_private_key,
    save_public_key,
    save_trust,
)
from clgate.ledger.canonical import canonical_json
from clgate.ledger.dsse import ENTRY_PAYLOAD_TYPE, Envelope, sign_envelope, verify_signature
from clgate.ledger.entries import make_draft
from clgate.ledger.keys import public_bytes


def _sslib_key(private: Ed25519PrivateKey) -> SSlibKey:
    """securesystemslib's key object, with our key id (SHA-256 of the raw public key)."""
    return SSlibKey.from_crypto(private.public_key(), keyid=key_id(private.public_key()))


def test_ledger_entries_verify_with_securesystemslib_dsse(ledger: Ledger, keys: dict) -> None:
    entry = ledger.append({"type": "note", "body": {"text": "interop"}}, keys["auditor"])
    env = SslibEnvelope.from_dict(json.loads(entry.leaf))
    accepted = env.verify([_sslib_key(keys["auditor"])], threshold=1)
    assert list(accepted) == [key_id(keys["auditor"].public_key())]
    assert json.loads(env.payload)["body"] == {"text": "interop"}
    assert env.payload_type == ENTRY_PAYLOAD_TYPE


def test_securesystemslib_signed_envelope_verifies_with_ours() -> None:
    private = generate_key()
    theirs = SslibEnvelope(b'{"a":1}', ENTRY_PAYLOAD_TYPE, {})
    theirs.sign(CryptoSigner(private, _sslib_key(private)))
    ours = Envelope.from_dict(theirs.to_dict())
    public = public_bytes(private.public_key())
    assert ours.verify(public)
    assert not Envelope(b'{"a":2}', ours.payload_type, ours.keyid, ours.sig).verify(public)


def test_libsodium_verifier_agrees_with_openssl_and_refuses_malformed_keys_and_signatures() -> None:
    """Signatures are made by `cryptography` (OpenSSL) and checked by PyNaCl (libsodium)."""
    private = generate_key()
    public, message = public_bytes(private.public_key()), b"DSSEv1 entry"
    sig = private.sign(message)
    other = public_bytes(generate_key().public_key())
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert verify_signature(public, sig, message)
    for key, signature, text in [
        (other, sig, message),
        (public, flipped, message),
        (public, sig, message + b"!"),
        (public[:31], sig, message),
        (public, sig[:63], message),
        (public, sig + b"\0", message),
        (b"", b"", message),
    ]:
        assert not verify_signature(key, signature, text)


def test_stored_envelope_bytes_are_rfc8785_of_the_dsse_json() -> None:
    env = sign_envelope(b"payload \x00 bytes", ENTRY_PAYLOAD_TYPE, generate_key())
    assert env.to_bytes() == rfc8785.dumps(env.to_dict())
    assert Envelope.from_bytes(env.to_bytes()) == env


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b.replace(b'{"payload"', b'{ "payload"'), "not in canonical form"),
        (lambda b: b[:-1], "not valid JSON"),
        (lambda b: b.replace(b'"signatures":[', b'"signatures":[{"keyid":"x","sig":""},'), "one signature"),
        (lambda b: b.replace(b'"payload":"', b'"payload":"!'), "malformed DSSE"),
    ],
)
def test_envelope_parsing_is_strict(mutate, message: str) -> None:
    data = sign_envelope(b"x", ENTRY_PAYLOAD_TYPE, generate_key()).to_bytes()
    with pytest.raises(IntegrityError, match=message):
        Envelope.from_bytes(mutate(data))


def test_canonical_json_refuses_what_json_cannot_carry_exactly() -> None:
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    with pytest.raises(InputError, match="cannot be canonical JSON"):
        canonical_json({"x": float("nan")})
    with pytest.raises(InputError, match="cannot be canonical JSON"):
        canonical_json({"x": 2**60})


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_canonical_json_is_rfc8785_for_every_value(value) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(InputError, match="cannot be canonical JSON"):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=40),
    st.text(max_size=8),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.integers(min_value=0),
    st.integers(min_value=0, max_value=255),
)
def test_direct_envelope_parsing_accepts_exactly_what_json_parsing_does(
    payload: bytes, payload_type: str, keyid: str, sig: bytes, at: int, byte: int
) -> None:
    """`from_bytes` matches canonical envelopes directly; JSON parsing is the reference."""
    data = Envelope(payload, payload_type, keyid, sig).to_bytes()
    for candidate in (data, data[: at % len(data)] + bytes([byte]) + data[at % len(data) + 1 :]):
        try:
            reference = Envelope.from_dict(json.loads(candidate))
        except (ValueError, IntegrityError):
            reference = None
        if reference is not None and reference.to_bytes() != candidate:
            reference = None
        assert Envelope._from_canonical(candidate) == reference


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "update.merged"}, "unknown entry type 'update.merged'"),
        ({"type": "update.proposed"}, "needs a subject"),
        (
            {"type": "audit.completed", "subject": "s", "body": {"update_id": "0" * 16, "verdict": "maybe"}},
            "body.verdict",
        ),
        (
            {"type": "rollback", "subject": "s", "body": {"update_id": "0" * 16, "slot": "base"}},
            "body.reason: Field required",
        ),
        (
            {"type": "note", "body": {"text": "x", "smuggled": 1}},
            "body.smuggled: Extra inputs are not permitted",
        ),
        ({"type": "note", "body": {"text": ""}}, "body.text"),
        ({"type": "note", "body": {"text": "x"}, "extra": 1}, "extra: Extra inputs are not permitted"),
        (
            {
                "type": "key.added",
                "subject": "0" * 64,
                "body": {"key_id": "0" * 64, "public_key": "AA==", "roles": ["admin"]},
            },
            "key_id is not SHA-256",
        ),
        (
            {"type": "key.revoked", "subject": "a" * 64, "body": {"key_id": "b" * 64}},
            "subject must equal body.key_id",
        ),
    ],
)
def test_bad_drafts_are_refused_with_the_field_named(entry: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_draft(entry)


def test_role_map_is_least_privilege() -> None:
    assert roles_for("update.proposed") == {"pipeline"}
    assert roles_for("audit.completed") == {"gate"}
    assert roles_for("promotion.approved") == {"auditor", "approver"}
    assert roles_for("promotion.blocked") == {"gate", "auditor", "approver"}
    assert roles_for("promotion.done") == {"approver"}
    assert roles_for("rollback") == {"approver"}
    assert roles_for("key.revoked") == {"admin"}
    assert roles_for("policy.adopted") == {"admin"}
    assert roles_for("note") == {"pipeline", "gate", "auditor", "approver"}
    # admins govern the ledger: keys, policies, and withdrawing an erasure request (by their key quorum)
    assert roles_for("erasure.withdrawn") == {"admin"}
    governing = ("key.", "policy.", "erasure.withdrawn")
    assert all("admin" not in roles_for(t) for t in ENTRY_TYPES if not t.startswith(governing))


def test_typed_bodies_refuse_what_they_do_not_declare() -> None:
    from clgate.ledger import AuditRecord, PolicyRef

    record = AuditRecord(
        update_id="0" * 16,
        verdict="promote",
        findings=[],
        policy=PolicyRef(name="p", digest="sha256:" + "0" * 64),
    )
    draft = make_draft(record, "sha256:ab")
    assert draft.type == "audit.completed" and draft.body["policy"] == {
        "name": "p",
        "digest": "sha256:" + "0" * 64,
    }
    with pytest.raises(InputError, match=r"body\.smuggled: Extra inputs are not permitted"):
        make_draft({"type": "audit.completed", "subject": "s", "body": {**draft.body, "smuggled": True}})


def test_private_key_file_mode_and_passphrase(tmp_path: Path) -> None:
    key = generate_key()
    path = save_private_key(key, tmp_path / "k.key", passphrase="s3cret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key_id(load_private_key(path, "s3cret").public_key()) == key_id(key.public_key())
    public = save_public_key(key.public_key(), tmp_path / "k.pub")
    assert key_id(load_public_key(public)) == key_id(key.public_key())
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(path, "guess")
    with pytest.raises(InputError, match="key is encrypted; give its passphrase"):
        load_private_key(path)
    with pytest.raises(InputError, match=r"private key file not found: .*missing\.key"):
        load_private_key(tmp_path / "missing.key")
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(InputError, match="not a PEM private key"):
        load_private_key(tmp_path / "junk.key")


def test_trust_file_round_trips_signed(tmp_path: Path, trust, keys) -> None:
    path = save_trust(trust.with_revocation("a" * 64, 9), tmp_path / "trust.toml", keys["admin"])
    loaded = load_trust(path)
    assert loaded.model_copy(update={"signature": None}) == trust.with_revocation("a" * 64, 9)
    assert loaded.signature is not None and loaded.revoked_at("a" * 64) == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys = [", "not valid TOML"),
        ('[[keys]]\npublic_key = "AAAA"\nroles = ["admin"]', "32 raw Ed25519 bytes|32 bytes"),
        ('[[keys]]\npublic_key = "{pk}"\nroles = ["root"]', r"keys.0.roles.0: Input should be"),
        ('[[keys]]\npublic_key = "{pk}"\nroles = []', "keys.0.roles: List should have at least 1"),
        ('[[keys]]\npublic_key = "{pk}"\nkey_id = "{bad}"\nroles = ["admin"]', "does not match public_key"),
        ("schema_version = 1", "unsupported schema_version 1"),
        ("surprise = 1", "surprise: Extra inputs"),
        ('key_quorum = "1"', "key_quorum: Input should be a valid integer"),
        ("key_quorum = true", "key_quorum: Input should be a valid integer"),
        ("x = " + "[" * 100_000 + "]" * 100_000, r"not valid TOML \(maximum recursion depth"),
        ("key_quorum = " + "9" * 5000, r"not valid TOML \(Exceeds the limit"),
    ],
)
def test_malformed_trust_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    pk = base64.b64encode(b"\x01" * 32).decode()
    path = tmp_path / "trust.toml"
    path.write_text(text.replace("{pk}", pk).replace("{bad}", "0" * 64))
    with pytest.raises(InputError, match=message) as info:
        load_trust(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_trust_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such trust file"):
        load_trust(tmp_path / "nope.toml")
