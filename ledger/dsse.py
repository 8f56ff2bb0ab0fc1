"""DSSE v1 envelopes with one Ed25519 signature, serialised as canonical JSON.

The signature covers PAE(payloadType, payload), so a payload can never be re-read as another
type. The stored form is the RFC 8785 encoding of the standard DSSE JSON; parsing is strict (that
exact byte string and nothing else), so any change to stored bytes is visible even where base64
or JSON would otherwise tolerate it.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from clgate.errors import InputError, IntegrityError
from clgate.json_input import parse_json
from clgate.ledger.keys import key_id

ENTRY_PAYLOAD_TYPE = "application/vnd.clgate.ledger.entry+json"
CHECKPOINT_PAYLOAD_TYPE = "application/vnd.clgate.ledger.checkpoint+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

# What `to_bytes` writes: base64 fields, and strings with nothing JSON would escape.
_CANONICAL = re.compile(
    rb'\{"payload":"([A-Za-z0-9+/=]*)","payloadType":"([^"\\\x00-\x1f]*)",'
    rb'"signatures":\[\{"keyid":"([^"\\\x00-\x1f]*)","sig":"([A-Za-z0-9+/=]*)"\}\]\}'
)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    keyid: str
    sig: bytes

    def pae(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(self.sig).decode()}],
        }

    def to_bytes(self) -> bytes:
        """RFC 8785 form of `to_dict()` (built directly; a test pins it to the rfc8785 output)."""
        return self._fast_bytes()

    def verify(self, public_key: bytes) -> bool:
        """Does the signature verify under this raw 32-byte Ed25519 public key?"""
        return verify_signature(public_key, self.sig, self.pae())

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse the DSSE JSON object; raises IntegrityError naming what is malformed."""
        try:
            (signature,) = data["signatures"]
            env = cls(
                payload=base64.b64decode(data["payload"], validate=True),
                payload_type=data["payloadType"],
                keyid=signature["keyid"],
                sig=base64.b64decode(signature["sig"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise IntegrityError(
                "malformed DSSE envelope (need payload, payloadType, one signature)"
            ) from None
        if not isinstance(env.payload_type, str) or not isinstance(env.keyid, str):
            raise IntegrityError("malformed DSSE envelope (payloadType and keyid must be strings)")
        return env

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse stored bytes; they must be exactly the canonical encoding of what they contain.

        Canonical envelopes have the one shape `to_bytes` writes, so they are matched directly
        (verification parses every entry: this halves the cost); anything else is parsed as JSON
        to say what is wrong with it.
        """
        env = cls._from_canonical(data)
        if env is not None:
            return env
        try:
            obj = parse_json(data, "envelope")
        except InputError:
            raise IntegrityError("envelope is not valid JSON") from None
        env = cls.from_dict(obj)
        if env._fast_bytes() != data:
            raise IntegrityError("envelope bytes are not in canonical form")
        return env

    @classmethod
    def _from_canonical(cls, data: bytes) -> Envelope | None:
        """The envelope `data` is the canonical form of, or None (`from_bytes` then says why)."""
        found = _CANONICAL.fullmatch(data)
        if found is None:
            return None
        payload, payload_type, keyid, sig = found.groups()
        try:
            env = cls(
                binascii.a2b_base64(payload, strict_mode=True),
                payload_type.decode(),
                keyid.decode(),
                binascii.a2b_base64(sig, strict_mode=True),
            )
        except (binascii.Error, UnicodeDecodeError):
            return None
        return env if env._fast_bytes() == data else None

    def _fast_bytes(self) -> bytes:
        """`to_bytes()` without the general JCS encoder: the fields are ASCII with nothing to escape.

        Any payloadType or keyid that would need escaping yields bytes that differ from the
        stored ones, which is the right answer: our writers never produce them.
        """
        return b'{"payload":"%b","payloadType":"%b","signatures":[{"keyid":"%b","sig":"%b"}]}' % (
            base64.b64encode(self.payload),
            self.payload_type.encode("utf-8", "replace"),
            self.keyid.encode("utf-8", "replace"),
            base64.b64encode(self.sig),
        )


def verify_signature(public_key: bytes, sig: bytes, message: bytes) -> bool:
    """Ed25519 verification by libsodium (PyNaCl), the one place clgate checks a signature.

    Verifying is nearly all of a full ledger check, and libsodium does it in about half the time
    OpenSSL (`cryptography`) takes on this machine (`benchmarks/ledger.py` prints both); keys and
    signatures are still made with `cryptography`. A malformed key or signature is False.
    """
    try:
        VerifyKey(public_key).verify(message, sig)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def sign_envelope(
    payload: bytes, payload_type: str, private_key: Ed25519PrivateKey, keyid: str | None = None
) -> Envelope:
    """Sign PAE(payload_type, payload); `keyid` saves recomputing the signer's id in hot loops."""
    sig = private_key.sign(pae(payload_type, payload))
    return Envelope(payload, payload_type, keyid or key_id(private_key.public_key()), sig)
