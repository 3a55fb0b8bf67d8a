"""Signed tree heads in the transparency-dev checkpoint format, signed as a note (the
golang.org/x/mod/sumdb/note convention) with Ed25519. No Django; `cryptography` for Ed25519.

A checkpoint reads:

    <origin>
    <tree size, decimal>
    <root hash, base64>
    <blank line>
    — <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>

The signature covers the text up to and including the blank line's preceding newline; the key
hash is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key). A verifier key is
written `<name>+<key hash hex>+<base64(0x01 || public key)>`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

ALG_ED25519 = b"\x01"
DASH = "\u2014"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    return f"{name}+{key_hash(name, public).hex()}+" \
           f"{base64.b64encode(ALG_ED25519 + public).decode()}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, Ed25519 public key) of a verifier key string; ValueError when malformed."""
    try:
        name, hash_hex, encoded = text.strip().split("+", 2)  # base64 may hold "+"
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("not a verifier key (name+hash+base64)") from exc
    if raw[:1] != ALG_ED25519 or len(raw) != 33:
        raise ValueError("not an Ed25519 verifier key")
    if key_hash(name, raw[1:]).hex() != hash_hex:
        raise ValueError("the verifier key's hash does not match its name and key")
    return name, raw[1:]


def sign(checkpoint: Checkpoint, name: str, private_seed: bytes) -> str:
    """The signed note: the body, a blank line and one signature line."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    body = checkpoint.body()
    signature = Ed25519PrivateKey.from_private_bytes(private_seed).sign(body.encode())
    line = base64.b64encode(key_hash(name, public_key(private_seed)) + signature).decode()
    return f"{body}\n{DASH} {name} {line}\n"


def public_key(private_seed: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private_seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def open_note(note: str, verifier: str) -> Checkpoint:
    """The checkpoint a note carries, once its signature by `verifier` checks; ValueError
    otherwise (unsigned by that key, altered, or malformed)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    name, public = parse_verifier_key(verifier)
    body, sep, signatures = note.partition("\n\n")
    if not sep:
        raise ValueError("a note needs a blank line before its signatures")
    body += "\n"
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != DASH or parts[1] != name:
            continue
        raw = base64.b64decode(parts[2])
        if raw[:4] != key_hash(name, public):
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
        except InvalidSignature:
            raise ValueError("the checkpoint's signature does not verify") from None
        lines = body.split("\n")
        if len(lines) < 4:
            raise ValueError("a checkpoint has an origin, a size and a root hash")
        return Checkpoint(origin=lines[0], size=int(lines[1]),
                          root=base64.b64decode(lines[2], validate=True))
    raise ValueError(f"no signature by {name} on the note")
