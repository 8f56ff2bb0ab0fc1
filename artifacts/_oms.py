"""OpenSSF Model Signing (OMS) signatures of an artifact's files, made and checked by `model_signing`.

An OMS signature (a Sigstore bundle whose DSSE payload is an in-toto statement listing each file's
SHA-256) and clgate's manifest digest the same bytes the same way, so the files a signature covers
can be compared with the manifest file by file: a signature counts for an artifact only if it covers
exactly the files clgate digests. Both hash every file, hidden ones included; git's files
(`.gitattributes`, ...), which `model_signing` leaves out by default, are signed here too, and a
signature file inside the artifact is the one file its signature cannot cover.

`model_signing` is an optional dependency, imported only when a signature is made or checked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from pathlib import Path
from types import ModuleType

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict

from clgate.artifacts._records import Manifest
from clgate.errors import InputError, IntegrityError
from clgate.pem import read_key_file, read_private_key

OMS_PREDICATE = "https://model_signing/signature/v1.0"
OMS_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
"""The curves `model_signing` signs and verifies with (the Sigstore bundle specification's)."""


class OmsSigned(BaseModel):
    """What an OMS signature pins, read back from its bundle.

    `digest`: SHA-256 of the signature file; `key`: SHA-256 of the signer's public key as PEM
    SubjectPublicKeyInfo, which is the key hint `model_signing` writes into the bundle; `files`: the
    SHA-256 of each file it covers, by path inside the artifact.
    """

    model_config = ConfigDict(frozen=True)

    digest: str
    key: str
    files: dict[str, str]


def _model_signing() -> ModuleType:
    """Imported on use; when it is missing, the CLI names the extra that installs it."""
    import model_signing.hashing
    import model_signing.signing
    import model_signing.verifying

    return model_signing


def _check_curve(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, path: Path | str) -> None:
    if key.curve.name not in OMS_CURVES:
        raise InputError(
            f"{path}: an EC key on {key.curve.name}; OpenSSF model signatures use {', '.join(OMS_CURVES.values())}"
        )


def load_oms_private_key(path: Path, passphrase: str | None = None) -> ec.EllipticCurvePrivateKey:
    """The EC private key that signs OMS signatures; any other kind of key is an InputError."""
    key = read_private_key(path, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(
            f"{path}: not an EC private key ({type(key).__name__.removeprefix('_')}); OpenSSF model signatures "
            f"are made with an EC key on {', '.join(OMS_CURVES.values())}"
        )
    _check_curve(key, path)
    return key


def load_oms_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    return parse_oms_public_key(read_key_file(path, "public key"), str(path))


def parse_oms_public_key(pem: bytes, where: str) -> ec.EllipticCurvePublicKey:
    """A PEM public key that verifies OMS signatures (EC, on a curve they use); else an InputError naming
    `where` it came from."""
    try:
        key = serialization.load_pem_public_key(pem)
    except UnsupportedAlgorithm:
        raise InputError(
            f"{where}: not an EC public key; OpenSSF model signatures are verified with one"
        ) from None
    except ValueError:
        raise InputError(f"{where}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"{where}: not an EC public key; OpenSSF model signatures are verified with one")
    _check_curve(key, where)
    return key


def oms_key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the PEM SubjectPublicKeyInfo: the same hex as the key hint in the signature's bundle."""
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def path_inside(artifact: Path, path: Path) -> str | None:
    """`path` relative to a directory artifact, or None when it lies outside."""
    artifact, path = Path(artifact).resolve(), Path(path).resolve()
    if not artifact.is_dir() or not path.is_relative_to(artifact):
        return None
    return path.relative_to(artifact).as_posix()


def _hashing(ms: ModuleType, artifact: Path, signature: Path) -> object:
    """Per-file SHA-256 of every file, git's included; only the signature file itself is left out."""
    own = path_inside(artifact, signature)
    return (
        ms.hashing.Config()
        .use_file_serialization(hashing_algorithm="sha256")
        .set_ignored_paths(paths=[own] if own else [], ignore_git_paths=False)
    )


def _one_line(exc: Exception) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def read_oms_signature(
    data: bytes, signature: Path, artifact: Path, key: ec.EllipticCurvePublicKey
) -> OmsSigned:
    """The files a (verified) signature's bytes `data` cover; one not per-file SHA-256 cannot be compared."""
    try:
        statement = json.loads(base64.b64decode(json.loads(data)["dsseEnvelope"]["payload"]))
        predicate = statement["predicate"]
        serialization_ = predicate["serialization"]
        resources = {r["name"]: r["digest"] for r in predicate["resources"] if r["algorithm"] == "sha256"}
        complete = len(resources) == len(predicate["resources"])
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{signature}: not an OpenSSF model signature (Sigstore bundle)") from None
    if statement.get("predicateType") != OMS_PREDICATE:
        raise InputError(f"{signature}: predicate {statement.get('predicateType')!r} is not {OMS_PREDICATE}")
    if serialization_.get("method") != "files" or serialization_.get("hash_type") != "sha256" or not complete:
        raise InputError(
            f"{signature}: the signature digests {serialization_.get('method')} with "
            f"{serialization_.get('hash_type')}; clgate compares per-file SHA-256 digests (sign by files, sha256)"
        )
    if Path(artifact).is_file():  # a one-file model is signed as "."
        resources = {Path(artifact).name if name == "." else name: d for name, d in resources.items()}
    return OmsSigned(
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        key=oms_key_fingerprint(key),
        files=resources,
    )


def sign_oms(artifact: Path, key: Path, passphrase: str | None, signature: Path) -> OmsSigned:
    """Write `model_signing`'s signature of every file of `artifact` to `signature`, with an EC key."""
    private = load_oms_private_key(key, passphrase)
    ms = _model_signing()
    try:
        ms.signing.Config().use_elliptic_key_signer(
            private_key=key, password=passphrase.encode() if passphrase else None
        ).set_hashing_config(_hashing(ms, artifact, signature)).sign(artifact, signature)
    except (ValueError, OSError) as exc:
        raise InputError(f"{artifact}: model_signing cannot sign it: {_one_line(exc)}") from None
    return read_oms_signature(signature.read_bytes(), signature, artifact, private.public_key())


def verify_oms(artifact: Path, signature: Path, public_key: Path) -> OmsSigned:
    """Check `signature` over `artifact`'s files with `model_signing`; a failure is an IntegrityError."""
    key = load_oms_public_key(public_key)
    data = read_key_file(signature, "signature")  # read once: what is verified is what is recorded
    ms = _model_signing()
    with tempfile.TemporaryDirectory(prefix="clgate-oms-") as tmp:
        pinned = Path(tmp) / "signature.json"
        pinned.write_bytes(data)
        try:
            ms.verifying.Config().use_elliptic_key_verifier(public_key=public_key).set_hashing_config(
                _hashing(ms, artifact, signature)
            ).verify(artifact, pinned)
        except (
            Exception
        ) as exc:  # model_signing raises ValueError, InvalidSignature, protobuf and JSON errors
            raise IntegrityError(
                f"{signature}: the OpenSSF model signature of {artifact} does not verify with {public_key}: "
                f"{_one_line(exc)}"
            ) from None
    return read_oms_signature(data, signature, artifact, key)


def oms_mismatch(signed: OmsSigned, manifest: Manifest, excluded: str | None = None) -> str | None:
    """Where the files a signature covers differ from the manifest's (but for `excluded`), or None."""
    expected = {f.path: f.sha256 for f in manifest.files if f.path != excluded}
    for path in sorted(expected.keys() | signed.files.keys()):
        if path not in signed.files:
            return f"the signature does not cover {path}, which clgate digests"
        if path not in expected:
            return f"the signature covers {path}, which is not in the artifact"
        if signed.files[path] != expected[path]:
            return f"{path} differs from what was signed"
    return None
